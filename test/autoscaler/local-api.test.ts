// Local mode in one process: what the metrics API serves before and after the gateways
// respond, the timestamps of served values, and the wording of start-up warnings and
// errors, which name the flags the user typed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { buildLocalConfig } from '../../autoscaler/src/config/load.ts';
import { parseCommandLine } from '../../autoscaler/src/cli.ts';
import { startAutoscaler } from '../../autoscaler/src/app.ts';
import { Collector } from '../../autoscaler/src/collector/collector.ts';
import { Controller } from '../../autoscaler/src/controller.ts';
import { createGatewayList } from '../../autoscaler/src/gateways.ts';
import { createMetrics } from '../../autoscaler/src/metrics.ts';
import { DryRunActuator } from '../../autoscaler/src/kube/dry-run.ts';
import { createMetricsApiServer, type MetricsApiServer } from '../../autoscaler/src/api/server.ts';
import { ApiClient, metricPath } from './helpers/client.ts';
import { TestCA } from './helpers/pki.ts';
import { StateServer } from './helpers/state-server.ts';

const silent = createLogger({ service: 'autoscaler-test', level: 'silent' });

interface Harness {
  clock: ManualClock;
  controller: Controller;
  api: ApiClient;
  close(): Promise<void>;
}

/** Builds a local-mode controller on a manual clock behind a plain HTTP metrics API on loopback. */
async function harness(gateways: StateServer[]): Promise<Harness> {
  const config = buildLocalConfig({ gateways: gateways.map((g) => g.url), insecureHttp: true });
  const clock = new ManualClock();
  const metrics = createMetrics({ defaultMetrics: false });
  const collector = new Collector({ clock, logger: silent, metrics, requestTimeoutMs: config.requestTimeoutMs, staleAfterMs: config.staleAfterMs });
  const controller = new Controller({ config, clock, logger: silent, metrics, collector, gateways: createGatewayList(config.gateways, { logger: silent, clock }), actuator: new DryRunActuator(silent) });
  const server: MetricsApiServer = createMetricsApiServer({ logger: silent, metrics, source: controller, tls: undefined, allowedNames: () => [], settingNames: { allowedNames: '--allowed-name', staleAfter: `${config.staleAfterMs} ms` } });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const api = new ApiClient(`http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`);
  return {
    clock,
    controller,
    api,
    async close() {
      await api.close();
      await server.app.close();
      await collector.close();
    },
  };
}

