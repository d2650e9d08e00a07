// Delegated authorization of the metrics API over TLS with front-proxy client certificates:
// the metrics API server with a DelegatedAuthorizer that sends SubjectAccessReviews to the
// fake Kubernetes API server, whose rule table decides. Cache lifetimes run on a ManualClock.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { createMetrics, type AutoscalerMetrics } from '../../autoscaler/src/metrics.ts';
import { createMetricsApiServer, type MetricsApiServer, type ServedModel } from '../../autoscaler/src/api/server.ts';
import { loadTlsMaterial } from '../../autoscaler/src/api/tls.ts';
import { DelegatedAuthorizer } from '../../autoscaler/src/api/authorizer.ts';
import { requestAttributes } from '../../autoscaler/src/api/request-user.ts';
import { DEFAULTS } from '../../autoscaler/src/config/defaults.ts';
import { buildLocalConfig, ConfigError, parseConfigText } from '../../autoscaler/src/config/load.ts';
import { FakeKubeServer } from '../fake-kube/server.ts';
import { TestCA } from './helpers/pki.ts';
import { ApiClient, metricPath } from './helpers/client.ts';

const logger = createLogger({ service: 'autoscaler-test', level: 'silent' });
const models: ServedModel[] = [
  { name: 'chat', namespace: 'ml', value: 7, sampledAt: Date.UTC(2026, 11, 4, 19, 0, 0) },
  { name: 'batch', namespace: 'research', value: 2, sampledAt: Date.UTC(2026, 11, 4, 19, 0, 0) },
];
const HPA = 'system:serviceaccount:kube-system:horizontal-pod-autoscaler';
const METRIC = metricPath('ml', 'infergate_demand', 'model=chat');

