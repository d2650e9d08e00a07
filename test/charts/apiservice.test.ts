import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import {
  objectOf,
  objectsOf,
  renderChart,
  renderOk,
  secretValue,
  standardCluster,
  type KubeObject,
} from './helpers.ts';

const API_SERVICE = 'v1beta1.external.metrics.k8s.io';

interface APIServiceSpec {
  group: string;
  version: string;
  caBundle?: string;
  insecureSkipTLSVerify: boolean;
  service: { name: string; namespace: string; port: number };
}

function apiServiceSpec(object: KubeObject): APIServiceSpec {
  return object.spec as APIServiceSpec;
}

function existingAPIService(annotations: Record<string, string>, labels: Record<string, string>, service: { name: string; namespace: string }): KubeObject {
  return {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: API_SERVICE, annotations, labels },
    spec: { group: 'external.metrics.k8s.io', version: 'v1beta1', service: { ...service, port: 443 }, groupPriorityMinimum: 100, versionPriority: 100 },
  };
}

test('APIService points at the autoscaler Service', () => {
  const result = renderOk({ namespace: 'inference' });
  const apiService = objectOf(result, 'APIService', API_SERVICE);
  const spec = apiServiceSpec(apiService);
  assert.equal(spec.group, 'external.metrics.k8s.io');
  assert.equal(spec.version, 'v1beta1');
  assert.equal(spec.insecureSkipTLSVerify, false);
  assert.deepEqual(spec.service, { name: 'infergate-autoscaler', namespace: 'inference', port: 443 });

  const service = objectOf(result, 'Service', 'infergate-autoscaler');
  const ports = (service.spec as { ports: Array<{ name: string; port: number; targetPort: string }> }).ports;
  const apiPort = ports.find((port) => port.port === spec.service.port);
  assert.equal(apiPort?.targetPort, 'metrics-api');
});

test('caBundle is the CA that signed the serving certificate', () => {
  const result = renderOk({ namespace: 'inference' });
  const spec = apiServiceSpec(objectOf(result, 'APIService', API_SERVICE));
  const secret = objectOf(result, 'Secret', 'infergate-autoscaler-tls');
  assert.equal(secret.type, 'kubernetes.io/tls');
  assert.ok(spec.caBundle);
  const caPem = Buffer.from(spec.caBundle, 'base64').toString('utf8');
  assert.equal(caPem, secretValue(secret, 'ca.crt'));

  const ca = new X509Certificate(caPem);
  const serving = new X509Certificate(secretValue(secret, 'tls.crt'));
  assert.equal(ca.ca, true);
  assert.ok(serving.verify(ca.publicKey), 'serving certificate is not signed by the caBundle CA');
  assert.ok(serving.checkHost('infergate-autoscaler.inference.svc'), 'serving certificate does not cover the Service DNS name');
  assert.match(secretValue(secret, 'tls.key'), /BEGIN RSA PRIVATE KEY/);
});

test('CA is reused on upgrade', () => {
  const first = renderOk({ namespace: 'inference' });
  const installed = objectOf(first, 'Secret', 'infergate-autoscaler-tls');
  const cluster = [...standardCluster(), installed];
  const upgraded = renderOk({ namespace: 'inference', upgrade: true, cluster });
  const secret = objectOf(upgraded, 'Secret', 'infergate-autoscaler-tls');
  assert.deepEqual(secret.data, installed.data);
  assert.equal(apiServiceSpec(objectOf(upgraded, 'APIService', API_SERVICE)).caBundle, (installed.data as Record<string, string>)['ca.crt']);
});

test('CA is generated anew without a Secret', () => {
  const first = renderOk({ fresh: true });
  const second = renderOk({ fresh: true });
  assert.notEqual(apiServiceSpec(objectOf(first, 'APIService', API_SERVICE)).caBundle, apiServiceSpec(objectOf(second, 'APIService', API_SERVICE)).caBundle);
});

test('incomplete Secret is regenerated', () => {
  const broken: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'infergate-autoscaler-tls', namespace: 'inference' }, data: { 'tls.crt': 'AAAA' } };
  const result = renderOk({ namespace: 'inference', upgrade: true, cluster: [...standardCluster(), broken] });
  const secret = objectOf(result, 'Secret', 'infergate-autoscaler-tls');
  assert.doesNotThrow(() => new X509Certificate(secretValue(secret, 'tls.crt')));
});

