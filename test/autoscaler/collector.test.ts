import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { Collector } from '../../autoscaler/src/collector/collector.ts';
import { aggregateDemand } from '../../autoscaler/src/collector/demand.ts';
import { createMetrics, type AutoscalerMetrics } from '../../autoscaler/src/metrics.ts';
import { StateServer } from './helpers/state-server.ts';

const logger = createLogger({ service: 'autoscaler-test', level: 'silent' });

async function sourceUp(metrics: AutoscalerMetrics, gateway: string): Promise<number | undefined> {
  const data = await metrics.sourceUp.get();
  return data.values.find((v) => v.labels.gateway === gateway)?.value;
}

describe('collector', () => {
  let a: StateServer;
  let b: StateServer;
  let clock: ManualClock;
  let metrics: AutoscalerMetrics;
  let collector: Collector;

  before(async () => {
    a = await StateServer.start('gw-a');
    b = await StateServer.start('gw-b');
  });

  after(async () => {
    await a.close();
    await b.close();
  });

  function reset(): void {
    clock = new ManualClock();
    metrics = createMetrics({ defaultMetrics: false });
    collector = new Collector({ clock, logger, metrics, requestTimeoutMs: 500, staleAfterMs: 3000 });
    a.mode = 'ok';
    b.mode = 'ok';
    a.setModel('llama', { queued: 5, held: 1, inFlight: 10, ready: 2, starting: 1 });
    b.setModel('llama', { queued: 3, inFlight: 6, ready: 2 });
  }

  afterEach(async () => {
    await collector.close();
  });

  test('collector sums demand over gateways', async () => {
    reset();
    const result = await collector.poll([a.url, b.url]);
    assert.deepEqual(result, { ok: 2, failed: 0 });
    const llama = aggregateDemand(collector.freshSnapshots()).get('llama')!;
    assert.equal(llama.demand, 25);
    assert.equal(llama.queued, 8);
    assert.equal(llama.held, 1);
    assert.equal(llama.inFlight, 16);
    assert.equal(llama.readyReplicas, 2, 'replicas are shared, so the maximum counts');
    assert.equal(llama.startingReplicas, 1);
    assert.equal(llama.gateways, 2);
  });

  test('collector keeps the last snapshot of a failing gateway until stale', async () => {
    reset();
    await collector.poll([a.url, b.url]);
    b.mode = 'status500';
    clock.advance(1000);
    const result = await collector.poll([a.url, b.url]);
    assert.deepEqual(result, { ok: 1, failed: 1 });
    assert.equal(aggregateDemand(collector.freshSnapshots()).get('llama')!.demand, 25);
    assert.equal(await sourceUp(metrics, b.url), 0);
    assert.equal(await sourceUp(metrics, a.url), 1);

    clock.advance(2001);
    await collector.poll([a.url, b.url]);
    assert.equal(aggregateDemand(collector.freshSnapshots()).get('llama')!.demand, 16, 'only gateway a is fresh now');
  });

  test('collector marks data stale when no gateway answers', async () => {
    reset();
    await collector.poll([a.url, b.url]);
    a.mode = 'status500';
    b.mode = 'garbage';
    clock.advance(3000);
    await collector.poll([a.url, b.url]);
    assert.equal(collector.freshSnapshots().length, 2, 'at exactly staleAfterMs the snapshots still count');
    clock.advance(1);
    assert.equal(collector.freshSnapshots().length, 0);
    assert.equal(aggregateDemand(collector.freshSnapshots()).has('llama'), false);
  });

  test('collector counts failures by reason', async () => {
    reset();
    a.mode = 'invalid';
    b.mode = 'garbage';
    await collector.poll([a.url, b.url, 'http://127.0.0.1:1']);
    const failures = (await metrics.sourceFailures.get()).values;
    const reasonOf = (url: string) => failures.find((v) => v.labels.gateway === url)?.labels.reason;
    assert.equal(reasonOf(a.url), 'invalid_body');
    assert.equal(reasonOf(b.url), 'invalid_body');
    assert.equal(reasonOf('http://127.0.0.1:1'), 'connect');
  });

  test('collector aborts a hanging gateway at the timeout', async () => {
    reset();
    a.mode = 'hang';
    const result = await collector.poll([a.url, b.url]);
    assert.deepEqual(result, { ok: 1, failed: 1 });
    const failures = (await metrics.sourceFailures.get()).values;
    assert.equal(failures.find((v) => v.labels.gateway === a.url)?.labels.reason, 'timeout');
  });

  test('collector forgets removed gateways', async () => {
    reset();
    await collector.poll([a.url, b.url]);
    await collector.poll([a.url]);
    assert.equal(collector.freshSnapshots().length, 1);
    assert.equal(await sourceUp(metrics, b.url), undefined);
  });
});

test('collector warns once about a shared gateway name', async () => {
  const lines: { level: number; msg: string; gateways?: string[]; identity?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  const first = await StateServer.start('gw-same');
  const second = await StateServer.start('gw-same');
  const other = await StateServer.start('gw-other');
  const clock = new ManualClock();
  const collector = new Collector({ clock, logger: pino({ level: 'info' }, sink), metrics: createMetrics({ defaultMetrics: false }), requestTimeoutMs: 500, staleAfterMs: 3000 });
  try {
    first.setModel('llama', { queued: 4 });
    second.setModel('llama', { queued: 4 });
    other.setModel('llama', { queued: 1 });
    const urls = [first.url, second.url, other.url];
    const warnings = () => lines.filter((l) => l.level === 40 && l.identity !== undefined);
    await collector.poll(urls);
    clock.advance(1000);
    await collector.poll(urls);
    assert.equal(warnings().length, 1, 'one warning for the pair, not one per poll');
    const [warning] = warnings();
    const pair = [first.url, second.url].sort();
    assert.deepEqual(warning!.gateways, pair);
    assert.equal(warning!.identity, 'gw-same');
    assert.equal(warning!.msg, `gateways ${pair[0]} and ${pair[1]} both report the name "gw-same"; if they are the same gateway, its demand is counted twice, so list it under one URL only`);
    // Not merged: two distinct gateways may share a name.
    assert.equal(aggregateDemand(collector.freshSnapshots()).get('llama')!.demand, 9);

    // Only responses of the same poll are compared, so a failing source cannot pair up.
    second.mode = 'status500';
    other.state = { ...other.state, gateway: 'gw-same' };
    clock.advance(1000);
    await collector.poll(urls);
    assert.equal(warnings().length, 2);
    assert.deepEqual(warnings()[1]!.gateways, [first.url, other.url].sort());
  } finally {
    await collector.close();
    await Promise.all([first.close(), second.close(), other.close()]);
  }
});
