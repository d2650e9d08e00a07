// The autoscaler process driven by real gateways (in this process) in front of simulated
// replicas (child processes), acting on the fake Kubernetes API server, with an HPA model
// reading the served values over TLS with a front-proxy client certificate.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'undici';
import { createLogger } from '../../shared/src/logger.ts';
import { FakeKubeServer, RESOURCES } from '../fake-kube/server.ts';
import { deployment } from '../fake-kube/objects.ts';
import { startGateway, type RunningGateway } from '../../gateway/src/gateway.ts';
import { buildConfig } from '../../gateway/src/config/load.ts';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { parseQuantity } from '../../autoscaler/src/api/quantity.ts';
import { TestCA } from './helpers/pki.ts';
import { ApiClient, metricPath } from './helpers/client.ts';
import { HpaModel } from './helpers/hpa.ts';
import { startAutoscalerProcess, waitFor, type AutoscalerProcess, type LogLine } from './helpers/process.ts';

const NS = 'ml';
const HPA_USER = 'system:serviceaccount:kube-system:horizontal-pod-autoscaler';
const CHAT_IDLE_SECONDS = 6;
const silent = createLogger({ service: 'gateway-test', level: 'silent' });

interface Burst {
  done: Promise<unknown>;
  abort(): void;
}

