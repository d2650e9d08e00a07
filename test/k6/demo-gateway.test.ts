// Sends the k6 scripts' requests, built by the same library code, to the gateway demo
// that `npm start` runs, and applies the scripts' checks to its replies. This proves the
// checks pass on a healthy gateway with the default model names, and that the gateway
// returns what the checks require: request ids, V2 ids and rows after batching.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';

import { REPO_ROOT, loadLibrary } from './k6-init-context.ts';

interface V2InputSpec {
  name: string;
  datatype: string;
  shape: number[];
}

interface PayloadLibrary {
  chatBody(options: { model: string; promptTokens: number; maxTokens: number; stream: boolean; seed?: number }): Record<string, unknown>;
  embeddingsBody(model: string, count: number, seed?: number): Record<string, unknown>;
  parseV2InputSpecs(value: unknown, source: string): V2InputSpec[];
  v2InferBody(specs: readonly V2InputSpec[], rows: number, id: string, seed?: number): Record<string, unknown>;
}

interface ValidateLibrary {
  parseJson(text: string): unknown;
  headerValue(headers: Record<string, string>, name: string): string | undefined;
  isChatCompletion(body: unknown, model: string): boolean;
  hasUsageWithin(body: unknown, maxTokens: number): boolean;
  parseSse(text: string): { chunks: unknown[]; done: boolean; errors: unknown[] };
  isCompleteChatStream(stream: unknown, model: string): boolean;
  isEmbeddingList(body: unknown, model: string, count: number): boolean;
  isV2InferResponse(body: unknown, model: string): boolean;
  hasV2Rows(body: unknown, rows: number): boolean;
  isOpenAIError(body: unknown): boolean;
}

interface ConfigLibrary {
  DEFAULTS: Readonly<Record<string, string>>;
}

const payloads = await loadLibrary<PayloadLibrary>('payloads.js');
const validate = await loadLibrary<ValidateLibrary>('validate.js');
const { DEFAULTS } = await loadLibrary<ConfigLibrary>('config.js');
const CHAT_MODEL = DEFAULTS.CHAT_MODEL ?? '';
const EMBEDDINGS_MODEL = DEFAULTS.EMBEDDINGS_MODEL ?? '';
const V2_MODEL = DEFAULTS.V2_MODEL ?? '';

const START_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;

