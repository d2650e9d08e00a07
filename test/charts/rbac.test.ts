import { test } from 'node:test';
import assert from 'node:assert/strict';
import { objectOf, objectsOf, renderOk, type KubeObject } from './helpers.ts';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

interface Binding {
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects: Array<{ kind: string; name: string; namespace: string }>;
}

/** Flattens rules to sorted "group/resource:verb" strings, so a test compares whole rule sets. */
function permissions(role: KubeObject): string[] {
  const rules = role.rules as Rule[];
  const flat: string[] = [];
  for (const rule of rules) {
    assert.equal(rule.resourceNames, undefined);
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        for (const verb of rule.verbs) flat.push(`${group}/${resource}:${verb}`);
      }
    }
  }
  return flat.sort();
}

function bindingsTo(objects: KubeObject[], serviceAccount: string): KubeObject[] {
  return objects.filter((object) => (object as unknown as Binding).subjects.some((subject) => subject.kind === 'ServiceAccount' && subject.name === serviceAccount));
}

test('gateway may only watch EndpointSlices', () => {
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml'], namespace: 'inference' });
  const roles = objectsOf(result, 'Role', 'infergate-gateway');
  assert.deepEqual(roles.map((role) => role.metadata.namespace).sort(), ['chat', 'embeddings', 'vision']);
  for (const role of roles) {
    assert.deepEqual(permissions(role), ['discovery.k8s.io/endpointslices:get', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
  }
  const bindings = bindingsTo([...objectsOf(result, 'RoleBinding'), ...objectsOf(result, 'ClusterRoleBinding')], 'infergate-gateway');
  assert.equal(bindings.length, 3);
  for (const binding of bindings) {
    const { roleRef, subjects } = binding as unknown as Binding;
    assert.deepEqual(roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'infergate-gateway' });
    assert.deepEqual(subjects, [{ kind: 'ServiceAccount', name: 'infergate-gateway', namespace: 'inference' }]);
  }
});

test('autoscaler scales only model targets', () => {
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml'], namespace: 'inference' });
  const scalers = objectsOf(result, 'Role', 'infergate-autoscaler-scaler');
  const byNamespace = new Map(scalers.map((role) => [role.metadata.namespace, permissions(role)]));
  assert.deepEqual([...byNamespace.keys()].sort(), ['chat', 'embeddings', 'vision']);
  // The autoscaler reads and patches the scale subresource and creates Events, nothing
  // more. gpusPerReplica is set for chat and embeddings, so it reads no pod template there.
  const scaleAndEvents = (resource: string): string[] => [`apps/${resource}/scale:get`, `apps/${resource}/scale:patch`, '/events:create'].sort();
  assert.deepEqual(byNamespace.get('chat'), scaleAndEvents('deployments'));
  assert.deepEqual(byNamespace.get('embeddings'), scaleAndEvents('deployments'));
  assert.deepEqual(byNamespace.get('vision'), [...scaleAndEvents('statefulsets'), 'apps/statefulsets:get'].sort());
});

test('autoscaler reads pod templates without gpusPerReplica', () => {
  const result = renderOk({ namespace: 'inference' });
  const role = objectOf(result, 'Role', 'infergate-autoscaler-scaler');
  assert.equal(role.metadata.namespace, 'inference');
  assert.ok(permissions(role).includes('apps/deployments:get'));
  assert.ok(!permissions(role).some((permission) => permission.startsWith('apps/statefulsets')));
});

test('pod template reads follow the workload kind', () => {
  // One namespace, two kinds: only the Deployment model lacks gpusPerReplica, so the
  // autoscaler reads Deployments there and never StatefulSets.
  const models = [
    { name: 'chat', protocol: 'openai', replicas: { kubernetes: { service: 'chat', namespace: 'ml' } }, autoscaling: { targetPerReplica: 8, maxReplicas: 2 } },
    {
      name: 'vision',
      protocol: 'v2',
      replicas: { kubernetes: { service: 'vision', namespace: 'ml' } },
      autoscaling: { target: { kind: 'StatefulSet' }, targetPerReplica: 8, maxReplicas: 2, gpusPerReplica: 1 },
    },
  ];
  const role = objectOf(renderOk({ namespace: 'inference', values: { models } }), 'Role', 'infergate-autoscaler-scaler');
  assert.equal(role.metadata.namespace, 'ml');
  assert.deepEqual(permissions(role), [
    '/events:create',
    'apps/deployments/scale:get',
    'apps/deployments/scale:patch',
    'apps/deployments:get',
    'apps/statefulsets/scale:get',
    'apps/statefulsets/scale:patch',
  ]);
});

test('autoscaler discovers gateways in its namespace', () => {
  const result = renderOk({ namespace: 'inference' });
  const role = objectOf(result, 'Role', 'infergate-autoscaler-gateway-discovery');
  assert.equal(role.metadata.namespace, 'inference');
  assert.deepEqual(permissions(role), ['discovery.k8s.io/endpointslices:get', 'discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
});

test('autoscaler holds the aggregated API grants', () => {
  const result = renderOk({ namespace: 'inference' });
  const bindings = bindingsTo([...objectsOf(result, 'RoleBinding'), ...objectsOf(result, 'ClusterRoleBinding')], 'infergate-autoscaler');
  const refs = bindings.map((binding) => {
    const { roleRef } = binding as unknown as Binding;
    return `${binding.kind}/${binding.metadata.namespace ?? ''}/${roleRef.kind}/${roleRef.name}`;
  });
  assert.deepEqual(refs.sort(), [
    'ClusterRoleBinding//ClusterRole/system:auth-delegator',
    'RoleBinding/inference/Role/infergate-autoscaler-gateway-discovery',
    'RoleBinding/inference/Role/infergate-autoscaler-scaler',
    'RoleBinding/kube-system/Role/extension-apiserver-authentication-reader',
  ]);
  for (const binding of bindings) {
    assert.deepEqual((binding as unknown as Binding).subjects, [{ kind: 'ServiceAccount', name: 'infergate-autoscaler', namespace: 'inference' }]);
  }
});

test('pinned CA drops the kube-system binding', () => {
  const pinnedCA = '-----BEGIN CERTIFICATE-----\nMIIBOzCB5qADAgECAgEBMA0GCSqGSIb3DQEBCwUAMBMxETAPBgNVBAMTCGZyb250\n-----END CERTIFICATE-----\n';
  const result = renderOk({ namespace: 'inference', values: { autoscaler: { metricsApi: { requestHeaderClientCA: pinnedCA } } } });
  const kubeSystem = objectsOf(result, 'RoleBinding').filter((binding) => binding.metadata.namespace === 'kube-system');
  assert.deepEqual(kubeSystem, []);
});

test('HPA controller may read infergate_demand', () => {
  const result = renderOk({ namespace: 'inference' });
  const [clusterRole] = objectsOf(result, 'ClusterRole');
  assert.ok(clusterRole);
  assert.equal(objectsOf(result, 'ClusterRole').length, 1);
  assert.deepEqual(permissions(clusterRole), ['external.metrics.k8s.io/infergate_demand:get', 'external.metrics.k8s.io/infergate_demand:list']);
  const binding = objectsOf(result, 'ClusterRoleBinding').find((object) => (object as unknown as Binding).roleRef.name === clusterRole.metadata.name);
  assert.ok(binding);
  assert.deepEqual((binding as unknown as Binding).subjects, [{ kind: 'ServiceAccount', name: 'horizontal-pod-autoscaler', namespace: 'kube-system' }]);
});

test('no role grants wildcards or secrets', () => {
  const result = renderOk({ valuesFiles: ['three-models-gpu-budget.yaml', 'cert-manager.yaml'], values: { exampleModel: { enabled: true } } });
  for (const role of [...objectsOf(result, 'Role'), ...objectsOf(result, 'ClusterRole')]) {
    for (const permission of permissions(role)) {
      assert.ok(!permission.includes('*'), `${role.metadata.name} grants ${permission}`);
      assert.ok(!permission.includes('/secrets:'), `${role.metadata.name} grants ${permission}`);
      assert.ok(!/:(delete|deletecollection|escalate|bind|impersonate)$/.test(permission), `${role.metadata.name} grants ${permission}`);
    }
  }
});

test('cluster-scoped names include the namespace', () => {
  // Two releases with one name in two namespaces must not share cluster-scoped objects.
  const first = renderOk({ namespace: 'team-a', valuesFiles: ['apiservice-disabled.yaml'] });
  const second = renderOk({ namespace: 'team-b', valuesFiles: ['apiservice-disabled.yaml'] });
  const names = (result: ReturnType<typeof renderOk>): string[] => objectsOf(result, 'ClusterRoleBinding').map((object) => object.metadata.name);
  for (const name of names(first)) assert.ok(!names(second).includes(name), name);
});

test('existing service accounts are bound', () => {
  const result = renderOk({ values: { gateway: { serviceAccount: { create: false, name: 'shared-gateway' } } } });
  assert.equal(objectsOf(result, 'ServiceAccount', 'shared-gateway').length, 0);
  const deployment = objectOf(result, 'Deployment', 'infergate-gateway');
  assert.equal((deployment.spec as { template: { spec: { serviceAccountName: string } } }).template.spec.serviceAccountName, 'shared-gateway');
  const binding = objectOf(result, 'RoleBinding', 'infergate-gateway');
  assert.equal((binding as unknown as Binding).subjects[0]?.name, 'shared-gateway');
});
