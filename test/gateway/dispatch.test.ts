// Which queued work gets a free replica slot: the first dispatchable group in queue order.
// An under-full batch waiting for maxDelayMs, or a retry that must avoid the free replica,
// does not hold back the work queued behind it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, ids } from './scheduler-harness.ts';

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('dispatch without head-of-line blocking', () => {
  test('an incompatible request behind a waiting batch is dispatched at once', () => {
    const h = harness({ batching: { maxBatchSize: 4, maxDelayMs: 50 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'k1', key: 'k' }).job);
    h.submit(h.job({ name: 'solo', key: null }).job);
    h.submit(h.job({ name: 'other', key: 'other', rows: 4 }).job);
    assert.deepEqual(h.calls.map((call) => ids(call.jobs)), [['solo'], ['other']]);
    assert.equal(h.scheduler.queued, 1, 'the under-full batch keeps waiting');
    h.clock.advance(49);
    assert.equal(h.calls.length, 2);
    h.clock.advance(1);
    assert.deepEqual(ids(h.calls[2]!.jobs), ['k1']);
  });

  test('a compatible request joins its waiting batch instead of leaving alone', () => {
    const h = harness({ batching: { maxBatchSize: 4, maxDelayMs: 50 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'k1', key: 'k' }).job);
    h.clock.advance(10);
    h.submit(h.job({ name: 'k2', key: 'k' }).job);
    assert.equal(h.calls.length, 0);
    h.clock.advance(40);
    assert.deepEqual(ids(h.calls[0]!.jobs), ['k1', 'k2']);
  });

  test('strict priority holds between dispatchable groups', async () => {
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 1 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'busy', key: null }).job);
    h.submit(h.job({ name: 'shed', key: null, priority: 'sheddable' }).job);
    h.submit(h.job({ name: 'std', key: null }).job);
    h.submit(h.job({ name: 'crit', key: null, priority: 'critical' }).job);
    h.calls[0]!.finish();
    await settle();
    assert.deepEqual(ids(h.calls[1]!.jobs), ['crit']);
    h.calls[1]!.finish();
    await settle();
    assert.deepEqual(ids(h.calls[2]!.jobs), ['std']);
  });

  test('a waiting critical batch lets the next class use the free slot', () => {
    const h = harness({ batching: { maxBatchSize: 4, maxDelayMs: 100 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'crit', key: 'k', priority: 'critical' }).job);
    h.submit(h.job({ name: 'std', key: null }).job);
    assert.deepEqual(h.calls.map((call) => ids(call.jobs)), [['std']]);
    h.clock.advance(100);
    assert.deepEqual(ids(h.calls[1]!.jobs), ['crit']);
  });

  test('FIFO within a class among dispatchable groups', async () => {
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 4, maxDelayMs: 100 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'busy', key: null }).job);
    h.submit(h.job({ name: 'waits', key: 'k' }).job);
    h.submit(h.job({ name: 'second', key: null }).job);
    h.submit(h.job({ name: 'third', key: null }).job);
    h.calls[0]!.finish();
    await settle();
    assert.deepEqual(ids(h.calls[1]!.jobs), ['second']);
    h.calls[1]!.finish();
    await settle();
    assert.deepEqual(ids(h.calls[2]!.jobs), ['third']);
  });

  test('the delay timer follows the earliest waiting batch', () => {
    const h = harness({ batching: { maxBatchSize: 4, maxDelayMs: 100 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'std', key: 'a' }).job);
    h.clock.advance(30);
    // The critical batch arrives later and is due later; the standard one must not wait for it.
    h.submit(h.job({ name: 'crit', key: 'b', priority: 'critical' }).job);
    h.clock.advance(70);
    assert.deepEqual(h.calls.map((call) => ids(call.jobs)), [['std']]);
    h.clock.advance(30);
    assert.deepEqual(ids(h.calls[1]!.jobs), ['crit']);
  });

  test('retry avoiding the free replica never blocks', async () => {
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 1 }, retry: { maxAttempts: 3 } });
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    h.submit(h.job({ name: 'retried', key: null }).job);
    h.submit(h.job({ name: 'holder', key: null }).job);
    const [first, second] = h.calls;
    const retried = first!.jobs[0]!;
    // The replica of the first call reset the connection; the job must now avoid it.
    assert.deepEqual(h.scheduler.retry([retried], first!.replica, 'reset'), []);
    first!.end('failure');
    await settle();
    h.submit(h.job({ name: 'fresh', key: null }).job);
    await settle();
    const third = h.calls[2]!;
    assert.deepEqual(ids(third.jobs), ['fresh'], 'the fresh request takes the replica the retry must avoid');
    assert.equal(third.replica.id, first!.replica.id);
    second!.finish();
    await settle();
    assert.deepEqual(ids(h.calls[3]!.jobs), ['retried']);
    assert.equal(h.calls[3]!.replica.id, second!.replica.id);
  });

  test('a batch never takes a member that must avoid its replica', async () => {
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 4 }, retry: { maxAttempts: 3 } });
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    h.submit(h.job({ name: 'a', key: 'k' }).job);
    h.submit(h.job({ name: 'busy', key: null }).job);
    const [first, second] = h.calls;
    const a = first!.jobs[0]!;
    h.scheduler.retry([a], first!.replica, 'reset');
    first!.end('failure');
    await settle();
    assert.equal(h.calls.length, 2, 'a waits for a replica other than the one that failed it');
    h.submit(h.job({ name: 'b', key: 'k' }).job);
    const third = h.calls[2]!;
    assert.equal(third.replica.id, first!.replica.id);
    assert.deepEqual(ids(third.jobs), ['b'], 'a failed on this replica and stays out of the batch');
    second!.finish();
    await settle();
    assert.deepEqual(ids(h.calls[3]!.jobs), ['a']);
    assert.equal(h.calls[3]!.replica.id, second!.replica.id);
  });

  test('retries still run during the shutdown grace period', async () => {
    const h = harness({ batching: { maxBatchSize: 1 } });
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    const { job } = h.job({ key: null });
    h.submit(job);
    h.scheduler.beginShutdown();
    assert.deepEqual(h.scheduler.retry([job], h.calls[0]!.replica, 'reset'), []);
    await settle();
    assert.deepEqual(ids(h.calls[1]!.jobs), [job.id]);
  });
});

