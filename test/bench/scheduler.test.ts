import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../shared/src/clock.ts';
import { runOpenLoop, type OverflowPolicy } from '../../loadtest/bench/scheduler.ts';

/** Lets queued microtasks and promise callbacks run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Harness {
  clock: ManualClock;
  /** Send time on the manual clock of each item, by item value. */
  sentAt: Map<number, number>;
  /** Settles the request of an item. */
  answer(item: number): void;
  run: ReturnType<typeof runOpenLoop<number>>;
}

function startHarness(plan: number[], options: { maxInFlight?: number; overflow?: OverflowPolicy; stopSendingAtMs?: number } = {}): Harness {
  const clock = new ManualClock();
  const sentAt = new Map<number, number>();
  const resolvers = new Map<number, () => void>();
  const run = runOpenLoop<number>({
    clock,
    items: plan,
    sendAtMs: (item) => item,
    maxInFlight: options.maxInFlight ?? 100,
    overflow: options.overflow ?? 'skip',
    stopSendingAtMs: options.stopSendingAtMs ?? 1_000_000,
    send: (item) =>
      new Promise<void>((resolve) => {
        sentAt.set(item, clock.now());
        resolvers.set(item, resolve);
      }),
  });
  return {
    clock,
    sentAt,
    run,
    answer: (item) => {
      const resolve = resolvers.get(item);
      assert.ok(resolve !== undefined, `item ${item} was sent`);
      resolve();
    },
  };
}

test('open loop sends at planned times', async () => {
  const harness = startHarness([0, 10, 25]);
  await flush();
  assert.deepEqual([...harness.sentAt.keys()], [0]);
  harness.clock.advance(10);
  assert.equal(harness.sentAt.get(10), 10);
  harness.clock.advance(15);
  assert.equal(harness.sentAt.get(25), 25);
});

test('open loop does not wait for answers', async () => {
  const harness = startHarness([0, 5, 10]);
  await flush();
  harness.clock.advance(10);
  assert.equal(harness.sentAt.size, 3);
  assert.equal(harness.run.inFlight, 3);
});

test('open loop resolves once all settle', async () => {
  const harness = startHarness([0, 5]);
  await flush();
  harness.clock.advance(5);
  let finished = false;
  harness.run.done.then(() => {
    finished = true;
  });
  harness.answer(0);
  await flush();
  assert.equal(finished, false);
  harness.answer(5);
  const result = await harness.run.done;
  assert.equal(result.sent, 2);
  assert.equal(result.planned, 2);
  assert.equal(result.notSent, 0);
});

test('skip policy counts skipped requests', async () => {
  const harness = startHarness([0, 1, 2, 3], { maxInFlight: 2, overflow: 'skip' });
  await flush();
  harness.clock.advance(3);
  assert.deepEqual([...harness.sentAt.keys()], [0, 1]);
  harness.answer(0);
  harness.answer(1);
  const result = await harness.run.done;
  assert.equal(result.sent, 2);
  assert.equal(result.skippedInFlight, 2);
  assert.equal(result.maxInFlightSeen, 2);
});

test('wait policy delays until a slot frees', async () => {
  const harness = startHarness([0, 1, 2], { maxInFlight: 1, overflow: 'wait' });
  await flush();
  harness.clock.advance(50);
  assert.deepEqual([...harness.sentAt.keys()], [0]);
  harness.answer(0);
  await flush();
  assert.equal(harness.sentAt.get(1), 50);
  harness.clock.advance(30);
  harness.answer(1);
  await flush();
  assert.equal(harness.sentAt.get(2), 80);
  harness.answer(2);
  const result = await harness.run.done;
  assert.equal(result.sent, 3);
  assert.equal(result.delayedInFlight, 2);
  assert.equal(result.skippedInFlight, 0);
  assert.equal(result.late, 2);
  assert.equal(result.maxSendLagMs, 78);
});

test('window close counts unsent requests', async () => {
  const harness = startHarness([0, 100, 200, 300], { stopSendingAtMs: 150 });
  await flush();
  harness.clock.advance(400);
  assert.deepEqual([...harness.sentAt.keys()], [0, 100]);
  harness.answer(0);
  harness.answer(100);
  const result = await harness.run.done;
  assert.equal(result.sent, 2);
  assert.equal(result.notSent, 2);
});

test('window closes while waiting for a slot', async () => {
  const harness = startHarness([0, 10], { maxInFlight: 1, overflow: 'wait', stopSendingAtMs: 100 });
  await flush();
  harness.clock.advance(150);
  harness.answer(0);
  const result = await harness.run.done;
  assert.equal(result.sent, 1);
  assert.equal(result.notSent, 1);
  assert.equal(harness.sentAt.has(10), false);
});

test('stop ends sending at once', async () => {
  const harness = startHarness([0, 10, 20]);
  await flush();
  harness.run.stop();
  harness.clock.advance(30);
  harness.answer(0);
  const result = await harness.run.done;
  assert.equal(result.sent, 1);
  assert.equal(result.notSent, 2);
});

test('rejected send still settles', async () => {
  const clock = new ManualClock();
  const run = runOpenLoop<number>({
    clock,
    items: [0, 1],
    sendAtMs: (item) => item,
    maxInFlight: 10,
    overflow: 'skip',
    stopSendingAtMs: 1000,
    send: async () => {
      throw new Error('connection refused');
    },
  });
  await flush();
  clock.advance(1);
  const result = await run.done;
  assert.equal(result.sent, 2);
  assert.equal(run.inFlight, 0);
});

test('empty plan resolves at once', async () => {
  const clock = new ManualClock();
  const run = runOpenLoop<number>({ clock, items: [], sendAtMs: () => 0, maxInFlight: 1, overflow: 'skip', stopSendingAtMs: 10, send: async () => {} });
  const result = await run.done;
  assert.equal(result.planned, 0);
  assert.equal(result.sent, 0);
});

test('open loop rejects zero in-flight bound', () => {
  const clock = new ManualClock();
  assert.throws(
    () => runOpenLoop<number>({ clock, items: [], sendAtMs: () => 0, maxInFlight: 0, overflow: 'skip', stopSendingAtMs: 10, send: async () => {} }),
    /maxInFlight must be an integer >= 1, got 0/,
  );
});
