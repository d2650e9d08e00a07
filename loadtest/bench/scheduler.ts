// Open-loop send scheduler: requests leave at their planned times whether or not earlier
// ones have been answered, so a slow server sees the queue build up the way real clients
// would build it (closed-loop drivers slow down with the server and hide that). The only
// feedback is the in-flight bound, and every request it skips or delays is counted.
import type { Clock, TimerHandle } from '../../shared/src/clock.ts';

/** Handling of a request that falls due while maxInFlight requests are outstanding. */
export type OverflowPolicy = 'skip' | 'wait';

export interface OpenLoopOptions<T> {
  clock: Clock;
  /** Items in send order; sendAtMs must not decrease. */
  items: readonly T[];
  /** Planned send time of an item, in milliseconds after the run starts. */
  sendAtMs(item: T): number;
  /** Starts one request and settles when it has ended in any way. Rejections count as settled. */
  send(item: T, index: number): Promise<unknown>;
  /** Upper bound on requests outstanding at once. */
  maxInFlight: number;
  overflow: OverflowPolicy;
  /** No request starts this many milliseconds or more after the run started; the rest count as not sent. */
  stopSendingAtMs: number;
  /** A send is counted as late when it leaves more than this many milliseconds after its planned time. */
  lateThresholdMs?: number;
}

export interface OpenLoopResult {
  planned: number;
  sent: number;
  /** Not sent because maxInFlight requests were outstanding (overflow 'skip'). */
  skippedInFlight: number;
  /** Sent later than planned because maxInFlight requests were outstanding (overflow 'wait'). */
  delayedInFlight: number;
  /** Not sent because the send window closed first (stopSendingAtMs or stop()). */
  notSent: number;
  /** Sent more than lateThresholdMs after the planned time, for any reason (including event-loop delay). */
  late: number;
  maxSendLagMs: number;
  maxInFlightSeen: number;
  /** Clock time from start until the last send decision, in milliseconds. */
  sendSpanMs: number;
}

export interface OpenLoopRun {
  /** Settles once every item is sent, skipped or not sent, and every sent request has settled. */
  done: Promise<OpenLoopResult>;
  /** Stops sending; outstanding requests still settle before done resolves. */
  stop(): void;
  /** Requests started and not yet settled. */
  readonly inFlight: number;
}

const DEFAULT_LATE_THRESHOLD_MS = 10;

/** Starts sending items on the clock at once and returns a handle to watch or stop the run. */
export function runOpenLoop<T>(options: OpenLoopOptions<T>): OpenLoopRun {
  const { clock, items, sendAtMs, send, maxInFlight, overflow, stopSendingAtMs } = options;
  const lateThresholdMs = options.lateThresholdMs ?? DEFAULT_LATE_THRESHOLD_MS;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
  if (!(stopSendingAtMs >= 0)) throw new RangeError(`stopSendingAtMs must be >= 0, got ${stopSendingAtMs}`);

  const startedAt = clock.now();
  const result: OpenLoopResult = {
    planned: items.length,
    sent: 0,
    skippedInFlight: 0,
    delayedInFlight: 0,
    notSent: 0,
    late: 0,
    maxSendLagMs: 0,
    maxInFlightSeen: 0,
    sendSpanMs: 0,
  };
  let next = 0;
  let inFlight = 0;
  let stopped = false;
  // Last run time at which a due item found every slot taken: items due by then that are
  // sent later were delayed by the in-flight bound.
  let lastBlockedAtMs = -Infinity;
  let timer: TimerHandle | undefined;
  let resolveDone: (value: OpenLoopResult) => void = () => {};
  const done = new Promise<OpenLoopResult>((resolve) => {
    resolveDone = resolve;
  });

  const finishIfIdle = (): void => {
    if (next >= items.length && inFlight === 0) resolveDone(result);
  };

  const closeWindow = (elapsed: number): void => {
    result.notSent += items.length - next;
    next = items.length;
    result.sendSpanMs = Math.max(result.sendSpanMs, elapsed);
    timer?.cancel();
    timer = undefined;
  };

  const dispatch = (item: T, index: number, lagMs: number): void => {
    inFlight++;
    result.sent++;
    result.maxInFlightSeen = Math.max(result.maxInFlightSeen, inFlight);
    result.maxSendLagMs = Math.max(result.maxSendLagMs, lagMs);
    if (lagMs > lateThresholdMs) result.late++;
    let settled: Promise<unknown>;
    try {
      settled = send(item, index);
    } catch (error) {
      settled = Promise.reject(error);
    }
    settled
      .catch(() => {})
      .finally(() => {
        inFlight--;
        // A freed slot may release a request that is waiting for one.
        if (overflow === 'wait') tick();
        finishIfIdle();
      });
  };

  const tick = (): void => {
    timer?.cancel();
    timer = undefined;
    const elapsed = clock.now() - startedAt;
    if (stopped || elapsed >= stopSendingAtMs) {
      closeWindow(elapsed);
      finishIfIdle();
      return;
    }
    while (next < items.length) {
      const item = items[next] as T;
      const due = sendAtMs(item);
      if (due > elapsed) break;
      if (inFlight >= maxInFlight) {
        if (overflow === 'skip') {
          result.skippedInFlight++;
          next++;
          continue;
        }
        // Waiting: the settle handler calls tick again when a slot frees, and the timer
        // closes the window on time even if no request settles before then.
        lastBlockedAtMs = elapsed;
        result.sendSpanMs = elapsed;
        timer = clock.setTimer(Math.max(0, stopSendingAtMs - elapsed), tick);
        return;
      }
      if (due <= lastBlockedAtMs) result.delayedInFlight++;
      dispatch(item, next, elapsed - due);
      next++;
    }
    result.sendSpanMs = elapsed;
    if (next < items.length) {
      const due = sendAtMs(items[next] as T);
      const wakeAt = Math.min(due, stopSendingAtMs);
      timer = clock.setTimer(Math.max(0, wakeAt - elapsed), tick);
    }
    finishIfIdle();
  };

  queueMicrotask(tick);
  return {
    done,
    stop: () => {
      if (stopped) return;
      stopped = true;
      tick();
    },
    get inFlight() {
      return inFlight;
    },
  };
}
