import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { p99CountingFailures, searchRate, theoreticalCapacity, type ProbeResult } from '../../loadtest/bench/batching.ts';
import { joinNegativeValues } from '../../shared/src/cli-args.ts';
import { isLoopbackHost, parseLoopbackUrl, parseNumberFlag, REPOSITORY_ROOT, resolveInputPath } from '../../loadtest/bench/cli-support.ts';
import type { FixedRateResult } from '../../loadtest/bench/load.ts';
import { synthesizePrompt } from '../../loadtest/bench/payloads.ts';
import { eventLoopWindow, readMetricValue } from '../../loadtest/bench/soak-sampler.ts';
import { LatencyHistogram } from '../../loadtest/bench/stats.ts';
import { escapeXml, finiteSegments, renderLineChart } from '../../loadtest/bench/svg-chart.ts';

test('theoretical capacity of 20 ms + 0.5 ms/row', () => {
  // 32 rows every 36 ms on one replica.
  assert.equal(Math.round(theoreticalCapacity(1, 32, 20, 0.5)), 889);
  assert.equal(Math.round(theoreticalCapacity(2, 1, 20, 0.5) * 10) / 10, 97.6);
});

const probeFor =
  (limit: number, calls: number[]) =>
  async (rate: number): Promise<ProbeResult> => {
    calls.push(rate);
    const passed = rate <= limit;
    return { offeredRate: rate, goodput: rate, p99Ms: passed ? 10 : Infinity, p50Ms: 5, failures: 0, passed, meanRowsPerExecution: 1 };
  };

test('search finds the limit within 5%', async () => {
  const calls: number[] = [];
  const { best } = await searchRate(1000, 12, probeFor(700, calls));
  assert.ok(best !== undefined);
  assert.ok(best.offeredRate <= 700);
  assert.ok(best.offeredRate >= 700 * 0.95);
});

test('search stays within its probe budget', async () => {
  const calls: number[] = [];
  const { probes } = await searchRate(1000, 4, probeFor(700, calls));
  assert.equal(probes.length, 4);
  assert.equal(calls.length, 4);
});

test('search never exceeds 1.25x theoretical', async () => {
  const calls: number[] = [];
  const { best } = await searchRate(100, 10, probeFor(Infinity, calls));
  assert.ok(Math.max(...calls) <= 125);
  assert.equal(best?.offeredRate, 125);
});

test('search says when --max-probes ended it before any probe failed', async () => {
  const { endedBy } = await searchRate(1000, 2, probeFor(Infinity, []));
  assert.equal(endedBy, 'max-probes-before-failure');
});

test('search says when --max-probes ended it after a failure', async () => {
  const { endedBy } = await searchRate(1000, 3, probeFor(700, []));
  assert.equal(endedBy, 'max-probes');
});

test('search says when it converged', async () => {
  const { endedBy } = await searchRate(1000, 30, probeFor(700, []));
  assert.equal(endedBy, 'converged');
});

test('search says when it passed at the ceiling', async () => {
  const { endedBy } = await searchRate(100, 10, probeFor(Infinity, []));
  assert.equal(endedBy, 'ceiling');
});

test('negative values after a value flag are joined to it', () => {
  const flags = new Set(['--speed', '--rate']);
  assert.deepEqual(joinNegativeValues(['--speed', '-5', '--stream'], flags), ['--speed=-5', '--stream']);
  assert.deepEqual(joinNegativeValues(['--rate', '-.5'], flags), ['--rate=-.5']);
});

test('dashes that are not negative numbers stay separate', () => {
  const flags = new Set(['--speed']);
  assert.deepEqual(joinNegativeValues(['--speed', '--help'], flags), ['--speed', '--help']);
  assert.deepEqual(joinNegativeValues(['--stream', '-5'], flags), ['--stream', '-5']);
  assert.deepEqual(joinNegativeValues(['--', '--speed', '-5'], flags), ['--', '--speed', '-5']);
});

test('an empty event-loop window reports no values', () => {
  // Node's delay histogram, reset and then scraped before it recorded a delay, reports
  // max 0 and p99 511 ns.
  const window = eventLoopWindow(511e-9, 0);
  assert.ok(Number.isNaN(window.p99Ms));
  assert.ok(Number.isNaN(window.maxMs));
});

test('event-loop p99 never exceeds max', () => {
  const window = eventLoopWindow(0.010_014, 0.010_010);
  assert.ok(window.maxMs >= window.p99Ms);
  assert.equal(window.maxMs, 10.01);
});

test('search reports none when all fail', async () => {
  const { best } = await searchRate(100, 5, probeFor(0, []));
  assert.equal(best, undefined);
});

