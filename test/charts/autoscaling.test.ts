import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { DEMAND_METRIC } from '../../autoscaler/src/config/defaults.ts';
import { matchesSelector, parseSelector } from '../../autoscaler/src/api/selector.ts';
import { parseConfigText as parseAutoscalerConfig } from '../../autoscaler/src/config/load.ts';
import { objectOf, objectsOf, renderChart, renderOk, type KubeObject } from './helpers.ts';

interface HpaSpec {
  scaleTargetRef: { apiVersion: string; kind: string; name: string };
  minReplicas: number;
  maxReplicas: number;
  metrics: Array<{
    type: string;
    external?: {
      metric: { name: string; selector: { matchLabels: Record<string, string> } };
      target: { type: string; averageValue?: string };
    };
  }>;
  behavior: {
    scaleUp: { stabilizationWindowSeconds: number; policies: unknown[] };
    scaleDown: { stabilizationWindowSeconds: number; policies: unknown[] };
  };
}

function hpaSpec(object: KubeObject): HpaSpec {
  return object.spec as HpaSpec;
}

function autoscalerConfig(result: ReturnType<typeof renderOk>): Record<string, unknown> {
  const configMap = objectOf(result, 'ConfigMap', 'infergate-autoscaler');
  const data = configMap.data as Record<string, string>;
  return parseYaml(data['autoscaler.yaml'] as string) as Record<string, unknown>;
}

test('HPA per model reads infergate_demand', () => {
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml'] });
  const hpas = objectsOf(result, 'HorizontalPodAutoscaler');
  assert.deepEqual(hpas.map((hpa) => hpa.metadata.name).sort(), ['infergate-bge-large-en', 'infergate-llama-3-70b', 'infergate-resnet50']);
  const expected: Record<string, { model: string; namespace: string; kind: string; target: string; average: string; min: number; max: number }> = {
    'infergate-llama-3-70b': { model: 'llama-3-70b', namespace: 'chat', kind: 'Deployment', target: 'llama-3-70b', average: '32', min: 1, max: 3 },
    'infergate-bge-large-en': { model: 'bge-large-en', namespace: 'embeddings', kind: 'Deployment', target: 'bge-large-en', average: '128', min: 1, max: 4 },
    'infergate-resnet50': { model: 'resnet50', namespace: 'vision', kind: 'StatefulSet', target: 'triton-resnet50', average: '8', min: 2, max: 4 },
  };
  for (const hpa of hpas) {
    const want = expected[hpa.metadata.name];
    assert.ok(want);
    const spec = hpaSpec(hpa);
    assert.equal(hpa.metadata.namespace, want.namespace);
    assert.deepEqual(spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: want.kind, name: want.target });
    assert.equal(spec.minReplicas, want.min);
    assert.equal(spec.maxReplicas, want.max);
    assert.equal(spec.metrics.length, 1);
    const metric = spec.metrics[0];
    assert.equal(metric?.type, 'External');
    assert.equal(metric?.external?.metric.name, 'infergate_demand');
    // The name the autoscaler's external metrics API serves.
    assert.equal(metric?.external?.metric.name, DEMAND_METRIC);
    assert.deepEqual(metric?.external?.metric.selector, { matchLabels: { model: want.model } });
    assert.equal(metric?.external?.target.type, 'AverageValue');
    assert.equal(metric?.external?.target.averageValue, want.average);
  }
});

test('HPA metric matches the autoscaler config', () => {
  // The autoscaler serves a model's metric only in its target namespace, so the HPA
  // must live there and select exactly the model name in the autoscaler config.
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml'] });
  const config = autoscalerConfig(result);
  const models = config.models as Array<{ name: string; targetPerReplica: number; target: { kind: string; name: string; namespace: string } }>;
  for (const model of models) {
    const [hpa] = objectsOf(result, 'HorizontalPodAutoscaler').filter(
      (object) => hpaSpec(object).metrics[0]?.external?.metric.selector.matchLabels.model === model.name,
    );
    assert.ok(hpa, `no HPA selects model ${model.name}`);
    assert.equal(hpa.metadata.namespace, model.target.namespace);
    assert.equal(hpaSpec(hpa).scaleTargetRef.name, model.target.name);
    assert.equal(hpaSpec(hpa).scaleTargetRef.kind, model.target.kind);
    assert.equal(Number(hpaSpec(hpa).metrics[0]?.external?.target.averageValue), model.targetPerReplica);
  }
});

