// The chart's ConfigMaps must hold configs the services start with: each rendered
// config goes through the service's own loader, the same code that validates the
// file at start-up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { buildConfig as buildGatewayConfig } from '../../gateway/src/config/load.ts';
import { parseConfigText as parseAutoscalerConfig } from '../../autoscaler/src/config/load.ts';
import { objectOf, renderOk, type RenderOptions, type RenderResult } from './helpers.ts';

const scenarios: Record<string, RenderOptions> = {
  'default values': {},
  'one model': { valuesFiles: ['one-model.yaml'] },
  'three models with a GPU budget': { valuesFiles: ['three-models-gpu-budget.yaml'] },
  'scale to zero': { valuesFiles: ['scale-to-zero.yaml'] },
  'example GPU model': { valuesFiles: ['example-model.yaml'] },
  'static replicas and tuning': {
    values: {
      gateway: { server: { bodyLimitBytes: 16777216, shutdownGraceMs: 60000 } },
      autoscaler: { requestTimeoutMs: 500, staleAfterMs: 3000, kubernetesTimeoutMs: 4000, podTemplateRefreshMs: 30000, gpuBudget: 0 },
      models: [
        {
          name: 'external-llm',
          protocol: 'openai',
          replicas: { static: ['http://10.20.0.5:8000', 'http://10.20.0.6:8000'] },
          health: { path: '/health', intervalMs: 2000, timeoutMs: 1000, unhealthyThreshold: 3, healthyThreshold: 2 },
          ejection: { consecutiveFailures: 5, baseMs: 1000, maxMs: 60000 },
          upstream: { connectTimeoutMs: 2000, headersTimeoutMs: 60000, bodyTimeoutMs: 300000, keepAliveTimeoutMs: 4000 },
          retry: { maxAttempts: 3 },
          autoscaling: { target: { name: 'external-llm', namespace: 'llm' }, targetPerReplica: 2.5, maxReplicas: 3, priority: 5 },
        },
      ],
    },
  },
};

const PINNED_CA = '-----BEGIN CERTIFICATE-----\nMIIBOzCB5qADAgECAgEBMA0GCSqGSIb3DQEBCwUAMBMxETAPBgNVBAMTCGZyb250\n-----END CERTIFICATE-----\n';

function configText(result: RenderResult, configMap: string, key: string): string {
  const data = objectOf(result, 'ConfigMap', configMap).data as Record<string, string>;
  const text = data[key];
  assert.ok(text, `${configMap} has no ${key}`);
  return text;
}

for (const [name, options] of Object.entries(scenarios)) {
  test(`gateway accepts its config: ${name}`, () => {
    const result = renderOk(options);
    const text = configText(result, 'infergate-gateway', 'gateway.yaml');
    const config = buildGatewayConfig(parseYaml(text), 'gateway.yaml from the chart');
    const values = result.values.gateway as { server: { port: number; adminPort: number } };
    assert.equal(config.server.port, values.server.port);
    assert.equal(config.server.adminPort, values.server.adminPort);
  });

  test(`autoscaler accepts its config: ${name}`, () => {
    const result = renderOk(options);
    const text = configText(result, 'infergate-autoscaler', 'autoscaler.yaml');
    const config = parseAutoscalerConfig(text, 'autoscaler.yaml from the chart');
    assert.equal(config.metricsApi.insecureHttp, false);
    assert.equal(config.metricsApi.clientCAFromCluster, true);
  });
}

test('gateway config keeps tuning values', () => {
  const result = renderOk(scenarios['static replicas and tuning'] as RenderOptions);
  const config = buildGatewayConfig(parseYaml(configText(result, 'infergate-gateway', 'gateway.yaml')), 'chart');
  assert.equal(config.server.bodyLimitBytes, 16777216);
  assert.equal(config.server.shutdownGraceMs, 60000);
  const [model] = config.models;
  assert.ok(model);
  assert.equal(model.retry.maxAttempts, 3);
  assert.equal(model.health.unhealthyThreshold, 3);
});

test('autoscaler config keeps model settings', () => {
  const result = renderOk(scenarios['static replicas and tuning'] as RenderOptions);
  const config = parseAutoscalerConfig(configText(result, 'infergate-autoscaler', 'autoscaler.yaml'), 'chart');
  assert.equal(config.gpuBudget, 0);
  const [model] = config.models;
  assert.ok(model);
  assert.equal(model.targetPerReplica, 2.5);
  assert.equal(model.priority, 5);
  assert.deepEqual({ ...model.target }, { kind: 'Deployment', name: 'external-llm', namespace: 'llm' });
});

test('autoscaler accepts a pinned client CA', () => {
  const result = renderOk({ values: { autoscaler: { metricsApi: { requestHeaderClientCA: PINNED_CA, allowedNames: ['front-proxy-client'] } } } });
  const config = parseAutoscalerConfig(configText(result, 'infergate-autoscaler', 'autoscaler.yaml'), 'chart');
  assert.equal(config.metricsApi.clientCAFromCluster, false);
  assert.equal(config.metricsApi.clientCAFile, '/etc/infergate/requestheader/requestheader-client-ca-file');
  assert.deepEqual([...config.metricsApi.allowedNames], ['front-proxy-client']);
});

test('loaders reject a damaged config', () => {
  // Guards the tests above: the loaders really validate what the chart renders.
  const result = renderOk();
  const gateway = parseYaml(configText(result, 'infergate-gateway', 'gateway.yaml')) as { models: Array<Record<string, unknown>> };
  (gateway.models[0] as Record<string, unknown>).protocol = 'grpc';
  assert.throws(() => buildGatewayConfig(gateway, 'damaged'), /protocol/);
  const autoscaler = configText(result, 'infergate-autoscaler', 'autoscaler.yaml').replace('targetPerReplica: 16', 'targetPerReplica: -1');
  assert.throws(() => parseAutoscalerConfig(autoscaler, 'damaged'), /targetPerReplica/);
});
