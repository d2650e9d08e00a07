// The request-header client CA read from kube-system/extension-apiserver-authentication
// through the fake Kubernetes API server, with the autoscaler started in this process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../shared/src/logger.ts';
import { FakeKubeServer, RESOURCES } from '../fake-kube/server.ts';
import { parseConfigText } from '../../autoscaler/src/config/load.ts';
import { startAutoscaler, type RunningAutoscaler } from '../../autoscaler/src/app.ts';
import { TestCA } from './helpers/pki.ts';
import { ApiClient } from './helpers/client.ts';
import { waitFor } from './helpers/process.ts';

const logger = createLogger({ service: 'autoscaler-test', level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'as-cluster-ca-'));
const firstCA = TestCA.create('front-proxy-ca-1');
const rotatedCA = TestCA.create('front-proxy-ca-2');
const servingCA = TestCA.create('serving-ca');
let kube: FakeKubeServer;
let autoscaler: RunningAutoscaler;
const clients: ApiClient[] = [];

function client(ca: TestCA, name: string): ApiClient {
  const c = new ApiClient(autoscaler.apiUrl, { ca: servingCA.certPem, client: ca.issueClient(name), headers: { 'x-proxy-user': 'alice' } });
  clients.push(c);
  return c;
}

before(async () => {
  kube = await FakeKubeServer.start();
  kube.create(RESOURCES.configMaps, 'kube-system', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'extension-apiserver-authentication' },
    data: {
      'requestheader-client-ca-file': firstCA.certPem,
      'requestheader-allowed-names': '["front-proxy-client"]',
      // Names other than the defaults, to show that the ones from the cluster apply.
      'requestheader-username-headers': '["X-Proxy-User"]',
      'requestheader-group-headers': '["X-Proxy-Group"]',
      'requestheader-extra-headers-prefix': '["X-Proxy-Extra-"]',
    },
  } as never);
  const serving = servingCA.issueServer();
  writeFileSync(join(dir, 'tls.crt'), serving.cert);
  writeFileSync(join(dir, 'tls.key'), serving.key);
  const config = parseConfigText(`
gateways: { static: ["http://127.0.0.1:1"] }
listenHost: 127.0.0.1
adminPort: 0
metricsApi:
  port: 0
  tlsCertFile: ${join(dir, 'tls.crt')}
  tlsKeyFile: ${join(dir, 'tls.key')}
  clientCAFromCluster: true
  certReloadIntervalMs: 100
models:
  - name: chat
    target: { kind: Deployment, namespace: ml, name: chat }
    targetPerReplica: 10
`);
  kube.accessReviews.allow({ users: ['alice'], verbs: ['get'], nonResourceURLs: ['/apis', '/apis/*'] });
  autoscaler = await startAutoscaler(config, { logger, kubeConfig: kube.kubeConfig() });
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await autoscaler?.stop();
  await kube.close();
  rmSync(dir, { recursive: true, force: true });
});

test('cluster CA and allowed names apply', async () => {
  assert.equal((await client(firstCA, 'front-proxy-client').get('/apis')).status, 200);
  assert.equal((await client(firstCA, 'someone-else').get('/apis')).status, 403);
  assert.equal((await client(rotatedCA, 'front-proxy-client').get('/apis')).status, 401);
});

test('user, groups and extra come from the header names in the cluster ConfigMap', async () => {
  const proxy = client(firstCA, 'front-proxy-client');
  const before = kube.accessReviews.reviews.length;
  const response = await proxy.get('/apis/external.metrics.k8s.io', { 'x-proxy-group': 'team-a', 'x-proxy-extra-scopes': 'read', 'x-remote-user': 'mallory' });
  assert.equal(response.status, 200);
  const review = kube.accessReviews.reviews[before];
  assert.deepEqual(review, { user: 'alice', groups: ['team-a'], extra: { scopes: ['read'] }, nonResourceAttributes: { path: '/apis/external.metrics.k8s.io', verb: 'get' } });
});

test('default user header ignored when the cluster sets another', async () => {
  const c = new ApiClient(autoscaler.apiUrl, { ca: servingCA.certPem, client: firstCA.issueClient('front-proxy-client'), headers: { 'x-remote-user': 'alice' } });
  clients.push(c);
  const response = await c.get('/apis');
  assert.equal(response.status, 401);
  assert.match(String(response.body.message), /X-Proxy-User/);
});

test('rotated cluster CA is picked up', async () => {
  kube.modify(RESOURCES.configMaps, 'kube-system', 'extension-apiserver-authentication', (cm) => {
    (cm as unknown as { data: Record<string, string> }).data['requestheader-client-ca-file'] = rotatedCA.certPem;
  });
  const rotated = client(rotatedCA, 'front-proxy-client');
  // Each attempt uses a new client: a TLS session keeps the CA it was verified against.
  await waitFor(async () => (await client(rotatedCA, 'front-proxy-client').get('/apis')).status === 200, 'the rotated CA to be accepted', 10_000);
  assert.equal((await rotated.get('/apis')).status, 200);
  assert.equal((await client(firstCA, 'front-proxy-client').get('/apis')).status, 401);
});
