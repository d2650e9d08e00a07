import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ManualClock } from '../../shared/src/clock.ts';
import type { ReplicaServer } from '../../loadtest/replica/server.ts';
import { getJson, postJson, startManualReplica, waitFor } from './helpers.ts';

let current: ReplicaServer | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function start(options: Parameters<typeof startManualReplica>[0]): Promise<{ server: ReplicaServer; clock: ManualClock }> {
  const started = await startManualReplica(options);
  current = started.server;
  return started;
}

/** Advances the clock in steps until the promise settles, so timers set on the way fire too. */
async function driveUntil<T>(clock: ManualClock, promise: Promise<T>, stepMs: number): Promise<T> {
  let settled = false;
  const tracked = promise.finally(() => (settled = true));
  await waitFor('request to settle', async () => {
    clock.advance(stepMs);
    await new Promise((resolve) => setTimeout(resolve, 5));
    return settled;
  });
  return tracked;
}

describe('batched execution', () => {
  test('embeddings split by max batch', async () => {
    const { server, clock } = await start({ protocol: 'openai', maxBatch: 2, execBaseMs: 10, execPerItemMs: 1, embeddingDimensions: 8 });
    const inputs = ['a', 'b', 'c', 'd', 'e'];
    const batched = await driveUntil(clock, postJson(`${server.url}/v1/embeddings`, { input: inputs }), 50);
    assert.equal(batched.status, 200);
    assert.deepEqual(server.stats().executionItems, [2, 2, 1]);
    for (const [index, input] of inputs.entries()) {
      const single = await driveUntil(clock, postJson(`${server.url}/v1/embeddings`, { input }), 50);
      assert.deepEqual(single.body.data[0].embedding, batched.body.data[index].embedding, `input ${input}`);
    }
  });

  test('v2 requests merge into one execution', async () => {
    const { server, clock } = await start({ protocol: 'v2', models: ['m'], maxBatch: 4, gpuStreams: 1, execBaseMs: 10, execPerItemMs: 0 });
    const infer = (rows: number[][]) =>
      postJson(`${server.url}/v2/models/m/infer`, { inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [rows.length, 2], data: rows }] });

    const first = infer([[1, 1]]);
    await waitFor('first execution', () => server.stats().executions === 1);
    const second = infer([[2, 2]]);
    const third = infer([[3, 3], [4, 4]]);
    await waitFor('two requests waiting', () => server.stats().waiting === 2);
    clock.advance(10);
    await waitFor('merged execution', () => server.stats().executions === 2);
    clock.advance(10);
    const replies = await Promise.all([first, second, third]);
    assert.deepEqual(server.stats().executionItems, [1, 3]);
    assert.deepEqual(replies.map((reply) => reply.status), [200, 200, 200]);

    const alone = await driveUntil(clock, infer([[4, 4]]), 10);
    assert.equal(alone.body.outputs[1].data[0], replies[2]?.body.outputs[1].data[1]);
    const aloneThree = await driveUntil(clock, infer([[3, 3]]), 10);
    assert.equal(aloneThree.body.outputs[1].data[0], replies[2]?.body.outputs[1].data[0]);
    assert.deepEqual(replies[2]?.body.outputs[0].data, [3, 3, 4, 4]);
  });
});

