// docs/helm.md and the comments in values.yaml against the rendered chart: object
// names written as <fullname>-suffix must exist for every release name, and the
// documented HPA defaults must be the rendered ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { chartDir, renderOk, repoRoot, type RenderResult } from './helpers.ts';

const helmGuide = readFileSync(join(repoRoot, 'docs/helm.md'), 'utf8');
const valuesText = readFileSync(join(chartDir, 'values.yaml'), 'utf8');

const PINNED_CA = '-----BEGIN CERTIFICATE-----\nMIIBOzCB5qADAgECAgEBMA0GCSqGSIb3DQEBCwUAMBMxETAPBgNVBAMTCGZyb250\n-----END CERTIFICATE-----\n';

/** Collects the suffix of every `<fullname>-...` name in the text. */
function fullnameSuffixes(text: string): string[] {
  return [...text.matchAll(/<fullname>-([a-z0-9-]*[a-z0-9])/g)].map((match) => match[1] as string);
}

/** Renders with and without a pinned CA (which adds a ConfigMap) and returns every object name. */
function renderedNames(releaseName: string): Set<string> {
  const results: RenderResult[] = [
    renderOk({ releaseName }),
    renderOk({ releaseName, values: { autoscaler: { metricsApi: { requestHeaderClientCA: PINNED_CA } } } }),
  ];
  return new Set(results.flatMap((result) => result.documents.map((document) => document.object.metadata.name)));
}

test('helm guide writes names with the fullname', () => {
  assert.doesNotMatch(helmGuide, /<release>-infergate-/);
  assert.ok(fullnameSuffixes(helmGuide).length >= 3);
});

test('documented names exist for each release name', () => {
  // "infergate" contains the chart name, so the fullname is the release name alone;
  // "prod" does not, so the fullname is prod-infergate.
  const fullnames: Record<string, string> = { infergate: 'infergate', prod: 'prod-infergate' };
  const suffixes = [...new Set([...fullnameSuffixes(helmGuide), ...fullnameSuffixes(valuesText)])];
  for (const [releaseName, fullname] of Object.entries(fullnames)) {
    const names = renderedNames(releaseName);
    for (const suffix of suffixes) {
      assert.ok(names.has(`${fullname}-${suffix}`), `release ${releaseName}: no object named ${fullname}-${suffix}`);
    }
  }
});

test('helm guide fullname examples render', () => {
  const names = renderedNames('prod');
  assert.match(helmGuide, /`prod-infergate-gateway-admin`/);
  assert.ok(names.has('prod-infergate-gateway-admin'));
  assert.match(helmGuide, /`infergate-gateway-admin`/);
  assert.ok(renderedNames('infergate').has('infergate-gateway-admin'));
});

test('helm guide states the HPA windows', () => {
  const hpa = renderOk().documents.find((document) => document.object.kind === 'HorizontalPodAutoscaler');
  assert.ok(hpa);
  const behavior = (hpa.object.spec as { behavior: { scaleUp: { stabilizationWindowSeconds: number }; scaleDown: { stabilizationWindowSeconds: number } } }).behavior;
  // The row documents one value for both directions.
  assert.equal(behavior.scaleUp.stabilizationWindowSeconds, behavior.scaleDown.stabilizationWindowSeconds);
  const row = helmGuide.split('\n').find((line) => line.startsWith('| `hpa.behavior` |'));
  assert.ok(row, 'docs/helm.md has no hpa.behavior row');
  assert.ok(row.includes(`\`stabilizationWindowSeconds: ${behavior.scaleDown.stabilizationWindowSeconds}\` both ways`), row);
});

test('helm guide states the minReplicas default', () => {
  const model = { name: 'no-min', protocol: 'openai', replicas: { kubernetes: { service: 'no-min' } }, autoscaling: { targetPerReplica: 4, maxReplicas: 2 } };
  const result = renderOk({ values: { models: [model] } });
  const hpa = result.documents.find((document) => document.object.kind === 'HorizontalPodAutoscaler');
  assert.ok(hpa);
  const configMap = result.documents.find((document) => document.object.kind === 'ConfigMap' && document.object.metadata.name === 'infergate-autoscaler');
  assert.ok(configMap);
  const config = parseYaml((configMap.object.data as Record<string, string>)['autoscaler.yaml'] as string) as { models: Array<{ minReplicas: number }> };
  const rendered = config.models[0]?.minReplicas;
  assert.equal((hpa.object.spec as { minReplicas: number }).minReplicas, rendered);
  const row = helmGuide.split('\n').find((line) => line.startsWith('| `models[].autoscaling.minReplicas` / `maxReplicas` |'));
  assert.ok(row, 'docs/helm.md has no minReplicas row');
  assert.ok(row.includes(`| ${rendered} / required |`), row);
});