describe('local mode metrics API', () => {
  let gateway: StateServer;
  let second: StateServer;

  before(async () => {
    gateway = await StateServer.start('gw-local-a');
    second = await StateServer.start('gw-local-b');
  });

  after(async () => {
    await gateway.close();
    await second.close();
  });

  test('503 until a gateway responds', async () => {
    gateway.mode = 'status500';
    gateway.state = { ...gateway.state, models: [] };
    const h = await harness([gateway]);
    try {
      await h.controller.pollOnce();
      for (const selector of [undefined, 'model=chat']) {
        const response = await h.api.get(metricPath('default', 'infergate_demand', selector));
        assert.equal(response.status, 503, `selector ${String(selector)}`);
        assert.equal(response.body.kind, 'Status');
        assert.equal(response.body.reason, 'ServiceUnavailable');
        assert.equal(response.body.message, 'no gateway has responded to /admin/state yet, so no model is known; check the --gateway URLs and infergate_autoscaler_source_up');
      }

      gateway.mode = 'ok';
      gateway.setModel('chat', { queued: 3 });
      h.clock.advance(1000);
      await h.controller.pollOnce();
      const chat = await h.api.get(metricPath('default', 'infergate_demand', 'model=chat'));
      assert.equal(chat.status, 200);
      assert.deepEqual((chat.body.items as { value: string }[]).map((i) => i.value), ['3']);
      const other = await h.api.get(metricPath('default', 'infergate_demand', 'model=other'));
      assert.equal(other.status, 200, 'once data has arrived, a model no gateway reports is absent');
      assert.deepEqual(other.body.items, []);

      // Data that arrived and went stale is the stale case, not the "no response yet" one.
      gateway.mode = 'status500';
      h.clock.advance(6000);
      await h.controller.pollOnce();
      const stale = await h.api.get(metricPath('default', 'infergate_demand', 'model=chat'));
      assert.equal(stale.status, 503);
      assert.equal(stale.body.message, 'no fresh gateway data for model "chat": every gateway failed or omitted it for longer than 5000 ms; check infergate_autoscaler_source_up');
    } finally {
      await h.close();
      gateway.mode = 'ok';
    }
  });

  test('timestamp of the newest response', async () => {
    gateway.mode = 'ok';
    gateway.state = { ...gateway.state, models: [] };
    second.state = { ...second.state, models: [] };
    gateway.setModel('chat', { queued: 2 });
    second.setModel('embed', { queued: 1 });
    const h = await harness([gateway, second]);
    const timestamps = async () => {
      const response = await h.api.get(metricPath('default'));
      assert.equal(response.status, 200);
      const items = response.body.items as { metricLabels: { model: string }; timestamp: string; value: string }[];
      return Object.fromEntries(items.map((i) => [i.metricLabels.model, `${i.timestamp} ${i.value}`]));
    };
    try {
      // The manual clock's wall time starts at 2026-01-01T00:00:00Z.
      await h.controller.pollOnce();
      assert.deepEqual(await timestamps(), { chat: '2026-01-01T00:00:00Z 2', embed: '2026-01-01T00:00:00Z 1' });

      // The gateway of embed fails, and its last response counts until staleAfterMs. The value
      // and its timestamp stay those of that response, while chat's timestamp moves on.
      second.mode = 'status500';
      h.clock.advance(2000);
      await h.controller.pollOnce();
      h.clock.advance(2000);
      await h.controller.pollOnce();
      assert.deepEqual(await timestamps(), { chat: '2026-01-01T00:00:04Z 2', embed: '2026-01-01T00:00:00Z 1' });
      assert.equal(h.controller.servedModels().find((m) => m.name === 'embed')?.sampledAt, Date.UTC(2026, 0, 1));

      // A model that both gateways report takes the time of the newer response.
      second.mode = 'ok';
      second.setModel('chat', { queued: 1 });
      h.clock.advance(1000);
      await h.controller.pollOnce();
      gateway.mode = 'status500';
      h.clock.advance(2000);
      await h.controller.pollOnce();
      assert.deepEqual(await timestamps(), { chat: '2026-01-01T00:00:07Z 3', embed: '2026-01-01T00:00:07Z 1' });
    } finally {
      await h.close();
      gateway.mode = 'ok';
      second.mode = 'ok';
    }
  });
});

describe('local mode start-up and errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'as-local-'));

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the autoscaler in this process from flags, with its log lines collected. */
  async function start(flags: string[]) {
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    });
    // A closed loopback port: no gateway responds, and these tests need none.
    const parsed = parseCommandLine(['--gateway', 'http://127.0.0.1:1', '--port', '0', '--admin-port', '0', ...flags], {});
    assert.equal(parsed.help, false);
    if (parsed.help) throw new Error('unreachable');
    const running = await startAutoscaler(parsed.config, { logger: pino({ level: 'info' }, sink) });
    return { running, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
  }

  test('--insecure-http warning wording', async () => {
    const { running, warnings } = await start(['--insecure-http']);
    try {
      assert.deepEqual(warnings(), [
        'the metrics API serves plain HTTP without authentication or authorization (--insecure-http): every caller that can connect may read the demand of every model; it listens on loopback unless --host is set',
      ]);
    } finally {
      await running.stop();
    }
  });

  test('403 names --allowed-name', async () => {
    const ca = TestCA.create('local-client-ca');
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, ca.certPem);
    const { running, warnings } = await start(['--client-ca', caFile, '--allowed-name', 'front-proxy-client']);
    const client = new ApiClient(running.apiUrl, { ca: running.generatedCertificate!, client: ca.issueClient('mallory') });
    try {
      assert.deepEqual(warnings(), [
        'metrics API authorization is off (local mode has no cluster to ask): every caller with a client certificate signed by --client-ca with a name given by --allowed-name may read the demand of every model',
      ]);
      const response = await client.get('/apis');
      assert.equal(response.status, 403);
      assert.equal(response.body.message, 'client certificate common name "mallory" is not in --allowed-name');
    } finally {
      await client.close();
      await running.stop();
    }
  });
});