describe('delegated authorization', () => {
  const frontProxyCA = TestCA.create('front-proxy-ca');
  const servingCA = TestCA.create('serving-ca');
  const dir = mkdtempSync(join(tmpdir(), 'as-authz-'));
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'client-ca.crt') };
  const servers: MetricsApiServer[] = [];
  const clients: ApiClient[] = [];
  let kube: FakeKubeServer;
  let clock: ManualClock;
  let metrics: AutoscalerMetrics;
  let proxy: ApiClient;

  /** Starts a metrics API server with a fresh authorizer; returns a front-proxy client for it. */
  async function start(options: { cacheSize?: number; timeoutMs?: number; authorize?: boolean } = {}): Promise<{ client: ApiClient; authorizer: DelegatedAuthorizer }> {
    const authorizer = new DelegatedAuthorizer({
      kubeConfig: kube.kubeConfig(),
      clock,
      logger,
      metrics,
      allowTtlMs: DEFAULTS.metricsApi.authorization.allowTtlMs,
      denyTtlMs: DEFAULTS.metricsApi.authorization.denyTtlMs,
      cacheSize: options.cacheSize ?? 100,
      timeoutMs: options.timeoutMs ?? 5000,
      alwaysAllowGroups: DEFAULTS.metricsApi.authorization.alwaysAllowGroups,
    });
    const server = createMetricsApiServer({
      logger,
      metrics,
      source: { servedModels: () => models },
      tls: loadTlsMaterial(files, []),
      allowedNames: () => ['front-proxy-client'],
      ...(options.authorize === false ? {} : { authorizer, requestHeaderNames: () => DEFAULTS.metricsApi.requestHeader }),
    });
    servers.push(server);
    await server.app.listen({ host: '127.0.0.1', port: 0 });
    const client = new ApiClient(`https://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`, {
      ca: servingCA.certPem,
      client: frontProxyCA.issueClient('front-proxy-client'),
    });
    clients.push(client);
    return { client, authorizer };
  }

  function reviewCount(): number {
    return kube.accessReviews.reviews.length;
  }

  before(async () => {
    const serving = servingCA.issueServer();
    writeFileSync(files.certFile, serving.cert);
    writeFileSync(files.keyFile, serving.key);
    writeFileSync(files.caFile, frontProxyCA.certPem);
    kube = await FakeKubeServer.start();
    kube.accessReviews.allow({ users: [HPA], verbs: ['get', 'list'], apiGroups: ['external.metrics.k8s.io'], resources: ['infergate_demand'], namespaces: ['ml'] });
    kube.accessReviews.allow({ groups: ['metric-readers'], verbs: ['list'], apiGroups: ['external.metrics.k8s.io'], resources: ['infergate_demand'] });
    kube.accessReviews.allow({ groups: ['system:authenticated'], verbs: ['get'], nonResourceURLs: ['/apis', '/apis/*'] });
  });

  beforeEach(async () => {
    clock = new ManualClock();
    metrics = createMetrics({ defaultMetrics: false });
    kube.failAccessReviews(undefined);
    proxy = (await start()).client;
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.app.close()));
    await kube.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('allowed user reads the metric', async () => {
    const before = reviewCount();
    const response = await proxy.get(METRIC, { 'x-remote-user': HPA, 'x-remote-group': ['system:serviceaccounts', 'system:authenticated'], 'x-remote-extra-scopes': 'a' });
    assert.equal(response.status, 200);
    assert.equal((response.body.items as unknown[]).length, 1);
    assert.deepEqual(kube.accessReviews.reviews[before], {
      user: HPA,
      groups: ['system:authenticated', 'system:serviceaccounts'],
      extra: { scopes: ['a'] },
      resourceAttributes: { group: 'external.metrics.k8s.io', version: 'v1beta1', resource: 'infergate_demand', namespace: 'ml', verb: 'list' },
    });
  });

  test('denied user gets 403', async () => {
    const response = await proxy.get(metricPath('research', 'infergate_demand'), { 'x-remote-user': HPA });
    assert.equal(response.status, 403);
    assert.equal(response.body.kind, 'Status');
    assert.equal(response.body.reason, 'Forbidden');
    assert.equal(
      response.body.message,
      `infergate_demand.external.metrics.k8s.io is forbidden: User "${HPA}" cannot list resource "infergate_demand" in API group "external.metrics.k8s.io" in the namespace "research"`,
    );
  });

  test('missing user header gets 401', async () => {
    const before = reviewCount();
    const response = await proxy.get(METRIC);
    assert.equal(response.status, 401);
    assert.equal(response.body.reason, 'Unauthorized');
    assert.match(String(response.body.message), /X-Remote-User/);
    assert.equal(reviewCount(), before);
  });

  test('an empty user header counts as no user', async () => {
    const response = await proxy.get(METRIC, { 'x-remote-user': '' });
    assert.equal(response.status, 401);
  });

  test('group rule grants access', async () => {
    const allowed = await proxy.get(metricPath('research', 'infergate_demand'), { 'x-remote-user': 'dana', 'x-remote-group': 'metric-readers' });
    assert.equal(allowed.status, 200);
    const denied = await proxy.get(metricPath('research', 'infergate_demand'), { 'x-remote-user': 'dana' });
    assert.equal(denied.status, 403);
  });

  test('allow decision cached for TTL', async () => {
    const before = reviewCount();
    assert.equal((await proxy.get(METRIC, { 'x-remote-user': HPA })).status, 200);
    assert.equal((await proxy.get(METRIC, { 'x-remote-user': HPA })).status, 200);
    assert.equal(reviewCount(), before + 1);
    clock.advance(DEFAULTS.metricsApi.authorization.allowTtlMs - 1);
    assert.equal((await proxy.get(METRIC, { 'x-remote-user': HPA })).status, 200);
    assert.equal(reviewCount(), before + 1);
    clock.advance(1);
    assert.equal((await proxy.get(METRIC, { 'x-remote-user': HPA })).status, 200);
    assert.equal(reviewCount(), before + 2);
  });

  test('deny decision cached for TTL', async () => {
    const before = reviewCount();
    const path = metricPath('research', 'infergate_demand');
    assert.equal((await proxy.get(path, { 'x-remote-user': 'erin' })).status, 403);
    kube.accessReviews.allow({ users: ['erin'], verbs: ['list'], apiGroups: ['external.metrics.k8s.io'], resources: ['infergate_demand'] });
    assert.equal((await proxy.get(path, { 'x-remote-user': 'erin' })).status, 403);
    assert.equal(reviewCount(), before + 1);
    clock.advance(DEFAULTS.metricsApi.authorization.denyTtlMs);
    assert.equal((await proxy.get(path, { 'x-remote-user': 'erin' })).status, 200);
    assert.equal(reviewCount(), before + 2);
  });

  test('group list keys the cache', async () => {
    const before = reviewCount();
    await proxy.get(METRIC, { 'x-remote-user': HPA });
    await proxy.get(METRIC, { 'x-remote-user': HPA, 'x-remote-group': 'other' });
    assert.equal(reviewCount(), before + 2);
  });

  test('concurrent identical requests share one review', async () => {
    const before = reviewCount();
    const responses = await Promise.all([1, 2, 3].map(() => proxy.get(METRIC, { 'x-remote-user': HPA })));
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 200]);
    assert.equal(reviewCount(), before + 1);
  });

  test('cache drops oldest decision', async () => {
    const { client, authorizer } = await start({ cacheSize: 2 });
    const before = reviewCount();
    for (const user of ['u1', 'u2', 'u3']) await client.get('/apis', { 'x-remote-user': user, 'x-remote-group': 'system:authenticated' });
    assert.equal(authorizer.cachedDecisions, 2);
    await client.get('/apis', { 'x-remote-user': 'u3', 'x-remote-group': 'system:authenticated' });
    assert.equal(reviewCount(), before + 3);
    await client.get('/apis', { 'x-remote-user': 'u1', 'x-remote-group': 'system:authenticated' });
    assert.equal(reviewCount(), before + 4);
  });

  test('failed review gets 500 uncached', async () => {
    kube.failAccessReviews(503);
    const failed = await proxy.get(METRIC, { 'x-remote-user': HPA });
    assert.equal(failed.status, 500);
    assert.equal(failed.body.reason, 'InternalError');
    assert.match(String(failed.body.message), new RegExp(`cannot authorize user "${HPA}".*HTTP 503.*system:auth-delegator`));
    kube.failAccessReviews(undefined);
    assert.equal((await proxy.get(METRIC, { 'x-remote-user': HPA })).status, 200);
    const errors = await metrics.authorizationDecisions.get();
    assert.equal(errors.values.find((v) => v.labels.decision === 'error')?.value, 1);
  });

  test('review timeout gets 500', async () => {
    const { client } = await start({ timeoutMs: 200 });
    kube.setDelay(3000);
    try {
      const response = await client.get(METRIC, { 'x-remote-user': 'slow-user' });
      assert.equal(response.status, 500);
      assert.match(String(response.body.message), /no answer within 200 ms/);
    } finally {
      kube.setDelay(0);
    }
  });

  test('discovery paths are non-resource reviews', async () => {
    const before = reviewCount();
    const response = await proxy.get('/apis/external.metrics.k8s.io/v1beta1', { 'x-remote-user': 'dana', 'x-remote-group': 'system:authenticated' });
    assert.equal(response.status, 200);
    assert.deepEqual(kube.accessReviews.reviews[before]?.nonResourceAttributes, { path: '/apis/external.metrics.k8s.io/v1beta1', verb: 'get' });
    const denied = await proxy.get('/apis', { 'x-remote-user': 'nobody' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.message, 'forbidden: User "nobody" cannot get path "/apis"');
  });

  test('system:masters is allowed without a review', async () => {
    const before = reviewCount();
    const response = await proxy.get(metricPath('research', 'infergate_demand'), { 'x-remote-user': 'admin', 'x-remote-group': 'system:masters' });
    assert.equal(response.status, 200);
    assert.equal(reviewCount(), before);
  });

  test('probes skip authentication', async () => {
    const anonymous = new ApiClient(`https://127.0.0.1:${(servers[0]!.app.server.address() as AddressInfo).port}`, { ca: servingCA.certPem });
    clients.push(anonymous);
    assert.equal((await anonymous.get('/healthz')).status, 200);
  });

  test('user headers need verified certificate', async () => {
    const stranger = new ApiClient(`https://127.0.0.1:${(servers[0]!.app.server.address() as AddressInfo).port}`, {
      ca: servingCA.certPem,
      client: TestCA.create('other-ca').issueClient('front-proxy-client'),
    });
    clients.push(stranger);
    const before = reviewCount();
    const response = await stranger.get(METRIC, { 'x-remote-user': HPA, 'x-remote-group': 'system:masters' });
    assert.equal(response.status, 401);
    assert.equal(reviewCount(), before);
  });

  test('mode none skips reviews', async () => {
    const { client } = await start({ authorize: false });
    const before = reviewCount();
    assert.equal((await client.get(metricPath('research', 'infergate_demand'))).status, 200);
    assert.equal(reviewCount(), before);
  });
});

