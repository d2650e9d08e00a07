// Tests of the request bodies and response checks that the k6 scripts use. The checks
// run on answers from a real simulated replica (vLLM-style OpenAI routes and
// Triton-style V2 routes) started on loopback, and on broken bodies that must fail.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { spawnReplica } from '../../loadtest/replica/spawn.ts';
import type { SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { loadLibrary } from './k6-init-context.ts';

interface V2InputSpec {
  name: string;
  datatype: string;
  shape: number[];
}

interface SseStream {
  chunks: Record<string, unknown>[];
  done: boolean;
  dataAfterDone: boolean;
  errors: Record<string, unknown>[];
  malformed: string[];
}

interface PayloadLibrary {
  buildPrompt(tokens: number, seed?: number): string;
  chatBody(options: { model: string; promptTokens: number; maxTokens: number; stream: boolean; seed?: number }): Record<string, unknown>;
  embeddingsBody(model: string, count: number, seed?: number): Record<string, unknown>;
  parseV2InputSpecs(value: unknown, source: string): V2InputSpec[];
  v2InferBody(specs: readonly V2InputSpec[], rows: number, id: string, seed?: number): { id: string; inputs: { shape: number[]; data: unknown[] }[] };
}

interface ValidateLibrary {
  parseJson(text: string): unknown;
  headerValue(headers: Record<string, string>, name: string): string | undefined;
  isChatCompletion(body: unknown, model: string): boolean;
  hasUsageWithin(body: unknown, maxTokens: number): boolean;
  parseSse(text: string): SseStream;
  isCompleteChatStream(stream: SseStream, model: string): boolean;
  streamedText(stream: SseStream): string;
  isEmbeddingList(body: unknown, model: string, count: number): boolean;
  isV2InferResponse(body: unknown, model: string): boolean;
  hasV2Rows(body: unknown, rows: number): boolean;
  isOpenAIError(body: unknown): boolean;
  isRetryAfterSeconds(value: string | undefined): boolean;
}

const payloads = await loadLibrary<PayloadLibrary>('payloads.js');
const validate = await loadLibrary<ValidateLibrary>('validate.js');

const CHAT_MODEL = 'k6-chat';
const V2_MODEL = 'k6-v2';

/** Sends JSON and returns the status, headers and body text. */
async function send(url: string, body?: unknown): Promise<{ status: number; headers: Record<string, string>; text: string }> {
  const init: RequestInit = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, headers: Object.fromEntries(response.headers), text: await response.text() };
}

