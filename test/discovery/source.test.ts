// KubernetesReplicaSource against the fake API server: snapshots, condition mapping,
// watch restarts with backoff, relist reconciliation, outages and start-up failures.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { kubeConfigForServer } from '../../shared/src/kube.ts';
import { createKubernetesReplicaSource } from '../../gateway/src/discovery/kubernetes.ts';
import { waitFor } from '../fake-kube/helpers.ts';
import { endpointSlice } from '../fake-kube/objects.ts';
import { FakeKubeServer, RESOURCES } from '../fake-kube/server.ts';
import { NAMESPACE, putSlice, SERVICE, startHarness, startSource, type Harness } from './harness.ts';

const silent = createLogger({ service: 'discovery-test', level: 'silent' });

describe('kubernetes replica source', () => {
  let harness: Harness | undefined;

  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  test('first snapshot merges the slices of the service', async () => {
    harness = await startHarness();
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }, { address: '10.0.0.2' }]);
    putSlice(harness.server, 'llama-b', [{ address: '10.0.0.2' }, { address: '10.0.0.3' }]);
    harness.server.create(RESOURCES.endpointSlices, NAMESPACE, endpointSlice({ name: 'other', service: 'other', ports: [{ name: 'http', port: 8000 }], endpoints: [{ address: '10.9.9.9' }] }));
    await startSource(harness);
    assert.equal(harness.snapshots.length, 1);
    assert.deepEqual(harness.latest(), ['10.0.0.1:8000:ready', '10.0.0.2:8000:ready', '10.0.0.3:8000:ready']);
    assert.equal(harness.snapshots[0]?.[0]?.url, 'http://10.0.0.1:8000');
    assert.equal(harness.source.healthy(), true);
  });

  test('empty service delivers an empty first snapshot', async () => {
    harness = await startHarness();
    await startSource(harness);
    assert.deepEqual(harness.snapshots, [[]]);
  });

  test('healthy is false before start', async () => {
    harness = await startHarness();
    assert.equal(harness.source.healthy(), false);
  });

  test('port chosen by number', async () => {
    harness = await startHarness({ port: 9400 });
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }]);
    await startSource(harness);
    assert.deepEqual(harness.latest(), ['10.0.0.1:9400:ready']);
  });

  test('conditions map to ready, not ready and draining', async () => {
    harness = await startHarness();
    putSlice(harness.server, 'llama-a', [
      { address: '10.0.0.1', ready: true, serving: true, terminating: false },
      { address: '10.0.0.2', ready: false, serving: false, terminating: false },
      { address: '10.0.0.3', ready: false, serving: true, terminating: true },
      { address: '10.0.0.4', ready: false, serving: false, terminating: true },
    ]);
    await startSource(harness);
    assert.deepEqual(harness.latest(), ['10.0.0.1:8000:ready', '10.0.0.2:8000:notready', '10.0.0.3:8000:draining', '10.0.0.4:8000:terminating']);
  });

  test('scale up and down follow the watch', async () => {
    harness = await startHarness();
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }]);
    await startSource(harness);
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }, { address: '10.0.0.2' }]);
    await harness.waitForSnapshot(['10.0.0.1:8000:ready', '10.0.0.2:8000:ready'], 'scale up');
    harness.server.delete(RESOURCES.endpointSlices, NAMESPACE, 'llama-a');
    await harness.waitForSnapshot([], 'scale down to zero');
    assert.equal(harness.lists(), 1);
  });

  test('unchanged endpoints deliver no snapshot', async () => {
    harness = await startHarness();
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }]);
    await startSource(harness);
    harness.server.modify(RESOURCES.endpointSlices, NAMESPACE, 'llama-a', (slice) => {
      slice.metadata.annotations = { touched: 'yes' };
    });
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }, { address: '10.0.0.5' }]);
    await harness.waitForSnapshot(['10.0.0.1:8000:ready', '10.0.0.5:8000:ready'], 'second endpoint');
    assert.equal(harness.snapshots.length, 2);
  });

  test('flapping ready condition ends in the last state', async () => {
    harness = await startHarness();
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1', ready: true }]);
    await startSource(harness);
    for (let i = 0; i < 10; i++) putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1', ready: i % 2 === 1 }]);
    await harness.waitForSnapshot(['10.0.0.1:8000:ready'], 'flapping settles ready');
    for (let i = 1; i < harness.snapshots.length; i++) {
      assert.notDeepEqual(harness.snapshots[i], harness.snapshots[i - 1], `snapshot ${i} repeats the previous one`);
    }
  });

  test('clean watch drop resumes without a relist', async () => {
    harness = await startHarness();
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }, { address: '10.0.0.2' }]);
    await startSource(harness);
    await waitFor(() => harness?.server.openWatches === 1, 'the watch to open');
    harness.server.dropWatches();
    putSlice(harness.server, 'llama-a', [{ address: '10.0.0.1' }]);
    await harness.waitForSnapshot(['10.0.0.1:8000:ready'], 'delete replayed after the drop', 100);
    assert.equal(harness.lists(), 1);
    assert.equal(harness.source.healthy(), true);
  });

  test('broken watch restarts and relists a delete made while down', async () => {
    harness = await startHarness();
    const h = harness;
    putSlice(h.server, 'llama-a', [{ address: '10.0.0.1' }]);
    putSlice(h.server, 'llama-b', [{ address: '10.0.0.2' }]);
    await startSource(h);
    await waitFor(() => h.server.openWatches === 1, 'the watch to open');
    h.server.dropWatches({ abrupt: true });
    await waitFor(() => !h.source.healthy(), 'discovery to report degraded');
    h.server.delete(RESOURCES.endpointSlices, NAMESPACE, 'llama-b');
    h.server.store.compact();
    assert.deepEqual(h.latest(), ['10.0.0.1:8000:ready', '10.0.0.2:8000:ready']);
    h.clock.advance(500);
    await h.waitForSnapshot(['10.0.0.1:8000:ready'], 'relist removes the deleted pod');
    assert.equal(h.lists(), 2);
    assert.equal(h.source.healthy(), true);
  });

  test('410 Gone relists', async () => {
    harness = await startHarness();
    const h = harness;
    putSlice(h.server, 'llama-a', [{ address: '10.0.0.1' }, { address: '10.0.0.2' }]);
    await startSource(h);
    await waitFor(() => h.server.openWatches === 1, 'the watch to open');
    h.server.failNextWatchesWithGone(1);
    h.server.dropWatches();
    await waitFor(() => h.lists() === 2, 'a relist after 410');
    putSlice(h.server, 'llama-a', [{ address: '10.0.0.2' }]);
    await h.waitForSnapshot(['10.0.0.2:8000:ready'], 'events after the relist', 100);
    const gone = h.server.requestsMatching({ watch: true }).length;
    assert.ok(gone >= 3, `expected at least 3 watch requests, got ${gone}`);
  });

  test('outage keeps the last endpoints and backs off', async () => {
    // Without a list timeout the restart timer is the only timer, so pendingTimers shows
    // whether a restart is scheduled (1) or running (0).
    harness = await startHarness({ tuning: { listTimeoutMs: 0 } });
    const h = harness;
    putSlice(h.server, 'llama-a', [{ address: '10.0.0.1' }, { address: '10.0.0.2' }]);
    await startSource(h);
    await waitFor(() => h.server.openWatches === 1, 'the watch to open');
    const before = h.snapshots.length;
    await h.server.startOutage('unavailable');
    await waitFor(() => !h.source.healthy() && h.clock.pendingTimers === 1, 'the first restart to be scheduled');

    // Restart delays with the jitter at its minimum: 500, 1000, 2000, then the cap's 2000.
    for (const delay of [500, 1000, 2000, 2000]) {
      const attempts = h.lists();
      h.clock.advance(delay - 1);
      assert.equal(h.clock.pendingTimers, 1, `restart not yet run ${delay - 1} ms after the failure`);
      h.clock.advance(1);
      assert.equal(h.clock.pendingTimers, 0, `restart run ${delay} ms after the failure`);
      await waitFor(() => h.lists() === attempts + 1 && h.clock.pendingTimers === 1, `the failed restart after ${delay} ms`);
      assert.equal(h.source.healthy(), false);
    }
    assert.equal(h.snapshots.length, before);
    assert.deepEqual(h.latest(), ['10.0.0.1:8000:ready', '10.0.0.2:8000:ready']);

    await h.server.endOutage();
    h.clock.advance(2000);
    await waitFor(() => h.source.healthy(), 'recovery after the outage');
    assert.equal(h.snapshots.length, before);
  });

  test('refused connections degrade, then a relist reconciles', async () => {
    harness = await startHarness();
    const h = harness;
    putSlice(h.server, 'llama-a', [{ address: '10.0.0.1' }]);
    putSlice(h.server, 'llama-b', [{ address: '10.0.0.2' }]);
    await startSource(h);
    await waitFor(() => h.server.openWatches === 1, 'the watch to open');
    await h.server.startOutage('refuse');
    await waitFor(() => !h.source.healthy(), 'degraded');
    h.clock.advance(10_000);
    assert.deepEqual(h.latest(), ['10.0.0.1:8000:ready', '10.0.0.2:8000:ready']);
    h.server.delete(RESOURCES.endpointSlices, NAMESPACE, 'llama-a');
    await h.server.endOutage();
    await h.waitForSnapshot(['10.0.0.2:8000:ready'], 'relist after the outage', 100);
    assert.equal(h.source.healthy(), true);
  });

  test('stop delivers no later snapshot', async () => {
    harness = await startHarness();
    const h = harness;
    putSlice(h.server, 'llama-a', [{ address: '10.0.0.1' }]);
    await startSource(h);
    await waitFor(() => h.server.openWatches === 1, 'the watch to open');
    await h.source.stop();
    putSlice(h.server, 'llama-a', [{ address: '10.0.0.9' }]);
    await waitFor(() => h.server.openWatches === 0, 'the watch to close');
    h.clock.advance(60_000);
    assert.equal(h.snapshots.length, 1);
    assert.equal(h.source.healthy(), false);
  });

  test('start rejects on 401 naming the status', async () => {
    const server = await FakeKubeServer.start({ token: 'right' });
    const source = createKubernetesReplicaSource(
      { namespace: NAMESPACE, service: SERVICE, port: 'http' },
      { logger: silent, kubeConfig: kubeConfigForServer(server.url, 'wrong'), clock: new ManualClock() },
    );
    try {
      await assert.rejects(source.start(() => undefined), /returned 401.*get, list and watch on endpointslices/);
    } finally {
      await source.stop();
      await server.close();
    }
  });

  test('start rejects after the start timeout', async () => {
    harness = await startHarness({ tuning: { startTimeoutMs: 5000 } });
    const h = harness;
    await h.server.startOutage('refuse');
    const started = h.source.start(() => undefined);
    const rejected = assert.rejects(started, /within 5000 ms/);
    await waitFor(() => h.clock.pendingTimers === 2, 'the first restart to be scheduled');
    h.clock.advance(5000);
    await rejected;
    await h.server.endOutage();
  });

  test('start twice rejects', async () => {
    harness = await startHarness();
    await startSource(harness);
    await assert.rejects(harness.source.start(() => undefined), /already started/);
  });
});

