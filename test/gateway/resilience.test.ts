import { after, afterEach, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chatBody, metricValue, postJson, startReplica, startTestGateway, waitFor, waitReady, type SpawnedReplica, type TestGateway } from './helpers.ts';

// Tie-breaks always take the first replica of the static list, so tests know which replica a request hits first.
const FIRST_REPLICA = { random: () => 0 };

describe('failure handling', () => {
  let a: SpawnedReplica;
  let b: SpawnedReplica;

  before(async () => {
    [a, b] = await Promise.all([startReplica('openai', 'chat', ['--itl-base-ms', '20']), startReplica('openai', 'chat', ['--itl-base-ms', '20'])]);
  });

  afterEach(async () => {
    await Promise.all([a.clearFaults(), b.clearFaults()]);
    await Promise.all([a.resetStats(), b.resetStats()]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  async function gatewayFor(t: TestContext, model: Record<string, unknown>, urls = [a.url, b.url]): Promise<TestGateway> {
    const gateway = await startTestGateway([{ name: 'chat', protocol: 'openai', replicas: { static: urls }, ...model }], FIRST_REPLICA);
    t.after(() => gateway.close(0));
    await waitReady(gateway, urls.length);
    return gateway;
  }

  test('reset before headers is retried on another replica', async (t) => {
    const gateway = await gatewayFor(t, {});
    await a.setFaults({ resetRate: 1 });
    for (let i = 0; i < 3; i++) {
      const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'), { 'x-request-id': `reset-${i}` });
      assert.equal(response.status, 200);
    }
    const [statsA, statsB] = await Promise.all([a.stats(), b.stats()]);
    assert.equal(statsA.failed, 3);
    assert.equal(statsB.completed, 3);
    assert.ok(statsB.requestIds.includes('reset-2'));
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_retries_total', { model: 'chat', reason: 'reset' }), 3);
    assert.equal(metricValue(text, 'infergate_upstream_requests_total', { model: 'chat', code: 'reset' }), 3);
  });

  test('refused connection is retried on another replica', async (t) => {
    const doomed = await startReplica('openai', 'chat');
    t.after(() => doomed.kill());
    const gateway = await startTestGateway(
      [{ name: 'chat', protocol: 'openai', replicas: { static: [doomed.url, b.url] }, health: { intervalMs: 200, timeoutMs: 150, unhealthyThreshold: 1000 } }],
      FIRST_REPLICA,
    );
    t.after(() => gateway.close(0));
    await waitReady(gateway, 2);
    await doomed.kill();
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'), { 'x-request-id': 'refused-1' });
    assert.equal(response.status, 200);
    assert.ok((await b.stats()).requestIds.includes('refused-1'));
    assert.equal(metricValue(await gateway.metricsText(), 'infergate_retries_total', { model: 'chat', reason: 'connect_error' }), 1);
  });

  test('retries stop at retry.maxAttempts with 502', async (t) => {
    const gateway = await gatewayFor(t, { retry: { maxAttempts: 2 } });
    await Promise.all([a.setFaults({ resetRate: 1 }), b.setFaults({ resetRate: 1 })]);
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'));
    assert.equal(response.status, 502);
    assert.equal(response.body.error.code, 'upstream_unavailable');
    const [statsA, statsB] = await Promise.all([a.stats(), b.stats()]);
    assert.equal(statsA.received + statsB.received, 2);
  });

  test('hung replica ends at the request deadline with 504', async (t) => {
    const gateway = await gatewayFor(t, {}, [a.url]);
    await a.setFaults({ hangRate: 1 });
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'), { 'x-request-timeout-ms': '400' });
    assert.equal(response.status, 504);
    assert.equal(response.body.error.code, 'upstream_timeout');
    await waitFor(async () => (await a.stats()).aborted === 1, 'the replica to count the abort');
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_requests_total', { model: 'chat', outcome: 'upstream_timeout' }), 1);
  });

  test('replica silent until request deadlines is ejected', async (t) => {
    const gateway = await gatewayFor(t, { ejection: { consecutiveFailures: 2 } });
    await a.setFaults({ hangRate: 1 });
    // Both replicas are idle for the first two requests, so the tie-break sends them to a.
    for (const id of ['silent-1', 'silent-2']) {
      const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'), { 'x-request-timeout-ms': '300', 'x-request-id': id });
      assert.equal(response.status, 504);
      assert.equal(response.body.error.code, 'upstream_timeout');
    }
    assert.equal(gateway.state().models[0]!.replicas[0]!.state, 'ejected');
    const next = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'), { 'x-request-id': 'after-ejection' });
    assert.equal(next.status, 200);
    const [statsA, statsB] = await Promise.all([a.stats(), b.stats()]);
    assert.deepEqual(statsA.requestIds, ['silent-1', 'silent-2']);
    assert.deepEqual(statsB.requestIds, ['after-ejection']);
    await waitFor(async () => (await a.stats()).aborted === 2, 'the replica to count both aborts');
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_replica_ejections_total', { model: 'chat' }), 1);
    assert.equal(metricValue(text, 'infergate_requests_total', { model: 'chat', outcome: 'upstream_timeout' }), 2);
  });

  test('deadline on a replica that responds to other calls does not count', async (t) => {
    const gateway = await gatewayFor(t, { ejection: { consecutiveFailures: 1 } }, [b.url]);
    // 100 tokens at 20 ms each outlast the 400 ms deadline.
    const slow = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat', { max_tokens: 100 }), { 'x-request-timeout-ms': '400' });
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the slow request to be in flight');
    const quick = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat', { max_tokens: 1 }));
    assert.equal(quick.status, 200);
    assert.equal((await slow).status, 504);
    assert.equal(gateway.state().models[0]!.replicas[0]!.state, 'ready');
    assert.equal(metricValue(await gateway.metricsText(), 'infergate_replica_ejections_total', { model: 'chat' }), 0);
  });

  test('stream without headers times out and ejects', async (t) => {
    const gateway = await gatewayFor(t, { upstream: { streamHeadersTimeoutMs: 300 }, ejection: { consecutiveFailures: 2 } }, [a.url]);
    await a.setFaults({ hangRate: 1 });
    for (let i = 0; i < 2; i++) {
      const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat', { stream: true }));
      assert.equal(response.status, 504);
      assert.equal(response.body.error.code, 'upstream_timeout');
      assert.match(response.body.error.message, /sent no response headers within upstream\.streamHeadersTimeoutMs \(300 ms\)/);
    }
    assert.equal(gateway.state().models[0]!.replicas[0]!.state, 'ejected');
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_upstream_requests_total', { model: 'chat', code: 'timeout' }), 2);
    assert.equal(metricValue(text, 'infergate_replica_ejections_total', { model: 'chat' }), 1);
    assert.equal(metricValue(text, 'infergate_requests_total', { model: 'chat', outcome: 'upstream_timeout' }), 2);
  });

  test('stream headers timeout spares non-streaming calls', async (t) => {
    const gateway = await gatewayFor(t, { upstream: { streamHeadersTimeoutMs: 100 } }, [b.url]);
    // 30 tokens at 20 ms each: the headers of this non-streaming call come after about 600 ms.
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat', { max_tokens: 30 }));
    assert.equal(response.status, 200);
    assert.equal(response.body.usage.completion_tokens, 30);
  });

  test('client disconnect aborts the upstream stream', async (t) => {
    const gateway = await gatewayFor(t, {}, [a.url]);
    const controller = new AbortController();
    const response = await fetch(`${gateway.trafficUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('chat', { stream: true, max_tokens: 500 })),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await waitFor(async () => (await a.stats()).aborted === 1, 'the replica to count the abort');
    assert.equal((await a.stats()).completed, 0);
    await waitFor(async () => metricValue(await gateway.metricsText(), 'infergate_requests_total', { model: 'chat', outcome: 'client_cancelled' }) === 1, 'the client_cancelled outcome');
  });

  test('request expiring in the queue never reaches a replica', async (t) => {
    const gateway = await gatewayFor(t, { maxInflightPerReplica: 1 }, [a.url]);
    const long = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat', { max_tokens: 60 }));
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the long request to be in flight');
    const doomed = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'), { 'x-request-timeout-ms': '200', 'x-request-id': 'doomed' });
    assert.equal(doomed.status, 504);
    assert.equal(doomed.body.error.code, 'queue_timeout');
    assert.equal((await long).status, 200);
    const stats = await a.stats();
    assert.equal(stats.requestIds.includes('doomed'), false);
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_requests_total', { model: 'chat', outcome: 'expired_in_queue' }), 1);
  });

  test('queued request whose client left is never sent', async (t) => {
    const gateway = await gatewayFor(t, { maxInflightPerReplica: 1 }, [a.url]);
    const long = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat', { max_tokens: 60 }));
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the long request to be in flight');
    const controller = new AbortController();
    const leaving = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'), { 'x-request-id': 'leaver' }, controller.signal).catch((error: Error) => error);
    await waitFor(() => gateway.state().models[0]!.queued.standard === 1, 'the second request to queue');
    controller.abort();
    await leaving;
    await waitFor(() => gateway.state().models[0]!.queued.standard === 0, 'the queue to drop the request');
    assert.equal((await long).status, 200);
    assert.equal((await a.stats()).requestIds.includes('leaver'), false);
  });

  test('full queue rejects with 429 and Retry-After, sheddable is evicted', async (t) => {
    const gateway = await gatewayFor(t, { maxInflightPerReplica: 1, queue: { maxSize: 1 } }, [a.url]);
    const url = `${gateway.trafficUrl}/v1/chat/completions`;
    const long = postJson(url, chatBody('chat', { max_tokens: 40 }));
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the long request to be in flight');
    const shed = postJson(url, chatBody('chat'), { 'x-priority': 'sheddable' });
    await waitFor(() => gateway.state().models[0]!.queued.sheddable === 1, 'the sheddable request to queue');

    const rejected = await postJson(url, chatBody('chat'), { 'x-priority': 'sheddable' });
    assert.equal(rejected.status, 429);
    assert.equal(rejected.body.error.code, 'queue_full');
    assert.ok(Number(rejected.headers.get('retry-after')) >= 1);

    const standard = postJson(url, chatBody('chat'));
    const evicted = await shed;
    assert.equal(evicted.status, 429);
    assert.equal(evicted.body.error.code, 'shed');
    assert.ok(Number(evicted.headers.get('retry-after')) >= 1);
    assert.equal((await standard).status, 200);
    assert.equal((await long).status, 200);
  });

  test('priority classes dispatch critical first', async (t) => {
    const gateway = await gatewayFor(t, { maxInflightPerReplica: 1 }, [a.url]);
    const url = `${gateway.trafficUrl}/v1/chat/completions`;
    const long = postJson(url, chatBody('chat', { max_tokens: 30 }), { 'x-request-id': 'first' });
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the long request to be in flight');
    const sent: Promise<unknown>[] = [];
    for (const priority of ['sheddable', 'standard', 'critical']) {
      sent.push(postJson(url, chatBody('chat'), { 'x-priority': priority, 'x-request-id': priority }));
      await waitFor(() => gateway.state().models[0]!.queued[priority as 'critical'] === 1, `${priority} to queue`);
    }
    await Promise.all([long, ...sent]);
    assert.deepEqual((await a.stats()).requestIds, ['first', 'critical', 'standard', 'sheddable']);
  });

  test('503 with Retry-After cools the replica down', async (t) => {
    const gateway = await gatewayFor(t, {});
    await a.setFaults({ errorRate: 1, errorStatus: 503, retryAfterSeconds: 60 });
    for (let i = 0; i < 3; i++) {
      const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'));
      assert.equal(response.status, 200);
    }
    assert.equal((await a.stats()).received, 1, 'only the first request reached the cooling replica');
    assert.equal((await b.stats()).completed, 3);
    const replicaA = gateway.state().models[0]!.replicas.find((replica) => replica.id.endsWith(`:${a.port}`));
    assert.equal(replicaA?.state, 'ready', 'a cooldown is not a failure');
    assert.equal(metricValue(await gateway.metricsText(), 'infergate_retries_total', { model: 'chat', reason: 'overloaded' }), 1);
  });

  test('consecutive 5xx eject a replica', async (t) => {
    const gateway = await gatewayFor(t, { ejection: { consecutiveFailures: 2, baseMs: 60_000, maxMs: 120_000 } });
    await a.setFaults({ errorRate: 1, errorStatus: 500 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'))).status);
    assert.deepEqual(statuses, [502, 502, 200, 200]);
    const replicaA = gateway.state().models[0]!.replicas.find((replica) => replica.id.endsWith(`:${a.port}`));
    assert.equal(replicaA?.state, 'ejected');
    assert.equal(metricValue(await gateway.metricsText(), 'infergate_replica_ejections_total', { model: 'chat' }), 1);
    assert.equal((await a.stats()).received, 2);
  });

  test('ejected replica returns through a trial request', async (t) => {
    const gateway = await gatewayFor(t, { ejection: { consecutiveFailures: 1, baseMs: 200, maxMs: 1000 } });
    const stateOfA = (): string | undefined => gateway.state().models[0]!.replicas.find((replica) => replica.id.endsWith(`:${a.port}`))?.state;
    await a.setFaults({ errorRate: 1, errorStatus: 500 });
    assert.equal((await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'))).status, 502);
    assert.equal(stateOfA(), 'ejected');
    await a.clearFaults();
    // Requests keep flowing; once the period ends, one of them is the trial that brings A back.
    await waitFor(async () => {
      assert.equal((await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('chat'))).status, 200);
      return stateOfA() === 'ready';
    }, 'replica A to pass its trial request');
    assert.equal((await a.stats()).completed, 1, 'exactly one trial request reached A');
  });

  test('stream failing midway ends with an SSE error event', async (t) => {
    const gateway = await gatewayFor(t, {}, [a.url]);
    await a.setFaults({ resetAfterChunks: 2 });
    const response = await fetch(`${gateway.trafficUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody('chat', { stream: true, max_tokens: 20 })),
    });
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /event: error\ndata: \{"error"/);
    assert.equal(text.includes('[DONE]'), false);
    assert.equal((await a.stats()).received, 1, 'a stream that sent bytes is never retried');
    assert.equal(metricValue(await gateway.metricsText(), 'infergate_requests_total', { model: 'chat', outcome: 'upstream_error' }), 1);
  });
});

test('merged V2 batch silent until its deadlines ejects the replica', async (t) => {
  const replica = await startReplica('v2', 'vision', ['--fault-hang-rate', '1']);
  t.after(() => replica.stop());
  const gateway = await startTestGateway([
    { name: 'vision', protocol: 'v2', replicas: { static: [replica.url] }, batching: { maxBatchSize: 3, maxDelayMs: 200 }, ejection: { consecutiveFailures: 1 } },
  ]);
  t.after(() => gateway.close(0));
  await waitReady(gateway);
  const body = { inputs: [{ name: 'INPUT0', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] };
  const responses = await Promise.all([1, 2, 3].map(() => postJson(`${gateway.trafficUrl}/v2/models/vision/infer`, body, { 'x-request-timeout-ms': '600' })));
  assert.deepEqual(responses.map((response) => response.status), [504, 504, 504]);
  // One merged call carried all three requests.
  assert.equal((await replica.stats()).received, 1);
  assert.equal(gateway.state().models[0]!.replicas[0]!.state, 'ejected');
  assert.equal(metricValue(await gateway.metricsText(), 'infergate_replica_ejections_total', { model: 'vision' }), 1);
});
