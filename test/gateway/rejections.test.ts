// Requests refused before admission because they are invalid (400, 404, 413, 415 on the
// inference routes) count as outcome rejected_invalid, with the model label only for a
// model configured on that protocol, so label values stay bounded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { UNKNOWN_MODEL_LABEL } from '../../gateway/src/config/defaults.ts';
import { buildConfig } from '../../gateway/src/config/load.ts';
import { metricValue, postJson, startTestGateway, type TestGateway } from './helpers.ts';

const CHAT = 'rej-chat';
const V2 = 'rej-v2';
/** Nothing listens on the discard port, so no request could ever be served; none needs to be. */
const NOWHERE = 'http://127.0.0.1:9';

describe('invalid requests are counted as rejected_invalid', () => {
  let gateway: TestGateway;
  const logLines: { msg?: string; requestId?: string; outcome?: string }[] = [];
  const logSink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logLines.push(JSON.parse(line) as (typeof logLines)[number]);
      done();
    },
  });

  before(async () => {
    gateway = await startTestGateway(
      [
        { name: CHAT, protocol: 'openai', replicas: { static: [NOWHERE] } },
        { name: V2, protocol: 'v2', replicas: { static: [NOWHERE] } },
      ],
      { logger: pino({ level: 'info' }, logSink) },
      { bodyLimitBytes: 4096 },
    );
  });

  after(async () => {
    await gateway.close(0);
  });

  const invalidCount = async (model: string, protocol: string): Promise<number> =>
    metricValue(await gateway.metricsText(), 'infergate_requests_total', { model, protocol, outcome: 'rejected_invalid' });

  /** rejected_invalid over every model label and protocol. */
  const invalidTotal = async (): Promise<number> => {
    const text = await gateway.metricsText();
    let total = 0;
    for (const model of [CHAT, V2, UNKNOWN_MODEL_LABEL]) {
      for (const protocol of ['openai', 'v2']) total += metricValue(text, 'infergate_requests_total', { model, protocol, outcome: 'rejected_invalid' });
    }
    return total;
  };

  test('schema error on a configured model counts under that model', async () => {
    const before = await invalidCount(CHAT, 'openai');
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, { model: CHAT, messages: [] }, { 'x-request-id': 'schema-1' });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('x-request-id'), 'schema-1');
    assert.equal(await invalidCount(CHAT, 'openai'), before + 1);
  });

  test('malformed JSON, unknown models and wrong content types count under the placeholder', async () => {
    const before = await invalidCount(UNKNOWN_MODEL_LABEL, 'openai');
    const malformed = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, '{"model":');
    assert.equal(malformed.status, 400);
    for (const name of ['nope-1', 'nope-2', 'nope-3', V2]) {
      const unknown = await postJson(`${gateway.trafficUrl}/v1/embeddings`, { model: name, input: 'x' });
      assert.equal(unknown.status, 404);
    }
    const wrongType = await fetch(`${gateway.trafficUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(wrongType.status, 415);
    assert.equal(((await wrongType.json()) as { error: { message: string } }).error.message, 'content type "text/plain" is not supported; send application/json');
    // A byte-array body makes fetch send no content-type header at all.
    const noType = await fetch(`${gateway.trafficUrl}/v1/completions`, { method: 'POST', body: new TextEncoder().encode('{}') });
    assert.equal(noType.status, 415);
    assert.equal(((await noType.json()) as { error: { message: string } }).error.message, 'the request has no content-type header; send application/json');
    assert.equal(await invalidCount(UNKNOWN_MODEL_LABEL, 'openai'), before + 7);
    const text = await gateway.metricsText();
    assert.doesNotMatch(text, /model="nope-/, 'unknown model names never become label values');
    assert.equal(metricValue(text, 'infergate_requests_total', { model: V2, protocol: 'openai' }), 0);
  });

  test('V2 tensor errors, oversized bodies and unknown V2 models are counted', async () => {
    const before = await invalidCount(V2, 'v2');
    const beforeUnknown = await invalidCount(UNKNOWN_MODEL_LABEL, 'v2');
    const mismatch = await postJson(`${gateway.trafficUrl}/v2/models/${V2}/infer`, { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1] }] });
    assert.equal(mismatch.status, 400);
    const big = await postJson(`${gateway.trafficUrl}/v2/models/${V2}/versions/1/infer`, { inputs: [{ name: 'x', shape: [1], datatype: 'BYTES', data: ['y'.repeat(5000)] }] });
    assert.equal(big.status, 413);
    const unknown = await postJson(`${gateway.trafficUrl}/v2/models/nope/infer`, { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] });
    assert.equal(unknown.status, 404);
    assert.equal(await invalidCount(V2, 'v2'), before + 2);
    assert.equal(await invalidCount(UNKNOWN_MODEL_LABEL, 'v2'), beforeUnknown + 1);
  });

  test('routes other than inference are not counted', async () => {
    const before = await invalidTotal();
    assert.equal((await fetch(`${gateway.trafficUrl}/v2/models/nope`)).status, 404);
    assert.equal((await fetch(`${gateway.trafficUrl}/v1/nothing`, { method: 'POST' })).status, 404);
    const getChat = await fetch(`${gateway.trafficUrl}/v1/chat/completions`);
    assert.equal(getChat.status, 405);
    assert.equal(getChat.headers.get('allow'), 'POST');
    assert.deepEqual(((await getChat.json()) as { error: { code: string; message: string } }).error.message, 'method GET is not allowed on /v1/chat/completions; use POST');
    const postModels = await fetch(`${gateway.trafficUrl}/v1/models`, { method: 'POST' });
    assert.equal(postModels.status, 405);
    assert.equal(postModels.headers.get('allow'), 'GET');
    const getInfer = await fetch(`${gateway.trafficUrl}/v2/models/${V2}/infer`);
    assert.equal(getInfer.status, 405);
    assert.deepEqual(await getInfer.json(), { error: `method_not_allowed: method GET is not allowed on /v2/models/${V2}/infer; use POST` });
    assert.equal(await invalidTotal(), before);
  });

  test('generated request id matches the log', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, '{"model":');
    const id = response.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    const line = logLines.find((entry) => entry.msg === 'request finished' && entry.requestId === id);
    assert.equal(line?.outcome, 'rejected_invalid');
  });

  test('the placeholder cannot be configured as a model name', () => {
    assert.throws(() => buildConfig({ models: [{ name: UNKNOWN_MODEL_LABEL, protocol: 'openai', replicas: { static: [NOWHERE] } }] }), /models\.0\.name: "\(unknown\)" is reserved/);
  });
});
