// Streams reach the client chunk by chunk, and a client that disconnects while its request
// is in flight aborts the upstream call, so the replica stops the work (the simulator counts
// it as aborted). A merged batch is aborted only once every request in it has left, because
// the others still need the result.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { chatBody, metricValue, postJson, startReplica, startTestGateway, waitFor, waitReady, type SpawnedReplica, type TestGateway } from './helpers.ts';

const CHAT = 'abort-chat';
const V2 = 'abort-v2';

describe('client disconnect reaches the replica', () => {
  let chat: SpawnedReplica;
  let v2: SpawnedReplica;

  before(async () => {
    [chat, v2] = await Promise.all([startReplica('openai', CHAT, ['--itl-base-ms', '20']), startReplica('v2', V2, ['--exec-base-ms', '800'])]);
  });

  after(async () => {
    await Promise.all([chat?.stop(), v2?.stop()]);
  });

  async function gatewayFor(t: TestContext, model: Record<string, unknown>): Promise<TestGateway> {
    const gateway = await startTestGateway([model]);
    t.after(() => gateway.close(0));
    await waitReady(gateway);
    return gateway;
  }

  const outcome = async (gateway: TestGateway, model: string, name: string): Promise<number> =>
    metricValue(await gateway.metricsText(), 'infergate_requests_total', { model, outcome: name });

  test('a non-streamed request whose client left is aborted upstream', async (t) => {
    const gateway = await gatewayFor(t, { name: CHAT, protocol: 'openai', replicas: { static: [chat.url] } });
    await chat.resetStats();
    const controller = new AbortController();
    // 500 tokens at 20 ms each: the request is still generating when the client leaves.
    const leaving = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody(CHAT, { max_tokens: 500 }), {}, controller.signal).catch((error: Error) => error);
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the request to be in flight');
    controller.abort();
    assert.ok((await leaving) instanceof Error);
    await waitFor(async () => (await chat.stats()).aborted === 1, 'the replica to count the abort');
    assert.equal((await chat.stats()).completed, 0);
    await waitFor(async () => (await outcome(gateway, CHAT, 'client_cancelled')) === 1, 'the client_cancelled outcome');
    await waitFor(async () => metricValue(await gateway.metricsText(), 'infergate_inflight_requests', { model: CHAT }) === 0 && gateway.state().models[0]!.inFlight === 0, 'the in-flight gauge to return to 0');
  });

  test('paused stream reader gets every chunk', async (t) => {
    // With no token latency the replica produces about 1 MB of events at once. That is more
    // than the socket buffers hold while the client reads nothing, so the gateway must pause
    // the replica's stream until the client drains, then resume it.
    const fast = await startReplica('openai', 'fast-chat', ['--prefill-base-ms', '0', '--prefill-per-token-ms', '0', '--itl-base-ms', '0', '--itl-per-running-ms', '0']);
    t.after(() => fast.stop());
    const gateway = await gatewayFor(t, { name: 'fast-chat', protocol: 'openai', replicas: { static: [fast.url] } });
    const body = JSON.stringify(chatBody('fast-chat', { stream: true, max_tokens: 4000, seed: 7 }));
    const contentOf = (text: string): string =>
      text
        .split('\n')
        .filter((line) => line.startsWith('data: {'))
        .map((line) => (JSON.parse(line.slice('data: '.length)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
        .join('');

    const paused = await new Promise<string>((resolve, reject) => {
      const url = new URL(`${gateway.trafficUrl}/v1/chat/completions`);
      const call = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
        const chunks: Buffer[] = [];
        response.once('data', (first: Buffer) => {
          chunks.push(first);
          response.pause();
          setTimeout(() => {
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.resume();
          }, 1000);
        });
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.on('error', reject);
      });
      call.on('error', reject);
      call.end(body);
    });
    const direct = await (await fetch(`${fast.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).text();

    assert.ok(paused.length > 500_000, `the stream had ${paused.length} bytes`);
    assert.ok(paused.endsWith('data: [DONE]\n\n'));
    assert.equal(contentOf(paused), contentOf(direct));
    await waitFor(async () => (await outcome(gateway, 'fast-chat', 'success')) === 1, 'the success outcome');
  });

  test('stream chunks arrive while generation runs', async (t) => {
    const gateway = await gatewayFor(t, { name: CHAT, protocol: 'openai', replicas: { static: [chat.url] } });
    await chat.resetStats();
    const controller = new AbortController();
    const response = await fetch(`${gateway.trafficUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'flush-1' },
      body: JSON.stringify(chatBody(CHAT, { stream: true, max_tokens: 500 })),
      signal: controller.signal,
    });
    assert.equal(response.headers.get('x-request-id'), 'flush-1');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 3) {
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the stream ended before three events arrived');
      text += decoder.decode(value, { stream: true });
    }
    // Three events reached the client while the replica still generates the other tokens.
    const stats = await chat.stats();
    assert.equal(stats.running, 1);
    assert.equal(stats.completed, 0);
    controller.abort();
    await waitFor(async () => (await chat.stats()).aborted === 1, 'the replica to count the abort');
  });

  type Sent = Awaited<ReturnType<typeof postJson>> | Error;

  /** Sends two V2 requests that merge into one call (maxDelayMs lets the second join) and waits until the call is in flight. */
  async function sendMergedPair(gateway: TestGateway, signals: [AbortSignal, AbortSignal]): Promise<[Promise<Sent>, Promise<Sent>]> {
    const url = `${gateway.trafficUrl}/v2/models/${V2}/infer`;
    const send = (index: number): Promise<Sent> =>
      postJson(url, { inputs: [{ name: 'INPUT0', shape: [1, 2], datatype: 'FP32', data: [index, index] }] }, { 'x-request-id': `pair-${index}` }, signals[index]).catch((error: Error) => error);
    const pending: [Promise<Sent>, Promise<Sent>] = [send(0), send(1)];
    await waitFor(() => gateway.state().models[0]!.inFlight === 2, 'the merged call to be in flight');
    return pending;
  }

  const batchModel = (url: string): Record<string, unknown> => ({ name: V2, protocol: 'v2', replicas: { static: [url] }, batching: { maxBatchSize: 8, maxDelayMs: 300 } });

  test('a merged call keeps running while one of its clients remains', async (t) => {
    const gateway = await gatewayFor(t, batchModel(v2.url));
    await v2.resetStats();
    const leaver = new AbortController();
    const [left, stayed] = await sendMergedPair(gateway, [leaver.signal, new AbortController().signal]);
    assert.equal((await v2.stats()).received, 1, 'both requests went in one call');
    leaver.abort();
    assert.ok((await left) instanceof Error);
    const response = await stayed;
    assert.ok(!(response instanceof Error));
    assert.equal(response.status, 200);
    assert.equal(response.body.id, undefined);
    assert.deepEqual(response.body.outputs[0].shape[0], 1);
    const stats = await v2.stats();
    assert.equal(stats.aborted, 0);
    assert.equal(stats.completed, 1);
    await waitFor(async () => (await outcome(gateway, V2, 'client_cancelled')) === 1, 'the client_cancelled outcome');
    assert.equal(await outcome(gateway, V2, 'success'), 1);
  });

  test('a merged call is aborted once all its clients left', async (t) => {
    const gateway = await gatewayFor(t, batchModel(v2.url));
    await v2.resetStats();
    const controllers = [new AbortController(), new AbortController()] as const;
    const pending = await sendMergedPair(gateway, [controllers[0].signal, controllers[1].signal]);
    controllers[0].abort();
    controllers[1].abort();
    for (const result of await Promise.all(pending)) assert.ok(result instanceof Error);
    await waitFor(async () => (await v2.stats()).aborted === 1, 'the replica to count the abort');
    assert.equal((await v2.stats()).completed, 0);
    await waitFor(async () => (await outcome(gateway, V2, 'client_cancelled')) === 2, 'two client_cancelled outcomes');
    await waitFor(() => gateway.state().models[0]!.inFlight === 0, 'the model to have nothing in flight');
  });
});
