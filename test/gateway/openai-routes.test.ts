import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import OpenAI from 'openai';
import { chatBody, metricValue, postJson, startReplica, startTestGateway, waitReady, type SpawnedReplica, type TestGateway } from './helpers.ts';

describe('OpenAI routes through the gateway', () => {
  let chatReplica: SpawnedReplica;
  let embedReplica: SpawnedReplica;
  let gateway: TestGateway;

  before(async () => {
    [chatReplica, embedReplica] = await Promise.all([startReplica('openai', 'chat-a'), startReplica('openai', 'embed-a')]);
    gateway = await startTestGateway(
      [
        { name: 'chat-a', protocol: 'openai', replicas: { static: [chatReplica.url] } },
        { name: 'embed-a', protocol: 'openai', replicas: { static: [embedReplica.url] } },
        { name: 'v2-only', protocol: 'v2', replicas: { static: [chatReplica.url] }, health: { path: '/health', intervalMs: 200, timeoutMs: 150 } },
      ],
      {},
      { bodyLimitBytes: 4096 },
    );
    await waitReady(gateway);
  });

  after(async () => {
    await gateway?.close(0);
    await Promise.all([chatReplica?.stop(), embedReplica?.stop()]);
  });

  test('chat completion returns the replica answer', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat-a'), { 'x-request-id': 'chat-plain-1' });
    assert.equal(response.status, 200);
    assert.equal(response.body.object, 'chat.completion');
    assert.equal(response.body.model, 'chat-a');
    assert.equal(response.headers.get('x-request-id'), 'chat-plain-1');
    const stats = await chatReplica.stats();
    assert.ok(stats.requestIds.includes('chat-plain-1'), 'the request id is forwarded upstream');
  });

  test('request id is generated when absent', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat-a'));
    const id = response.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    const stats = await chatReplica.stats();
    assert.ok(stats.requestIds.includes(id ?? ''));
  });

  test('streaming chat sends SSE headers and every chunk', async () => {
    const response = await fetch(`${gateway.trafficUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify(chatBody('chat-a', { stream: true, max_tokens: 5 })),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/event-stream');
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    assert.equal(response.headers.get('x-accel-buffering'), 'no');
    assert.equal(response.headers.get('content-encoding'), null);
    const text = await response.text();
    const events = text.split('\n\n').filter((event) => event.startsWith('data: '));
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.ok(events.length >= 6, `expected a role chunk, 5 token chunks and [DONE], got ${events.length}`);
  });

  test('completions route forwards prompt requests', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/completions`, { model: 'chat-a', prompt: 'Once upon', max_tokens: 3 });
    assert.equal(response.status, 200);
    assert.equal(response.body.object, 'text_completion');
  });

  test('official openai client completes chat, stream and embeddings', async () => {
    const client = new OpenAI({ baseURL: `${gateway.trafficUrl}/v1`, apiKey: 'test-key', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'chat-a', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 });
    assert.equal(typeof completion.choices[0]?.message.content, 'string');

    const stream = await client.chat.completions.create({ model: 'chat-a', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, stream: true });
    let chunks = 0;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      chunks++;
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(chunks >= 4);
    assert.equal(finish, 'length');

    const embeddings = await client.embeddings.create({ model: 'embed-a', input: ['one', 'two', 'three'] });
    assert.equal(embeddings.data.length, 3);
    assert.deepEqual(
      embeddings.data.map((item) => item.index),
      [0, 1, 2],
    );
    assert.ok(embeddings.data[0]!.embedding.length > 0);
  });

  test('model list shows only OpenAI models', async () => {
    const response = await fetch(`${gateway.trafficUrl}/v1/models`);
    const body = (await response.json()) as { data: { id: string }[] };
    assert.deepEqual(
      body.data.map((model) => model.id),
      ['chat-a', 'embed-a'],
    );
  });

  test('unknown model gets 404 model_not_found', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('no-such-model'));
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, 'model_not_found');
    assert.equal(response.body.error.param, 'model');
    assert.match(response.body.error.message, /no-such-model/);
  });

  test('V2 model on an OpenAI route gets 404', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('v2-only'));
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, 'model_not_found');
    assert.equal(response.body.error.message, 'model "v2-only" is served on the V2 routes (/v2/models/...), not on this route');
    const metadata = await fetch(`${gateway.trafficUrl}/v2/models/chat-a`);
    assert.equal(metadata.status, 404);
    assert.deepEqual(await metadata.json(), { error: 'model_not_found: model "chat-a" is served on the OpenAI routes (/v1/...), not on this route' });
  });

  test('invalid field gets 400 naming field and value', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, { model: 'chat-a', messages: [{ role: 'user', content: 'x' }], max_tokens: -3 });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'invalid_value');
    assert.equal(response.body.error.param, 'max_tokens');
    assert.match(response.body.error.message, /-3/);
    assert.equal(response.body.error.type, 'invalid_request_error');
  });

  test('missing field gets 400 missing_field', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/embeddings`, { model: 'embed-a' });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'missing_field');
    assert.equal(response.body.error.param, 'input');
  });

  test('invalid embeddings input names the union', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/embeddings`, { model: 'embed-a', input: [1, 'two'] });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.param, 'input');
    assert.match(response.body.error.message, /array of non-empty strings/);
  });

  test('malformed JSON gets 400 invalid_json', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, '{"model": "chat-a",');
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'invalid_json');
  });

  test('wrong content type gets 415', async () => {
    const response = await fetch(`${gateway.trafficUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(response.status, 415);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'unsupported_media_type');
    assert.match(body.error.message, /text\/plain/);
  });

  test('body over the limit gets 413 on POST and GET routes', async () => {
    const big = JSON.stringify(chatBody('chat-a', { messages: [{ role: 'user', content: 'x'.repeat(5000) }] }));
    const post = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, big);
    assert.equal(post.status, 413);
    assert.equal(post.body.error.code, 'body_too_large');
    // fetch refuses a GET body, so node:http sends one to a GET route.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gateway.trafficUrl}/v2/health/ready`, { method: 'GET', headers: { 'content-type': 'application/json', 'content-length': '5000' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('x'.repeat(5000));
    });
    assert.equal(status, 413);
  });

  test('invalid x-priority gets 400 naming the header', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat-a'), { 'x-priority': 'urgent' });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.param, 'header x-priority');
    assert.match(response.body.error.message, /urgent/);
  });

  test('invalid x-request-timeout-ms gets 400', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat-a'), { 'x-request-timeout-ms': 'soon' });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.param, 'header x-request-timeout-ms');
  });

  test('outcomes are counted per model', async () => {
    const text = await gateway.metricsText();
    assert.ok(metricValue(text, 'infergate_requests_total', { model: 'chat-a', protocol: 'openai', outcome: 'success' }) >= 5);
    assert.ok(metricValue(text, 'infergate_requests_total', { model: 'chat-a', protocol: 'openai', outcome: 'rejected_invalid' }) >= 2);
    assert.ok(metricValue(text, 'infergate_upstream_requests_total', { model: 'chat-a', code: '200' }) >= 5);
  });
});
