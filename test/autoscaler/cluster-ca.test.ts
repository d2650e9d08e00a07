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
  const c = new ApiClient(autoscaler.apiUrl, { ca: servingCA.certPem, client: ca.issueClient(name) });
  clients.push(c);
  return c;
}

before(async () => {
  kube = await FakeKubeServer.start();
  kube.create(RESOURCES.configMaps, 'kube-system', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'extension-apiserver-authentication' },
    data: { 'requestheader-client-ca-file': firstCA.certPem, 'requestheader-allowed-names': '["front-proxy-client"]' },
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
