import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyHistogram, linearSlope, median } from '../../loadtest/bench/stats.ts';
import { formatMs, formatTable } from '../../loadtest/bench/report.ts';

/** Asserts that actual is within relative tolerance of expected. */
function assertNear(actual: number, expected: number, tolerance: number): void {
  assert.ok(Math.abs(actual - expected) <= Math.abs(expected) * tolerance, `${actual} is within ${tolerance * 100}% of ${expected}`);
}

test('histogram percentiles of 1 to 1000 ms', () => {
  const histogram = new LatencyHistogram();
  for (let value = 1; value <= 1000; value++) histogram.record(value);
  const summary = histogram.summary();
  assert.equal(summary.count, 1000);
  // Three significant digits: every reported value is within 0.1% of the exact one.
  assertNear(summary.p50, 500, 0.001);
  assertNear(summary.p90, 900, 0.001);
  assertNear(summary.p99, 990, 0.001);
  assertNear(summary.max, 1000, 0.001);
  assertNear(summary.mean, 500.5, 0.001);
});

test('histogram keeps sub-millisecond values', () => {
  const histogram = new LatencyHistogram();
  histogram.record(0.25);
  histogram.record(0.75);
  assertNear(histogram.percentile(50), 0.25, 0.01);
  assertNear(histogram.percentile(100), 0.75, 0.01);
});

test('histogram p99 never exceeds max', () => {
  const histogram = new LatencyHistogram();
  histogram.record(1626.4);
  assert.ok(histogram.percentile(99) <= histogram.summary().max);
});

test('empty histogram reports NaN', () => {
  const summary = new LatencyHistogram().summary();
  assert.equal(summary.count, 0);
  assert.ok(Number.isNaN(summary.p50));
  assert.ok(Number.isNaN(summary.p99));
});

test('histogram rejects negative latency', () => {
  assert.throws(() => new LatencyHistogram().record(-1), /latency must be a finite number >= 0 ms, got -1/);
});

test('histogram merge adds counts', () => {
  const first = new LatencyHistogram();
  const second = new LatencyHistogram();
  first.record(1);
  second.record(100);
  second.record(100);
  first.merge(second);
  assert.equal(first.count, 3);
  assertNear(first.percentile(50), 100, 0.001);
});

test('histogram reset empties it', () => {
  const histogram = new LatencyHistogram();
  histogram.record(5);
  histogram.reset();
  assert.equal(histogram.count, 0);
});

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('median skips NaN and empty input', () => {
  assert.equal(median([Number.NaN, 7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test('slope of an exact line', () => {
  const points = [0, 1, 2, 3, 4].map((x) => [x, 2 * x + 5] as const);
  assert.equal(linearSlope(points), 2);
});

test('slope of noisy flat data is near zero', () => {
  const points = [
    [0, 10],
    [1, 11],
    [2, 10],
    [3, 11],
    [4, 10],
    [5, 11],
  ] as const;
  assert.ok(Math.abs(linearSlope(points)) < 0.1);
});

test('slope needs two distinct x values', () => {
  assert.ok(Number.isNaN(linearSlope([[1, 1]])));
  assert.ok(Number.isNaN(linearSlope([[1, 1], [1, 2]])));
});

test('table aligns columns', () => {
  const table = formatTable(['name', 'value'], [['a', '1'], ['longer', '100']]);
  assert.equal(table, ['name    value', '------  -----', 'a           1', 'longer    100'].join('\n'));
});

test('milliseconds format by magnitude', () => {
  assert.equal(formatMs(0.2134), '0.213');
  assert.equal(formatMs(25.26), '25.3');
  assert.equal(formatMs(1626.4), '1626');
  assert.equal(formatMs(Number.NaN), '-');
});
