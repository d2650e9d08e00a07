// Periodic samples of the gateway process during a soak: resident memory and open file
// descriptors from /proc, event-loop delay from the gateway's Prometheus metrics, and the
// latency the load generator saw since the previous sample.
import { request } from 'undici';
import type { Clock, TimerHandle } from '../../shared/src/clock.ts';
import { sampleProcess } from './processes.ts';
import { LatencyHistogram } from './stats.ts';

export interface SoakSample {
  /** Seconds since the soak started. */
  elapsedSeconds: number;
  phase: 'baseline' | 'load' | 'idle';
  rssMiB: number;
  openFds: number;
  cpuSeconds: number;
  /** Event-loop delay p99 and max over the scrape interval, in ms; NaN when the gateway does not export it. */
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  /** Latency of requests that succeeded since the previous sample, in ms. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  succeeded: number;
}

/**
 * prom-client 15 default metric names for event-loop delay, in seconds. prom-client resets its
 * event-loop histogram at every scrape, so each value covers the time since the previous scrape.
 */
export const EVENT_LOOP_P99_METRIC = 'nodejs_eventloop_lag_p99_seconds';
export const EVENT_LOOP_MAX_METRIC = 'nodejs_eventloop_lag_max_seconds';

/** Returns the value of the first sample of an unlabelled metric in Prometheus text, or NaN. */
export function readMetricValue(text: string, name: string): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!rest.startsWith(' ') && !rest.startsWith('{')) continue;
    const valueText = rest.startsWith('{') ? rest.slice(rest.indexOf('}') + 1).trim() : rest.trim();
    const value = Number(valueText.split(' ')[0]);
    if (Number.isFinite(value)) return value;
  }
  return Number.NaN;
}

/**
 * Event-loop delay of one scrape window, in ms, from the gauges in seconds. Node's delay
 * histogram reports max 0 and a p99 of its lowest bucket (about 0.5 us) when it recorded nothing
 * since the previous scrape, and its percentiles are bucket tops that can exceed the true max:
 * an empty window gives NaN for both, and p99 is capped at max so max >= p99 holds.
 */
export function eventLoopWindow(p99Seconds: number, maxSeconds: number): { p99Ms: number; maxMs: number } {
  if (!Number.isFinite(maxSeconds) || !Number.isFinite(p99Seconds) || maxSeconds <= 0) return { p99Ms: Number.NaN, maxMs: Number.NaN };
  return { p99Ms: Math.min(p99Seconds, maxSeconds) * 1000, maxMs: maxSeconds * 1000 };
}

export class SoakSampler {
  readonly samples: SoakSample[] = [];
  readonly #clock: Clock;
  readonly #pid: number;
  readonly #metricsUrl: string;
  readonly #intervalMs: number;
  readonly #startedAt: number;
  readonly #window = new LatencyHistogram();
  #phase: SoakSample['phase'] = 'baseline';
  #timer: TimerHandle | undefined;
  #pending: Promise<void> = Promise.resolve();
  #errors = 0;
  #lastError = '';

  constructor(options: { clock: Clock; pid: number; adminUrl: string; intervalMs: number }) {
    this.#clock = options.clock;
    this.#pid = options.pid;
    this.#metricsUrl = new URL('/metrics', options.adminUrl).toString();
    this.#intervalMs = options.intervalMs;
    this.#startedAt = options.clock.now();
  }

  /** Samples that failed (process gone, metrics unreachable) and the last failure message. */
  get failures(): { count: number; last: string } {
    return { count: this.#errors, last: this.#lastError };
  }

  /** Records the latency of one successful request for the current sample window. */
  recordLatency(latencyMs: number): void {
    this.#window.record(latencyMs);
  }

  setPhase(phase: SoakSample['phase']): void {
    this.#phase = phase;
  }

  /**
   * Takes a sample every intervalMs until stop(), the first one interval from now: a sample
   * right after sampleNow() would cover an empty window for both latency and event-loop delay.
   */
  start(): void {
    this.#schedule(this.#intervalMs);
  }

  /** Stops the periodic samples and waits for one in progress. */
  async stop(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#pending;
  }

  /** Takes one sample now, outside the periodic schedule. */
  async sampleNow(): Promise<void> {
    await this.#pending;
    this.#pending = this.#take();
    await this.#pending;
  }

  #schedule(delayMs: number): void {
    this.#timer = this.#clock.setTimer(delayMs, () => {
      this.#pending = this.#take().finally(() => {
        if (this.#timer !== undefined) this.#schedule(this.#intervalMs);
      });
    });
  }

  async #take(): Promise<void> {
    const elapsedSeconds = (this.#clock.now() - this.#startedAt) / 1000;
    const latency = this.#window.summary();
    this.#window.reset();
    try {
      const [process, metrics] = await Promise.all([sampleProcess(this.#pid), this.#scrapeMetrics()]);
      const eventLoop = eventLoopWindow(readMetricValue(metrics, EVENT_LOOP_P99_METRIC), readMetricValue(metrics, EVENT_LOOP_MAX_METRIC));
      this.samples.push({
        elapsedSeconds,
        phase: this.#phase,
        rssMiB: process.rssBytes / 1024 ** 2,
        openFds: process.openFds,
        cpuSeconds: process.cpuSeconds,
        eventLoopP99Ms: eventLoop.p99Ms,
        eventLoopMaxMs: eventLoop.maxMs,
        latencyP50Ms: latency.p50,
        latencyP99Ms: latency.p99,
        succeeded: latency.count,
      });
    } catch (error) {
      this.#errors++;
      this.#lastError = (error as Error).message;
    }
  }

  async #scrapeMetrics(): Promise<string> {
    const response = await request(this.#metricsUrl, { method: 'GET', headersTimeout: 5_000, bodyTimeout: 5_000 });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`GET ${this.#metricsUrl} failed with status ${response.statusCode}`);
    return text;
  }
}