describe('kubernetes replica source spec', () => {
  const kubeConfig = kubeConfigForServer('http://127.0.0.1:1');
  const create = (spec: { namespace: string; service: string; port: string | number }): unknown =>
    createKubernetesReplicaSource(spec, { logger: silent, kubeConfig, clock: new ManualClock() });

  test('invalid namespace names the value', () => {
    assert.throws(() => create({ namespace: 'ML_models', service: 'llama', port: 'http' }), /namespace.*"ML_models"/);
  });

  test('invalid service names the value', () => {
    assert.throws(() => create({ namespace: 'ml', service: '9llama', port: 'http' }), /service.*"9llama"/);
  });

  test('port out of range names the value', () => {
    assert.throws(() => create({ namespace: 'ml', service: 'llama', port: 70000 }), /port.*70000/);
  });

  test('invalid port name names the value', () => {
    assert.throws(() => create({ namespace: 'ml', service: 'llama', port: 'Http_Port' }), /port.*"Http_Port"/);
  });

  test('invalid tuning names the key', () => {
    assert.throws(
      () => createKubernetesReplicaSource({ namespace: 'ml', service: 'llama', port: 8000 }, { logger: silent, kubeConfig, tuning: { restartMaxDelayMs: -1 } }),
      /restartMaxDelayMs/,
    );
  });
});
