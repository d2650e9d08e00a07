// Render-time checks of the cross-field rules the gateway's and autoscaler's config
// loaders enforce. For each rule, a value just past the limit must fail rendering
// with a message naming the values, and the value at the limit must render a config
// that the service's loader accepts. Limits that involve an omitted value are taken
// from the services' defaults tables, so the chart's copy of a default cannot drift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { buildConfig as buildGatewayConfig } from '../../gateway/src/config/load.ts';
import { MODEL_DEFAULTS } from '../../gateway/src/config/defaults.ts';
import { parseConfigText as parseAutoscalerConfig } from '../../autoscaler/src/config/load.ts';
import { DEFAULTS as AUTOSCALER_DEFAULTS } from '../../autoscaler/src/config/defaults.ts';
import { objectOf, renderChart, renderOk, type RenderResult } from './helpers.ts';

interface Rule {
  name: string;
  /** Values one step past the limit. */
  invalid: Record<string, unknown>;
  /** The expected message, which names the values involved. */
  message: RegExp;
  /** Values exactly at the limit, which the services accept. */
  boundary: Record<string, unknown>;
}

/** Builds values with a models list of one entry that has the given gateway keys. */
function oneModel(gatewayKeys: Record<string, unknown>): Record<string, unknown> {
  return {
    models: [{ name: 'checked', protocol: 'openai', replicas: { kubernetes: { service: 'checked' } }, ...gatewayKeys, autoscaling: { targetPerReplica: 4, maxReplicas: 2 } }],
  };
}

const stale = AUTOSCALER_DEFAULTS.staleAfterMs;
const requestTimeout = AUTOSCALER_DEFAULTS.requestTimeoutMs;
const health = MODEL_DEFAULTS.health;
const ejection = MODEL_DEFAULTS.ejection;

const rules: Rule[] = [
  {
    name: 'pollIntervalMs above the default staleAfterMs',
    invalid: { autoscaler: { pollIntervalMs: stale + 1000 } },
    message: new RegExp(`autoscaler\\.pollIntervalMs: ${stale + 1000} exceeds autoscaler\\.staleAfterMs ${stale} \\(the autoscaler's default\\)`),
    boundary: { autoscaler: { pollIntervalMs: stale } },
  },
  {
    name: 'pollIntervalMs above an explicit staleAfterMs',
    invalid: { autoscaler: { pollIntervalMs: 3001, staleAfterMs: 3000 } },
    message: /autoscaler\.pollIntervalMs: 3001 exceeds autoscaler\.staleAfterMs 3000, /,
    boundary: { autoscaler: { pollIntervalMs: 3000, staleAfterMs: 3000 } },
  },
  {
    name: 'default requestTimeoutMs above staleAfterMs',
    invalid: { autoscaler: { pollIntervalMs: requestTimeout - 100, staleAfterMs: requestTimeout - 1 } },
    message: new RegExp(`autoscaler\\.requestTimeoutMs: ${requestTimeout} \\(the autoscaler's default\\) exceeds autoscaler\\.staleAfterMs ${requestTimeout - 1}`),
    boundary: { autoscaler: { pollIntervalMs: requestTimeout - 100, staleAfterMs: requestTimeout } },
  },
  {
    name: 'explicit requestTimeoutMs above staleAfterMs',
    invalid: { autoscaler: { requestTimeoutMs: 4001, staleAfterMs: 4000 } },
    message: /autoscaler\.requestTimeoutMs: 4001 exceeds autoscaler\.staleAfterMs 4000, /,
    boundary: { autoscaler: { requestTimeoutMs: 4000, staleAfterMs: 4000 } },
  },
  {
    name: 'autoscaler ports collide',
    invalid: { autoscaler: { adminPort: 6443, metricsApi: { port: 6443 } } },
    message: /autoscaler\.adminPort and autoscaler\.metricsApi\.port are both 6443/,
    boundary: { autoscaler: { adminPort: 6444, metricsApi: { port: 6443 } } },
  },
  {
    name: 'gateway ports collide',
    invalid: { gateway: { server: { port: 9090, adminPort: 9090 } } },
    message: /gateway\.server\.port and gateway\.server\.adminPort are both 9090/,
    boundary: { gateway: { server: { port: 9091, adminPort: 9090 } } },
  },
  {
    name: 'health timeout above the default interval',
    invalid: oneModel({ health: { timeoutMs: health.intervalMs + 1 } }),
    message: new RegExp(`models\\[0\\]\\.health\\.timeoutMs: ${health.intervalMs + 1} exceeds health\\.intervalMs ${health.intervalMs} \\(the gateway's default\\)`),
    boundary: oneModel({ health: { timeoutMs: health.intervalMs } }),
  },
  {
    name: 'interval below the default health timeout',
    invalid: oneModel({ health: { intervalMs: health.timeoutMs - 1 } }),
    message: new RegExp(`models\\[0\\]\\.health\\.timeoutMs: ${health.timeoutMs} \\(the gateway's default\\) exceeds health\\.intervalMs ${health.timeoutMs - 1}, `),
    boundary: oneModel({ health: { intervalMs: health.timeoutMs } }),
  },
  {
    name: 'ejection cap below the default base',
    invalid: oneModel({ ejection: { maxMs: ejection.baseMs - 1 } }),
    message: new RegExp(`models\\[0\\]\\.ejection\\.maxMs: ${ejection.baseMs - 1} is below ejection\\.baseMs ${ejection.baseMs} \\(the gateway's default\\)`),
    boundary: oneModel({ ejection: { maxMs: ejection.baseMs } }),
  },
  {
    name: 'ejection base above the default cap',
    invalid: oneModel({ ejection: { baseMs: ejection.maxMs + 1 } }),
    message: new RegExp(`models\\[0\\]\\.ejection\\.maxMs: ${ejection.maxMs} \\(the gateway's default\\) is below ejection\\.baseMs ${ejection.maxMs + 1}, `),
    boundary: oneModel({ ejection: { baseMs: ejection.maxMs } }),
  },
  {
    name: 'example model health timeout',
    invalid: { exampleModel: { enabled: true, gateway: { health: { intervalMs: 1000, timeoutMs: 1500 } } } },
    message: /exampleModel\.health\.timeoutMs: 1500 exceeds health\.intervalMs 1000, /,
    boundary: { exampleModel: { enabled: true, gateway: { health: { intervalMs: 1000, timeoutMs: 1000 } } } },
  },
];