test('HPA selector picks one model', () => {
  // The HPA controller turns matchLabels into a labelSelector query string; the
  // autoscaler's own parser must select exactly the HPA's model with it.
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml'] });
  const modelNames = (autoscalerConfig(result).models as Array<{ name: string }>).map((model) => model.name);
  for (const hpa of objectsOf(result, 'HorizontalPodAutoscaler')) {
    const matchLabels = hpaSpec(hpa).metrics[0]?.external?.metric.selector.matchLabels ?? {};
    const query = Object.entries(matchLabels).map(([key, value]) => `${key}=${value}`).join(',');
    const requirements = parseSelector(query);
    const selected = modelNames.filter((name) => matchesSelector(requirements, { model: name }));
    assert.deepEqual(selected, [matchLabels.model], hpa.metadata.name);
  }
});

test('HPA behavior adds no window', () => {
  // The autoscaler already keeps the maximum demand over its scale-down window, so
  // an HPA window would only delay scaling in either direction.
  const result = renderOk();
  const spec = hpaSpec(objectOf(result, 'HorizontalPodAutoscaler', 'infergate-llama-3-8b'));
  assert.equal(spec.behavior.scaleUp.stabilizationWindowSeconds, 0);
  assert.equal(spec.behavior.scaleDown.stabilizationWindowSeconds, 0);
  assert.ok(spec.behavior.scaleDown.policies.length > 0);
});

test('HPA behavior merges per-model overrides', () => {
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml'] });
  const spec = hpaSpec(objectOf(result, 'HorizontalPodAutoscaler', 'infergate-llama-3-70b'));
  assert.equal(spec.behavior.scaleDown.stabilizationWindowSeconds, 120);
  assert.equal(spec.behavior.scaleUp.stabilizationWindowSeconds, 0);
  assert.ok(spec.behavior.scaleDown.policies.length > 0);
});

test('HPA keeps a floor of one for scale to zero', () => {
  const result = renderOk({ valuesFiles: ['scale-to-zero.yaml'] });
  const spec = hpaSpec(objectOf(result, 'HorizontalPodAutoscaler', 'infergate-mistral-7b-instruct'));
  assert.equal(spec.minReplicas, 1);
  const models = autoscalerConfig(result).models as Array<Record<string, unknown>>;
  assert.equal(models[0]?.minReplicas, 0);
  assert.equal(models[0]?.idleToZeroSeconds, 900);
  assert.equal(models[0]?.scaleDownWindowSeconds, 600);
});

test('fractional targetPerReplica stays a quantity', () => {
  const result = renderOk({ values: { models: [{ name: 'slow-model', protocol: 'openai', replicas: { kubernetes: { service: 'slow' } }, autoscaling: { targetPerReplica: 0.5, maxReplicas: 2 } }] } });
  const spec = hpaSpec(objectOf(result, 'HorizontalPodAutoscaler', 'infergate-slow-model'));
  assert.equal(spec.metrics[0]?.external?.target.averageValue, '0.5');
});

test('model without autoscaling gets no HPA', () => {
  const result = renderOk({ values: { models: [{ name: 'pinned', protocol: 'v2', replicas: { static: ['http://10.1.2.3:8000'] }, autoscaling: { enabled: false } }] } });
  assert.equal(objectsOf(result, 'HorizontalPodAutoscaler').length, 0);
  const config = autoscalerConfig(result);
  assert.deepEqual(config.models, []);
});

test('autoscaler config carries the model settings', () => {
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml'], namespace: 'inference' });
  const config = autoscalerConfig(result);
  assert.equal(config.gpuBudget, 12);
  assert.equal(config.staleAfterMs, 10000);
  assert.equal(config.pollIntervalMs, 1000);
  assert.deepEqual(config.gateways, { kubernetes: { namespace: 'inference', service: 'infergate-gateway-admin', port: 'admin' } });
  const models = config.models as Array<Record<string, unknown>>;
  const llama = models.find((model) => model.name === 'llama-3-70b');
  assert.deepEqual(llama, {
    name: 'llama-3-70b',
    target: { kind: 'Deployment', name: 'llama-3-70b', namespace: 'chat' },
    targetPerReplica: 32,
    minReplicas: 1,
    maxReplicas: 3,
    gpusPerReplica: 4,
    priority: 10,
  });
});

const PINNED_CA = '-----BEGIN CERTIFICATE-----\nMIIBOzCB5qADAgECAgEBMA0GCSqGSIb3DQEBCwUAMBMxETAPBgNVBAMTCGZyb250\n-----END CERTIFICATE-----\n';

function autoscalerPod(result: ReturnType<typeof renderOk>): PodSpec {
  return (objectOf(result, 'Deployment', 'infergate-autoscaler').spec as { template: { spec: PodSpec } }).template.spec;
}

function mountFor(pod: PodSpec, file: unknown): { name: string; mountPath: string } | undefined {
  const mounts = pod.containers[0]?.volumeMounts ?? [];
  return mounts.find((mount) => typeof file === 'string' && file.startsWith(`${mount.mountPath}/`));
}