/** Sends `count` chat requests spread over the gateways; each occupies a replica slot for about max_tokens x 50 ms. */
function burst(gateways: RunningGateway[], model: string, count: number, maxTokens = 40): Burst {
  const controller = new AbortController();
  const calls = Array.from({ length: count }, async (_, i) => {
    const gateway = gateways[i % gateways.length]!;
    try {
      const response = await request(`${gateway.trafficUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: `request ${i}` }], max_tokens: maxTokens }),
        signal: controller.signal,
      });
      await response.body.dump();
      return response.statusCode;
    } catch {
      return 0;
    }
  });
  return { done: Promise.all(calls), abort: () => controller.abort() };
}

function isStaleChatDecision(line: LogLine): boolean {
  const decision = line.decision as { model?: string; stale?: boolean } | undefined;
  return decision?.model === 'chat' && decision.stale === true;
}

describe('autoscaler end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'as-e2e-'));
  const frontProxyCA = TestCA.create('front-proxy-ca');
  const servingCA = TestCA.create('autoscaler-serving-ca');
  let kube: FakeKubeServer;
  let replica: SpawnedReplica;
  let gwA: RunningGateway;
  let gwB: RunningGateway;
  let autoscaler: AutoscalerProcess;
  let api: ApiClient;
  const bursts: Burst[] = [];
  const closed = new Set<RunningGateway>();

  before(async () => {
    kube = await FakeKubeServer.start();
    const kubeconfig = join(dir, 'kubeconfig.json');
    writeFileSync(kubeconfig, kube.kubeConfig().exportConfig());

    const serving = servingCA.issueServer();
    writeFileSync(join(dir, 'tls.crt'), serving.cert);
    writeFileSync(join(dir, 'tls.key'), serving.key);
    writeFileSync(join(dir, 'client-ca.crt'), frontProxyCA.certPem);

    kube.create(RESOURCES.deployments, NS, deployment({ name: 'chat', replicas: 1, gpus: 1 }));
    kube.create(RESOURCES.deployments, NS, deployment({ name: 'embed', replicas: 1, gpus: 1 }));
    kube.create(RESOURCES.deployments, NS, deployment({ name: 'cold', replicas: 0, gpus: 1 }));

    replica = await spawnReplica(['--port', '0', '--model', 'chat', '--model', 'embed', '--itl-base-ms', '50', '--itl-per-running-ms', '0', '--prefill-base-ms', '0', '--max-concurrency', '500']);
    const gatewayConfig = buildConfig({
      server: { port: 0, adminPort: 0, host: '127.0.0.1', shutdownGraceMs: 1000 },
      models: [
        { name: 'chat', protocol: 'openai', replicas: { static: [replica.url] }, maxInflightPerReplica: 200, health: { intervalMs: 200, timeoutMs: 200 } },
        { name: 'embed', protocol: 'openai', replicas: { static: [replica.url] }, maxInflightPerReplica: 200, health: { intervalMs: 200, timeoutMs: 200 } },
        // No replica listens on port 1, so requests for this model are held for scale from zero.
        { name: 'cold', protocol: 'openai', replicas: { static: ['http://127.0.0.1:1'] }, health: { intervalMs: 200, timeoutMs: 200 }, scaleFromZero: { enabled: true, holdTimeoutMs: 20_000, maxHeld: 10 } },
      ],
    });
    gwA = await startGateway(gatewayConfig, { logger: silent, defaultMetrics: false, name: 'gw-a' });
    gwB = await startGateway(gatewayConfig, { logger: silent, defaultMetrics: false, name: 'gw-b' });

    const config = join(dir, 'autoscaler.yaml');
    writeFileSync(
      config,
      `gateways:
  static: ["${gwA.adminUrl}", "${gwB.adminUrl}"]
pollIntervalMs: 200
requestTimeoutMs: 500
staleAfterMs: 1500
listenHost: 127.0.0.1
adminPort: 0
gpuBudget: 5
metricsApi:
  port: 0
  tlsCertFile: ${join(dir, 'tls.crt')}
  tlsKeyFile: ${join(dir, 'tls.key')}
  clientCAFile: ${join(dir, 'client-ca.crt')}
  allowedNames: [front-proxy-client]
models:
  - name: chat
    target: { kind: Deployment, namespace: ${NS}, name: chat }
    targetPerReplica: 10
    minReplicas: 0
    maxReplicas: 10
    scaleDownWindowSeconds: 3
    idleToZeroSeconds: ${CHAT_IDLE_SECONDS}
    priority: 1
  - name: embed
    target: { kind: Deployment, namespace: ${NS}, name: embed }
    targetPerReplica: 10
    minReplicas: 1
    scaleDownWindowSeconds: 3
    priority: 1
  - name: cold
    target: { kind: Deployment, namespace: ${NS}, name: cold }
    targetPerReplica: 5
    minReplicas: 0
    gpusPerReplica: 1
`,
    );
    autoscaler = await startAutoscalerProcess(['--config', config], { KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: '' });
    // The front proxy forwards the HPA controller's identity; the chart's ClusterRole lets it read the metric.
    kube.accessReviews.allow({ users: [HPA_USER], verbs: ['get', 'list'], apiGroups: ['external.metrics.k8s.io'], resources: ['infergate_demand'] });
    api = new ApiClient(autoscaler.apiUrl, {
      ca: servingCA.certPem,
      client: frontProxyCA.issueClient('front-proxy-client'),
      headers: { 'x-remote-user': HPA_USER, 'x-remote-group': ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
    });
  });

  after(async () => {
    for (const b of bursts) b.abort();
    await api?.close();
    await autoscaler?.stop();
    for (const gw of [gwA, gwB]) if (gw && !closed.has(gw)) await gw.close(0);
    await replica?.stop();
    await kube?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function replicasOf(name: string): number {
    return (kube.get(RESOURCES.deployments, NS, name)?.spec as { replicas: number }).replicas;
  }

  function events(reason: string, name: string): unknown[] {
    return kube.events(NS).filter((e) => {
      const event = e as unknown as { reason: string; involvedObject: { name: string } };
      return event.reason === reason && event.involvedObject.name === name;
    });
  }

  async function servedValue(model: string): Promise<{ status: number; value: number | undefined }> {
    const response = await api.get(metricPath(NS, 'infergate_demand', `model=${model}`));
    const items = response.body.items as { value: string }[] | undefined;
    return { status: response.status, value: items?.[0] ? parseQuantity(items[0].value) : undefined };
  }

  test('readiness after the first poll', async () => {
    const response = await waitFor(async () => {
      const r = await request(`${autoscaler.adminUrl}/readyz`);
      await r.body.dump();
      return r.statusCode === 200 ? r : undefined;
    }, 'readyz 200');
    assert.equal(response.statusCode, 200);
  });

  test('activation from zero on held requests', async () => {
    const heldRequests = burst([gwA], 'cold', 2, 5);
    bursts.push(heldRequests);
    await waitFor(() => replicasOf('cold') === 1, 'cold scaled to 1', 10_000);
    assert.equal(replicasOf('cold'), 1);
    // The Event is created right after the scale call, so it may land a moment later.
    await waitFor(() => events('ScaledFromZero', 'cold').length > 0, 'ScaledFromZero event');
    assert.equal(events('ScaledFromZero', 'cold').length, 1);
    heldRequests.abort();
  });

  test('burst then idle through an HPA model', async () => {
    const hpa = new HpaModel({ api, kubeUrl: kube.url, namespace: NS, deployment: 'chat', model: 'chat', spec: { targetAverageValue: 10, minReplicas: 1, maxReplicas: 10 } });
    await waitFor(async () => (await servedValue('chat')).value === 0, 'chat served as 0 before the burst');

    const load = burst([gwA, gwB], 'chat', 30);
    bursts.push(load);
    await waitFor(async () => ((await hpa.sync()).desired === 3 ? true : undefined), 'HPA asks for 3 replicas', 15_000);
    assert.equal(replicasOf('chat'), 3);
    await load.done;

    // Demand is 0 now, but the served value keeps the burst for the 3 s window, so the HPA keeps 3.
    const afterBurst = await hpa.sync();
    assert.equal(afterBurst.current, 3);
    assert.ok((afterBurst.metric ?? 0) >= 25, `metric right after the burst is ${afterBurst.metric}`);
    assert.equal(afterBurst.desired, 3);

    await waitFor(async () => ((await hpa.sync()).desired === 1 ? true : undefined), 'HPA scales down to its minimum', 15_000);
    const drop = hpa.history.findIndex((s, i) => i > 0 && s.desired < s.current);
    // Requests that finish late keep a small demand, so the value may fall to a few
    // rather than to 0. What matters is that the burst has left the window.
    const dropMetric = hpa.history[drop]!.metric ?? 0;
    assert.ok(dropMetric < 25, `the HPA scales down only once the served value fell, metric was ${dropMetric}`);

    await waitFor(() => replicasOf('chat') === 0, 'autoscaler scales chat to 0 after idleToZeroSeconds', 15_000);
    await waitFor(() => events('ScaledToZero', 'chat').length > 0, 'ScaledToZero event');
    assert.equal(events('ScaledToZero', 'chat').length, 1);
    const idle = await hpa.sync();
    assert.equal(idle.desired, 0, 'an HPA does not act on a target at 0 replicas');
  });

  test('budget shared by two models', async () => {
    const chat = burst([gwA, gwB], 'chat', 30, 60);
    const embed = burst([gwA, gwB], 'embed', 30, 60);
    bursts.push(chat, embed);
    const values = await waitFor(async () => {
      const [c, e] = await Promise.all([servedValue('chat'), servedValue('embed')]);
      return (c.value ?? 0) > 0 && (e.value ?? 0) > 0 && c.value! + e.value! >= 35 ? ([c.value!, e.value!] as const) : undefined;
    }, 'both models served under load', 15_000);
    // 5 GPUs: embed keeps its minimum of 1, the other 4 are split 2:2 by the equal demand,
    // and cold (lower priority) gets nothing while its window still contains a demand of 2.
    const replicasAsked = Math.ceil(values[0] / 10) + Math.ceil(values[1] / 10);
    assert.ok(replicasAsked <= 5, `served values ${values.join(', ')} ask for ${replicasAsked} replicas of 1 GPU with a budget of 5`);
    assert.ok(values[0] < 30 || values[1] < 30, `at least one value is capped below its demand of 30: ${values.join(', ')}`);

    const metrics = await (await request(`${autoscaler.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /^infergate_autoscaler_gpus\{state="budget"\} 5$/m);
    const allocated = Number(/^infergate_autoscaler_gpus\{state="allocated"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(allocated <= 5, `allocated ${allocated}`);
    chat.abort();
    embed.abort();
  });

  test('metrics pass promtool', async () => {
    const text = await (await request(`${autoscaler.adminUrl}/metrics`)).body.text();
    const file = join(dir, 'metrics.txt');
    writeFileSync(file, text);
    const { stdout, stderr } = await promisify(execFile)('sh', ['-c', `promtool check metrics < ${file}`]);
    assert.equal(stderr.trim(), '', stderr);
    assert.equal(stdout.trim(), '');
    for (const name of ['infergate_autoscaler_demand', 'infergate_autoscaler_metric_value', 'infergate_autoscaler_desired_replicas', 'infergate_autoscaler_scale_actions_total', 'infergate_autoscaler_source_up', 'infergate_autoscaler_gpus']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'));
    }
    assert.match(text, /^infergate_autoscaler_scale_actions_total\{model="chat",direction="down"\} 1$/m);
    assert.match(text, /^infergate_autoscaler_scale_actions_total\{model="cold",direction="up"\} 1$/m);
  });

  test('partial gateway failure keeps serving', async () => {
    await gwB.close(0);
    closed.add(gwB);
    const text = await waitFor(async () => {
      const body = await (await request(`${autoscaler.adminUrl}/metrics`)).body.text();
      return body.includes(`infergate_autoscaler_source_up{gateway="${gwB.adminUrl}"} 0`) ? body : undefined;
    }, 'source_up of the closed gateway at 0');
    assert.match(text, new RegExp(`infergate_autoscaler_source_up\\{gateway="${gwA.adminUrl}"\\} 1`));
    // Past staleAfterMs (1.5 s) gateway B's last snapshot no longer counts; gateway A's keeps embed fresh.
    const closedAt = Date.now();
    await waitFor(() => autoscaler.logs.some((l) => l.decision !== undefined && Date.parse(String(l.time)) > closedAt + 2000), 'a poll 2 s after the close');
    const served = await servedValue('embed');
    assert.equal(served.status, 200, 'one gateway still answers, so the data is fresh');
  });

  test('stale gateways give 503 and never scale to zero', async () => {
    const scaledToZeroBefore = events('ScaledToZero', 'chat').length;
    await gwA.close(0);
    closed.add(gwA);
    const stale = await waitFor(async () => {
      const s = await servedValue('chat');
      return s.status === 503 ? s : undefined;
    }, 'chat metric 503 once all gateways are stale');
    assert.equal(stale.value, undefined);
    kube.modify(RESOURCES.deployments, NS, 'chat', (d) => {
      (d.spec as { replicas: number }).replicas = 2;
    });

    // Wait until the autoscaler has logged stale decisions for longer than idleToZeroSeconds.
    const staleSince = Date.now();
    await waitFor(
      () => autoscaler.logs.some((l) => isStaleChatDecision(l) && Date.parse(String(l.time)) - staleSince > CHAT_IDLE_SECONDS * 1000 + 1000),
      'stale decisions for longer than idleToZeroSeconds',
      20_000,
    );
    assert.equal(replicasOf('chat'), 2);
    assert.equal(events('ScaledToZero', 'chat').length, scaledToZeroBefore, 'no scale to zero on stale data');
  });
});
