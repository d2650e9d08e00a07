// The controller against the fake Kubernetes API server, with the real Kubernetes
// actuator and a manual clock, so idle periods pass without sleeping.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { FakeKubeServer, RESOURCES } from '../fake-kube/server.ts';
import { deployment } from '../fake-kube/objects.ts';
import { parseConfigText, type AutoscalerConfig } from '../../autoscaler/src/config/load.ts';
import { Collector } from '../../autoscaler/src/collector/collector.ts';
import { Controller } from '../../autoscaler/src/controller.ts';
import { createGatewayList } from '../../autoscaler/src/gateways.ts';
import { createMetrics } from '../../autoscaler/src/metrics.ts';
import { KubeActuator } from '../../autoscaler/src/kube/actuator.ts';
import { StateServer } from './helpers/state-server.ts';

const logger = createLogger({ service: 'autoscaler-test', level: 'silent' });

function configFor(gateway: string, extra = '', models?: string): AutoscalerConfig {
  return parseConfigText(`
gateways: { static: ["${gateway}"] }
pollIntervalMs: 1000
staleAfterMs: 3000
requestTimeoutMs: 500
metricsApi: { insecureHttp: true }
${extra}
models:
${
  models ??
  `  - name: llama
    target: { kind: Deployment, namespace: ml, name: llama }
    targetPerReplica: 10
    minReplicas: 0
    maxReplicas: 8
    scaleDownWindowSeconds: 30
    idleToZeroSeconds: 60
`
}`);
}