test('autoscaler config points at mounted TLS files', () => {
  const result = renderOk();
  const metricsApi = autoscalerConfig(result).metricsApi as Record<string, unknown>;
  const pod = autoscalerPod(result);
  assert.equal(mountFor(pod, metricsApi.tlsCertFile)?.name, 'tls');
  assert.equal(mountFor(pod, metricsApi.tlsKeyFile)?.name, 'tls');
  const volumes = pod.volumes ?? [];
  assert.equal(volumes.find((volume) => volume.name === 'tls')?.secret?.secretName, 'infergate-autoscaler-tls');
  assert.equal(metricsApi.port, 6443);
});

test('client CA is read from the cluster', () => {
  // Rendering needs no cluster: the autoscaler reads kube-system/extension-apiserver-authentication itself.
  const result = renderOk({ cluster: [] });
  const metricsApi = autoscalerConfig(result).metricsApi as Record<string, unknown>;
  assert.equal(metricsApi.clientCAFromCluster, true);
  assert.equal(metricsApi.clientCAFile, undefined);
  assert.equal(metricsApi.allowedNames, undefined);
  assert.equal(objectsOf(result, 'ConfigMap', 'infergate-autoscaler-requestheader').length, 0);
  assert.equal(autoscalerPod(result).volumes?.some((volume) => volume.name === 'requestheader'), false);
});

test('pinned client CA is mounted', () => {
  const result = renderOk({ values: { autoscaler: { metricsApi: { requestHeaderClientCA: PINNED_CA, allowedNames: ['front-proxy-client'] } } } });
  const metricsApi = autoscalerConfig(result).metricsApi as Record<string, unknown>;
  assert.equal(metricsApi.clientCAFromCluster, undefined);
  assert.deepEqual(metricsApi.allowedNames, ['front-proxy-client']);
  const pod = autoscalerPod(result);
  assert.equal(mountFor(pod, metricsApi.clientCAFile)?.name, 'requestheader');
  assert.equal(pod.volumes?.find((volume) => volume.name === 'requestheader')?.configMap?.name, 'infergate-autoscaler-requestheader');
  const data = objectOf(result, 'ConfigMap', 'infergate-autoscaler-requestheader').data as Record<string, string>;
  assert.equal(data['requestheader-client-ca-file']?.trim(), PINNED_CA.trim());
});

test('pinned client CA must be PEM', () => {
  const result = renderChart({ values: { autoscaler: { metricsApi: { requestHeaderClientCA: 'front-proxy-ca.crt' } } } });
  assert.equal(result.ok, false);
  assert.match(result.error, /autoscaler\.metricsApi\.requestHeaderClientCA: "front-proxy-ca\.crt" is not a PEM certificate/);
});

test('allowedNames value reaches the config', () => {
  const result = renderOk({ values: { autoscaler: { metricsApi: { allowedNames: ['aggregator', 'front-proxy-client'] } } } });
  const metricsApi = autoscalerConfig(result).metricsApi as Record<string, unknown>;
  assert.deepEqual(metricsApi.allowedNames, ['aggregator', 'front-proxy-client']);
  assert.equal(metricsApi.clientCAFromCluster, true);
});

interface PodSpec {
  containers: Array<{ name: string; volumeMounts?: Array<{ name: string; mountPath: string }> }>;
  volumes?: Array<{ name: string; secret?: { secretName: string }; configMap?: { name: string } }>;
}

test('autoscaler authorization defaults to delegated', () => {
  const text = (objectOf(renderOk(), 'ConfigMap', 'infergate-autoscaler').data as Record<string, string>)['autoscaler.yaml'] as string;
  const config = parseAutoscalerConfig(text, 'autoscaler.yaml from the chart');
  assert.deepEqual({ ...config.metricsApi.authorization }, { mode: 'delegated', allowTtlMs: 10_000, denyTtlMs: 10_000, cacheSize: 8192 });
});

test('autoscaler authorization mode and TTLs come from values', () => {
  const result = renderOk({ values: { autoscaler: { metricsApi: { authorization: { mode: 'none', allowTtlMs: 2000, denyTtlMs: 0 } } } } });
  const text = (objectOf(result, 'ConfigMap', 'infergate-autoscaler').data as Record<string, string>)['autoscaler.yaml'] as string;
  const config = parseAutoscalerConfig(text, 'autoscaler.yaml from the chart');
  assert.equal(config.metricsApi.authorization.mode, 'none');
  assert.equal(config.metricsApi.authorization.allowTtlMs, 2000);
  assert.equal(config.metricsApi.authorization.denyTtlMs, 0);
});
