import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { metricValue, postJson, startReplica, startTestGateway, waitFor, waitReady, type SpawnedReplica, type TestGateway } from './helpers.ts';

function tensor(rows: number, columns: number, offset: number): { name: string; shape: number[]; datatype: string; data: number[] } {
  return { name: 'INPUT0', shape: [rows, columns], datatype: 'FP32', data: Array.from({ length: rows * columns }, (_, i) => offset + i) };
}

describe('batching of V2 infer and embeddings', () => {
  let v2Replica: SpawnedReplica;
  let embedReplica: SpawnedReplica;
  let gateway: TestGateway;
  const logLines: Record<string, unknown>[] = [];
  const logSink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const finishedLine = (requestId: string): Record<string, unknown> | undefined => logLines.find((line) => line.msg === 'request finished' && line.requestId === requestId);

  before(async () => {
    [v2Replica, embedReplica] = await Promise.all([startReplica('v2', 'vision'), startReplica('openai', 'embedder')]);
    gateway = await startTestGateway([
      { name: 'vision', protocol: 'v2', replicas: { static: [v2Replica.url] }, batching: { maxBatchSize: 6, maxDelayMs: 2000 } },
      { name: 'embedder', protocol: 'openai', replicas: { static: [embedReplica.url] }, batching: { maxBatchSize: 5, maxDelayMs: 2000 } },
    ], { logger: pino({ level: 'info' }, logSink) });
    await waitReady(gateway);
  });

  after(async () => {
    await gateway?.close(0);
    await Promise.all([v2Replica?.stop(), embedReplica?.stop()]);
  });

  test('V2 requests of different batch sizes merge and split back', async () => {
    const bodies = [
      { id: 'a', inputs: [tensor(1, 4, 0)] },
      { id: 'b', inputs: [tensor(3, 4, 100)] },
      { id: 'c', inputs: [tensor(2, 4, 200)] },
    ];
    const direct = await Promise.all(bodies.map((body) => postJson(`${v2Replica.url}/v2/models/vision/infer`, body)));
    await v2Replica.resetStats();

    const viaGateway = await Promise.all(bodies.map((body) => postJson(`${gateway.trafficUrl}/v2/models/vision/infer`, body)));
    for (const [index, response] of viaGateway.entries()) {
      assert.equal(response.status, 200);
      assert.equal(response.body.id, bodies[index]!.id);
      assert.deepEqual(response.body.outputs, direct[index]!.body.outputs);
    }
    const stats = await v2Replica.stats();
    assert.equal(stats.received, 1);
    assert.deepEqual(stats.executionItems, [6]);
  });

  test('incompatible V2 shapes are not merged', async () => {
    await v2Replica.resetStats();
    const bodies = [{ inputs: [tensor(3, 4, 0)] }, { inputs: [tensor(3, 2, 0)] }];
    const responses = await Promise.all(bodies.map((body) => postJson(`${gateway.trafficUrl}/v2/models/vision/infer`, body)));
    assert.deepEqual(
      responses.map((response) => response.status),
      [200, 200],
    );
    assert.deepEqual(responses[1]!.body.outputs[0].shape, [3, 2]);
    const stats = await v2Replica.stats();
    assert.equal(stats.received, 2);
  });

  test('request larger than maxBatchSize goes alone', async () => {
    await v2Replica.resetStats();
    const response = await postJson(`${gateway.trafficUrl}/v2/models/vision/infer`, { inputs: [tensor(8, 2, 0)] });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body.outputs[0].shape, [8, 2]);
    assert.deepEqual((await v2Replica.stats()).executionItems, [8]);
  });

  test('merged batch rejected with 400 is re-sent one by one', async () => {
    await v2Replica.resetStats();
    const good = { id: 'good', inputs: [tensor(3, 2, 0)] };
    const bad = { id: 'bad', inputs: [{ name: 'INPUT0', shape: [3, 2], datatype: 'FP32', data: [1, 2, 3, 4, 5, 'x'] }] };
    const [goodResponse, badResponse] = await Promise.all([
      postJson(`${gateway.trafficUrl}/v2/models/vision/infer`, good, { 'x-request-id': 'split-good' }),
      postJson(`${gateway.trafficUrl}/v2/models/vision/infer`, bad, { 'x-request-id': 'split-bad' }),
    ]);
    assert.equal(goodResponse.status, 200);
    assert.equal(goodResponse.body.id, 'good');
    assert.equal(badResponse.status, 400);
    assert.equal(typeof badResponse.body.error, 'string');
    const stats = await v2Replica.stats();
    assert.equal(stats.received, 3, 'one merged call, then each request alone');
    // The rejected merged call is not a try of either request; the bad one's 400 has a stable code.
    const goodLine = await waitFor(() => finishedLine('split-good'), 'the good request to be logged');
    const badLine = await waitFor(() => finishedLine('split-bad'), 'the bad request to be logged');
    assert.equal(goodLine.attempts, 1);
    assert.equal(goodLine.code, undefined);
    assert.equal(badLine.status, 400);
    assert.equal(badLine.code, 'upstream_rejected');
    assert.equal(badLine.attempts, 1);
  });

  test('embeddings merge, re-index from 0 and split usage', async () => {
    const bodies = [
      { model: 'embedder', input: ['alpha', 'beta'] },
      { model: 'embedder', input: ['gamma', 'delta', 'epsilon'] },
    ];
    const direct = await Promise.all(bodies.map((body) => postJson(`${embedReplica.url}/v1/embeddings`, body)));
    await embedReplica.resetStats();
    const responses = await Promise.all(bodies.map((body) => postJson(`${gateway.trafficUrl}/v1/embeddings`, body)));
    for (const [index, response] of responses.entries()) {
      assert.equal(response.status, 200);
      assert.deepEqual(
        response.body.data.map((item: { index: number }) => item.index),
        bodies[index]!.input.map((_, i) => i),
      );
      assert.deepEqual(
        response.body.data.map((item: { embedding: number[] }) => item.embedding),
        direct[index]!.body.data.map((item: { embedding: number[] }) => item.embedding),
      );
    }
    const totalPrompt = responses.reduce((sum, response) => sum + response.body.usage.prompt_tokens, 0);
    const directPrompt = direct.reduce((sum, response) => sum + response.body.usage.prompt_tokens, 0);
    assert.equal(totalPrompt, directPrompt);
    const stats = await embedReplica.stats();
    assert.equal(stats.received, 1);
    assert.deepEqual(stats.executionItems, [5]);
  });

  test('batch size histogram counts rows per call', async () => {
    const text = await gateway.metricsText();
    assert.ok(metricValue(text, 'infergate_batch_size_bucket', { model: 'vision', le: '8' }) >= 3);
    assert.ok(metricValue(text, 'infergate_batch_size_count', { model: 'embedder' }) >= 1);
  });
});

