// The two load shapes the benchmarks use: an open-loop run at a fixed request rate (latency
// under a given offered load) and a closed-loop run at a fixed concurrency (maximum throughput).
import type { Dispatcher } from 'undici';
import type { Clock } from '../../shared/src/clock.ts';
import { timedRequest, type RequestSpec } from './http-client.ts';
import { runOpenLoop, type OpenLoopResult } from './scheduler.ts';
import type { LatencyHistogram } from './stats.ts';
import { OutcomeTally, type TallySnapshot } from './tally.ts';

export interface FixedRateOptions {
  clock: Clock;
  dispatcher: Dispatcher;
  baseUrl: string;
  /** Requests per second, evenly spaced. */
  rate: number;
  durationMs: number;
  /** Builds request number `index` of the run. */
  makeRequest(index: number): RequestSpec;
  maxInFlight: number;
  /** Milliseconds to wait for outstanding responses after the last send. Requests still open then count as lost. */
  drainMs: number;
}

export interface FixedRateResult {
  schedule: OpenLoopResult;
  tally: TallySnapshot;
  /** Successful responses per second of the send window. */
  goodput: number;
  /** Latencies of the successful requests, for percentiles beyond the summary. */
  totalHistogram: LatencyHistogram;
}

export interface ClosedLoopOptions {
  clock: Clock;
  dispatcher: Dispatcher;
  baseUrl: string;
  concurrency: number;
  durationMs: number;
  /** Hard bound on requests started, so a run stops even if the clock were wrong. */
  maxRequests: number;
  makeRequest(index: number): RequestSpec;
}

export interface ClosedLoopResult {
  tally: TallySnapshot;
  elapsedMs: number;
  /** Successful responses per second. */
  throughput: number;
}

/** Sends durationMs × rate requests at fixed intervals, independent of the responses. */
export async function runFixedRate(options: FixedRateOptions): Promise<FixedRateResult> {
  const { clock, rate, durationMs } = options;
  if (!(rate > 0)) throw new RangeError(`rate must be > 0 requests/s, got ${rate}`);
  const count = Math.max(1, Math.floor((durationMs * rate) / 1000));
  const intervalMs = 1000 / rate;
  const indices = Array.from({ length: count }, (_, index) => index);
  const tally = new OutcomeTally();
  const endOfRun = new AbortController();

  const run = runOpenLoop<number>({
    clock,
    items: indices,
    sendAtMs: (index) => index * intervalMs,
    maxInFlight: options.maxInFlight,
    overflow: 'skip',
    stopSendingAtMs: durationMs + options.drainMs,
    send: async (index) => {
      tally.begin();
      const outcome = await timedRequest(options.dispatcher, options.baseUrl, options.makeRequest(index), clock, endOfRun.signal);
      if (outcome.kind === 'aborted') tally.recordLost();
      else tally.record(outcome);
    },
  });
  const capTimer = clock.setTimer(durationMs + options.drainMs, () => {
    run.stop();
    endOfRun.abort(new Error('fixed-rate run passed its drain limit'));
  });
  try {
    const schedule = await run.done;
    const snapshot = tally.snapshot();
    const windowSeconds = Math.max(durationMs, schedule.sendSpanMs) / 1000;
    return { schedule, tally: snapshot, goodput: snapshot.succeeded / windowSeconds, totalHistogram: tally.total };
  } finally {
    capTimer.cancel();
  }
}

/** Keeps `concurrency` requests outstanding for durationMs and measures the completion rate. */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const { clock } = options;
  const tally = new OutcomeTally();
  const startedAt = clock.now();
  const endAt = startedAt + options.durationMs;
  let started = 0;

  const worker = async (): Promise<void> => {
    while (clock.now() < endAt && started < options.maxRequests) {
      const index = started++;
      tally.begin();
      tally.record(await timedRequest(options.dispatcher, options.baseUrl, options.makeRequest(index), clock));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsedMs = clock.now() - startedAt;
  const snapshot = tally.snapshot();
  return { tally: snapshot, elapsedMs, throughput: snapshot.succeeded / (elapsedMs / 1000) };
}
