// The real gateway with replicas.kubernetes, fed by the fake API server, in front of
// simulated replicas in child processes. Each case changes the EndpointSlices and asserts
// through /sim/stats which replica received which request.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { ReplicaSnapshot } from '../../shared/src/admin-state.ts';
import { waitFor } from '../fake-kube/helpers.ts';
import { endpointSlice, type SliceEndpoint } from '../fake-kube/objects.ts';
import { FakeKubeServer, RESOURCES } from '../fake-kube/server.ts';
import { chatBody, postJson, startReplica, startTestGateway, type SpawnedReplica, type TestGateway } from '../gateway/helpers.ts';

const NAMESPACE = 'ml';
const SERVICE = 'llama';
const MODEL = 'llama';

describe('gateway with kubernetes discovery', () => {
  let server: FakeKubeServer;
  let gateway: TestGateway;
  let pods: SpawnedReplica[] = [];
  let requestNumber = 0;

  /** Endpoint id of a replica as discovery reports it. */
  const idOf = (pod: SpawnedReplica): string => `127.0.0.1:${pod.port}`;
  const sliceName = (pod: SpawnedReplica): string => `${SERVICE}-${pod.port}`;

  /** Publishes one pod in its own slice, since a slice carries a single port for all its endpoints. */
  function publish(pod: SpawnedReplica, conditions: Omit<SliceEndpoint, 'address'> = {}): void {
    const slice = endpointSlice({ name: sliceName(pod), service: SERVICE, ports: [{ name: 'http', port: pod.port }], endpoints: [{ address: '127.0.0.1', ...conditions }] });
    if (server.get(RESOURCES.endpointSlices, NAMESPACE, sliceName(pod)) === undefined) server.create(RESOURCES.endpointSlices, NAMESPACE, slice);
    else server.modify(RESOURCES.endpointSlices, NAMESPACE, sliceName(pod), (current) => ({ ...current, endpoints: slice.endpoints }));
  }

  function unpublish(pod: SpawnedReplica): void {
    if (server.get(RESOURCES.endpointSlices, NAMESPACE, sliceName(pod)) !== undefined) server.delete(RESOURCES.endpointSlices, NAMESPACE, sliceName(pod));
  }

  function replicas(): ReplicaSnapshot[] {
    return gateway.state().models.find((model) => model.name === MODEL)?.replicas ?? [];
  }

  function stateOf(pod: SpawnedReplica): string {
    return replicas().find((replica) => replica.id === idOf(pod))?.state ?? 'absent';
  }

  async function waitState(pod: SpawnedReplica, state: string): Promise<void> {
    await waitFor(() => stateOf(pod) === state, `replica ${idOf(pod)} to be ${state} (is ${stateOf(pod)})`);
  }

  /** Sends count chat requests at once and returns their request ids after all succeeded. */
  async function sendChats(count: number): Promise<string[]> {
    const ids = Array.from({ length: count }, () => `k8s-${++requestNumber}`);
    const responses = await Promise.all(ids.map((id) => postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody(MODEL), { 'x-request-id': id })));
    for (const [index, response] of responses.entries()) assert.equal(response.status, 200, `request ${ids[index]} failed: ${response.text}`);
    return ids;
  }

  async function idsAt(pod: SpawnedReplica): Promise<Set<string>> {
    return new Set((await pod.stats()).requestIds);
  }

  before(async () => {
    server = await FakeKubeServer.start();
    pods = await Promise.all([0, 1, 2].map(() => startReplica('openai', MODEL, ['--itl-base-ms', '5', '--prefill-base-ms', '2'])));
    const [first] = pods;
    if (first === undefined) throw new Error('no replica started');
    publish(first);
    gateway = await startTestGateway([{ name: MODEL, protocol: 'openai', replicas: { kubernetes: { namespace: NAMESPACE, service: SERVICE, port: 'http' } } }], {
      kubernetes: { kubeConfig: server.kubeConfig(), tuning: { restartInitialDelayMs: 50, restartMaxDelayMs: 200 } },
    });
  });

  after(async () => {
    await gateway?.close(0);
    await Promise.all(pods.map((pod) => pod.stop()));
    await server?.close();
  });

  beforeEach(async () => {
    const [a, b, c] = pods as [SpawnedReplica, SpawnedReplica, SpawnedReplica];
    publish(a);
    unpublish(b);
    unpublish(c);
    await waitState(a, 'ready');
    await waitFor(() => replicas().length === 1, 'only the first replica to be known');
    await Promise.all(pods.map((pod) => pod.resetStats()));
  });

  test('scale up spreads requests to the new pod', async () => {
    const [a, b] = pods as [SpawnedReplica, SpawnedReplica];
    publish(b);
    await waitState(b, 'ready');
    const ids = await sendChats(8);
    const [atA, atB] = [await idsAt(a), await idsAt(b)];
    assert.ok(atB.size > 0, 'the new pod received requests');
    assert.equal(ids.filter((id) => atA.has(id) || atB.has(id)).length, 8);
  });

  test('scale down stops traffic to the removed pod', async () => {
    const [a, b] = pods as [SpawnedReplica, SpawnedReplica];
    publish(b);
    await waitState(b, 'ready');
    unpublish(b);
    await waitState(b, 'absent');
    const ids = await sendChats(6);
    const [atA, atB] = [await idsAt(a), await idsAt(b)];
    assert.equal(atB.size, 0);
    assert.ok(ids.every((id) => atA.has(id)));
  });

  test('rollout lets a running stream finish on the terminating pod', async () => {
    const [a, , c] = pods as [SpawnedReplica, SpawnedReplica, SpawnedReplica];
    const streamId = 'k8s-rollout-stream';
    const response = await fetch(`${gateway.trafficUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': streamId },
      body: JSON.stringify(chatBody(MODEL, { stream: true, max_tokens: 60 })),
    });
    assert.equal(response.status, 200);
    await waitFor(async () => (await idsAt(a)).has(streamId), 'the stream to reach the old pod');

    // The new pod comes up and the old one starts terminating while the stream runs.
    publish(c);
    publish(a, { ready: false, serving: true, terminating: true });
    await waitState(a, 'draining');
    await waitState(c, 'ready');
    const ids = await sendChats(5);

    const text = await response.text();
    assert.ok(text.trimEnd().endsWith('data: [DONE]'), 'the stream finished');
    const [atA, atC] = [await idsAt(a), await idsAt(c)];
    assert.deepEqual([...atA], [streamId]);
    assert.ok(ids.every((id) => atC.has(id)));
    const statsA = await a.stats();
    assert.equal(statsA.completed, 1);
    assert.equal(statsA.aborted, 0);
  });

  test('delete while the watch is down is reconciled', async () => {
    const [a, b] = pods as [SpawnedReplica, SpawnedReplica];
    publish(b);
    await waitState(b, 'ready');
    await waitFor(() => server.openWatches === 1, 'the gateway watch to open');
    await server.startOutage('refuse');
    unpublish(b);
    server.store.compact();
    await waitFor(() => gateway.state().models[0]?.discoveryHealthy === false, 'discovery to report degraded');
    assert.equal(stateOf(b), 'ready');
    await server.endOutage();
    await waitState(b, 'absent');
    const ids = await sendChats(4);
    assert.equal((await idsAt(b)).size, 0);
    const atA = await idsAt(a);
    assert.ok(ids.every((id) => atA.has(id)));
  });

  test('410 Gone relists and follows later changes', async () => {
    const [, b] = pods as [SpawnedReplica, SpawnedReplica];
    await waitFor(() => server.openWatches === 1, 'the gateway watch to open');
    const listsBefore = server.requestsMatching({ method: 'GET', pathIncludes: '/endpointslices', watch: false }).length;
    server.failNextWatchesWithGone(1);
    server.dropWatches();
    await waitFor(() => server.requestsMatching({ method: 'GET', pathIncludes: '/endpointslices', watch: false }).length > listsBefore, 'a relist');
    publish(b);
    await waitState(b, 'ready');
    await sendChats(8);
    assert.ok((await idsAt(b)).size > 0);
  });

  test('API outage keeps endpoints and reports degraded', async () => {
    const [a] = pods as [SpawnedReplica];
    await waitFor(() => server.openWatches === 1, 'the gateway watch to open');
    await server.startOutage('unavailable');
    await waitFor(async () => {
      const state = (await (await fetch(`${gateway.adminUrl}/admin/state`)).json()) as { models: { discoveryHealthy?: boolean }[] };
      return state.models[0]?.discoveryHealthy === false;
    }, '/admin/state to report discovery degraded');
    const ready = await fetch(`${gateway.adminUrl}/readyz`);
    await ready.body?.cancel();
    assert.equal(ready.status, 200);
    const ids = await sendChats(3);
    const atA = await idsAt(a);
    assert.ok(ids.every((id) => atA.has(id)));
    await server.endOutage();
    await waitFor(() => gateway.state().models[0]?.discoveryHealthy === true, 'discovery to recover');
  });

  test('flapping ready condition keeps traffic off while not ready', async () => {
    const [a, b] = pods as [SpawnedReplica, SpawnedReplica];
    publish(b);
    await waitState(b, 'ready');
    for (let i = 0; i < 6; i++) publish(b, { ready: i % 2 === 1 });
    publish(b, { ready: false });
    // A pod whose readiness probe fails is published with ready and serving false. The
    // gateway may show it as probing or draining, but it never routes to it.
    await waitFor(() => !['ready', 'absent'].includes(stateOf(b)), `replica ${idOf(b)} to leave ready`);
    await b.resetStats();
    const ids = await sendChats(6);
    assert.equal((await idsAt(b)).size, 0);
    const atA = await idsAt(a);
    assert.ok(ids.every((id) => atA.has(id)));

    publish(b, { ready: true });
    await waitState(b, 'ready');
    await sendChats(8);
    assert.ok((await idsAt(b)).size > 0);
  });
});
