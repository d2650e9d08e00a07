import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../shared/src/clock.ts';
import { REPLICA_DEFAULTS } from '../../loadtest/replica/config.ts';
import { Engine, QueueFullError } from '../../loadtest/replica/engine.ts';
import { STATS_RING_SIZE, StatsRecorder } from '../../loadtest/replica/stats.ts';

describe('engine', () => {
  test('zero itl emits tokens at once', () => {
    const clock = new ManualClock();
    const engine = new Engine({ ...REPLICA_DEFAULTS, prefillBaseMs: 10, prefillPerTokenMs: 0, itlBaseMs: 0, itlPerRunningMs: 0 }, clock);
    const tokens: number[] = [];
    let finished = false;
    engine.submitSequence({ model: 'm', promptTokens: 3, outputTokens: 4 }, { onToken: (index) => tokens.push(index), onFinish: () => (finished = true) });
    clock.advance(9);
    assert.deepEqual(tokens, []);
    clock.advance(1);
    assert.deepEqual(tokens, [0, 1, 2, 3]);
    assert.equal(finished, true);
    assert.equal(engine.running, 0);
    assert.equal(clock.pendingTimers, 0);
  });

  test('cancelled sequence emits nothing more', () => {
    const clock = new ManualClock();
    const engine = new Engine({ ...REPLICA_DEFAULTS, prefillBaseMs: 1, prefillPerTokenMs: 0, itlBaseMs: 1, itlPerRunningMs: 0 }, clock);
    const tokens: number[] = [];
    const handle = engine.submitSequence({ model: 'm', promptTokens: 1, outputTokens: 10 }, { onToken: (index) => tokens.push(index), onFinish: () => {} });
    clock.advance(2);
    handle.cancel();
    clock.advance(100);
    assert.deepEqual(tokens, [0, 1]);
    assert.equal(engine.running, 0);
  });

  test('full queue throws queue_full', () => {
    const clock = new ManualClock();
    const engine = new Engine({ ...REPLICA_DEFAULTS, maxConcurrency: 1, maxWaiting: 1 }, clock);
    const spec = { model: 'm', promptTokens: 1, outputTokens: 1 };
    const callbacks = { onToken: () => {}, onFinish: () => {} };
    engine.submitSequence(spec, callbacks);
    engine.submitSequence(spec, callbacks);
    assert.throws(() => engine.submitSequence(spec, callbacks), (error: unknown) => error instanceof QueueFullError && error.code === 'queue_full');
    assert.equal(engine.running, 1);
    assert.equal(engine.waiting, 1);
  });

  test('atomic batches are not split', () => {
    const clock = new ManualClock();
    const items: number[] = [];
    const engine = new Engine({ ...REPLICA_DEFAULTS, maxBatch: 4, execBaseMs: 10, execPerItemMs: 0 }, clock, { onExecution: (_model, count) => items.push(count) });
    const done: string[] = [];
    engine.submitBatch({ model: 'm', items: 1, splittable: false }, { onFinish: () => done.push('a') });
    engine.submitBatch({ model: 'm', items: 3, splittable: false }, { onFinish: () => done.push('b') });
    engine.submitBatch({ model: 'm', items: 2, splittable: false }, { onFinish: () => done.push('c') });
    engine.submitBatch({ model: 'other', items: 1, splittable: false }, { onFinish: () => done.push('d') });
    clock.advance(100);
    // b (3 rows) and c (2 rows) do not fit together in 4, and d belongs to another model.
    assert.deepEqual(items, [1, 3, 2, 1]);
    assert.deepEqual(done, ['a', 'b', 'c', 'd']);
  });
});

describe('stats recorder', () => {
  test('rings keep newest entries', () => {
    const stats = new StatsRecorder();
    const total = STATS_RING_SIZE * 2 + 5;
    for (let i = 0; i < total; i++) {
      stats.recordReceived(`id-${i}`);
      stats.recordExecution(i);
    }
    const snapshot = stats.snapshot(0, 0);
    assert.equal(snapshot.received, total);
    assert.equal(snapshot.requestIds.length, STATS_RING_SIZE);
    assert.equal(snapshot.requestIds.at(-1), `id-${total - 1}`);
    assert.equal(snapshot.requestIds[0], `id-${total - STATS_RING_SIZE}`);
    assert.equal(snapshot.executionItems.length, STATS_RING_SIZE);
    assert.equal(snapshot.executions, total);
  });
});