describe('V2 routes', () => {
  let replica: SpawnedReplica;
  let gateway: TestGateway;

  before(async () => {
    replica = await startReplica('v2', 'tabular');
    gateway = await startTestGateway([{ name: 'tabular', protocol: 'v2', replicas: { static: [replica.url] } }]);
    await waitReady(gateway);
  });

  after(async () => {
    await gateway?.close(0);
    await replica?.stop();
  });

  test('server, health and model metadata routes answer', async () => {
    const server = (await (await fetch(`${gateway.trafficUrl}/v2`)).json()) as { name: string };
    assert.equal(server.name, 'infergate');
    assert.equal((await fetch(`${gateway.trafficUrl}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${gateway.trafficUrl}/v2/health/ready`)).status, 200);
    const ready = await fetch(`${gateway.trafficUrl}/v2/models/tabular/ready`);
    assert.equal(ready.status, 200);
    const metadata = (await (await fetch(`${gateway.trafficUrl}/v2/models/tabular`)).json()) as { name: string; inputs: unknown[] };
    assert.equal(metadata.name, 'tabular');
    assert.ok(metadata.inputs.length > 0);
  });

  test('versioned infer path reaches the replica', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v2/models/tabular/versions/1/infer`, { inputs: [tensor(1, 3, 0)] });
    assert.equal(response.status, 200);
    const stats = await replica.stats();
    assert.ok(Object.keys(stats.byRoute).some((route) => route.includes('versions')));
  });

  test('replica 404 for a version is rejected_invalid', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v2/models/tabular/versions/9/infer`, { inputs: [tensor(1, 3, 0)] });
    assert.equal(response.status, 404);
    assert.match(response.body.error, /version 9/);
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_requests_total', { model: 'tabular', outcome: 'rejected_invalid' }), 1);
    assert.equal(metricValue(text, 'infergate_requests_total', { model: 'tabular', outcome: 'upstream_error' }), 0);
  });

  test('unknown V2 model gets 404 in the V2 error shape', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v2/models/nope/infer`, { inputs: [tensor(1, 3, 0)] });
    assert.equal(response.status, 404);
    assert.equal(typeof response.body.error, 'string');
    assert.match(response.body.error, /^model_not_found: .*nope/);
  });

  test('data length not matching shape gets 400', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, { inputs: [{ name: 'INPUT0', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    assert.equal(response.status, 400);
    assert.match(response.body.error, /inputs\[0\]\.data/);
    assert.equal(response.body.error, 'invalid_value: inputs[0].data has 3 values, but shape [2,3] needs 6');
  });

  test('unknown datatype gets 400 naming the field', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, { inputs: [{ name: 'INPUT0', shape: [1], datatype: 'FLOAT', data: [1] }] });
    assert.equal(response.status, 400);
    assert.match(response.body.error, /inputs\[0\]\.datatype/);
    assert.match(response.body.error, /FLOAT/);
  });

  test('binary tensor extension gets 415', async () => {
    const response = await postJson(`${gateway.trafficUrl}/v2/models/tabular/infer`, { inputs: [{ name: 'INPUT0', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 }, data: [1] }] });
    assert.equal(response.status, 415);
    assert.match(response.body.error, /^unsupported_binary_extension/);
  });
});