describe('request attributes', () => {
  test('metric collection verb is list', () => {
    assert.equal(requestAttributes('GET', '/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/infergate_demand?labelSelector=model%3Dchat').verb, 'list');
    assert.equal(requestAttributes('GET', '/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/infergate_demand?watch=true').verb, 'watch');
  });

  test('a named object is get, a write is its REST verb', () => {
    assert.deepEqual(requestAttributes('GET', '/apis/apps/v1/namespaces/ml/deployments/chat/scale'), {
      kind: 'resource',
      verb: 'get',
      group: 'apps',
      version: 'v1',
      resource: 'deployments',
      namespace: 'ml',
      name: 'chat',
      subresource: 'scale',
    });
    assert.equal(requestAttributes('DELETE', '/apis/apps/v1/namespaces/ml/deployments').verb, 'deletecollection');
    assert.equal(requestAttributes('POST', '/apis/apps/v1/namespaces/ml/deployments').verb, 'create');
  });

  test('discovery and unknown paths are non-resource', () => {
    assert.deepEqual(requestAttributes('GET', '/apis/external.metrics.k8s.io/v1beta1'), { kind: 'nonResource', verb: 'get', path: '/apis/external.metrics.k8s.io/v1beta1' });
    assert.deepEqual(requestAttributes('POST', '/metrics?x=1'), { kind: 'nonResource', verb: 'post', path: '/metrics' });
  });
});