function configText(result: RenderResult, configMap: string, key: string): string {
  const text = (objectOf(result, 'ConfigMap', configMap).data as Record<string, string>)[key];
  assert.ok(text, `${configMap} has no ${key}`);
  return text;
}

for (const rule of rules) {
  test(`rejected at render: ${rule.name}`, () => {
    const result = renderChart({ values: rule.invalid });
    assert.equal(result.ok, false, `rendered ${JSON.stringify(rule.invalid)}`);
    assert.match(result.error, rule.message);
  });

  test(`services accept the limit: ${rule.name}`, () => {
    const result = renderOk({ values: rule.boundary });
    const gateway = buildGatewayConfig(parseYaml(configText(result, 'infergate-gateway', 'gateway.yaml')), 'gateway.yaml from the chart');
    const autoscaler = parseAutoscalerConfig(configText(result, 'infergate-autoscaler', 'autoscaler.yaml'), 'autoscaler.yaml from the chart');
    assert.ok(gateway.models.length > 0);
    assert.ok(autoscaler.models.length > 0);
  });
}

test('services reject the rendered violations', () => {
  // Guards the rules above: with the chart's check bypassed, each loader rejects the
  // same combination, so the chart does not invent rules of its own.
  const autoscaler = configText(renderOk(), 'infergate-autoscaler', 'autoscaler.yaml');
  assert.throws(() => parseAutoscalerConfig(autoscaler.replace(/^pollIntervalMs: \d+$/m, `pollIntervalMs: ${stale + 1000}`), 'edited'), /pollIntervalMs: must not exceed staleAfterMs/);
  const shortStale = autoscaler.replace(/^pollIntervalMs: \d+$/m, `pollIntervalMs: 1\nstaleAfterMs: ${requestTimeout - 1}`);
  assert.throws(() => parseAutoscalerConfig(shortStale, 'edited'), /requestTimeoutMs: must not exceed staleAfterMs/);
  assert.throws(() => parseAutoscalerConfig(autoscaler.replace(/^adminPort: \d+$/m, 'adminPort: 6443'), 'edited'), /adminPort: must differ from metricsApi\.port/);

  const gateway = parseYaml(configText(renderOk(), 'infergate-gateway', 'gateway.yaml')) as { models: Array<Record<string, unknown>> };
  const [first] = gateway.models;
  assert.ok(first);
  first.health = { timeoutMs: health.intervalMs + 1 };
  first.ejection = { maxMs: ejection.baseMs - 1 };
  assert.throws(() => buildGatewayConfig(gateway, 'edited'), /health\.timeoutMs: \d+ exceeds health\.intervalMs/);
  assert.throws(() => buildGatewayConfig(gateway, 'edited'), /ejection\.maxMs: \d+ is below ejection\.baseMs/);
});