describe('checks on replica answers', () => {
  let openai: SpawnedReplica;
  let v2: SpawnedReplica;

  before(async () => {
    const fast = ['--port', '0', '--host', '127.0.0.1', '--prefill-base-ms', '0', '--prefill-per-token-ms', '0', '--itl-base-ms', '0', '--itl-per-running-ms', '0'];
    openai = await spawnReplica(['--protocol', 'openai', '--model', CHAT_MODEL, ...fast]);
    v2 = await spawnReplica(['--protocol', 'v2', '--model', V2_MODEL, ...fast, '--exec-base-ms', '0', '--exec-per-item-ms', '0']);
  });

  after(async () => {
    await Promise.all([openai?.kill(), v2?.kill()]);
  });

  test('chat completion passes the chat checks', async () => {
    const body = payloads.chatBody({ model: CHAT_MODEL, promptTokens: 40, maxTokens: 12, stream: false });

    const response = await send(`${openai.url}/v1/chat/completions`, body);
    const parsed = validate.parseJson(response.text);

    assert.equal(response.status, 200);
    assert.equal(validate.isChatCompletion(parsed, CHAT_MODEL), true);
    assert.equal(validate.hasUsageWithin(parsed, 12), true);
    assert.equal(validate.hasUsageWithin(parsed, 11), false);
    // The replica counts the role of the chat message as well, like a chat template does.
    const promptTokens = (parsed as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
    assert.ok(promptTokens >= 40, `prompt_tokens ${promptTokens} < 40`);
    assert.ok(promptTokens <= 44, `prompt_tokens ${promptTokens} > 44`);
    assert.equal(validate.isChatCompletion(parsed, 'other-model'), false);
  });

  test('chat stream passes the stream checks', async () => {
    const body = payloads.chatBody({ model: CHAT_MODEL, promptTokens: 8, maxTokens: 5, stream: true });

    const response = await send(`${openai.url}/v1/chat/completions`, body);
    const stream = validate.parseSse(response.text);

    assert.equal(response.status, 200);
    assert.match(validate.headerValue(response.headers, 'Content-Type') ?? '', /^text\/event-stream/);
    assert.equal(stream.done, true);
    assert.equal(validate.isCompleteChatStream(stream, CHAT_MODEL), true);
    assert.notEqual(validate.streamedText(stream), '');
  });

  test('embeddings pass the list check', async () => {
    const response = await send(`${openai.url}/v1/embeddings`, payloads.embeddingsBody(CHAT_MODEL, 3));
    const parsed = validate.parseJson(response.text);

    assert.equal(response.status, 200);
    assert.equal(validate.isEmbeddingList(parsed, CHAT_MODEL, 3), true);
    assert.equal(validate.isEmbeddingList(parsed, CHAT_MODEL, 2), false);
  });

  test('V2 metadata gives inputs that infer accepts', async () => {
    const metadata = validate.parseJson((await send(`${v2.url}/v2/models/${V2_MODEL}`)).text) as { inputs: unknown };
    const specs = payloads.parseV2InputSpecs(metadata.inputs, 'metadata');
    const body = payloads.v2InferBody(specs, 3, 'k6-test-1');

    const response = await send(`${v2.url}/v2/models/${V2_MODEL}/infer`, body);
    const parsed = validate.parseJson(response.text);

    assert.equal(response.status, 200, response.text);
    assert.equal(validate.isV2InferResponse(parsed, V2_MODEL), true);
    assert.equal(validate.hasV2Rows(parsed, 3), true);
    assert.equal(validate.hasV2Rows(parsed, 1), false);
    assert.equal((parsed as { id: string }).id, 'k6-test-1');
  });

});

describe('checks on broken bodies', () => {
  test('chat completion without choices fails', () => {
    const body = { id: 'x', object: 'chat.completion', model: 'm', choices: [] };

    assert.equal(validate.isChatCompletion(body, 'm'), false);
  });

  test('usage above max_tokens fails', () => {
    const body = { usage: { prompt_tokens: 3, completion_tokens: 9 } };

    assert.equal(validate.hasUsageWithin(body, 8), false);
  });

  test('stream without [DONE] fails', () => {
    const stream = validate.parseSse('data: {"id":"a","object":"chat.completion.chunk","model":"m","choices":[]}\n\n');

    assert.equal(stream.done, false);
    assert.equal(validate.isCompleteChatStream(stream, 'm'), false);
  });

  test('stream with an error event fails', () => {
    const text = 'data: {"id":"a","object":"chat.completion.chunk","model":"m"}\r\n\r\ndata: {"error":{"message":"replica reset"}}\r\n\r\ndata: [DONE]\r\n\r\n';

    const stream = validate.parseSse(text);

    assert.equal(stream.errors.length, 1);
    assert.equal(stream.chunks.length, 1);
    assert.equal(validate.isCompleteChatStream(stream, 'm'), false);
  });

  test('stream with mixed ids fails', () => {
    const text = ['a', 'b'].map((id) => `data: {"id":"${id}","object":"chat.completion.chunk","model":"m"}\n\n`).join('') + 'data: [DONE]\n\n';

    assert.equal(validate.isCompleteChatStream(validate.parseSse(text), 'm'), false);
  });

  test('V2 output with short data fails', () => {
    const body = { model_name: 'm', outputs: [{ name: 'OUT', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5] }] };

    assert.equal(validate.isV2InferResponse(body, 'm'), false);
  });

  test('V2 nested data counts every element', () => {
    const body = { model_name: 'm', outputs: [{ name: 'OUT', datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3, 4]] }] };

    assert.equal(validate.isV2InferResponse(body, 'm'), true);
  });

  test('Retry-After must be whole seconds', () => {
    assert.equal(validate.isRetryAfterSeconds('3'), true);
    assert.equal(validate.isRetryAfterSeconds(undefined), false);
    assert.equal(validate.isRetryAfterSeconds('soon'), false);
  });
});

describe('request bodies', () => {
  test('prompt has one word per token', () => {
    const prompt = payloads.buildPrompt(100, 7);

    assert.equal(prompt.split(' ').length, 100);
    assert.equal(Math.ceil(prompt.length / 4), 100);
  });

  test('invalid prompt length is rejected', () => {
    assert.throws(() => payloads.buildPrompt(0), /prompt length must be an integer >= 1 token, got 0/);
  });

  test('V2 body puts rows in dimension 0', () => {
    const body = payloads.v2InferBody([{ name: 'IN', datatype: 'INT32', shape: [-1, 4, -1] }], 2, 'id-1');

    assert.deepEqual(body.inputs[0]?.shape, [2, 4, 1]);
    assert.equal(body.inputs[0]?.data.length, 8);
  });

  test('V2 input spec errors name the field', () => {
    assert.throws(() => payloads.parseV2InputSpecs([{ name: 'IN', datatype: 'FLOAT', shape: [1] }], 'V2_INPUTS'), /V2_INPUTS\[0\]\.datatype: expected one of BOOL/);
    assert.throws(() => payloads.parseV2InputSpecs([{ name: 'IN', datatype: 'FP32', shape: [-2] }], 'V2_INPUTS'), /V2_INPUTS\[0\]\.shape/);
    assert.throws(() => payloads.parseV2InputSpecs([], 'V2_INPUTS'), /V2_INPUTS: expected a non-empty array/);
  });
});