describe('authorization config', () => {
  const CLUSTER = `
gateways: { static: ["http://127.0.0.1:1"] }
metricsApi:
  clientCAFile: /etc/ca/requestheader-client-ca-file
models:
  - name: chat
    target: { kind: Deployment, namespace: ml, name: chat }
    targetPerReplica: 10
`;

  test('cluster mode defaults to delegated', () => {
    const { authorization, requestHeader } = parseConfigText(CLUSTER).metricsApi;
    assert.deepEqual(authorization, { mode: 'delegated', allowTtlMs: 10_000, denyTtlMs: 10_000, cacheSize: 8192 });
    assert.deepEqual(requestHeader, { usernameHeaders: undefined, groupHeaders: undefined, extraHeadersPrefixes: undefined });
  });

  test('authorization settings read from file', () => {
    const config = parseConfigText(
      CLUSTER.replace(
        'metricsApi:',
        'metricsApi:\n  authorization: { mode: none, allowTtlMs: 0, denyTtlMs: 500, cacheSize: 10 }\n  requestHeader: { usernameHeaders: [X-User], groupHeaders: [], extraHeadersPrefixes: [X-Extra-] }',
      ),
    );
    assert.deepEqual(config.metricsApi.authorization, { mode: 'none', allowTtlMs: 0, denyTtlMs: 500, cacheSize: 10 });
    assert.deepEqual(config.metricsApi.requestHeader, { usernameHeaders: ['X-User'], groupHeaders: [], extraHeadersPrefixes: ['X-Extra-'] });
  });

  test('insecureHttp and local mode default to none', () => {
    const insecure = parseConfigText(CLUSTER.replace('  clientCAFile: /etc/ca/requestheader-client-ca-file', '  insecureHttp: true'));
    assert.equal(insecure.metricsApi.authorization.mode, 'none');
    assert.equal(buildLocalConfig({ gateways: ['http://127.0.0.1:1'], insecureHttp: false }).metricsApi.authorization.mode, 'none');
  });

  test('delegated with insecureHttp rejected', () => {
    const text = CLUSTER.replace('  clientCAFile: /etc/ca/requestheader-client-ca-file', '  insecureHttp: true\n  authorization: { mode: delegated }');
    assert.throws(() => parseConfigText(text), (error: unknown) => error instanceof ConfigError && /^metricsApi\.authorization\.mode: delegated trusts the user headers/.test(error.problems[0] ?? ''));
  });

  test('invalid mode and header rejected', () => {
    assert.throws(() => parseConfigText(CLUSTER.replace('metricsApi:', 'metricsApi:\n  authorization: { mode: webhook }')), /metricsApi\.authorization\.mode: expected one of "delegated", "none", got "webhook"/);
    assert.throws(() => parseConfigText(CLUSTER.replace('metricsApi:', 'metricsApi:\n  requestHeader: { usernameHeaders: ["X User"] }')), /metricsApi\.requestHeader\.usernameHeaders\[0\]/);
  });
});
