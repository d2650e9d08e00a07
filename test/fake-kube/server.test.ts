// The fake Kubernetes API server's REST surface, driven through @kubernetes/client-node's
// generated clients where they exist, so other suites can rely on what they talk to.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { request } from 'undici';
import { parseLabelSelector, SelectorError } from './selectors.ts';
import { deployment, endpointSlice } from './objects.ts';
import { FakeKubeServer, RESOURCES } from './server.ts';

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

describe('fake kube REST', () => {
  let server: FakeKubeServer;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let discovery: DiscoveryV1Api;

  before(async () => {
    server = await FakeKubeServer.start();
    const kc = server.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    discovery = kc.makeApiClient(DiscoveryV1Api);
  });
  after(async () => {
    await server.close();
  });

  test('create assigns uid, resourceVersion and timestamp', async () => {
    const created = await core.createNamespacedConfigMap({ namespace: 'ml', body: { metadata: { name: 'one', labels: { tier: 'a' } }, data: { k: 'v' } } });
    assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(created.metadata?.resourceVersion, String(server.store.revision));
    assert.ok(created.metadata?.creationTimestamp instanceof Date);
    assert.equal(created.metadata?.namespace, 'ml');
  });

  test('create of an existing name is 409', async () => {
    assert.equal(await statusOf(core.createNamespacedConfigMap({ namespace: 'ml', body: { metadata: { name: 'one' } } })), 409);
  });

  test('get of a missing object is 404 Status', async () => {
    const response = await request(`${server.url}/api/v1/namespaces/ml/configmaps/missing`);
    const body = (await response.body.json()) as { kind: string; reason: string; code: number };
    assert.equal(response.statusCode, 404);
    assert.equal(body.kind, 'Status');
    assert.equal(body.reason, 'NotFound');
  });

  test('update with a stale resourceVersion is 409', async () => {
    const current = await core.readNamespacedConfigMap({ name: 'one', namespace: 'ml' });
    const fresh: V1ConfigMap = { ...current, data: { k: 'changed' } };
    const updated = await core.replaceNamespacedConfigMap({ name: 'one', namespace: 'ml', body: fresh });
    assert.equal(updated.data?.k, 'changed');
    assert.notEqual(updated.metadata?.resourceVersion, current.metadata?.resourceVersion);
    const stale: V1ConfigMap = { ...current, data: { k: 'stale' } };
    assert.equal(await statusOf(core.replaceNamespacedConfigMap({ name: 'one', namespace: 'ml', body: stale })), 409);
  });

  test('list filters by equality and set-based selectors', async () => {
    server.create(RESOURCES.configMaps, 'sel', { metadata: { name: 'a', labels: { tier: 'gpu', zone: 'x' } } });
    server.create(RESOURCES.configMaps, 'sel', { metadata: { name: 'b', labels: { tier: 'cpu', zone: 'y' } } });
    server.create(RESOURCES.configMaps, 'sel', { metadata: { name: 'c', labels: { tier: 'gpu' } } });
    const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
      (await core.listNamespacedConfigMap({ namespace: 'sel', labelSelector, fieldSelector })).items.map((i) => i.metadata?.name ?? '');
    assert.deepEqual(await names('tier=gpu'), ['a', 'c']);
    assert.deepEqual(await names('tier!=gpu'), ['b']);
    assert.deepEqual(await names('zone in (x,y)'), ['a', 'b']);
    assert.deepEqual(await names('tier notin (cpu),zone'), ['a']);
    assert.deepEqual(await names('!zone'), ['c']);
    assert.deepEqual(await names(undefined, 'metadata.name=b'), ['b']);
  });

  test('list reports the latest resourceVersion', async () => {
    const list = await core.listNamespacedConfigMap({ namespace: 'sel' });
    assert.equal(list.metadata?.resourceVersion, String(server.store.revision));
  });

  test('list pages with limit and continue', async () => {
    const first = await core.listNamespacedConfigMap({ namespace: 'sel', limit: 2 });
    assert.deepEqual(first.items.map((i) => i.metadata?.name), ['a', 'b']);
    const rest = await core.listNamespacedConfigMap({ namespace: 'sel', limit: 2, _continue: first.metadata?._continue });
    assert.deepEqual(rest.items.map((i) => i.metadata?.name), ['c']);
    assert.equal(rest.metadata?._continue, undefined);
  });

  test('invalid label selector is 400', async () => {
    const response = await request(`${server.url}/api/v1/namespaces/sel/configmaps?labelSelector=${encodeURIComponent('tier in (a')}`);
    await response.body.dump();
    assert.equal(response.statusCode, 400);
  });

  test('unsupported field selector is 400', async () => {
    assert.equal(await statusOf(core.listNamespacedConfigMap({ namespace: 'sel', fieldSelector: 'spec.nodeName=x' })), 400);
  });

  test('delete removes the object', async () => {
    await core.deleteNamespacedConfigMap({ name: 'c', namespace: 'sel' });
    assert.equal(server.get(RESOURCES.configMaps, 'sel', 'c'), undefined);
    assert.equal(await statusOf(core.deleteNamespacedConfigMap({ name: 'c', namespace: 'sel' })), 404);
  });

  test('JSON patch replaces a field', async () => {
    const patched = await core.patchNamespacedConfigMap({ name: 'a', namespace: 'sel', body: [{ op: 'add', path: '/data', value: { x: '1' } }] });
    assert.equal(patched.data?.x, '1');
  });

  test('merge patch removes a field with null', async () => {
    const patched = await core.patchNamespacedConfigMap(
      { name: 'a', namespace: 'sel', body: { metadata: { labels: { zone: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.deepEqual(patched.metadata?.labels, { tier: 'gpu' });
  });

  test('strategic merge patch merges containers by name', async () => {
    server.create(RESOURCES.deployments, 'ml', deployment({ name: 'merge', replicas: 1 }));
    const patched = await apps.patchNamespacedDeployment(
      { name: 'merge', namespace: 'ml', body: { spec: { template: { spec: { containers: [{ name: 'model', image: 'model-server:v2' }, { name: 'sidecar', image: 'proxy:1' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const containers = patched.spec?.template.spec?.containers ?? [];
    assert.deepEqual(containers.map((c) => `${c.name}=${c.image}`), ['model=model-server:v2', 'sidecar=proxy:1']);
    assert.ok(containers[0]?.resources?.limits !== undefined);
  });

  test('patch with an unknown content type is 415', async () => {
    const response = await request(`${server.url}/api/v1/namespaces/sel/configmaps/a`, { method: 'PATCH', body: '{}', headers: { 'content-type': 'text/plain' } });
    await response.body.dump();
    assert.equal(response.statusCode, 415);
  });

  test('endpointslices list through DiscoveryV1Api', async () => {
    server.create(RESOURCES.endpointSlices, 'ml', endpointSlice({ name: 'svc-1', service: 'svc', ports: [{ name: 'http', port: 8000 }], endpoints: [{ address: '10.0.0.1' }] }));
    server.create(RESOURCES.endpointSlices, 'ml', endpointSlice({ name: 'other-1', service: 'other', ports: [{ name: 'http', port: 8000 }], endpoints: [{ address: '10.0.0.2' }] }));
    const list = await discovery.listNamespacedEndpointSlice({ namespace: 'ml', labelSelector: 'kubernetes.io/service-name=svc' });
    assert.deepEqual(list.items.map((s) => s.metadata?.name), ['svc-1']);
    assert.equal(list.items[0]?.endpoints?.[0]?.addresses[0], '10.0.0.1');
  });

  test('unknown path is 404', async () => {
    const response = await request(`${server.url}/healthz/nothing`);
    await response.body.dump();
    assert.equal(response.statusCode, 404);
  });
});

describe('fake kube scale subresource', () => {
  let server: FakeKubeServer;
  let apps: AppsV1Api;

  before(async () => {
    server = await FakeKubeServer.start();
    apps = server.kubeConfig().makeApiClient(AppsV1Api);
    server.create(RESOURCES.deployments, 'ml', deployment({ name: 'llama', replicas: 2, labels: { app: 'llama', tier: 'gpu' }, gpus: 1 }));
    server.create(RESOURCES.statefulSets, 'ml', { metadata: { name: 'triton' }, spec: { replicas: 1, selector: { matchLabels: { app: 'triton' } } } });
  });
  after(async () => {
    await server.close();
  });

  test('GET returns an autoscaling/v1 Scale', async () => {
    const scale = await apps.readNamespacedDeploymentScale({ name: 'llama', namespace: 'ml' });
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.apiVersion, 'autoscaling/v1');
    assert.equal(scale.spec?.replicas, 2);
    assert.equal(scale.status?.replicas, 2);
    assert.equal(scale.status?.selector, 'app=llama,tier=gpu');
  });

  test('PUT sets the parent spec.replicas', async () => {
    const current = await apps.readNamespacedDeploymentScale({ name: 'llama', namespace: 'ml' });
    const scale = await apps.replaceNamespacedDeploymentScale({ name: 'llama', namespace: 'ml', body: { ...current, spec: { replicas: 5 } } });
    assert.equal(scale.spec?.replicas, 5);
    const parent = server.get(RESOURCES.deployments, 'ml', 'llama');
    assert.equal((parent?.spec as { replicas: number }).replicas, 5);
    assert.equal((parent?.status as { replicas: number }).replicas, 5);
    assert.equal(parent?.metadata.generation, 2);
  });

  test('PUT with a stale resourceVersion is 409', async () => {
    const status = await statusOf(
      apps.replaceNamespacedDeploymentScale({ name: 'llama', namespace: 'ml', body: { metadata: { name: 'llama', resourceVersion: '1' }, spec: { replicas: 3 } } }),
    );
    assert.equal(status, 409);
  });

  test('JSON patch scales to zero', async () => {
    const scale = await apps.patchNamespacedDeploymentScale({ name: 'llama', namespace: 'ml', body: [{ op: 'replace', path: '/spec/replicas', value: 0 }] });
    assert.equal(scale.spec?.replicas, 0);
    assert.equal((server.get(RESOURCES.deployments, 'ml', 'llama')?.spec as { replicas: number }).replicas, 0);
  });

  test('merge patch scales a StatefulSet', async () => {
    const scale = await apps.patchNamespacedStatefulSetScale(
      { name: 'triton', namespace: 'ml', body: { spec: { replicas: 4 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.equal(scale.spec?.replicas, 4);
    assert.equal((server.get(RESOURCES.statefulSets, 'ml', 'triton')?.spec as { replicas: number }).replicas, 4);
  });

  test('negative replicas are 422', async () => {
    const status = await statusOf(apps.replaceNamespacedDeploymentScale({ name: 'llama', namespace: 'ml', body: { metadata: { name: 'llama' }, spec: { replicas: -1 } } }));
    assert.equal(status, 422);
  });

  test('scale of a missing Deployment is 404', async () => {
    assert.equal(await statusOf(apps.readNamespacedDeploymentScale({ name: 'nope', namespace: 'ml' })), 404);
  });
});

describe('fake kube events', () => {
  let server: FakeKubeServer;

  before(async () => {
    server = await FakeKubeServer.start();
  });
  after(async () => {
    await server.close();
  });

  test('core and events.k8s.io events read back in order', async () => {
    const kc = server.kubeConfig();
    await kc.makeApiClient(CoreV1Api).createNamespacedEvent({
      namespace: 'ml',
      body: { metadata: { generateName: 'llama.' }, involvedObject: { kind: 'Deployment', name: 'llama', namespace: 'ml' }, reason: 'ScaledUp', message: 'scaled to 3', type: 'Normal' },
    });
    await kc.makeApiClient(EventsV1Api).createNamespacedEvent({
      namespace: 'ml',
      body: { metadata: { name: 'llama.2' }, eventTime: new Date(), reason: 'ScaledDown', note: 'scaled to 1', type: 'Normal', action: 'Scale', reportingController: 'infergate', reportingInstance: 'a' },
    });
    const events = server.events('ml');
    assert.deepEqual(events.map((e) => e.reason), ['ScaledUp', 'ScaledDown']);
    assert.match(events[0]?.metadata.name ?? '', /^llama\./);
    assert.equal(events[1]?.apiVersion, 'events.k8s.io/v1');
  });
});

describe('fake kube faults', () => {
  test('token is required when configured', async () => {
    const server = await FakeKubeServer.start({ token: 'secret-token' });
    try {
      const anonymous = await request(`${server.url}/api/v1/namespaces/ml/configmaps`);
      await anonymous.body.dump();
      assert.equal(anonymous.statusCode, 401);
      const list = await server.kubeConfig().makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'ml' });
      assert.deepEqual(list.items, []);
    } finally {
      await server.close();
    }
  });

  test('unavailable outage answers 503 until ended', async () => {
    const server = await FakeKubeServer.start();
    try {
      const core = server.kubeConfig().makeApiClient(CoreV1Api);
      await server.startOutage('unavailable');
      assert.equal(await statusOf(core.listNamespacedConfigMap({ namespace: 'ml' })), 503);
      await server.endOutage();
      assert.equal(await statusOf(core.listNamespacedConfigMap({ namespace: 'ml' })), 200);
    } finally {
      await server.close();
    }
  });

  test('refuse outage refuses connections until ended', async () => {
    const server = await FakeKubeServer.start();
    try {
      const url = `${server.url}/api/v1/namespaces/ml/configmaps`;
      await server.startOutage('refuse');
      await assert.rejects(request(url), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED');
      await server.endOutage();
      const response = await request(url);
      await response.body.dump();
      assert.equal(response.statusCode, 200);
    } finally {
      await server.close();
    }
  });

  test('request log records method, path and status', async () => {
    const server = await FakeKubeServer.start();
    try {
      const response = await request(`${server.url}/api/v1/namespaces/ml/configmaps?labelSelector=a%3Db`);
      await response.body.dump();
      const [record] = server.requestsMatching({ method: 'GET', pathIncludes: '/configmaps' });
      assert.equal(record?.status, 200);
      assert.equal(record?.query.labelSelector, 'a=b');
      assert.equal(record?.watch, false);
    } finally {
      await server.close();
    }
  });
});

describe('label selector parser', () => {
  test('rejects unbalanced parentheses', () => {
    assert.throws(() => parseLabelSelector('a in (x'), SelectorError);
  });

  test('rejects an invalid key', () => {
    assert.throws(() => parseLabelSelector('=x'), SelectorError);
  });

  test('equality with double equals', () => {
    assert.equal(parseLabelSelector('a==b')({ a: 'b' }), true);
  });

  test('notin matches a missing label', () => {
    assert.equal(parseLabelSelector('a notin (x)')({}), true);
  });
});