describe('controller with the fake Kubernetes API', () => {
  let kube: FakeKubeServer;
  let gateway: StateServer;
  let clock: ManualClock;
  let controller: Controller;
  let collector: Collector;

  before(async () => {
    kube = await FakeKubeServer.start();
    gateway = await StateServer.start('gw-0');
  });

  after(async () => {
    await gateway.close();
    await kube.close();
  });

  afterEach(async () => {
    await collector.close();
    for (const d of kube.list(RESOURCES.deployments, 'ml')) kube.delete(RESOURCES.deployments, 'ml', d.metadata.name!);
    for (const e of kube.list(RESOURCES.events, 'ml')) kube.delete(RESOURCES.events, 'ml', e.metadata.name!);
    gateway.mode = 'ok';
    gateway.state = { ...gateway.state, models: [] };
  });

  function setup(config: AutoscalerConfig): ReturnType<typeof createMetrics> {
    clock = new ManualClock();
    const metrics = createMetrics({ defaultMetrics: false });
    collector = new Collector({ clock, logger, metrics, requestTimeoutMs: config.requestTimeoutMs, staleAfterMs: config.staleAfterMs });
    const actuator = new KubeActuator({ kubeConfig: kube.kubeConfig(), clock, logger, timeoutMs: 5000 });
    controller = new Controller({ config, clock, logger, metrics, collector, gateways: createGatewayList(config.gateways, { logger, clock }), actuator });
    return metrics;
  }

  function replicasOf(name: string): number {
    return (kube.get(RESOURCES.deployments, 'ml', name)?.spec as { replicas: number }).replicas;
  }

  function eventReasons(): string[] {
    return kube.events('ml').map((e) => (e as unknown as { reason: string }).reason);
  }

  test('activation from zero within one poll', async () => {
    const metrics = setup(configFor(gateway.url));
    kube.create(RESOURCES.deployments, 'ml', deployment({ name: 'llama', replicas: 0, gpus: 1 }));
    gateway.setModel('llama', { queued: 2, held: 3 });

    const [decision] = await controller.pollOnce();
    assert.equal(decision!.action, 'activate');
    assert.equal(replicasOf('llama'), 1);
    assert.deepEqual(eventReasons(), ['ScaledFromZero']);
    const event = kube.events('ml')[0] as unknown as { involvedObject: { kind: string; name: string; namespace: string }; type: string; message: string };
    assert.deepEqual(event.involvedObject, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'llama', namespace: 'ml' });
    assert.equal(event.type, 'Normal');
    assert.match(event.message, /2 queued and 3 held/);
    const actions = (await metrics.scaleActions.get()).values;
    assert.equal(actions.find((v) => v.labels.direction === 'up')?.value, 1);

    const [next] = await controller.pollOnce();
    assert.equal(next!.action, 'none', 'the next poll sees 1 replica and leaves it to the HPA');
    assert.equal(eventReasons().length, 1);
  });

  test('activation of a StatefulSet', async () => {
    const models = `  - name: llama
    target: { kind: StatefulSet, namespace: ml, name: llama-sts }
    targetPerReplica: 10
    minReplicas: 0
`;
    setup(configFor(gateway.url, '', models));
    const statefulSet = { ...deployment({ name: 'llama-sts', replicas: 0, gpus: 2 }), kind: 'StatefulSet' };
    kube.create(RESOURCES.statefulSets, 'ml', statefulSet);
    gateway.setModel('llama', { held: 1 });
    const [decision] = await controller.pollOnce();
    assert.equal(decision!.action, 'activate');
    assert.equal(decision!.gpusPerReplica, 2);
    assert.equal((kube.get(RESOURCES.statefulSets, 'ml', 'llama-sts')?.spec as { replicas: number }).replicas, 1);
    const event = kube.events('ml')[0] as unknown as { reason: string; involvedObject: { kind: string } };
    assert.equal(event.reason, 'ScaledFromZero');
    assert.equal(event.involvedObject.kind, 'StatefulSet');
    kube.delete(RESOURCES.statefulSets, 'ml', 'llama-sts');
  });

  test('idle to zero after idleToZeroSeconds', async () => {
    setup(configFor(gateway.url));
    kube.create(RESOURCES.deployments, 'ml', deployment({ name: 'llama', replicas: 2, gpus: 1 }));
    gateway.setModel('llama', { inFlight: 12, ready: 2 });
    await controller.pollOnce();

    gateway.setModel('llama', { ready: 2 });
    // The first zero sample arrives at second 1, so the idle period ends at second 61.
    for (let second = 1; second <= 60; second += 1) {
      clock.advance(1000);
      const [d] = await controller.pollOnce();
      assert.equal(d!.action, 'none', `no action ${second} s into the idle period`);
    }
    assert.equal(replicasOf('llama'), 2);
    clock.advance(1000);
    const [decision] = await controller.pollOnce();
    assert.equal(decision!.action, 'scale_to_zero');
    assert.equal(decision!.value, 0);
    assert.equal(replicasOf('llama'), 0);
    assert.deepEqual(eventReasons(), ['ScaledToZero']);
  });

  test('minReplicas above zero prevents idle to zero', async () => {
    const config = configFor(gateway.url, '', `  - name: llama
    target: { kind: Deployment, namespace: ml, name: llama }
    targetPerReplica: 10
    minReplicas: 1
    idleToZeroSeconds: 5
`);
    setup(config);
    kube.create(RESOURCES.deployments, 'ml', deployment({ name: 'llama', replicas: 1 }));
    gateway.setModel('llama', { ready: 1 });
    for (let i = 0; i < 10; i += 1) {
      await controller.pollOnce();
      clock.advance(1000);
    }
    assert.equal(replicasOf('llama'), 1);
    assert.deepEqual(eventReasons(), []);
  });

  test('stale data never scales to zero', async () => {
    setup(configFor(gateway.url));
    kube.create(RESOURCES.deployments, 'ml', deployment({ name: 'llama', replicas: 2 }));
    gateway.setModel('llama', { ready: 2 });
    await controller.pollOnce();
    clock.advance(50_000);
    gateway.mode = 'status500';
    for (let i = 0; i < 30; i += 1) {
      clock.advance(1000);
      const [d] = await controller.pollOnce();
      assert.equal(d!.action, 'none');
    }
    const [decision] = await controller.pollOnce();
    assert.equal(decision!.stale, true);
    assert.equal(decision!.value, undefined);
    assert.equal(controller.servedModels()[0]!.value, undefined);
    assert.equal(replicasOf('llama'), 2);
  });

  test('unreadable scale subresource blocks actions', async () => {
    setup(configFor(gateway.url));
    gateway.setModel('llama', { queued: 4 });
    const [decision] = await controller.pollOnce();
    assert.equal(decision!.action, 'none');
    assert.equal(decision!.currentReplicas, undefined);
    assert.equal(decision!.blockedBy, 'scale subresource unreadable');
  });

  test('budget shared by two models with GPUs from pod templates', async () => {
    const models = `  - name: chat
    target: { kind: Deployment, namespace: ml, name: chat }
    targetPerReplica: 10
    priority: 1
  - name: embed
    target: { kind: Deployment, namespace: ml, name: embed }
    targetPerReplica: 10
    priority: 1
`;
    setup(configFor(gateway.url, 'gpuBudget: 8', models));
    kube.create(RESOURCES.deployments, 'ml', deployment({ name: 'chat', replicas: 1, gpus: 2 }));
    kube.create(RESOURCES.deployments, 'ml', deployment({ name: 'embed', replicas: 1, gpus: 2 }));
    gateway.setModel('chat', { queued: 60, inFlight: 30, ready: 1 });
    gateway.setModel('embed', { queued: 20, inFlight: 10, ready: 1 });

    const decisions = await controller.pollOnce();
    const chat = decisions.find((d) => d.model === 'chat')!;
    const embed = decisions.find((d) => d.model === 'embed')!;
    assert.equal(chat.gpusPerReplica, 2);
    assert.equal(chat.neededReplicas, 9);
    assert.equal(embed.neededReplicas, 3);
    // 8 GPUs = 4 replicas of 2 GPUs; both have one replica reserved, the remaining 2 replicas go by demand (90 vs 30).
    assert.equal(chat.grantedReplicas + embed.grantedReplicas, 4);
    assert.equal(chat.grantedReplicas, 3);
    assert.equal(chat.value, 30);
    assert.equal(embed.value, 10);
    assert.ok(Math.ceil(chat.value! / 10) * 2 + Math.ceil(embed.value! / 10) * 2 <= 8);
  });
});
