// Conformance of the external metrics API over TLS with client certificates.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../shared/src/logger.ts';
import { createMetrics } from '../../autoscaler/src/metrics.ts';
import { createMetricsApiServer, type MetricsApiServer, type ServedModel } from '../../autoscaler/src/api/server.ts';
import { CertificateReloader, loadTlsMaterial } from '../../autoscaler/src/api/tls.ts';
import { TestCA } from './helpers/pki.ts';
import { ApiClient, metricPath } from './helpers/client.ts';

const logger = createLogger({ service: 'autoscaler-test', level: 'silent' });
const SAMPLED_AT = Date.UTC(2026, 11, 4, 19, 0, 0, 500);

const models: ServedModel[] = [
  { name: 'zero', namespace: 'ml', value: 0, sampledAt: SAMPLED_AT },
  { name: 'one-and-half', namespace: 'ml', value: 1.5, sampledAt: SAMPLED_AT },
  { name: 'milli', namespace: 'ml', value: 0.001, sampledAt: SAMPLED_AT },
  { name: 'thousand', namespace: 'ml', value: 1000, sampledAt: SAMPLED_AT },
  { name: 'fraction', namespace: 'ml', value: 12345.678, sampledAt: SAMPLED_AT },
  { name: 'Upper', namespace: 'ml', value: 7, sampledAt: SAMPLED_AT },
  { name: 'elsewhere', namespace: 'other', value: 3, sampledAt: SAMPLED_AT },
  { name: 'stale', namespace: 'stale-ns', value: undefined, sampledAt: SAMPLED_AT },
  { name: 'fresh', namespace: 'stale-ns', value: 4, sampledAt: SAMPLED_AT },
  { name: 'a', namespace: 'stale-many', value: undefined, sampledAt: SAMPLED_AT },
  { name: 'b', namespace: 'stale-many', value: undefined, sampledAt: SAMPLED_AT },
  { name: 'c', namespace: 'stale-many', value: undefined, sampledAt: SAMPLED_AT },
];