function fixedRateResult(latencies: number[], sent: number): FixedRateResult {
  const histogram = new LatencyHistogram();
  for (const value of latencies) histogram.record(value);
  return {
    goodput: 0,
    totalHistogram: histogram,
    schedule: { planned: sent, sent, skippedInFlight: 0, delayedInFlight: 0, notSent: 0, late: 0, maxSendLagMs: 0, maxInFlightSeen: 0, sendSpanMs: 0 },
    tally: { sent, succeeded: latencies.length } as FixedRateResult['tally'],
  };
}

test('p99 counts failures as slowest', () => {
  // 99 successes of 1 ms and one failure out of 100: the 99th value is still 1 ms.
  assert.equal(p99CountingFailures(fixedRateResult(Array(99).fill(1), 100)), 1);
});

test('p99 is infinite past 1% failures', () => {
  assert.equal(p99CountingFailures(fixedRateResult(Array(98).fill(1), 100)), Infinity);
});

test('loopback hosts', () => {
  assert.equal(isLoopbackHost('127.0.0.1'), true);
  assert.equal(isLoopbackHost('127.8.9.10'), true);
  assert.equal(isLoopbackHost('[::1]'), true);
  assert.equal(isLoopbackHost('localhost'), true);
  assert.equal(isLoopbackHost('10.0.0.1'), false);
  assert.equal(isLoopbackHost('169.254.169.254'), false);
  assert.equal(isLoopbackHost('example.com'), false);
});

test('loopback url rejects other hosts', () => {
  assert.throws(() => parseLoopbackUrl('http://192.168.1.5:8080', '--url'), /--url: 192\.168\.1\.5 is not a loopback address/);
  assert.throws(() => parseLoopbackUrl('not a url', '--url'), /--url: invalid URL "not a url"/);
});

test('number flag range errors name the flag', () => {
  assert.equal(parseNumberFlag(undefined, '--speed', 20, { min: 1, max: 100 }), 20);
  assert.equal(parseNumberFlag('2.5', '--speed', 20, { min: 1, max: 100 }), 2.5);
  assert.throws(() => parseNumberFlag('0', '--speed', 20, { min: 1, max: 100 }), /--speed: 0 is out of range; expected a number from 1 to 100/);
  assert.throws(() => parseNumberFlag('1.5', '--rounds', 5, { min: 1, max: 10, integer: true }), /--rounds: invalid value "1\.5"; expected an integer/);
  assert.throws(() => parseNumberFlag('fast', '--speed', 20, { min: 1, max: 100 }), /--speed: invalid value "fast"/);
});

test('input path resolves from the repository root', () => {
  const resolved = resolveInputPath('../shared/traces/AzureLLMInferenceTrace_code.csv', '--trace');
  assert.equal(resolved, path.resolve(REPOSITORY_ROOT, '..', 'shared', 'traces', 'AzureLLMInferenceTrace_code.csv'));
  assert.throws(() => resolveInputPath('missing.csv', '--trace'), /--trace: file not found: missing\.csv/);
});

test('prompt has the requested word count', () => {
  assert.equal(synthesizePrompt(300, 1).split(' ').length, 300);
  assert.notEqual(synthesizePrompt(50, 1), synthesizePrompt(50, 2));
  assert.equal(synthesizePrompt(50, 7), synthesizePrompt(50, 7));
});

test('metric value from Prometheus text', () => {
  const text = [
    '# HELP nodejs_eventloop_lag_p99_seconds The 99th percentile of the recorded event loop delays.',
    '# TYPE nodejs_eventloop_lag_p99_seconds gauge',
    'nodejs_eventloop_lag_p99_seconds 0.012',
    'nodejs_eventloop_lag_p99_seconds_extra 5',
    'process_open_fds{pod="a"} 31',
  ].join('\n');
  assert.equal(readMetricValue(text, 'nodejs_eventloop_lag_p99_seconds'), 0.012);
  assert.equal(readMetricValue(text, 'process_open_fds'), 31);
  assert.ok(Number.isNaN(readMetricValue(text, 'nodejs_eventloop_lag_max_seconds')));
});

test('chart draws one polyline per segment', () => {
  const svg = renderLineChart({
    title: 'soak <test>',
    xLabel: 'minutes',
    panels: [{ title: 'memory', yLabel: 'MiB', series: [{ label: 'RSS', color: 'blue', points: [[0, 1], [1, 2], [2, Number.NaN], [3, 3], [4, 4]] }] }],
  });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.equal(svg.match(/<polyline /g)?.length, 2);
  assert.ok(svg.includes('soak &lt;test&gt;'));
});

test('segments split at missing values', () => {
  const segments = finiteSegments([[0, 1], [1, Number.NaN], [2, 3]]);
  assert.equal(segments.length, 2);
  assert.deepEqual(segments[1], [[2, 3]]);
});

test('xml escape covers markup characters', () => {
  assert.equal(escapeXml('a & "b" <c>'), 'a &amp; &quot;b&quot; &lt;c&gt;');
});
