import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objectsOf, renderChart, renderOk, type RenderOptions } from './helpers.ts';
import { validateObject } from './kube-schema.ts';

const scenarios: Record<string, RenderOptions> = {
  'default values': {},
  'one model': { valuesFiles: ['one-model.yaml'] },
  'three models with a GPU budget': { valuesFiles: ['three-models-gpu-budget.yaml'] },
  'scale to zero': { valuesFiles: ['scale-to-zero.yaml'] },
  'cert-manager': { valuesFiles: ['cert-manager.yaml'] },
  'APIService disabled': { valuesFiles: ['apiservice-disabled.yaml'] },
  'monitoring extras': { valuesFiles: ['monitoring.yaml'], apiVersions: ['monitoring.coreos.com/v1'] },
  'example GPU model': { valuesFiles: ['example-model.yaml'] },
  'everything on': {
    valuesFiles: ['three-models-gpu-budget.yaml', 'monitoring.yaml', 'cert-manager.yaml'],
    values: { exampleModel: { enabled: true } },
  },
  'upgrade of a named release': { releaseName: 'prod', namespace: 'ml-serving', upgrade: true },
};

for (const [name, options] of Object.entries(scenarios)) {
  test(`chart renders valid objects: ${name}`, async () => {
    const result = renderOk(options);
    assert.ok(result.documents.length > 0);
    for (const { object, source } of result.documents) {
      assert.ok(source.startsWith('infergate/templates/'), `object ${object.kind} ${object.metadata?.name} has no source comment`);
      await validateObject(object);
    }
  });
}

test('object names are unique per kind and namespace', () => {
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml', 'monitoring.yaml'], values: { exampleModel: { enabled: true } } });
  const seen = new Set<string>();
  for (const { object } of result.documents) {
    const key = `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    assert.ok(!seen.has(key), `duplicate object ${key}`);
    seen.add(key);
  }
});

test('default render has the core objects', () => {
  const result = renderOk();
  const kinds = new Set(result.documents.map((document) => document.object.kind));
  for (const kind of ['Deployment', 'Service', 'ConfigMap', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'PodDisruptionBudget', 'APIService', 'Secret', 'HorizontalPodAutoscaler']) {
    assert.ok(kinds.has(kind), `missing ${kind}`);
  }
  assert.equal(objectsOf(result, 'Deployment').length, 2);
  assert.equal(objectsOf(result, 'ServiceMonitor').length, 0);
  assert.equal(objectsOf(result, 'PersistentVolumeClaim').length, 0);
});

test('every namespaced object has a namespace', () => {
  const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'APIService']);
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml', 'monitoring.yaml', 'cert-manager.yaml'] });
  for (const { object } of result.documents) {
    if (clusterScoped.has(object.kind)) {
      assert.equal(object.metadata.namespace, undefined, `${object.kind} ${object.metadata.name} is cluster-scoped`);
    } else {
      assert.ok(object.metadata.namespace, `${object.kind} ${object.metadata.name} has no namespace`);
    }
  }
});

test('every object carries the release labels', () => {
  const result = renderOk({ releaseName: 'edge', values: { commonLabels: { team: 'ml-platform' } } });
  for (const { object } of result.documents) {
    const labels = object.metadata.labels ?? {};
    assert.equal(labels['app.kubernetes.io/instance'], 'edge', `${object.kind} ${object.metadata.name}`);
    assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm', `${object.kind} ${object.metadata.name}`);
    assert.equal(labels.team, 'ml-platform', `${object.kind} ${object.metadata.name}`);
  }
});

test('renderer reports template failures', () => {
  const result = renderChart({ values: { models: [], exampleModel: { enabled: false } } });
  assert.equal(result.ok, false);
  assert.match(result.error, /models: the list is empty/);
});

test('NOTES show how to try the release', () => {
  const result = renderOk({ valuesFiles: ['one-model.yaml'], namespace: 'inference' });
  assert.match(result.notes, /kubectl -n inference port-forward svc\/infergate-gateway 8080:80/);
  assert.match(result.notes, /curl -s http:\/\/127\.0\.0\.1:8080\/v1\/chat\/completions/);
  assert.match(result.notes, /"model": "llama-3-8b"/);
  assert.match(result.notes, /kubectl get --raw "\/apis\/external\.metrics\.k8s\.io\/v1beta1\/namespaces\/models\/infergate_demand\?labelSelector=model%3Dllama-3-8b"/);
  assert.match(result.notes, /kubectl get hpa --all-namespaces -l app\.kubernetes\.io\/instance=infergate,app\.kubernetes\.io\/component=autoscaling --watch/);
});

test('NOTES explain a disabled APIService', () => {
  const result = renderOk({ valuesFiles: ['apiservice-disabled.yaml'] });
  assert.match(result.notes, /autoscaler\.apiService\.create is false/);
  assert.doesNotMatch(result.notes, /get --raw/);
});

test('unknown fields fail validation', async () => {
  const result = renderOk();
  const deployment = structuredClone(objectsOf(result, 'Deployment', 'infergate-gateway')[0]);
  assert.ok(deployment);
  const spec = deployment.spec as { template: { spec: { containers: Array<Record<string, unknown>> } } };
  (spec.template.spec.containers[0] as Record<string, unknown>).readinesProbe = { httpGet: { path: '/readyz', port: 'admin' } };
  await assert.rejects(validateObject(deployment), /unknown fields: spec\.template\.spec\.containers\[0\]\.readinesProbe/);
});

test('schema errors fail validation', async () => {
  const result = renderOk();
  const hpa = structuredClone(objectsOf(result, 'HorizontalPodAutoscaler')[0]);
  assert.ok(hpa);
  (hpa.spec as Record<string, unknown>).maxReplicas = 'eight';
  await assert.rejects(validateObject(hpa), /HorizontalPodAutoscaler infergate-llama-3-8b is invalid: .*maxReplicas must be integer/);
});

test('long release names stay valid', () => {
  // Service names are DNS labels (63 characters, starting with a letter); other
  // object names are DNS subdomains (253 characters).
  const releaseName = 'customer-facing-inference-platform-production-eu-west';
  const result = renderOk({ releaseName, valuesFiles: ['three-models-gpu-budget.yaml'], values: { exampleModel: { enabled: true } } });
  for (const { object } of result.documents) {
    const name = object.metadata.name;
    if (object.kind === 'Service') {
      assert.match(name, /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, `Service ${name} is not a DNS label`);
    } else {
      assert.ok(name.length <= 253, `${object.kind} ${name} is longer than 253 characters`);
      assert.match(name, /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/, `${object.kind} ${name} is not a valid name`);
    }
  }
});
