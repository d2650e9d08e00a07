import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { getJson, postJson, sseData } from './helpers.ts';

const FAST = ['--prefill-base-ms', '1', '--prefill-per-token-ms', '0', '--itl-base-ms', '1', '--itl-per-running-ms', '0', '--exec-base-ms', '1', '--exec-per-item-ms', '0'];

describe('openai protocol', () => {
  let replica: SpawnedReplica;

  before(async () => {
    replica = await spawnReplica(['--port', '0', '--model', 'chat-a', '--model', 'chat-b', '--embedding-dimensions', '16', ...FAST]);
  });
  after(async () => {
    await replica?.stop();
  });

  test('chat completion shape', async () => {
    const response = await postJson(`${replica.url}/v1/chat/completions`, {
      model: 'chat-b',
      messages: [{ role: 'user', content: 'hello there' }],
      max_tokens: 7,
    });
    assert.equal(response.status, 200);
    assert.match(response.body.id, /^chatcmpl-/);
    assert.equal(response.body.object, 'chat.completion');
    assert.equal(response.body.model, 'chat-b');
    assert.equal(typeof response.body.created, 'number');
    assert.equal(response.body.choices.length, 1);
    assert.equal(response.body.choices[0].message.role, 'assistant');
    assert.equal(response.body.choices[0].finish_reason, 'length');
    assert.equal(response.body.choices[0].message.content.split(' ').length, 7);
    assert.equal(response.body.usage.completion_tokens, 7);
    assert.equal(response.body.usage.total_tokens, response.body.usage.prompt_tokens + 7);
  });

  test('chat text is a function of prompt', async () => {
    const body = { model: 'chat-a', messages: [{ role: 'user', content: 'same prompt' }], max_tokens: 12 };
    const first = await postJson(`${replica.url}/v1/chat/completions`, body);
    const second = await postJson(`${replica.url}/v1/chat/completions`, body);
    const other = await postJson(`${replica.url}/v1/chat/completions`, { ...body, messages: [{ role: 'user', content: 'another prompt' }] });
    assert.equal(first.body.choices[0].message.content, second.body.choices[0].message.content);
    assert.notEqual(first.body.choices[0].message.content, other.body.choices[0].message.content);
  });

  test('streaming chat with usage and DONE', async () => {
    const response = await fetch(`${replica.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'chat-a',
        messages: [{ role: 'user', content: 'stream me' }],
        max_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    const events = sseData(await response.text());
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event));
    // Role chunk, four token chunks, usage chunk.
    assert.equal(chunks.length, 6);
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.equal(chunks[4].choices[0].finish_reason, 'length');
    assert.equal(chunks[1].choices[0].finish_reason, null);
    assert.deepEqual(chunks[5].choices, []);
    assert.equal(chunks[5].usage.completion_tokens, 4);
    const streamed = chunks.slice(1, 5).map((chunk) => chunk.choices[0].delta.content).join('');
    const whole = await postJson(`${replica.url}/v1/chat/completions`, { model: 'chat-a', messages: [{ role: 'user', content: 'stream me' }], max_tokens: 4 });
    assert.equal(streamed, whole.body.choices[0].message.content);
  });

  test('streaming without include_usage omits usage', async () => {
    const response = await fetch(`${replica.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat-a', prompt: 'count', max_tokens: 3, stream: true }),
    });
    const events = sseData(await response.text());
    assert.equal(events.length, 4);
    assert.equal(events[3], '[DONE]');
    const last = JSON.parse(events[2] ?? '{}');
    assert.equal(last.object, 'text_completion');
    assert.equal(last.choices[0].finish_reason, 'length');
    assert.equal(last.usage, undefined);
  });

  test('completion shape', async () => {
    const response = await postJson(`${replica.url}/v1/completions`, { model: 'chat-a', prompt: 'Once upon', max_tokens: 5 });
    assert.equal(response.status, 200);
    assert.match(response.body.id, /^cmpl-/);
    assert.equal(response.body.object, 'text_completion');
    assert.equal(typeof response.body.choices[0].text, 'string');
    assert.equal(response.body.choices[0].index, 0);
    assert.equal(response.body.usage.completion_tokens, 5);
  });

  test('embeddings float and base64 agree', async () => {
    const float = await postJson(`${replica.url}/v1/embeddings`, { model: 'chat-a', input: ['alpha', 'beta'] });
    const base64 = await postJson(`${replica.url}/v1/embeddings`, { model: 'chat-a', input: ['alpha', 'beta'], encoding_format: 'base64' });
    assert.equal(float.status, 200);
    assert.equal(float.body.object, 'list');
    assert.equal(float.body.data.length, 2);
    assert.equal(float.body.data[1].index, 1);
    assert.equal(float.body.data[0].object, 'embedding');
    const vector: number[] = float.body.data[0].embedding;
    assert.equal(vector.length, 16);
    const norm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
    assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm} is not 1`);
    const bytes = Buffer.from(base64.body.data[0].embedding, 'base64');
    const decoded = Array.from({ length: bytes.length / 4 }, (_, index) => bytes.readFloatLE(index * 4));
    assert.deepEqual(decoded, vector);
  });

  test('embeddings dimensions field', async () => {
    const response = await postJson(`${replica.url}/v1/embeddings`, { model: 'chat-a', input: 'alpha', dimensions: 4 });
    assert.equal(response.body.data[0].embedding.length, 4);
    const tooMany = await postJson(`${replica.url}/v1/embeddings`, { model: 'chat-a', input: 'alpha', dimensions: 17 });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.param, 'dimensions');
    assert.match(tooMany.body.message, /17/);
  });

  test('models and health', async () => {
    const models = await getJson(`${replica.url}/v1/models`);
    assert.equal(models.body.object, 'list');
    assert.deepEqual(models.body.data.map((model: { id: string }) => model.id), ['chat-a', 'chat-b']);
    assert.equal(models.body.data[0].object, 'model');
    const health = await fetch(`${replica.url}/health`);
    assert.equal(health.status, 200);
  });

  test('invalid body names field and value', async () => {
    const response = await postJson(`${replica.url}/v1/chat/completions`, { model: 'chat-a', messages: [{ role: 'user', content: 'x' }], max_tokens: -3 });
    assert.equal(response.status, 400);
    assert.equal(response.body.object, 'error');
    assert.equal(response.body.type, 'BadRequestError');
    assert.equal(response.body.code, 400);
    assert.equal(response.body.param, 'max_tokens');
    assert.match(response.body.message, /-3/);
  });

  test('invalid bodies are explained in plain words', async () => {
    const cases: [string, Record<string, unknown>, string, string][] = [
      ['/v1/chat/completions', { model: 'chat-a', messages: [] }, 'messages', 'invalid value [] for messages: must be an array of at least 1 message'],
      ['/v1/chat/completions', { model: 'chat-a', messages: [{ role: 'user', content: 'x' }], max_tokens: -3 }, 'max_tokens', 'invalid value -3 for max_tokens: must be a positive integer or null'],
      ['/v1/chat/completions', { model: 'chat-a', messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n', 'n=2 is not supported by this simulator: only n=1; send 2 requests instead'],
      ['/v1/completions', { model: 'chat-a', prompt: 'x', n: 3 }, 'n', 'n=3 is not supported by this simulator: only n=1; send 3 requests instead'],
      ['/v1/completions', { model: 'chat-a', prompt: ['a', 'b'] }, 'prompt', 'a prompt array of 2 prompts is not supported by this simulator: only one prompt per request; send 2 requests instead'],
      ['/v1/completions', { model: 'chat-a', prompt: [[1, 2], [3]] }, 'prompt', 'a prompt array of 2 prompts is not supported by this simulator: only one prompt per request; send 2 requests instead'],
      ['/v1/completions', { model: 'chat-a', prompt: [[1, 2]] }, 'prompt', 'a prompt given as an array of token id arrays is not supported by this simulator: send the token ids as one flat array'],
    ];
    for (const [route, body, param, message] of cases) {
      const response = await postJson(`${replica.url}${route}`, body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(response.body.param, param, JSON.stringify(body));
      assert.equal(response.body.message, message);
      assert.doesNotMatch(response.body.message, /Expected/);
    }
    const single = await postJson(`${replica.url}/v1/completions`, { model: 'chat-a', prompt: ['only one'], max_tokens: 2, n: 1 });
    assert.equal(single.status, 200);
  });

  test('wrong content type is 415', async () => {
    const response = await fetch(`${replica.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(response.status, 415);
    const body = (await response.json()) as { object: string; code: number };
    assert.equal(body.object, 'error');
    assert.equal(body.code, 415);
  });

  test('request id is echoed', async () => {
    const response = await postJson(`${replica.url}/v1/completions`, { model: 'chat-a', prompt: 'a', max_tokens: 1 }, { 'x-request-id': 'echo-1' });
    assert.equal(response.headers.get('x-request-id'), 'echo-1');
  });

  test('unknown model is 404', async () => {
    const response = await postJson(`${replica.url}/v1/chat/completions`, { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(response.status, 404);
    assert.equal(response.body.type, 'NotFoundError');
    assert.match(response.body.message, /nope/);
  });

  test('context length over limit is 400', async () => {
    const response = await postJson(`${replica.url}/v1/completions`, { model: 'chat-a', prompt: 'x', max_tokens: 9000 });
    assert.equal(response.status, 400);
    assert.equal(response.body.param, 'max_tokens');
  });

  test('official openai client', async () => {
    const client = new OpenAI({ baseURL: `${replica.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
    const chat = await client.chat.completions.create({ model: 'chat-a', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    assert.equal(chat.choices[0]?.message.content?.split(' ').length, 3);

    const stream = await client.chat.completions.create({
      model: 'chat-a',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usageTokens = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usageTokens = chunk.usage.completion_tokens;
    }
    assert.equal(text, chat.choices[0]?.message.content);
    assert.equal(usageTokens, 3);

    const embeddings = await client.embeddings.create({ model: 'chat-a', input: ['alpha', 'beta'] });
    const direct = await postJson(`${replica.url}/v1/embeddings`, { model: 'chat-a', input: ['alpha', 'beta'] });
    assert.deepEqual(embeddings.data[1]?.embedding, direct.body.data[1].embedding);
  });

  test('stats count requests and ids', async () => {
    await replica.resetStats();
    await postJson(`${replica.url}/v1/completions`, { model: 'chat-a', prompt: 'a', max_tokens: 1 }, { 'x-request-id': 'req-1' });
    await postJson(`${replica.url}/v1/completions`, { model: 'chat-a', prompt: 'a', max_tokens: 1 });
    await postJson(`${replica.url}/v1/completions`, { model: 'chat-a', prompt: 'a', max_tokens: 0 }, { 'x-request-id': 'req-3' });
    await fetch(`${replica.url}/health`);
    const stats = await replica.stats();
    assert.equal(stats.received, 3);
    assert.equal(stats.completed, 2);
    assert.equal(stats.invalid, 1);
    assert.deepEqual(stats.requestIds, ['req-1', '', 'req-3']);
    assert.equal(stats.byRoute['POST /v1/completions'], 3);
    assert.equal(stats.byRoute['GET /health'], 1);
    assert.equal(stats.running, 0);
  });
});
