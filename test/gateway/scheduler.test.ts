import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, ids } from './scheduler-harness.ts';

describe('model scheduler', () => {
  test('binds requests to a replica only when a slot frees', async () => {
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 1 } });
    h.endpoints(['r1']);
    h.makeReady();
    for (const name of ['a', 'b', 'c']) h.submit(h.job({ name }).job);
    assert.equal(h.calls.length, 1);
    assert.equal(h.scheduler.queued, 2);
    h.calls[0]!.finish();
    assert.equal(h.calls.length, 1, 'the next dispatch waits for the completion callback');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ids(h.calls[1]!.jobs), ['b']);
    assert.equal(h.scheduler.queued, 1);
  });

  test('failing executor answers and frees slot', async () => {
    let attempts = 0;
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 1 } }, () => 0, () => {
      attempts++;
      if (attempts === 1) throw new Error('thrown before the call started');
      return Promise.reject(new Error('rejected after the call started'));
    });
    h.endpoints(['r1']);
    h.makeReady();
    const first = h.job({ name: 'first' });
    const second = h.job({ name: 'second' });
    h.submit(first.job);
    h.submit(second.job);
    assert.equal(h.scheduler.queued, 1, 'the second request waits for the only slot');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(attempts, 2, 'the freed slot took the second request');
    for (const { reply } of [first, second]) {
      assert.equal(reply.statusCode, 502);
      assert.match((reply.body as { error: string }).error, /^internal_error: /);
    }
    assert.equal(h.scheduler.inFlight, 0);
    assert.equal(h.scheduler.queued, 0);
    assert.equal(h.replicas.all()[0]!.inFlight, 0);
  });

  test('batches compatible requests up to maxBatchSize rows', async () => {
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 4 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'first' }).job);
    h.submit(h.job({ name: 'x1', rows: 2 }).job);
    h.submit(h.job({ name: 'other', key: 'other' }).job);
    h.submit(h.job({ name: 'x2', rows: 3 }).job);
    h.submit(h.job({ name: 'x3', rows: 1 }).job);
    h.submit(h.job({ name: 'x4', rows: 1 }).job);
    assert.deepEqual(ids(h.calls[0]!.jobs), ['first']);
    h.calls[0]!.finish();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ids(h.calls[1]!.jobs), ['x1', 'x3', 'x4'], 'x2 does not fit beside x1, x3 and x4 do');
    h.calls[1]!.finish();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ids(h.calls[2]!.jobs), ['other']);
  });

  test('maxDelayMs holds an under-full batch until the oldest waited that long', () => {
    const h = harness({ batching: { maxBatchSize: 3, maxDelayMs: 50 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'a' }).job);
    assert.equal(h.calls.length, 0);
    h.clock.advance(20);
    h.submit(h.job({ name: 'b' }).job);
    assert.equal(h.calls.length, 0);
    h.clock.advance(30);
    assert.deepEqual(ids(h.calls[0]!.jobs), ['a', 'b']);
  });

  test('a full batch leaves before maxDelayMs', () => {
    const h = harness({ batching: { maxBatchSize: 2, maxDelayMs: 1000 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'a' }).job);
    h.submit(h.job({ name: 'b' }).job);
    assert.deepEqual(ids(h.calls[0]!.jobs), ['a', 'b']);
  });

  test('a request larger than maxBatchSize goes alone', () => {
    const h = harness({ batching: { maxBatchSize: 4 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ name: 'big', rows: 9 }).job);
    assert.deepEqual(ids(h.calls[0]!.jobs), ['big']);
  });

  test('deadline in the queue answers 504 queue_timeout', () => {
    const h = harness({ maxInflightPerReplica: 1 });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ key: null }).job);
    const { job, reply } = h.job({ key: null, timeoutMs: 100 });
    h.submit(job);
    h.clock.advance(100);
    assert.equal(reply.statusCode, 504);
    assert.match(JSON.stringify(reply.body), /queue_timeout/);
    assert.equal(h.scheduler.queued, 0);
    h.calls[0]!.finish();
    assert.equal(h.calls.length, 1, 'the expired request is never dispatched');
  });

  test('estimated wait beyond the deadline is rejected at once', () => {
    const h = harness({ maxInflightPerReplica: 1 });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ key: null }).job);
    for (let i = 0; i < 3; i++) assert.equal(h.submit(h.job({ key: null }).job), undefined);
    // One dispatch in the first second: the drain rate is 1/s, so 3 queued requests take about 3 s.
    const error = h.submit(h.job({ key: null, timeoutMs: 2000 }).job);
    assert.equal(error?.status, 429);
    assert.equal(error?.code, 'deadline_unmeetable');
    assert.equal(error?.outcome, 'rejected_deadline');
    assert.equal(error?.retryAfterSeconds, 4);
    assert.equal(h.submit(h.job({ key: null, timeoutMs: 5000 }).job), undefined);
  });

  test('burst after a quiet spell uses replica capacity', async () => {
    const h = harness({ maxInflightPerReplica: 2 });
    h.endpoints(['r1']);
    h.makeReady();
    // Two calls of 100 ms each set the mean call duration.
    h.submit(h.job({ key: null }).job);
    h.submit(h.job({ key: null }).job);
    h.clock.advance(100);
    h.calls[0]!.finish();
    h.calls[1]!.finish();
    await new Promise((resolve) => setImmediate(resolve));
    // The calls drop out of the 10 s dispatch window, then two long calls take both slots.
    h.clock.advance(20_000);
    h.submit(h.job({ key: null }).job);
    h.submit(h.job({ key: null }).job);
    // The dispatch rate alone (2 in 10 s) would make 1 request ahead a 5 s wait. Two slots
    // at 100 ms per call drain 20 requests/s, so the wait is about 50 ms.
    assert.equal(h.submit(h.job({ key: null, timeoutMs: 2000 }).job), undefined);
    assert.equal(h.submit(h.job({ key: null, timeoutMs: 2000 }).job), undefined);
    assert.equal(h.scheduler.queued, 2);
  });

  test('Retry-After follows queue length over drain rate', () => {
    const h = harness({ maxInflightPerReplica: 1, queue: { maxSize: 100, timeoutMs: 600_000 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ key: null }).job);
    for (let i = 0; i < 9; i++) h.submit(h.job({ key: null }).job);
    assert.equal(h.scheduler.retryAfterSeconds(), 10);
    for (let i = 0; i < 10; i++) h.submit(h.job({ key: null }).job);
    assert.equal(h.scheduler.retryAfterSeconds(), 20);
  });

  test('client abort removes a queued request', () => {
    const h = harness({ maxInflightPerReplica: 1 });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job({ key: null }).job);
    const { job } = h.job({ key: null });
    h.submit(job);
    job.abort('client');
    assert.equal(h.scheduler.queued, 0);
    assert.equal(job.finished, true);
  });

  test('no serving replica holds requests with scale from zero', () => {
    const h = harness({ scaleFromZero: { enabled: true, holdTimeoutMs: 1000, maxHeld: 2 } });
    h.endpoints(['r1']);
    h.submit(h.job({ name: 'h1' }).job);
    h.submit(h.job({ name: 'h2' }).job);
    assert.equal(h.scheduler.snapshot().held, 2);
    const error = h.submit(h.job().job);
    assert.equal(error?.code, 'hold_limit_reached');
    h.makeReady();
    assert.equal(h.scheduler.snapshot().held, 0);
    assert.deepEqual(ids(h.calls[0]!.jobs), ['h1', 'h2']);
  });

  test('hold timeout answers 503 with Retry-After', () => {
    const h = harness({ scaleFromZero: { enabled: true, holdTimeoutMs: 1000, maxHeld: 2 } });
    h.endpoints(['r1']);
    const { job, reply } = h.job();
    h.submit(job);
    h.clock.advance(1000);
    assert.equal(reply.statusCode, 503);
    assert.ok(Number(reply.headers['retry-after']) >= 1);
    assert.equal(h.scheduler.snapshot().held, 0);
  });

  test('retry goes to another replica and stops at maxAttempts', () => {
    const h = harness({ batching: { maxBatchSize: 1 }, retry: { maxAttempts: 2 } });
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    const { job } = h.job();
    h.submit(job);
    const first = h.calls[0]!;
    assert.deepEqual(h.scheduler.retry([job], first.replica, 'reset'), []);
    h.scheduler.pump();
    const second = h.calls[1]!;
    assert.notEqual(second.replica.id, first.replica.id);
    assert.deepEqual(ids(h.scheduler.retry([job], second.replica, 'reset')), [job.id]);
  });

  test('snapshot reports queued by priority and oldest wait', () => {
    const h = harness({ maxInflightPerReplica: 1, batching: { maxBatchSize: 1 } });
    h.endpoints(['r1']);
    h.makeReady();
    h.submit(h.job().job);
    h.submit(h.job({ priority: 'critical' }).job);
    h.clock.advance(250);
    h.submit(h.job({ priority: 'sheddable' }).job);
    const snapshot = h.scheduler.snapshot();
    assert.deepEqual(snapshot.queued, { critical: 1, standard: 0, sheddable: 1 });
    assert.equal(snapshot.inFlight, 1);
    assert.equal(snapshot.oldestQueuedMs, 250);
    assert.deepEqual(snapshot.replicas, [{ id: 'r1', state: 'ready', inFlight: 1, limit: 1 }]);
  });
});

