// Local mode's dry-run actuator inside the real controller: the replica count follows the
// gateways, never the pretend action, and dry runs are not counted as actions taken.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ManualClock } from '../../shared/src/clock.ts';
import { buildLocalConfig } from '../../autoscaler/src/config/load.ts';
import { Collector } from '../../autoscaler/src/collector/collector.ts';
import { Controller, type ModelDecision } from '../../autoscaler/src/controller.ts';
import { createGatewayList } from '../../autoscaler/src/gateways.ts';
import { createMetrics } from '../../autoscaler/src/metrics.ts';
import { DryRunActuator } from '../../autoscaler/src/kube/dry-run.ts';
import { StateServer } from './helpers/state-server.ts';

let gateway: StateServer;
let collector: Collector | undefined;

before(async () => {
  gateway = await StateServer.start('gw-dry');
});

after(async () => {
  await collector?.close();
  await gateway.close();
});

test('dry run reads replicas from gateways', async () => {
  const lines: { dryRun?: boolean; model?: string; to?: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const config = buildLocalConfig({ gateways: [gateway.url], insecureHttp: true });
  const clock = new ManualClock();
  const metrics = createMetrics({ defaultMetrics: false });
  collector = new Collector({ clock, logger, metrics, requestTimeoutMs: config.requestTimeoutMs, staleAfterMs: config.staleAfterMs });
  const controller = new Controller({ config, clock, logger, metrics, collector, gateways: createGatewayList(config.gateways, { logger, clock }), actuator: new DryRunActuator(logger) });
  const decisionOf = (decisions: ModelDecision[]) => decisions.find((d) => d.model === 'sleepy')!;
  const dryRunLines = () => lines.filter((l) => l.dryRun === true && l.model === 'sleepy');

  gateway.setModel('sleepy', { held: 2, ready: 0 });
  const first = decisionOf(await controller.pollOnce());
  assert.equal(first.currentReplicas, 0);
  assert.equal(first.action, 'activate');
  assert.equal(first.blockedBy, undefined, 'a dry run is logged, not failed');

  // Nothing scaled the model, so the gateways still report 0 and the action is still due.
  clock.advance(1000);
  const second = decisionOf(await controller.pollOnce());
  assert.equal(second.currentReplicas, 0);
  assert.equal(second.action, 'activate');
  assert.equal(dryRunLines().length, 1, 'the unchanged decision is logged once');
  // Worded as what would happen: the Event text of a real action ("Scaled ...") is not reused.
  assert.equal(dryRunLines()[0]!.msg, 'dry run, no cluster: would scale Deployment sleepy from 0 to 1 replica: model sleepy has 0 queued and 2 held requests');

  // A replica started by someone else: the count follows the gateways.
  gateway.setModel('sleepy', { held: 0, inFlight: 1, ready: 1 });
  clock.advance(1000);
  const third = decisionOf(await controller.pollOnce());
  assert.equal(third.currentReplicas, 1);
  assert.equal(third.action, 'none');

  // Idle for idleToZeroSeconds (300 s in local mode) with two replicas up: scale to zero is logged.
  gateway.setModel('sleepy', { ready: 2 });
  clock.advance(1000);
  await controller.pollOnce();
  clock.advance(300_000);
  const idle = decisionOf(await controller.pollOnce());
  assert.equal(idle.action, 'scale_to_zero');
  assert.equal(dryRunLines().at(-1)!.msg, 'dry run, no cluster: would scale Deployment sleepy from 2 to 0 replicas: model sleepy had no queued, held or in-flight requests for 300 s (idleToZeroSeconds 300)');

  const text = await metrics.registry.metrics();
  assert.doesNotMatch(text, /^infergate_autoscaler_scale_actions_total\{/m);
});
