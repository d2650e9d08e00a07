import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { objectOf, objectsOf, renderOk } from './helpers.ts';

const options = { valuesFiles: ['monitoring.yaml'], namespace: 'inference' };

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function rules(): Rule[] {
  const rule = objectOf(renderOk(options), 'PrometheusRule', 'infergate');
  const groups = (rule.spec as { groups: Array<{ rules: Rule[] }> }).groups;
  return groups.flatMap((group) => group.rules);
}

test('promtool accepts the alert rules', () => {
  const rule = objectOf(renderOk(options), 'PrometheusRule', 'infergate');
  const work = mkdtempSync(join(tmpdir(), 'infergate-rules-'));
  try {
    const file = join(work, 'rules.yaml');
    writeFileSync(file, stringify(rule.spec));
    const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /SUCCESS: 3 rules found/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('no-replica alert skips unknown models', () => {
  const rule = objectOf(renderOk(options), 'PrometheusRule', 'infergate');
  const work = mkdtempSync(join(tmpdir(), 'infergate-rules-'));
  try {
    writeFileSync(join(work, 'rules.yaml'), stringify(rule.spec));
    // Requests for a configured model without ready replicas, and invalid requests counted
    // under "(unknown)", for 20 minutes; only the configured model may raise the alert.
    const tests = {
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            { series: 'infergate_requests_total{namespace="inference", model="chat", protocol="openai", outcome="success"}', values: '0+10x20' },
            { series: 'infergate_requests_total{namespace="inference", model="(unknown)", protocol="openai", outcome="rejected_invalid"}', values: '0+10x20' },
            { series: 'infergate_replicas{namespace="inference", model="chat", state="ready"}', values: '0x20' },
          ],
          alert_rule_test: [
            {
              eval_time: '20m',
              alertname: 'InfergateNoReadyReplicas',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical', namespace: 'inference', model: 'chat' },
                  exp_annotations: {
                    summary: 'Model chat has no ready replica',
                    description: "Model chat in inference receives requests but no replica is ready. Check the model pods (scheduling, GPU nodes, readiness) and the autoscaler's scale actions.",
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    writeFileSync(join(work, 'tests.yaml'), stringify(tests));
    const result = spawnSync('promtool', ['test', 'rules', 'tests.yaml'], { cwd: work, encoding: 'utf8' });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('alerts cover queue, replicas and sources', () => {
  const byName = new Map(rules().map((rule) => [rule.alert, rule]));
  assert.deepEqual([...byName.keys()].sort(), ['InfergateAutoscalerSourceDown', 'InfergateNoReadyReplicas', 'InfergateQueueGrowing']);
  assert.match(byName.get('InfergateQueueGrowing')?.expr ?? '', /infergate_queue_depth\{namespace="inference"\}\) > 100/);
  assert.match(byName.get('InfergateNoReadyReplicas')?.expr ?? '', /infergate_replicas\{namespace="inference", state="ready"\}/);
  assert.match(byName.get('InfergateAutoscalerSourceDown')?.expr ?? '', /infergate_autoscaler_source_up\{namespace="inference"\}\) == 0/);
  for (const rule of byName.values()) {
    assert.ok(rule.labels.severity, rule.alert);
    assert.match(rule.annotations.summary ?? '', /\{\{ \$labels\.(model|gateway) \}\}/, rule.alert);
  }
});

test('ServiceMonitor scrapes both admin ports', () => {
  const result = renderOk(options);
  const monitor = objectOf(result, 'ServiceMonitor', 'infergate');
  assert.equal(monitor.metadata.labels?.release, 'kube-prometheus-stack');
  const spec = monitor.spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
  assert.deepEqual(spec.endpoints.map((endpoint) => [endpoint.port, endpoint.path]), [['admin', '/metrics']]);
  const selected = objectsOf(result, 'Service').filter((service) =>
    Object.entries(spec.selector.matchLabels).every(([key, value]) => service.metadata.labels?.[key] === value),
  );
  assert.deepEqual(selected.map((service) => service.metadata.name).sort(), ['infergate-autoscaler', 'infergate-gateway-admin']);
  for (const service of selected) {
    const ports = (service.spec as { ports: Array<{ name: string }> }).ports.map((port) => port.name);
    assert.ok(ports.includes('admin'), service.metadata.name);
  }
});

test('dashboard ConfigMap holds valid JSON', () => {
  const result = renderOk(options);
  const configMap = objectOf(result, 'ConfigMap', 'infergate-dashboard');
  assert.equal(configMap.metadata.namespace, 'monitoring');
  assert.equal(configMap.metadata.labels?.grafana_dashboard, '1');
  const dashboard = JSON.parse((configMap.data as Record<string, string>)['infergate.json'] as string) as {
    uid: string;
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  assert.equal(dashboard.uid, 'infergate-overview');
  const expressions = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr)).join('\n');
  for (const metric of ['infergate_queue_depth', 'infergate_batch_size_bucket', 'infergate_request_duration_seconds_bucket', 'infergate_replicas', 'infergate_autoscaler_gpus']) {
    assert.ok(expressions.includes(metric), `no panel uses ${metric}`);
  }
});

test('monitoring objects are off by default', () => {
  const result = renderOk();
  assert.equal(objectsOf(result, 'ServiceMonitor').length, 0);
  assert.equal(objectsOf(result, 'PrometheusRule').length, 0);
  assert.equal(objectsOf(result, 'ConfigMap', 'infergate-dashboard').length, 0);
});
