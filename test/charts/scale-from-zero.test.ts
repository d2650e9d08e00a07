// minReplicas defaults and the coupling of minReplicas 0 with the gateway's
// scaleFromZero. Each rendered config goes through the service's own loader, so the
// assertions are about the values the services run with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { buildConfig as buildGatewayConfig, type GatewayConfig } from '../../gateway/src/config/load.ts';
import { MODEL_DEFAULTS } from '../../gateway/src/config/defaults.ts';
import { parseConfigText as parseAutoscalerConfig, type AutoscalerConfig } from '../../autoscaler/src/config/load.ts';
import { DEFAULTS as AUTOSCALER_DEFAULTS } from '../../autoscaler/src/config/defaults.ts';
import { objectOf, renderChart, renderOk, type KubeObject, type RenderResult } from './helpers.ts';

function configText(result: RenderResult, configMap: string, key: string): string {
  const text = (objectOf(result, 'ConfigMap', configMap).data as Record<string, string>)[key];
  assert.ok(text, `${configMap} has no ${key}`);
  return text;
}

function gatewayConfig(result: RenderResult): GatewayConfig {
  return buildGatewayConfig(parseYaml(configText(result, 'infergate-gateway', 'gateway.yaml')), 'gateway.yaml from the chart');
}

function autoscalerConfig(result: RenderResult): AutoscalerConfig {
  return parseAutoscalerConfig(configText(result, 'infergate-autoscaler', 'autoscaler.yaml'), 'autoscaler.yaml from the chart');
}

function hpaMinReplicas(hpa: KubeObject): number {
  return (hpa.spec as { minReplicas: number }).minReplicas;
}

/** Builds a model entry with a Kubernetes Service of the same name and the given extra keys. */
function model(name: string, extra: Record<string, unknown> = {}, autoscaling: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    protocol: 'openai',
    replicas: { kubernetes: { service: name } },
    ...extra,
    autoscaling: { targetPerReplica: 8, maxReplicas: 4, ...autoscaling },
  };
}

test('omitted minReplicas renders 1', () => {
  const result = renderOk({ values: { models: [model('no-min')] } });
  const [scaling] = autoscalerConfig(result).models;
  assert.ok(scaling);
  assert.equal(scaling.minReplicas, 1);
  assert.equal(hpaMinReplicas(objectOf(result, 'HorizontalPodAutoscaler', 'infergate-no-min')), 1);
});

test('chart minReplicas default matches the autoscaler', () => {
  // The chart always renders minReplicas, so its default must be the one the
  // autoscaler documents for an omitted key.
  const result = renderOk({ values: { models: [model('no-min')] } });
  const rendered = parseYaml(configText(result, 'infergate-autoscaler', 'autoscaler.yaml')) as { models: Array<{ minReplicas?: number }> };
  assert.equal(rendered.models[0]?.minReplicas, AUTOSCALER_DEFAULTS.model.minReplicas);
});

test('omitted minReplicas leaves scaleFromZero alone', () => {
  const result = renderOk({ values: { models: [model('no-min')] } });
  const [gatewayModel] = gatewayConfig(result).models;
  assert.ok(gatewayModel);
  assert.equal(gatewayModel.scaleFromZero.enabled, MODEL_DEFAULTS.scaleFromZero.enabled);
});

test('explicit minReplicas 0 is kept', () => {
  const result = renderOk({ values: { models: [model('sleeper', {}, { minReplicas: 0 })] } });
  const [scaling] = autoscalerConfig(result).models;
  assert.ok(scaling);
  assert.equal(scaling.minReplicas, 0);
  // An HPA cannot go below 1; the autoscaler moves the workload between 0 and 1.
  assert.equal(hpaMinReplicas(objectOf(result, 'HorizontalPodAutoscaler', 'infergate-sleeper')), 1);
});

test('minReplicas 0 turns scaleFromZero on', () => {
  const result = renderOk({ values: { models: [model('sleeper', {}, { minReplicas: 0 })] } });
  const [gatewayModel] = gatewayConfig(result).models;
  assert.ok(gatewayModel);
  assert.equal(gatewayModel.scaleFromZero.enabled, true);
  assert.equal(gatewayModel.scaleFromZero.holdTimeoutMs, MODEL_DEFAULTS.scaleFromZero.holdTimeoutMs);
  assert.equal(gatewayModel.scaleFromZero.maxHeld, MODEL_DEFAULTS.scaleFromZero.maxHeld);
});

test('minReplicas 0 keeps hold tuning', () => {
  const values = { models: [model('sleeper', { scaleFromZero: { holdTimeoutMs: 240000, maxHeld: 20 } }, { minReplicas: 0 })] };
  const [gatewayModel] = gatewayConfig(renderOk({ values })).models;
  assert.ok(gatewayModel);
  assert.equal(gatewayModel.scaleFromZero.enabled, true);
  assert.equal(gatewayModel.scaleFromZero.holdTimeoutMs, 240000);
  assert.equal(gatewayModel.scaleFromZero.maxHeld, 20);
});

test('minReplicas 0 applies per model', () => {
  const values = { models: [model('always-on'), model('sleeper', {}, { minReplicas: 0 })] };
  const models = gatewayConfig(renderOk({ values })).models;
  assert.equal(models.find((entry) => entry.name === 'always-on')?.scaleFromZero.enabled, false);
  assert.equal(models.find((entry) => entry.name === 'sleeper')?.scaleFromZero.enabled, true);
});

test('example model at zero holds requests', () => {
  const values = { exampleModel: { enabled: true, autoscaling: { minReplicas: 0 } } };
  const models = gatewayConfig(renderOk({ values })).models;
  const example = models.find((entry) => entry.name === 'qwen2.5-1.5b-instruct');
  assert.ok(example);
  assert.equal(example.scaleFromZero.enabled, true);
});

test('minReplicas 0 without autoscaling is not coupled', () => {
  // Without autoscaling nothing scales the model, so the chart does not touch scaleFromZero.
  const values = { models: [{ ...model('manual'), autoscaling: { enabled: false, minReplicas: 0 } }] };
  const [gatewayModel] = gatewayConfig(renderOk({ values })).models;
  assert.ok(gatewayModel);
  assert.equal(gatewayModel.scaleFromZero.enabled, false);
});

test('scaleFromZero disabled with minReplicas 0 fails', () => {
  const values = { models: [model('sleeper', { scaleFromZero: { enabled: false } }, { minReplicas: 0 })] };
  const result = renderChart({ values });
  assert.equal(result.ok, false);
  assert.match(result.error, /models\[0\]\.scaleFromZero\.enabled: false, but models\[0\]\.autoscaling\.minReplicas is 0/);
  assert.match(result.error, /set autoscaling\.minReplicas to 1 or more/);
});

test('scaleFromZero disabled with minReplicas 1 renders', () => {
  const values = { models: [model('steady', { scaleFromZero: { enabled: false } }, { minReplicas: 1 })] };
  const [gatewayModel] = gatewayConfig(renderOk({ values })).models;
  assert.ok(gatewayModel);
  assert.equal(gatewayModel.scaleFromZero.enabled, false);
});