describe('metrics API', () => {
  const clusterCA = TestCA.create('front-proxy-ca');
  const otherCA = TestCA.create('some-other-ca');
  const serverCA = TestCA.create('autoscaler-serving-ca');
  const dir = mkdtempSync(join(tmpdir(), 'as-api-'));
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'client-ca.crt') };
  let server: MetricsApiServer;
  let base: string;
  const clients: ApiClient[] = [];
  let allowed: ApiClient;
  let wrongName: ApiClient;
  let otherCa: ApiClient;
  let anonymous: ApiClient;

  before(async () => {
    const serving = serverCA.issueServer();
    writeFileSync(files.certFile, serving.cert);
    writeFileSync(files.keyFile, serving.key);
    writeFileSync(files.caFile, clusterCA.certPem);
    server = createMetricsApiServer({
      logger,
      metrics: createMetrics({ defaultMetrics: false }),
      source: { servedModels: () => models },
      tls: loadTlsMaterial(files, []),
      allowedNames: () => ['front-proxy-client'],
    });
    await server.app.listen({ host: '127.0.0.1', port: 0 });
    base = `https://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
    const make = (client?: { cert: string; key: string }) => {
      const c = new ApiClient(base, { ca: serverCA.certPem, ...(client ? { client } : {}) });
      clients.push(c);
      return c;
    };
    allowed = make(clusterCA.issueClient('front-proxy-client'));
    wrongName = make(clusterCA.issueClient('mallory'));
    otherCa = make(otherCA.issueClient('front-proxy-client'));
    anonymous = make();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('discovery /apis lists the group', async () => {
    const response = await allowed.get('/apis');
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [
        {
          name: 'external.metrics.k8s.io',
          versions: [{ groupVersion: 'external.metrics.k8s.io/v1beta1', version: 'v1beta1' }],
          preferredVersion: { groupVersion: 'external.metrics.k8s.io/v1beta1', version: 'v1beta1' },
        },
      ],
    });
  });

  test('discovery of the group', async () => {
    const response = await allowed.get('/apis/external.metrics.k8s.io');
    assert.equal(response.status, 200);
    assert.equal(response.body.kind, 'APIGroup');
    assert.equal(response.body.name, 'external.metrics.k8s.io');
    assert.deepEqual(response.body.preferredVersion, { groupVersion: 'external.metrics.k8s.io/v1beta1', version: 'v1beta1' });
  });

  test('discovery of the group version', async () => {
    const response = await allowed.get('/apis/external.metrics.k8s.io/v1beta1');
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'external.metrics.k8s.io/v1beta1',
      resources: [{ name: 'infergate_demand', singularName: '', namespaced: true, kind: 'ExternalMetricValueList', verbs: ['get'] }],
    });
  });

  test('metric value list shape', async () => {
    const response = await allowed.get(metricPath('ml', 'infergate_demand', 'model=one-and-half'));
    assert.equal(response.status, 200);
    assert.match(response.contentType ?? '', /^application\/json/);
    assert.deepEqual(response.body, {
      kind: 'ExternalMetricValueList',
      apiVersion: 'external.metrics.k8s.io/v1beta1',
      metadata: {},
      items: [{ metricName: 'infergate_demand', metricLabels: { model: 'one-and-half' }, timestamp: '2026-12-04T19:00:00Z', value: '1500m' }],
    });
  });

  test('metric quantities are canonical', async () => {
    const expected: Record<string, string> = { zero: '0', 'one-and-half': '1500m', milli: '1m', thousand: '1k', fraction: '12345678m', Upper: '7' };
    for (const [model, value] of Object.entries(expected)) {
      const response = await allowed.get(metricPath('ml', 'infergate_demand', `model=${model}`));
      const items = response.body.items as { value: string }[];
      assert.equal(items[0]?.value, value, `value of ${model}`);
    }
  });

  async function selected(selector: string | undefined): Promise<string[]> {
    const response = await allowed.get(metricPath('ml', 'infergate_demand', selector));
    assert.equal(response.status, 200, `status for selector ${selector}`);
    return (response.body.items as { metricLabels: { model: string } }[]).map((i) => i.metricLabels.model).sort();
  }

  test('selector forms', async () => {
    const all = ['Upper', 'fraction', 'milli', 'one-and-half', 'thousand', 'zero'];
    assert.deepEqual(await selected(undefined), all);
    assert.deepEqual(await selected('model=zero'), ['zero']);
    assert.deepEqual(await selected('model==zero'), ['zero']);
    assert.deepEqual(await selected('model!=zero'), all.filter((m) => m !== 'zero'));
    assert.deepEqual(await selected('model in (zero,milli,absent)'), ['milli', 'zero']);
    assert.deepEqual(await selected('model notin (zero,milli)'), ['Upper', 'fraction', 'one-and-half', 'thousand']);
    assert.deepEqual(await selected('model'), all);
    assert.deepEqual(await selected('!model'), []);
    assert.deepEqual(await selected('model in (zero,milli),model!=milli'), ['zero']);
  });

  test('label values match exactly', async () => {
    assert.deepEqual(await selected('model=upper'), []);
    assert.deepEqual(await selected('model=Upper'), ['Upper']);
  });

  test('metric names match case-insensitively', async () => {
    for (const name of ['INFERGATE_DEMAND', 'Infergate_Demand']) {
      const response = await allowed.get(metricPath('ml', name, 'model=zero'));
      assert.equal(response.status, 200, name);
      assert.equal((response.body.items as unknown[]).length, 1);
    }
  });

  test('namespace limits the models', async () => {
    const response = await allowed.get(metricPath('other'));
    assert.deepEqual((response.body.items as { metricLabels: { model: string } }[]).map((i) => i.metricLabels.model), ['elsewhere']);
    const empty = await allowed.get(metricPath('nobody-here'));
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.items, []);
  });

  test('unknown metric is a 404 Status', async () => {
    const response = await allowed.get(metricPath('ml', 'queue_depth'));
    assert.equal(response.status, 404);
    assert.equal(response.body.kind, 'Status');
    assert.equal(response.body.status, 'Failure');
    assert.equal(response.body.reason, 'NotFound');
    assert.equal(response.body.code, 404);
    assert.match(String(response.body.message), /queue_depth/);
  });

  test('stale model is a 503 Status', async () => {
    const response = await allowed.get(metricPath('stale-ns', 'infergate_demand', 'model=stale'));
    assert.equal(response.status, 503);
    assert.equal(response.body.kind, 'Status');
    assert.equal(response.body.reason, 'ServiceUnavailable');
    assert.equal(
      response.body.message,
      'no fresh gateway data for model "stale": every gateway failed or omitted it for longer than staleAfterMs; check infergate_autoscaler_source_up',
    );
  });

  test('stale models in the plural', async () => {
    const response = await allowed.get(metricPath('stale-many'));
    assert.equal(response.status, 503);
    assert.equal(
      response.body.message,
      'no fresh gateway data for models "a", "b", "c": every gateway failed or omitted them for longer than staleAfterMs; check infergate_autoscaler_source_up',
    );
  });

  test('selector with a stale model is 503', async () => {
    const response = await allowed.get(metricPath('stale-ns'));
    assert.equal(response.status, 503);
  });

  test('fresh model beside a stale one is served', async () => {
    const response = await allowed.get(metricPath('stale-ns', 'infergate_demand', 'model=fresh'));
    assert.equal(response.status, 200);
    assert.equal((response.body.items as { value: string }[])[0]?.value, '4');
  });

  test('invalid selector is a 400 Status', async () => {
    const response = await allowed.get(metricPath('ml', 'infergate_demand', 'model in (a'));
    assert.equal(response.status, 400);
    assert.equal(response.body.reason, 'BadRequest');
    assert.match(String(response.body.message), /model in \(a/);
  });

  test('comparison operator is a 400 naming it', async () => {
    const response = await allowed.get(metricPath('ml', 'infergate_demand', 'model>1'));
    assert.equal(response.status, 400);
    assert.equal(response.body.reason, 'BadRequest');
    assert.match(String(response.body.message), /operator ">", which this server does not support/);
  });

  test('oversized selector is a 431 Status', async () => {
    const selector = `model in (${Array.from({ length: 4000 }, (_, i) => `m${i}`).join(',')})`;
    const response = await allowed.get(metricPath('ml', 'infergate_demand', selector));
    assert.equal(response.status, 431);
    assert.equal(response.body.kind, 'Status');
    assert.equal(response.body.reason, 'RequestEntityTooLarge');
    assert.equal(response.body.code, 431);
    assert.match(String(response.body.message), /shorten the labelSelector/);
  });

  test('HEAD is 405 like other methods', async () => {
    for (const path of ['/apis', metricPath('ml', 'infergate_demand', 'model=zero')]) {
      const response = await allowed.send('HEAD', path);
      assert.equal(response.status, 405, `HEAD ${path}`);
      assert.equal(response.allow, 'GET', `Allow header of HEAD ${path}`);
    }
  });

  test('POST is a 405 Status', async () => {
    const response = await allowed.send('POST', '/apis');
    assert.equal(response.status, 405);
    assert.equal(response.body.reason, 'MethodNotAllowed');
  });

  test('unknown path is a 404 Status', async () => {
    const response = await allowed.get('/api/v1/pods');
    assert.equal(response.status, 404);
    assert.equal(response.body.kind, 'Status');
  });

  test('caller without certificate gets 401', async () => {
    const response = await anonymous.get(metricPath('ml'));
    assert.equal(response.status, 401);
    assert.equal(response.body.reason, 'Unauthorized');
  });

  test('caller signed by another CA gets 401', async () => {
    const response = await otherCa.get(metricPath('ml'));
    assert.equal(response.status, 401);
    assert.equal(response.body.reason, 'Unauthorized');
  });

  test('caller with a name not allowed gets 403', async () => {
    const response = await wrongName.get('/apis');
    assert.equal(response.status, 403);
    assert.equal(response.body.reason, 'Forbidden');
    assert.equal(response.body.message, 'client certificate common name "mallory" is not in metricsApi.allowedNames');
  });

  test('health needs no certificate', async () => {
    const response = await anonymous.get('/healthz');
    assert.equal(response.status, 200);
  });

  test('certificates reload when files change', async () => {
    const reloader = new CertificateReloader({ files, intervalMs: 60_000, logger, current: () => loadTlsMaterial(files, []), apply: (m) => server.updateTls(m) });
    assert.equal(reloader.check(), false, 'nothing changed yet');
    const before = await peerCertificate(base);
    const renewed = serverCA.issueServer('infergate-autoscaler-renewed');
    writeFileSync(files.certFile, renewed.cert);
    writeFileSync(files.keyFile, renewed.key);
    assert.equal(reloader.check(), true);
    const afterReload = await peerCertificate(base);
    assert.equal(before.subject.CN, 'infergate-autoscaler');
    assert.equal(afterReload.subject.CN, 'infergate-autoscaler-renewed');
    const response = await new ApiClient(base, { ca: serverCA.certPem, client: clusterCA.issueClient('front-proxy-client') }).get('/apis');
    assert.equal(response.status, 200);
  });

  test('broken certificate files keep the old ones', async () => {
    const reloader = new CertificateReloader({ files, intervalMs: 60_000, logger, current: () => loadTlsMaterial(files, []), apply: (m) => server.updateTls(m) });
    writeFileSync(files.keyFile, 'not a key');
    assert.equal(reloader.check(), false);
    const response = await allowed.get('/apis');
    assert.equal(response.status, 200);
  });
});

function peerCertificate(base: string): Promise<PeerCertificate> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false, servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}