interface Reply {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** Sends a request with the headers the k6 scripts send and returns the whole reply. */
async function send(url: string, requestId: string, body?: unknown): Promise<Reply> {
  const headers = { 'x-request-id': requestId, 'x-priority': 'standard', 'x-request-timeout-ms': String(REQUEST_TIMEOUT_MS), 'content-type': 'application/json' };
  const init: RequestInit = body === undefined ? { headers } : { method: 'POST', headers, body: JSON.stringify(body) };
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return { status: response.status, headers: Object.fromEntries(response.headers), text: await response.text() };
}

/** Polls `ready` every 200 ms until it returns true or `timeoutMs` passes. */
async function waitFor(ready: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

describe('k6 checks against the gateway demo', () => {
  let gateway: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let baseUrl = '';
  const output: string[] = [];

  before(async () => {
    const child = spawn(process.execPath, [`${REPO_ROOT}gateway/src/main.ts`, '--port', '0', '--admin-port', '0'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway = child;
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    createInterface({ input: child.stderr }).on('line', (line) => output.push(line));

    let adminUrl = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway demo did not start within ${START_TIMEOUT_MS} ms:\n${output.join('\n')}`)), START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`gateway demo exited with code ${code}:\n${output.join('\n')}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        output.push(line);
        const entry = validate.parseJson(line) as { msg?: string; trafficUrl?: string; adminUrl?: string } | undefined;
        if (entry?.msg === 'gateway started' && entry.trafficUrl !== undefined && entry.adminUrl !== undefined) {
          baseUrl = entry.trafficUrl;
          adminUrl = entry.adminUrl;
          clearTimeout(timer);
          resolve();
        }
      });
    });

    await waitFor(
      async () => {
        const state = (await (await fetch(`${adminUrl}/admin/state`)).json()) as { models: { replicas: { state: string }[] }[] };
        return state.models.length === 3 && state.models.every((model) => model.replicas.some((replica) => replica.state === 'ready'));
      },
      START_TIMEOUT_MS,
      'a ready replica for every demo model',
    );
  });

  after(async () => {
    // SIGTERM lets the demo stop the replicas it started.
    gateway?.kill('SIGTERM');
    await exited;
  });

  test('chat passes the chat checks', async () => {
    const reply = await send(`${baseUrl}/v1/chat/completions`, 'k6-test-chat', payloads.chatBody({ model: CHAT_MODEL, promptTokens: 16, maxTokens: 8, stream: false }));
    const body = validate.parseJson(reply.text);

    assert.equal(reply.status, 200, reply.text);
    assert.equal(validate.isChatCompletion(body, CHAT_MODEL), true);
    assert.equal(validate.hasUsageWithin(body, 8), true);
    assert.equal(validate.headerValue(reply.headers, 'x-request-id'), 'k6-test-chat');
  });

  test('streaming chat passes the stream checks', async () => {
    const reply = await send(`${baseUrl}/v1/chat/completions`, 'k6-test-stream', payloads.chatBody({ model: CHAT_MODEL, promptTokens: 16, maxTokens: 8, stream: true }));
    const stream = validate.parseSse(reply.text);

    assert.equal(reply.status, 200, reply.text);
    assert.match(validate.headerValue(reply.headers, 'content-type') ?? '', /^text\/event-stream/);
    assert.match(validate.headerValue(reply.headers, 'cache-control') ?? '', /no-cache/);
    assert.equal(validate.isCompleteChatStream(stream, CHAT_MODEL), true);
    assert.equal(validate.headerValue(reply.headers, 'x-request-id'), 'k6-test-stream');
  });

  test('embeddings pass the list check', async () => {
    const reply = await send(`${baseUrl}/v1/embeddings`, 'k6-test-embeddings', payloads.embeddingsBody(EMBEDDINGS_MODEL, 4));

    assert.equal(reply.status, 200, reply.text);
    assert.equal(validate.isEmbeddingList(validate.parseJson(reply.text), EMBEDDINGS_MODEL, 4), true);
  });

  test('concurrent V2 requests get their own ids and rows', async () => {
    const metadata = validate.parseJson((await send(`${baseUrl}/v2/models/${V2_MODEL}`, 'k6-test-metadata')).text) as { inputs?: unknown };
    const specs = payloads.parseV2InputSpecs(metadata.inputs, 'metadata');

    const requests = Array.from({ length: 24 }, (_, index) => ({ id: `k6-test-infer-${index}`, rows: 1 + (index % 3) }));
    const replies = await Promise.all(
      requests.map(({ id, rows }) => send(`${baseUrl}/v2/models/${V2_MODEL}/infer`, id, payloads.v2InferBody(specs, rows, id, rows))),
    );

    for (const [index, reply] of replies.entries()) {
      const { id, rows } = requests[index] ?? { id: '', rows: 0 };
      const body = validate.parseJson(reply.text) as { id?: string } | undefined;
      assert.equal(reply.status, 200, reply.text);
      assert.equal(validate.isV2InferResponse(body, V2_MODEL), true, reply.text);
      assert.equal(validate.hasV2Rows(body, rows), true, `${id} sent ${rows} rows, got ${reply.text}`);
      assert.equal(body?.id, id);
    }
  });

  test('model list and V2 readiness pass the smoke checks', async () => {
    const models = validate.parseJson((await send(`${baseUrl}/v1/models`, 'k6-test-models')).text) as { data?: { id?: string }[] } | undefined;
    const ids = (models?.data ?? []).map((item) => item.id);
    const ready = await send(`${baseUrl}/v2/models/${V2_MODEL}/ready`, 'k6-test-ready');

    assert.ok(ids.includes(CHAT_MODEL), `GET /v1/models lists ${ids.join(', ')}`);
    assert.ok(ids.includes(EMBEDDINGS_MODEL), `GET /v1/models lists ${ids.join(', ')}`);
    assert.equal(ready.status, 200);
  });

  test('unknown model error passes the error check', async () => {
    const reply = await send(`${baseUrl}/v1/chat/completions`, 'k6-test-unknown', payloads.chatBody({ model: 'no-such-model', promptTokens: 4, maxTokens: 4, stream: false }));

    assert.equal(reply.status, 404);
    assert.equal(validate.isOpenAIError(validate.parseJson(reply.text)), true);
  });
});