test('cert-manager mode injects the CA', () => {
  const result = renderOk({ valuesFiles: ['cert-manager.yaml'], namespace: 'inference' });
  const apiService = objectOf(result, 'APIService', API_SERVICE);
  assert.equal(apiService.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'inference/infergate-autoscaler-tls');
  assert.equal(apiServiceSpec(apiService).caBundle, undefined);
  assert.equal(objectsOf(result, 'Secret').length, 0);

  const certificate = objectOf(result, 'Certificate', 'infergate-autoscaler-tls');
  const spec = certificate.spec as { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string }; usages: string[] };
  assert.equal(certificate.metadata.namespace, 'inference');
  assert.equal(spec.secretName, 'infergate-autoscaler-tls');
  assert.ok(spec.dnsNames.includes('infergate-autoscaler.inference.svc'));
  assert.ok(spec.usages.includes('server auth'));
  assert.deepEqual(spec.issuerRef, { name: 'infergate-ca', kind: 'Issuer', group: 'cert-manager.io' });

  const caCertificate = objectOf(result, 'Certificate', 'infergate-ca');
  assert.equal((caCertificate.spec as { isCA: boolean }).isCA, true);
  const issuers = objectsOf(result, 'Issuer').map((issuer) => issuer.metadata.name).sort();
  assert.deepEqual(issuers, ['infergate-ca', 'infergate-selfsigned']);
});

test('cert-manager mode uses a given issuer', () => {
  const result = renderOk({ valuesFiles: ['cert-manager.yaml'], values: { autoscaler: { tls: { certManager: { issuerRef: { name: 'cluster-ca', kind: 'ClusterIssuer' } } } } } });
  const certificate = objectOf(result, 'Certificate', 'infergate-autoscaler-tls');
  assert.deepEqual((certificate.spec as { issuerRef: unknown }).issuerRef, { name: 'cluster-ca', kind: 'ClusterIssuer' });
  assert.equal(objectsOf(result, 'Issuer').length, 0);
  assert.equal(objectsOf(result, 'Certificate').length, 1);
});

test('KEDA APIService fails the install', () => {
  const keda = existingAPIService(
    { 'meta.helm.sh/release-name': 'keda', 'meta.helm.sh/release-namespace': 'keda' },
    { 'app.kubernetes.io/name': 'keda-metrics-apiserver', 'app.kubernetes.io/part-of': 'keda-operator' },
    { name: 'keda-metrics-apiserver', namespace: 'keda' },
  );
  const result = renderChart({ cluster: [...standardCluster(), keda] });
  assert.equal(result.ok, false);
  assert.match(result.error, /APIService v1beta1\.external\.metrics\.k8s\.io already exists and belongs to KEDA/);
  assert.match(result.error, /Helm release "keda" in namespace "keda"/);
  assert.match(result.error, /service keda\/keda-metrics-apiserver/);
  assert.match(result.error, /autoscaler\.apiService\.create=false/);
});

test('prometheus-adapter APIService fails the install', () => {
  const adapter = existingAPIService({}, { app: 'prometheus-adapter' }, { name: 'prometheus-adapter', namespace: 'monitoring' });
  const result = renderChart({ cluster: [...standardCluster(), adapter] });
  assert.equal(result.ok, false);
  assert.match(result.error, /belongs to prometheus-adapter, service monitoring\/prometheus-adapter/);
});

test('unlabelled APIService names its service', () => {
  const unknown = existingAPIService({}, {}, { name: 'custom-metrics', namespace: 'ops' });
  const result = renderChart({ cluster: [...standardCluster(), unknown] });
  assert.equal(result.ok, false);
  assert.match(result.error, /belongs to service ops\/custom-metrics/);
});

test('another infergate release conflicts too', () => {
  const other = existingAPIService(
    { 'meta.helm.sh/release-name': 'infergate', 'meta.helm.sh/release-namespace': 'staging' },
    { 'app.kubernetes.io/name': 'infergate' },
    { name: 'infergate-autoscaler', namespace: 'staging' },
  );
  const result = renderChart({ namespace: 'production', cluster: [...standardCluster(), other] });
  assert.equal(result.ok, false);
  assert.match(result.error, /Helm release "infergate" in namespace "staging"/);
});

test('own APIService upgrades cleanly', () => {
  const own = existingAPIService(
    { 'meta.helm.sh/release-name': 'infergate', 'meta.helm.sh/release-namespace': 'inference' },
    { 'app.kubernetes.io/name': 'infergate' },
    { name: 'infergate-autoscaler', namespace: 'inference' },
  );
  const result = renderOk({ namespace: 'inference', upgrade: true, cluster: [...standardCluster(), own] });
  assert.equal(objectsOf(result, 'APIService').length, 1);
});

test('apiService.create=false installs the rest', () => {
  const keda = existingAPIService(
    { 'meta.helm.sh/release-name': 'keda', 'meta.helm.sh/release-namespace': 'keda' },
    {},
    { name: 'keda-metrics-apiserver', namespace: 'keda' },
  );
  const result = renderOk({ valuesFiles: ['apiservice-disabled.yaml'], cluster: [...standardCluster(), keda] });
  assert.equal(objectsOf(result, 'APIService').length, 0);
  assert.equal(objectsOf(result, 'ClusterRole').length, 0);
  for (const name of ['infergate-gateway', 'infergate-autoscaler']) {
    assert.equal(objectsOf(result, 'Deployment', name).length, 1, name);
  }
  assert.equal(objectsOf(result, 'Secret', 'infergate-autoscaler-tls').length, 1);
  assert.equal(objectsOf(result, 'HorizontalPodAutoscaler').length, 1);
});
