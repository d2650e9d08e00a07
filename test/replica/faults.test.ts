import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { getJson, postJson, rawRequest, sseData, waitFor } from './helpers.ts';

const FAST = ['--prefill-base-ms', '1', '--prefill-per-token-ms', '0', '--itl-base-ms', '1', '--itl-per-running-ms', '0', '--exec-base-ms', '1'];
const CHAT = { model: 'sim-model', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 };

describe('runtime faults', () => {
  let replica: SpawnedReplica;

  before(async () => {
    replica = await spawnReplica(['--port', '0', '--protocol', 'both', '--keep-alive-timeout-ms', '60000', ...FAST]);
  });
  afterEach(async () => {
    await replica.clearFaults();
    await replica.resetStats();
  });
  after(async () => {
    await replica?.stop();
  });

  test('error status with retry-after', async () => {
    await replica.setFaults({ errorRate: 1, errorStatus: 429, retryAfterSeconds: 7 });
    const chat = await postJson(`${replica.url}/v1/chat/completions`, CHAT);
    assert.equal(chat.status, 429);
    assert.equal(chat.headers.get('retry-after'), '7');
    assert.equal(chat.body.object, 'error');
    const infer = await postJson(`${replica.url}/v2/models/sim-model/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 1], data: [1] }],
    });
    assert.equal(infer.status, 429);
    assert.equal(typeof infer.body.error, 'string');
    // Health stays truthful while inference fails.
    assert.equal((await fetch(`${replica.url}/health`)).status, 200);
    const stats = await replica.stats();
    assert.equal(stats.failed, 2);
  });

  test('error without retry-after', async () => {
    await replica.setFaults({ errorRate: 1, errorStatus: 500 });
    const chat = await postJson(`${replica.url}/v1/chat/completions`, CHAT);
    assert.equal(chat.status, 500);
    assert.equal(chat.headers.get('retry-after'), null);
    assert.equal(chat.body.type, 'InternalServerError');
  });

  test('reset before headers', async () => {
    await replica.setFaults({ resetRate: 1 });
    const result = await rawRequest(`${replica.url}/v1/chat/completions`, { body: CHAT });
    assert.equal(result.status, undefined);
    assert.equal(result.errorCode, 'ECONNRESET');
    await waitFor('failure counted', async () => (await replica.stats()).failed === 1);
  });

  test('stream reset after chunks', async () => {
    await replica.setFaults({ resetAfterChunks: 2 });
    const result = await rawRequest(`${replica.url}/v1/chat/completions`, { body: { ...CHAT, max_tokens: 10, stream: true } });
    assert.equal(result.status, 200);
    assert.equal(result.errorCode, 'ECONNRESET');
    assert.equal(sseData(result.body).length, 2);
    assert.equal(result.body.includes('[DONE]'), false);
    // Non-streaming requests are not affected.
    const plain = await postJson(`${replica.url}/v1/chat/completions`, CHAT);
    assert.equal(plain.status, 200);
    const stats = await replica.stats();
    assert.equal(stats.failed, 1);
    assert.equal(stats.completed, 1);
    assert.equal(stats.running, 0);
  });

  test('hang until client timeout', async () => {
    await replica.setFaults({ hangRate: 1 });
    const result = await rawRequest(`${replica.url}/v1/chat/completions`, { body: CHAT, timeoutMs: 300 });
    assert.equal(result.status, undefined);
    assert.equal(result.errorCode, 'CLIENT_TIMEOUT');
    await waitFor('abandoned request counted', async () => (await replica.stats()).aborted === 1);
    assert.equal((await fetch(`${replica.url}/health`)).status, 200);
  });

  test('keep-alive timeout closes idle socket', async () => {
    await replica.setFaults({ keepAliveTimeoutMs: 100 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      let closed = false;
      const socketSeen = new Promise<void>((resolve) => {
        agent.once('free', (socket) => {
          socket.once('close', () => (closed = true));
          resolve();
        });
      });
      const result = await rawRequest(`${replica.url}/v1/models`, { agent });
      assert.equal(result.status, 200);
      await socketSeen;
      await waitFor('server to close the idle socket', () => closed);
    } finally {
      agent.destroy();
    }
  });

  test('fault settings validated and listed', async () => {
    const badRate = await postJson(`${replica.url}/sim/faults`, { errorRate: 2 });
    assert.equal(badRate.status, 400);
    assert.match(badRate.body.error, /errorRate 2/);
    const badStatus = await postJson(`${replica.url}/sim/faults`, { errorStatus: 404 });
    assert.equal(badStatus.status, 400);
    assert.match(badStatus.body.error, /errorStatus 404/);
    const unknown = await postJson(`${replica.url}/sim/faults`, { slowRate: 1 });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error, /slowRate/);
    await replica.setFaults({ hangRate: 0.25 });
    const nullBody = await postJson(`${replica.url}/sim/faults`, null);
    assert.equal(nullBody.status, 400);
    assert.match(nullBody.body.error, /invalid fault settings null: expected a JSON object/);
    assert.deepEqual((await getJson(`${replica.url}/sim/faults`)).body, { hangRate: 0.25 }, 'a rejected body leaves the faults as they were');

    await replica.setFaults({ hangRate: 0.5, resetAfterChunks: 3 });
    assert.deepEqual((await getJson(`${replica.url}/sim/faults`)).body, { hangRate: 0.5, resetAfterChunks: 3 });
    await replica.clearFaults();
    assert.deepEqual((await getJson(`${replica.url}/sim/faults`)).body, {});
  });
});

describe('process faults', () => {
  const spawned: SpawnedReplica[] = [];
  after(async () => {
    await Promise.all(spawned.map((replica) => replica.kill()));
  });

  test('fault flags apply at start', async () => {
    const replica = await spawnReplica(['--port', '0', '--fault-error-rate', '1', '--fault-error-status', '503', '--fault-retry-after-s', '2', ...FAST]);
    spawned.push(replica);
    const chat = await postJson(`${replica.url}/v1/chat/completions`, CHAT);
    assert.equal(chat.status, 503);
    assert.equal(chat.headers.get('retry-after'), '2');
    assert.deepEqual(await (await fetch(`${replica.url}/sim/faults`)).json(), { errorRate: 1, errorStatus: 503, retryAfterSeconds: 2 });
  });

  test('exit fault ends process', async () => {
    const replica = await spawnReplica(['--port', '0', ...FAST]);
    spawned.push(replica);
    const exited = new Promise<number | null>((resolve) => replica.child.once('exit', (code) => resolve(code)));
    await replica.setFaults({ exitAfterMs: 0 });
    assert.equal(await exited, 1);
    const result = await rawRequest(`${replica.url}/health`);
    assert.equal(result.errorCode, 'ECONNREFUSED');
  });

  test('exit flag ends process', async () => {
    const replica = await spawnReplica(['--port', '0', '--fault-exit-after-ms', '200', ...FAST]);
    spawned.push(replica);
    await waitFor('process exit', () => replica.child.exitCode !== null);
    assert.equal(replica.child.exitCode, 1);
  });
});
