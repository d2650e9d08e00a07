import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { objectOf, objectsOf, renderOk, type KubeObject, type RenderResult } from './helpers.ts';

interface Probe {
  httpGet?: { path: string; port: string | number };
}

interface Container {
  name: string;
  image: string;
  ports?: Array<{ name: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: {
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  terminationGracePeriodSeconds?: number;
  nodeSelector?: Record<string, string>;
  tolerations?: Array<{ key: string; operator: string; effect: string }>;
  volumes?: Array<{ name: string; persistentVolumeClaim?: { claimName: string }; emptyDir?: { medium?: string } }>;
}

function podSpec(workload: KubeObject): PodSpec {
  return (workload.spec as { template: { spec: PodSpec } }).template.spec;
}

function podAnnotations(workload: KubeObject): Record<string, string> {
  return (workload.spec as { template: { metadata: { annotations?: Record<string, string> } } }).template.metadata.annotations ?? {};
}

function allWorkloads(result: RenderResult): KubeObject[] {
  return [...objectsOf(result, 'Deployment'), ...objectsOf(result, 'StatefulSet')];
}

const everything = { valuesFiles: ['three-models-gpu-budget.yaml', 'monitoring.yaml'], values: { exampleModel: { enabled: true } } };

test('every container is locked down', () => {
  const result = renderOk(everything);
  const workloads = allWorkloads(result);
  assert.equal(workloads.length, 3);
  for (const workload of workloads) {
    const spec = podSpec(workload);
    assert.equal(spec.securityContext?.runAsNonRoot, true, workload.metadata.name);
    assert.ok((spec.securityContext?.runAsUser ?? 0) > 0, workload.metadata.name);
    assert.equal(spec.securityContext?.seccompProfile?.type, 'RuntimeDefault', workload.metadata.name);
    for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
      const where = `${workload.metadata.name}/${container.name}`;
      const context = container.securityContext;
      assert.equal(context?.runAsNonRoot, true, where);
      assert.equal(context?.allowPrivilegeEscalation, false, where);
      assert.equal(context?.readOnlyRootFilesystem, true, where);
      assert.equal(context?.privileged, false, where);
      assert.deepEqual(context?.capabilities?.drop, ['ALL'], where);
      assert.equal(context?.capabilities?.add, undefined, where);
    }
  }
});

test('every container has requests and limits', () => {
  const result = renderOk(everything);
  for (const workload of allWorkloads(result)) {
    for (const container of podSpec(workload).containers) {
      const where = `${workload.metadata.name}/${container.name}`;
      assert.ok(container.resources?.requests?.cpu !== undefined, `${where} cpu request`);
      assert.ok(container.resources?.requests?.memory !== undefined, `${where} memory request`);
      assert.ok(container.resources?.limits?.cpu !== undefined, `${where} cpu limit`);
      assert.ok(container.resources?.limits?.memory !== undefined, `${where} memory limit`);
    }
  }
});

test('ConfigMaps hold no secrets', () => {
  const secretLooking = [/PRIVATE KEY/, /password/i, /secret/i, /token/i, /api[-_]?key/i, /bearer/i];
  const pinnedCA = '-----BEGIN CERTIFICATE-----\nMIIBOzCB5qADAgECAgEBMA0GCSqGSIb3DQEBCwUAMBMxETAPBgNVBAMTCGZyb250\n-----END CERTIFICATE-----\n';
  const result = renderOk({
    valuesFiles: [...everything.valuesFiles, 'cert-manager.yaml'],
    values: { ...everything.values, autoscaler: { metricsApi: { requestHeaderClientCA: pinnedCA } } },
  });
  const configMaps = objectsOf(result, 'ConfigMap');
  // Gateway config, autoscaler config, pinned request-header CA and the dashboard.
  assert.equal(configMaps.length, 4);
  for (const configMap of configMaps) {
    for (const [key, value] of Object.entries((configMap.data as Record<string, string>) ?? {})) {
      for (const pattern of secretLooking) {
        assert.doesNotMatch(`${key}\n${value}`, pattern, `${configMap.metadata.name} key ${key}`);
      }
    }
  }
});

test('gateway probes use the admin port', () => {
  const result = renderOk();
  const deployment = objectOf(result, 'Deployment', 'infergate-gateway');
  const [container] = podSpec(deployment).containers;
  assert.ok(container);
  const config = parseYaml((objectOf(result, 'ConfigMap', 'infergate-gateway').data as Record<string, string>)['gateway.yaml'] as string) as {
    server: { port: number; adminPort: number };
  };
  const portByName = new Map((container.ports ?? []).map((port) => [port.name, port.containerPort]));
  assert.equal(portByName.get('admin'), config.server.adminPort);
  assert.equal(portByName.get('http'), config.server.port);
  assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' });
  assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
  assert.deepEqual(container.startupProbe?.httpGet, { path: '/healthz', port: 'admin' });
});

test('autoscaler ports match its config', () => {
  const result = renderOk();
  const [container] = podSpec(objectOf(result, 'Deployment', 'infergate-autoscaler')).containers;
  assert.ok(container);
  const config = parseYaml((objectOf(result, 'ConfigMap', 'infergate-autoscaler').data as Record<string, string>)['autoscaler.yaml'] as string) as {
    adminPort: number;
    metricsApi: { port: number };
  };
  const portByName = new Map((container.ports ?? []).map((port) => [port.name, port.containerPort]));
  assert.equal(portByName.get('admin'), config.adminPort);
  assert.equal(portByName.get('metrics-api'), config.metricsApi.port);
  assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' });
  assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
});

test('services target ports the pods expose', () => {
  const result = renderOk(everything);
  const workloads = allWorkloads(result);
  for (const service of objectsOf(result, 'Service')) {
    const spec = service.spec as { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string | number }> };
    const selected = workloads.filter((workload) => {
      const labels = (workload.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
      return Object.entries(spec.selector).every(([key, value]) => labels[key] === value);
    });
    assert.equal(selected.length, 1, `Service ${service.metadata.name} selects ${selected.length} workloads`);
    const containerPorts = podSpec(selected[0] as KubeObject).containers.flatMap((container) => container.ports ?? []);
    for (const port of spec.ports) {
      assert.ok(containerPorts.some((containerPort) => containerPort.name === port.targetPort), `Service ${service.metadata.name} port ${port.name}`);
    }
  }
});

test('admin Service is headless', () => {
  const result = renderOk();
  const admin = objectOf(result, 'Service', 'infergate-gateway-admin');
  assert.equal((admin.spec as { clusterIP: string }).clusterIP, 'None');
  const traffic = objectOf(result, 'Service', 'infergate-gateway');
  const trafficPorts = (traffic.spec as { ports: Array<{ targetPort: string }> }).ports.map((port) => port.targetPort);
  assert.deepEqual(trafficPorts, ['http']);
});

test('gateway drains before it is killed', () => {
  const result = renderOk({ values: { gateway: { server: { shutdownGraceMs: 45000 }, preStopSleepSeconds: 10 } } });
  const deployment = objectOf(result, 'Deployment', 'infergate-gateway');
  const spec = podSpec(deployment);
  const [container] = spec.containers;
  assert.deepEqual(container?.lifecycle?.preStop?.exec?.command, ['sleep', '10']);
  assert.equal(spec.terminationGracePeriodSeconds, 60);
  assert.ok((spec.terminationGracePeriodSeconds ?? 0) > 10 + 45);
});

test('explicit termination grace is kept', () => {
  const result = renderOk({ values: { gateway: { terminationGracePeriodSeconds: 90 } } });
  assert.equal(podSpec(objectOf(result, 'Deployment', 'infergate-gateway')).terminationGracePeriodSeconds, 90);
});

test('log level reaches both services', () => {
  const result = renderOk({ values: { gateway: { logLevel: 'debug' }, autoscaler: { logLevel: 'warn' } } });
  const levelOf = (name: string): string | undefined =>
    podSpec(objectOf(result, 'Deployment', name)).containers[0]?.env?.find((variable) => variable.name === 'LOG_LEVEL')?.value;
  assert.equal(levelOf('infergate-gateway'), 'debug');
  assert.equal(levelOf('infergate-autoscaler'), 'warn');
});

test('gateway gets its pod name', () => {
  const result = renderOk();
  const [container] = podSpec(objectOf(result, 'Deployment', 'infergate-gateway')).containers;
  const podName = container?.env?.find((variable) => variable.name === 'POD_NAME');
  assert.equal(podName?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
  const configPath = container?.env?.find((variable) => variable.name === 'INFERGATE_CONFIG')?.value;
  const mount = container?.volumeMounts?.find((volumeMount) => volumeMount.name === 'config');
  assert.ok(mount);
  assert.equal(configPath, `${mount.mountPath}/gateway.yaml`);
});

test('config change rolls the pods', () => {
  const before = renderOk();
  const after = renderOk({ values: { models: [{ name: 'llama-3-8b', protocol: 'openai', replicas: { kubernetes: { service: 'llama-3-8b' } }, maxInflightPerReplica: 8, autoscaling: { targetPerReplica: 4, maxReplicas: 2 } }] } });
  const same = renderOk();
  for (const name of ['infergate-gateway', 'infergate-autoscaler']) {
    const checksum = (result: RenderResult): string | undefined => podAnnotations(objectOf(result, 'Deployment', name))['checksum/config'];
    assert.match(checksum(before) ?? '', /^[0-9a-f]{64}$/, name);
    assert.notEqual(checksum(before), checksum(after), name);
    assert.equal(checksum(before), checksum(same), name);
  }
});

test('PDB covers the gateway pods', () => {
  const result = renderOk();
  const pdb = objectOf(result, 'PodDisruptionBudget', 'infergate-gateway');
  const spec = pdb.spec as { maxUnavailable?: number; minAvailable?: number; selector: { matchLabels: Record<string, string> } };
  assert.equal(spec.maxUnavailable, 1);
  assert.equal(spec.minAvailable, undefined);
  const deployment = objectOf(result, 'Deployment', 'infergate-gateway');
  assert.deepEqual(spec.selector, (deployment.spec as { selector: unknown }).selector);
});

test('PDB accepts minAvailable', () => {
  const result = renderOk({ values: { gateway: { podDisruptionBudget: { minAvailable: '50%' } } } });
  const spec = objectOf(result, 'PodDisruptionBudget', 'infergate-gateway').spec as Record<string, unknown>;
  assert.equal(spec.minAvailable, '50%');
  assert.equal(spec.maxUnavailable, undefined);
});

test('example model requests whole GPUs', () => {
  const result = renderOk({ valuesFiles: ['example-model.yaml'], namespace: 'inference' });
  const deployment = objectOf(result, 'Deployment', 'infergate-qwen2-5-1-5b-instruct');
  const spec = podSpec(deployment);
  const [container] = spec.containers;
  assert.ok(container);
  assert.equal(container.resources?.requests?.['nvidia.com/gpu'], 2);
  assert.equal(container.resources?.limits?.['nvidia.com/gpu'], 2);
  assert.deepEqual(spec.tolerations?.[0], { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
  assert.deepEqual(spec.nodeSelector, { 'nvidia.com/gpu.present': 'true' });
  assert.deepEqual(container.readinessProbe?.httpGet, { path: '/health', port: 'http' });
  assert.equal((deployment.spec as { replicas?: number }).replicas, undefined, 'the HPA owns the replica count');
});

test('example model mounts its PVC', () => {
  const result = renderOk({ valuesFiles: ['example-model.yaml'], namespace: 'inference' });
  const spec = podSpec(objectOf(result, 'Deployment', 'infergate-qwen2-5-1-5b-instruct'));
  const models = spec.volumes?.find((volume) => volume.name === 'models');
  assert.equal(models?.persistentVolumeClaim?.claimName, 'infergate-qwen2-5-1-5b-instruct');
  assert.equal(spec.volumes?.find((volume) => volume.name === 'shm')?.emptyDir?.medium, 'Memory');
  const mount = spec.containers[0]?.volumeMounts?.find((volumeMount) => volumeMount.name === 'models');
  assert.deepEqual(mount, { name: 'models', mountPath: '/models', readOnly: true });

  const claim = objectOf(result, 'PersistentVolumeClaim', 'infergate-qwen2-5-1-5b-instruct');
  const claimSpec = claim.spec as { storageClassName: string; resources: { requests: { storage: string } } };
  assert.equal(claimSpec.storageClassName, 'fast-ssd');
  assert.equal(claimSpec.resources.requests.storage, '100Gi');
  assert.equal(claim.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
});

test('example model joins gateway and HPA', () => {
  const result = renderOk({ valuesFiles: ['example-model.yaml'], namespace: 'inference' });
  const gatewayConfig = parseYaml((objectOf(result, 'ConfigMap', 'infergate-gateway').data as Record<string, string>)['gateway.yaml'] as string) as {
    models: Array<{ name: string; replicas: { kubernetes: { service: string; namespace: string; port: string } } }>;
  };
  assert.deepEqual(gatewayConfig.models.map((model) => model.name), ['qwen2.5-1.5b-instruct']);
  assert.deepEqual(gatewayConfig.models[0]?.replicas.kubernetes, { namespace: 'inference', service: 'infergate-qwen2-5-1-5b-instruct', port: 'http' });
  const hpa = objectOf(result, 'HorizontalPodAutoscaler', 'infergate-qwen2-5-1-5b-instruct');
  const target = (hpa.spec as { scaleTargetRef: { name: string } }).scaleTargetRef;
  assert.equal(target.name, 'infergate-qwen2-5-1-5b-instruct');
});

test('existing claim replaces the PVC', () => {
  const result = renderOk({ valuesFiles: ['example-model.yaml'], values: { exampleModel: { persistence: { existingClaim: 'llm-weights' } } } });
  assert.equal(objectsOf(result, 'PersistentVolumeClaim').length, 0);
  const spec = podSpec(objectOf(result, 'Deployment', 'infergate-qwen2-5-1-5b-instruct'));
  assert.equal(spec.volumes?.find((volume) => volume.name === 'models')?.persistentVolumeClaim?.claimName, 'llm-weights');
});

test('images follow registry and appVersion', () => {
  const result = renderOk({ values: { imageRegistry: 'registry.example.com/', autoscaler: { image: { tag: '0.2.0-rc.1' } } } });
  const image = (name: string): string | undefined => podSpec(objectOf(result, 'Deployment', name)).containers[0]?.image;
  assert.equal(image('infergate-gateway'), 'registry.example.com/infergate/gateway:0.1.0');
  assert.equal(image('infergate-autoscaler'), 'registry.example.com/infergate/autoscaler:0.2.0-rc.1');
});