describe('replica picker', () => {
  test('picks the least loaded by in-flight over limit', () => {
    const h = harness({ maxInflightPerReplica: 4 });
    h.endpoints(['r1', 'r2', 'r3']);
    h.makeReady();
    const [r1, r2, r3] = h.replicas.all();
    r1!.inFlight = 2;
    r2!.inFlight = 1;
    r3!.inFlight = 3;
    assert.equal(h.replicas.pick()?.id, 'r2');
  });

  test('breaks ties at random', () => {
    const picks = new Set<string>();
    for (const value of [0, 0.5, 0.99]) {
      const h = harness({}, () => value);
      h.endpoints(['r1', 'r2', 'r3']);
      h.makeReady();
      picks.add(h.replicas.pick()!.id);
    }
    assert.deepEqual([...picks].sort(), ['r1', 'r2', 'r3']);
  });

  test('skips full, draining, ejected, cooling and probing replicas', () => {
    const h = harness({ maxInflightPerReplica: 1, ejection: { consecutiveFailures: 1, baseMs: 1000, maxMs: 2000 } });
    h.endpoints(['full', 'draining', 'ejected', 'cooling', 'fresh', 'ok']);
    for (const replica of h.replicas.all()) if (replica.id !== 'fresh') replica.health.recordProbe(true);
    h.replicas.get('full')!.inFlight = 1;
    h.replicas.get('draining')!.draining = true;
    h.replicas.get('ejected')!.health.finishCall('failure', false);
    h.replicas.get('cooling')!.health.coolDown(500);
    assert.equal(h.replicas.pick()?.id, 'ok');
    h.replicas.get('ok')!.inFlight = 1;
    assert.equal(h.replicas.pick(), undefined);
  });

  test('avoided replica is used only when no other serves', () => {
    const h = harness();
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    assert.equal(h.replicas.pick(new Set(['r1']))?.id, 'r2');
    h.replicas.get('r2')!.draining = true;
    assert.equal(h.replicas.pick(new Set(['r1']))?.id, 'r1');
  });

  test('terminating endpoint drains and a vanished one is removed', () => {
    const h = harness();
    h.endpoints(['r1', 'r2']);
    h.makeReady();
    h.replicas.reconcile([
      { id: 'r1', url: 'http://127.0.0.1:9', ready: false, serving: true, terminating: true },
    ]);
    assert.equal(h.replicas.get('r1')?.state, 'draining');
    assert.equal(h.replicas.get('r2'), undefined);
    assert.equal(h.replicas.pick(), undefined);
  });
});