describe('admission while every replica cools down', () => {
  test('a deadline before the first cooldown ends gets 503 with Retry-After at once', () => {
    const h = harness({ batching: { maxBatchSize: 1 } });
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    for (const replica of h.replicas.all()) replica.health.coolDown(30_000);
    h.replicas.get('r2')!.health.coolDown(45_000);
    const error = h.submit(h.job({ key: null, timeoutMs: 5000 }).job);
    assert.equal(error?.status, 503);
    assert.equal(error?.code, 'deadline_unmeetable');
    assert.equal(error?.outcome, 'rejected_deadline');
    assert.equal(error?.retryAfterSeconds, 30);
    assert.equal(h.submit(h.job({ key: null, timeoutMs: 40_000 }).job), undefined, 'a deadline after the cooldown waits for it');
    assert.equal(h.scheduler.retryAfterSeconds(), 30);
    h.clock.advance(30_000);
    assert.equal(h.calls.length, 1);
    assert.equal(h.calls[0]!.replica.id, 'r1');
  });

  test('one replica outside cooldown keeps admission open', () => {
    const h = harness({ batching: { maxBatchSize: 1 } });
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    h.replicas.get('r1')!.health.coolDown(30_000);
    assert.equal(h.submit(h.job({ key: null, timeoutMs: 5000 }).job), undefined);
    assert.equal(h.calls[0]!.replica.id, 'r2');
  });
});
