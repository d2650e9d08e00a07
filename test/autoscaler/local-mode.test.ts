// Local mode: the autoscaler process with --gateway and no cluster, in front of a real
// gateway and a simulated replica.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { request } from 'undici';
import { createLogger } from '../../shared/src/logger.ts';
import { startGateway, type RunningGateway } from '../../gateway/src/gateway.ts';
import { buildConfig } from '../../gateway/src/config/load.ts';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { ApiClient, metricPath } from './helpers/client.ts';
import { startAutoscalerProcess, waitFor, type AutoscalerProcess } from './helpers/process.ts';

describe('local mode', () => {
  let replica: SpawnedReplica;
  let gateway: RunningGateway;
  const processes: AutoscalerProcess[] = [];
  const clients: ApiClient[] = [];
  const heldRequests = new AbortController();

  before(async () => {
    replica = await spawnReplica(['--port', '0', '--model', 'chat']);
    gateway = await startGateway(
      buildConfig({
        server: { port: 0, adminPort: 0, host: '127.0.0.1', shutdownGraceMs: 1000 },
        models: [
          { name: 'chat', protocol: 'openai', replicas: { static: [replica.url] }, health: { intervalMs: 200, timeoutMs: 200 } },
          { name: 'sleepy', protocol: 'openai', replicas: { static: ['http://127.0.0.1:1'] }, health: { intervalMs: 200, timeoutMs: 200 }, scaleFromZero: { enabled: true, holdTimeoutMs: 20_000, maxHeld: 5 } },
        ],
      }),
      { logger: createLogger({ service: 'gateway-test', level: 'silent' }), defaultMetrics: false, name: 'gw-local' },
    );
  });

  after(async () => {
    heldRequests.abort();
    await Promise.all(clients.map((c) => c.close()));
    for (const p of processes) await p.stop();
    await gateway.close(0);
    await replica.stop();
  });

  test('plain HTTP serves models found in gateways', async () => {
    const autoscaler = await startAutoscalerProcess(['--gateway', gateway.adminUrl, '--insecure-http', '--port', '0', '--admin-port', '0', '--poll-interval-ms', '200']);
    processes.push(autoscaler);
    assert.match(autoscaler.apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const api = new ApiClient(autoscaler.apiUrl);
    clients.push(api);
    const response = await waitFor(async () => {
      const r = await api.get(metricPath('default', 'infergate_demand', 'model=chat'));
      return r.status === 200 && (r.body.items as unknown[]).length === 1 ? r : undefined;
    }, 'chat served in namespace default');
    const item = (response.body.items as { metricLabels: { model: string }; value: string }[])[0]!;
    assert.deepEqual(item.metricLabels, { model: 'chat' });
    assert.equal(item.value, '0');
  });

  test('scale actions are only logged', async () => {
    const autoscaler = processes[0]!;
    void request(`${gateway.trafficUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sleepy', messages: [{ role: 'user', content: 'wake up' }], max_tokens: 3 }),
      signal: heldRequests.signal,
    }).catch(() => undefined);
    const line = await waitFor(() => autoscaler.logs.find((l) => l.dryRun === true && l.model === 'sleepy'), 'dry-run activation log line');
    assert.equal(line.from, 0);
    assert.equal(line.to, 1);
    assert.match(line.msg, /^dry run, no cluster: would scale Deployment sleepy from 0 to 1 replica: model sleepy has 0 queued and 1 held requests$/);
    const repeats = () => autoscaler.logs.filter((l) => l.dryRun === true && l.model === 'sleepy').length;
    const pollsSeen = autoscaler.logs.length;
    await waitFor(() => autoscaler.logs.length > pollsSeen + 10, 'more polls');
    assert.equal(repeats(), 1, 'the same decision is logged once');
  });

  test('TLS with a generated certificate', async () => {
    const autoscaler = await startAutoscalerProcess(['--gateway', gateway.adminUrl, '--port', '0', '--admin-port', '0']);
    processes.push(autoscaler);
    assert.match(autoscaler.apiUrl, /^https:\/\//);
    const pem = await serverCertificatePem(autoscaler.apiUrl);
    const cert = new X509Certificate(pem);
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    // Trusting the self-signed certificate as the CA proves it verifies for 127.0.0.1.
    const api = new ApiClient(autoscaler.apiUrl, { ca: pem });
    clients.push(api);
    const response = await api.get('/apis/external.metrics.k8s.io/v1beta1');
    assert.equal(response.status, 200);
    assert.equal(response.body.kind, 'APIResourceList');
  });

  test('bad flag exits with a usage error', async () => {
    await assert.rejects(startAutoscalerProcess(['--gateway', gateway.adminUrl, '--port', 'eighty']), /--port: expected a decimal integer from 0 to 65535, got "eighty"/);
  });
});

function serverCertificatePem(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`);
    });
    socket.on('error', reject);
  });
}
