// Every outcome of the closed set, driven through one gateway: each request gets exactly
// one response and one `request finished` line, is counted once in infergate_requests_total,
// echoes its x-request-id, and every 429 and 503 carries Retry-After. /metrics passes
// promtool while work is queued and in flight.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { OUTCOMES } from '../../gateway/src/http/errors.ts';
import { chatBody, metricValue, postJson, startReplica, startTestGateway, waitFor, type SpawnedReplica, type TestGateway } from './helpers.ts';

const OK = 'oc';
const BAD = 'oc-bad';
const NONE = 'oc-none';
const V2_NONE = 'oc-v2-none';
const NOWHERE = 'http://127.0.0.1:9';

type Response = Awaited<ReturnType<typeof postJson>>;

describe('request outcomes', () => {
  let good: SpawnedReplica;
  let bad: SpawnedReplica;
  let gateway: TestGateway;
  const finished: { requestId?: string; outcome?: string; model?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        const entry = JSON.parse(line) as { msg?: string; requestId?: string; outcome?: string; model?: string };
        if (entry.msg === 'request finished') finished.push(entry);
      }
      done();
    },
  });
  let sent = 0;

  before(async () => {
    [good, bad] = await Promise.all([startReplica('openai', OK, ['--itl-base-ms', '20']), startReplica('openai', BAD)]);
    gateway = await startTestGateway(
      [
        { name: OK, protocol: 'openai', replicas: { static: [good.url] }, maxInflightPerReplica: 1, queue: { maxSize: 2, timeoutMs: 20_000 }, retry: { maxAttempts: 1 } },
        { name: BAD, protocol: 'openai', replicas: { static: [bad.url] }, retry: { maxAttempts: 1 } },
        { name: NONE, protocol: 'openai', replicas: { static: [NOWHERE] } },
        { name: V2_NONE, protocol: 'v2', replicas: { static: [NOWHERE] } },
      ],
      { logger: pino({ level: 'info' }, sink) },
    );
    await waitFor(() => gateway.state().models.filter((model) => model.replicas.some((replica) => replica.state === 'ready')).length === 2, 'both served models to be ready');
  });

  after(async () => {
    await gateway?.close(0);
    await Promise.all([good?.stop(), bad?.stop()]);
  });

  const url = (): string => `${gateway.trafficUrl}/v1/chat/completions`;

  function send(id: string, model: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}, signal?: AbortSignal): Promise<Response> {
    sent++;
    return postJson(url(), chatBody(model, extra), { 'x-request-id': id, ...headers }, signal);
  }

  /** Asserts the status and error code, the echoed request id and Retry-After on 429 and 503. */
  function expectError(response: Response, id: string, status: number, code: string): void {
    assert.equal(response.status, status, `${id}: ${response.text}`);
    assert.equal(response.body.error.code, code);
    assert.equal(response.headers.get('x-request-id'), id);
    if (status === 429 || status === 503) assert.ok(Number(response.headers.get('retry-after')) >= 1, `${id} has Retry-After`);
  }

  const queued = (priority: 'standard' | 'sheddable'): number => gateway.state().models.find((model) => model.name === OK)!.queued[priority];

  test('V2 readiness and metadata without a ready replica answer 503 with Retry-After', async () => {
    const ready = await fetch(`${gateway.trafficUrl}/v2/models/${V2_NONE}/ready`, { headers: { 'x-request-id': 'v2-ready' } });
    assert.equal(ready.status, 503);
    assert.ok(Number(ready.headers.get('retry-after')) >= 1);
    assert.equal(ready.headers.get('x-request-id'), 'v2-ready');
    const metadata = await fetch(`${gateway.trafficUrl}/v2/models/${V2_NONE}`);
    assert.equal(metadata.status, 503);
    assert.ok(Number(metadata.headers.get('retry-after')) >= 1);
    assert.match(await metadata.text(), /no_replicas_ready/);
  });

  test('each outcome is reachable and counted once', async () => {
    const success = await send('success', OK);
    assert.equal(success.status, 200);
    assert.equal(success.headers.get('x-request-id'), 'success');
    expectError(await send('invalid', OK, { 'x-priority': 'urgent' }), 'invalid', 400, 'invalid_value');
    expectError(await send('no-replicas', NONE), 'no-replicas', 503, 'no_replicas_ready');

    await bad.setFaults({ errorRate: 1, errorStatus: 500 });
    expectError(await send('upstream-error', BAD), 'upstream-error', 502, 'upstream_error');
    await bad.setFaults({ hangRate: 1 });
    expectError(await send('upstream-timeout', BAD, { 'x-request-timeout-ms': '300' }), 'upstream-timeout', 504, 'upstream_timeout');
    await bad.clearFaults();

    // One long request takes the only slot of OK, so everything below queues behind it.
    const long = send('long', OK, {}, { max_tokens: 1000 });
    await waitFor(() => gateway.state().models.find((model) => model.name === OK)!.inFlight === 1, 'the long request to be in flight');
    expectError(await send('expired', OK, { 'x-request-timeout-ms': '200' }), 'expired', 504, 'queue_timeout');

    const shed = send('shed', OK, { 'x-priority': 'sheddable' });
    await waitFor(() => queued('sheddable') === 1, 'the sheddable request to queue');
    const survivor = send('survivor', OK);
    await waitFor(() => queued('standard') === 1, 'the standard request to queue');
    expectError(await send('queue-full', OK, { 'x-priority': 'sheddable' }), 'queue-full', 429, 'queue_full');
    const leaver = new AbortController();
    const leaving = send('leaver', OK, {}, {}, leaver.signal).catch((error: Error) => error);
    expectError(await shed, 'shed', 429, 'shed');
    await waitFor(() => queued('standard') === 2, 'the evicting request to queue');
    expectError(await send('deadline', OK, { 'x-request-timeout-ms': '100' }), 'deadline', 429, 'deadline_unmeetable');

    const metrics = await gateway.metricsText();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool output: ${check.stdout}${check.stderr}`);
    assert.equal(metricValue(metrics, 'infergate_queue_depth', { model: OK, priority: 'standard' }), 2);
    assert.equal(metricValue(metrics, 'infergate_inflight_requests', { model: OK }), 1);

    leaver.abort();
    assert.ok((await leaving) instanceof Error);
    await waitFor(() => queued('standard') === 1, 'the abandoned request to leave the queue');

    const expected: Record<string, Record<string, number>> = {
      [OK]: { success: 1, rejected_invalid: 1, expired_in_queue: 1, rejected_queue_full: 2, rejected_deadline: 1, client_cancelled: 1 },
      [BAD]: { upstream_error: 1, upstream_timeout: 1 },
      [NONE]: { rejected_no_replicas: 1 },
    };
    await waitFor(async () => metricValue(await gateway.metricsText(), 'infergate_requests_total', { model: OK, outcome: 'client_cancelled' }) === 1, 'the client_cancelled outcome');
    const counted = await gateway.metricsText();
    for (const [model, outcomes] of Object.entries(expected)) {
      for (const outcome of OUTCOMES) {
        assert.equal(metricValue(counted, 'infergate_requests_total', { model, protocol: 'openai', outcome }), outcomes[outcome] ?? 0, `${model} ${outcome}`);
      }
    }

    // Shutdown: a newcomer is refused, the queued and in-flight requests end when the grace period is over.
    const closing = gateway.close(300);
    expectError(await send('late', OK, { connection: 'close' }), 'late', 503, 'shutting_down');
    expectError(await survivor, 'survivor', 503, 'shutting_down');
    expectError(await long, 'long', 503, 'shutting_down');
    await closing;

    assert.equal(finished.length, sent, 'one request finished line per request');
    assert.equal(new Set(finished.map((entry) => entry.requestId)).size, sent, 'no request finished twice');
    assert.deepEqual(
      finished.filter((entry) => entry.outcome === 'shutdown').map((entry) => entry.requestId).sort(),
      ['late', 'long', 'survivor'],
    );
    assert.equal((await good.stats()).requestIds.includes('expired'), false, 'the expired request never reached the replica');
  });
});