describe('capacity', () => {
  test('waiting queue overflow is 429', async () => {
    const { server, clock } = await start({ maxConcurrency: 1, maxWaiting: 1, prefillBaseMs: 10, itlBaseMs: 10, itlPerRunningMs: 0 });
    const body = { messages: [{ role: 'user', content: 'x' }], max_tokens: 2 };
    const running = postJson(`${server.url}/v1/chat/completions`, body);
    await waitFor('one running', () => server.stats().running === 1);
    const waiting = postJson(`${server.url}/v1/chat/completions`, body);
    await waitFor('one waiting', () => server.stats().waiting === 1);
    const rejected = await postJson(`${server.url}/v1/chat/completions`, body);
    assert.equal(rejected.status, 429);
    assert.equal(rejected.body.object, 'error');
    assert.match(rejected.body.message, /waiting queue is full/);
    const both = await driveUntil(clock, Promise.all([running, waiting]), 10);
    assert.deepEqual(both.map((reply) => reply.status), [200, 200]);
    const stats = server.stats();
    assert.equal(stats.rejected, 1);
    assert.equal(stats.completed, 2);
  });

  test('itl grows with running sequences', async () => {
    const { server, clock } = await start({ maxConcurrency: 8, prefillBaseMs: 0, prefillPerTokenMs: 0, itlBaseMs: 10, itlPerRunningMs: 10 });
    const body = { messages: [{ role: 'user', content: 'x' }], max_tokens: 3 };
    // Alone: prefill 0, then two steps of 10 + 10 × 1 running = 40 ms.
    const alone = postJson(`${server.url}/v1/chat/completions`, body);
    await waitFor('one running', () => server.stats().running === 1);
    clock.advance(39);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.stats().completed, 0);
    clock.advance(1);
    await alone;
    assert.equal(server.stats().completed, 1);

    // Three together: each step is 10 + 10 × 3 = 40 ms, so 80 ms are not enough for 79.
    const three = [1, 2, 3].map(() => postJson(`${server.url}/v1/chat/completions`, body));
    await waitFor('three running', () => server.stats().running === 3);
    clock.advance(79);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.stats().completed, 1);
    clock.advance(1);
    await Promise.all(three);
    assert.equal(server.stats().completed, 4);
  });
});

describe('abort accounting', () => {
  test('stream aborted midway frees slot', async () => {
    const { server, clock } = await start({ maxConcurrency: 1, prefillBaseMs: 5, prefillPerTokenMs: 0, itlBaseMs: 5, itlPerRunningMs: 0 });
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'long' }], max_tokens: 50, stream: true }),
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    clock.advance(5);
    const first = await reader.read();
    assert.equal(first.done, false);
    controller.abort();
    await waitFor('abort counted', () => server.stats().aborted === 1);
    const stats = server.stats();
    assert.equal(stats.running, 0);
    assert.equal(stats.completed, 0);

    const next = postJson(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
    await waitFor('slot reused', () => server.stats().running === 1);
    clock.advance(5);
    assert.equal((await next).status, 200);
  });

  test('waiting request aborted leaves queue', async () => {
    const { server, clock } = await start({ maxConcurrency: 1, prefillBaseMs: 5, prefillPerTokenMs: 0, itlBaseMs: 5, itlPerRunningMs: 0 });
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1 });
    const headers = { 'content-type': 'application/json' };
    const running = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body });
    await waitFor('one running', () => server.stats().running === 1);
    const controller = new AbortController();
    const waiting = fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body, signal: controller.signal });
    await waitFor('one waiting', () => server.stats().waiting === 1);
    controller.abort();
    await assert.rejects(waiting);
    await waitFor('abort counted', () => server.stats().aborted === 1);
    assert.equal(server.stats().waiting, 0);
    clock.advance(5);
    const finished = await running;
    assert.equal(finished.status, 200);
    const reply = (await finished.json()) as { object: string };
    assert.equal(reply.object, 'chat.completion');
  });
});

describe('startup delay', () => {
  test('503 until loaded then 200', async () => {
    const { server, clock } = await start({ protocol: 'both', startupDelayMs: 5000 });
    assert.equal((await fetch(`${server.url}/health`)).status, 503);
    assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 503);
    assert.equal((await fetch(`${server.url}/v2/health/live`)).status, 200);
    const early = await postJson(`${server.url}/v1/completions`, { prompt: 'x', max_tokens: 1 });
    assert.equal(early.status, 503);
    assert.equal(early.headers.get('retry-after'), '5');
    assert.equal(early.body.type, 'ServiceUnavailableError');
    clock.advance(5000);
    assert.equal((await fetch(`${server.url}/health`)).status, 200);
    assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200);
    const later = await driveUntil(clock, postJson(`${server.url}/v1/completions`, { prompt: 'x', max_tokens: 1 }), 50);
    assert.equal(later.status, 200);
    const stats = (await getJson(`${server.url}/sim/stats`)).body;
    assert.equal(stats.rejected, 1);
    assert.equal(stats.completed, 1);
  });
});
