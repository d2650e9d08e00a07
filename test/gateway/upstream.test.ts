// Upstream connection behaviour: the request ids a merged call carries, and keep-alive
// races with replicas that close idle connections.
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { formatBatchRequestIds } from '../../gateway/src/upstream/client.ts';
import { chatBody, metricValue, postJson, startReplica, startTestGateway, waitFor, waitReady, type SpawnedReplica, type TestGateway } from './helpers.ts';

const V2 = 'up-v2';
const CHAT = 'up-chat';

/** A V2 replica on loopback that echoes its input tensor as output and records each infer call's headers. */
interface RecordingReplica {
  url: string;
  calls: IncomingHttpHeaders[];
  /** Holds infer responses until release() when hold is true. */
  hold: boolean;
  release(): void;
  close(): Promise<void>;
}

async function startRecordingReplica(options: { staleAfterFirstRequest?: boolean } = {}): Promise<RecordingReplica> {
  const calls: IncomingHttpHeaders[] = [];
  const held: (() => void)[] = [];
  const requestsBySocket = new WeakMap<Socket, number>();
  const replica: RecordingReplica = {
    url: '',
    calls,
    hold: false,
    release: () => {
      for (const resume of held.splice(0)) resume();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const handle = (request: IncomingMessage, response: ServerResponse, body: string): void => {
    const served = requestsBySocket.get(request.socket) ?? 0;
    requestsBySocket.set(request.socket, served + 1);
    if (request.method === 'GET') {
      // Probes close their connection, so only inference calls leave idle connections behind.
      response.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end('{"ready":true}');
      return;
    }
    if (options.staleAfterFirstRequest === true && served >= 1) {
      // The replica's keep-alive timer closed this connection just as the request arrived:
      // the request is lost before any response byte, the race a stale socket produces.
      request.socket.destroy();
      return;
    }
    calls.push(request.headers);
    const input = (JSON.parse(body) as { inputs: { shape: number[]; data: unknown[] }[] }).inputs[0]!;
    const reply = (): void => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model_name: V2, outputs: [{ name: 'OUT', datatype: 'FP32', shape: input.shape, data: input.data }] }));
    };
    if (replica.hold) held.push(reply);
    else reply();
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handle(request, response, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  replica.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return replica;
}

const inferBody = (value: number, rows = 1): unknown => ({ inputs: [{ name: 'IN', shape: [rows, 1], datatype: 'FP32', data: Array.from({ length: rows }, () => value) }] });

describe('request ids of merged upstream calls', () => {
  let replica: RecordingReplica | undefined;
  let gateway: TestGateway | undefined;

  afterEach(async () => {
    await gateway?.close(0);
    await replica?.close();
    gateway = undefined;
    replica = undefined;
  });

  test('formatting escapes commas and percent signs inside ids', () => {
    assert.equal(formatBatchRequestIds(['a', 'b,c', '50%']), 'a,b%2Cc,50%25');
  });

  test('merged call carries every request id', async () => {
    replica = await startRecordingReplica();
    gateway = await startTestGateway([{ name: V2, protocol: 'v2', replicas: { static: [replica.url] }, maxInflightPerReplica: 1, batching: { maxBatchSize: 8 } }]);
    await waitReady(gateway);
    replica.hold = true;
    const url = `${gateway.trafficUrl}/v2/models/${V2}/infer`;
    const first = postJson(url, inferBody(1), { 'x-request-id': 'solo-1' });
    await waitFor(() => replica!.calls.length === 1, 'the first call to reach the replica');
    const merged = [postJson(url, inferBody(2), { 'x-request-id': 'batch,a' }), postJson(url, inferBody(3, 2), { 'x-request-id': 'batch-b' })];
    await waitFor(() => gateway!.state().models[0]?.queued.standard === 2, 'two requests to queue behind the first');
    replica.hold = false;
    replica.release();
    const responses = await Promise.all([first, ...merged]);
    assert.deepEqual(
      responses.map((response) => response.status),
      [200, 200, 200],
    );
    assert.equal(replica.calls.length, 2);
    assert.equal(replica.calls[0]?.['x-request-id'], 'solo-1');
    assert.equal(replica.calls[0]?.['x-batch-request-ids'], undefined, 'a call with one request has no batch header');
    assert.equal(replica.calls[1]?.['x-request-id'], 'batch,a');
    assert.equal(replica.calls[1]?.['x-batch-request-ids'], 'batch%2Ca,batch-b');
    assert.deepEqual(responses[2]?.body.outputs[0].data, [3, 3]);
  });
});

describe('keep-alive races with the replica', () => {
  const started: { gateway?: TestGateway; replica?: RecordingReplica; sim?: SpawnedReplica }[] = [];

  after(async () => {
    for (const entry of started) {
      await entry.gateway?.close(0);
      await entry.replica?.close();
      await entry.sim?.stop();
    }
  });

  test('requests spaced just beyond the replica keep-alive never fail', async () => {
    // The replica closes idle connections after 200 ms and the gateway drops them after 100 ms,
    // so the gateway never sends on a connection the replica is closing. The spacing between
    // requests is the scenario itself, so this test waits on the real clock.
    const sim = await startReplica('openai', CHAT, ['--keep-alive-timeout-ms', '200']);
    const gateway = await startTestGateway([{ name: CHAT, protocol: 'openai', replicas: { static: [sim.url] }, upstream: { keepAliveTimeoutMs: 100 } }]);
    started.push({ gateway, sim });
    await waitReady(gateway);
    await sim.resetStats();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      if (i > 0) await delay(200 + 5 * i);
      statuses.push((await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody(CHAT))).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_retries_total', { model: CHAT }), 0);
    assert.equal(metricValue(text, 'infergate_upstream_requests_total', { model: CHAT, code: 'reset' }), 0);
    const stats = await sim.stats();
    assert.equal(stats.completed, 5);
    assert.equal(stats.failed, 0);
  });

  test('a stale connection reset before headers is retried on a fresh connection', async () => {
    // A gateway keep-alive longer than the replica's: each reused connection is found closed.
    const replica = await startRecordingReplica({ staleAfterFirstRequest: true });
    const gateway = await startTestGateway([
      {
        name: V2,
        protocol: 'v2',
        replicas: { static: [replica.url] },
        batching: { maxBatchSize: 1 },
        health: { intervalMs: 60_000, timeoutMs: 1000 },
        upstream: { keepAliveTimeoutMs: 60_000 },
      },
    ]);
    started.push({ gateway, replica });
    await waitReady(gateway);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await postJson(`${gateway.trafficUrl}/v2/models/${V2}/infer`, inferBody(i))).status);
    assert.deepEqual(statuses, [200, 200, 200]);
    assert.equal(replica.calls.length, 3, 'each request was served exactly once');
    const text = await gateway.metricsText();
    assert.equal(metricValue(text, 'infergate_retries_total', { model: V2, reason: 'reset' }), 2);
    assert.equal(metricValue(text, 'infergate_requests_total', { model: V2, outcome: 'success' }), 3);
  });
});
