// Latency histograms and the small summary statistics the benchmark tables report.
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  /** Percentiles and extremes in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

// Values are recorded in microseconds: 1 us resolution down to 1 us, 3 significant digits,
// and an hour at most, which covers any request a bounded benchmark can see.
const MICROS_PER_MS = 1000;
const HIGHEST_TRACKABLE_MICROS = 3_600_000_000;

/** An HdrHistogram of latencies recorded in milliseconds and reported in milliseconds. */
export class LatencyHistogram {
  readonly #histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_MICROS,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });

  /** Records one latency. Values above one hour are clamped to one hour. */
  record(latencyMs: number): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new RangeError(`latency must be a finite number >= 0 ms, got ${latencyMs}`);
    const micros = Math.min(HIGHEST_TRACKABLE_MICROS, Math.max(1, Math.round(latencyMs * MICROS_PER_MS)));
    this.#histogram.recordValue(micros);
  }

  get count(): number {
    return this.#histogram.totalCount;
  }

  /** Latency at percentile (0-100) in milliseconds, or NaN when nothing was recorded. */
  percentile(percentile: number): number {
    if (this.count === 0) return Number.NaN;
    // HdrHistogram reports the top of the value's bucket, which can exceed the largest value
    // recorded; capping keeps p99 <= max in the tables.
    return Math.min(this.#histogram.getValueAtPercentile(percentile), this.#histogram.maxValue) / MICROS_PER_MS;
  }

  summary(): LatencySummary {
    if (this.count === 0) {
      return { count: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
    }
    return {
      count: this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      max: this.#histogram.maxValue / MICROS_PER_MS,
      mean: this.#histogram.mean / MICROS_PER_MS,
    };
  }

  /** Adds every value recorded in other to this histogram. */
  merge(other: LatencyHistogram): void {
    this.#histogram.add(other.#histogram);
  }

  reset(): void {
    this.#histogram.reset();
  }
}

/** Median of the finite values, or NaN when there are none. Even counts average the middle pair. */
export function median(values: readonly number[]): number {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle] as number;
  return ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * Least-squares slope of y over x (units of y per unit of x). Returns NaN with fewer than two
 * points or when every x is equal.
 */
export function linearSlope(points: ReadonlyArray<readonly [number, number]>): number {
  if (points.length < 2) return Number.NaN;
  let sumX = 0;
  let sumY = 0;
  for (const [x, y] of points) {
    sumX += x;
    sumY += y;
  }
  const meanX = sumX / points.length;
  const meanY = sumY / points.length;
  let covariance = 0;
  let varianceX = 0;
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY);
    varianceX += (x - meanX) ** 2;
  }
  return varianceX === 0 ? Number.NaN : covariance / varianceX;
}
