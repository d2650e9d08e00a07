// Per-request accounting for the load drivers: every request that is sent is recorded once
// as answered, failed in transport, aborted on purpose, or lost, so that
// sent = answered + transport errors + client aborts + lost holds and lost can be checked.
import type { RequestOutcome } from './http-client.ts';
import { LatencyHistogram, type LatencySummary } from './stats.ts';

export interface TallySnapshot {
  sent: number;
  /** A status line and a complete body arrived (any status). */
  answered: number;
  /**
   * Answered with 2xx, no stream error and the x-request-id that was sent. A response that
   * carries another request's id may be another request's answer, so it is not a success.
   */
  succeeded: number;
  transportErrors: number;
  /** Aborted by the client on purpose (a client-abort scenario), not a failure of the server. */
  clientAborted: number;
  /** Sent and never answered: still pending when the run ended, or aborted at the hard time cap. */
  lost: number;
  /** Responses whose x-request-id differed from the one sent. */
  requestIdMismatches: number;
  /** Count per status code, with `transport` for requests that got no status line. */
  byStatus: Map<string, number>;
  /** Count per status and error code, such as `429 queue_full` or `transport ECONNRESET`. */
  byCode: Map<string, number>;
  /** Latency of successful requests from send to the end of the body. */
  total: LatencySummary;
  /** Latency of successful requests from send to the first body byte. */
  ttfb: LatencySummary;
}

export class OutcomeTally {
  #sent = 0;
  #answered = 0;
  #succeeded = 0;
  #transportErrors = 0;
  #clientAborted = 0;
  #lost = 0;
  #requestIdMismatches = 0;
  readonly #byStatus = new Map<string, number>();
  readonly #byCode = new Map<string, number>();
  readonly total = new LatencyHistogram();
  readonly ttfb = new LatencyHistogram();

  /** Counts a request as sent; each call must be matched by one record() or recordLost(). */
  begin(): void {
    this.#sent++;
  }

  /** Records how a sent request ended. */
  record(outcome: RequestOutcome): void {
    if (outcome.requestIdMismatch) this.#requestIdMismatches++;
    if (outcome.kind === 'aborted') {
      this.#clientAborted++;
      increment(this.#byStatus, 'client_aborted');
      increment(this.#byCode, 'client_aborted');
      return;
    }
    if (outcome.kind === 'transport_error') {
      this.#transportErrors++;
      increment(this.#byStatus, 'transport');
      increment(this.#byCode, `transport ${outcome.code ?? 'unknown_error'}`);
      return;
    }
    this.#answered++;
    const status = String(outcome.status ?? 0);
    increment(this.#byStatus, status);
    increment(this.#byCode, outcome.code === undefined ? status : `${status} ${outcome.code}`);
    const ok = outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300 && outcome.code === undefined && !outcome.requestIdMismatch;
    if (!ok) return;
    this.#succeeded++;
    this.total.record(outcome.totalMs);
    this.ttfb.record(outcome.ttfbMs ?? outcome.totalMs);
  }

  /** Records a sent request that never got an answer before the run ended. */
  recordLost(): void {
    this.#lost++;
    increment(this.#byStatus, 'lost');
    increment(this.#byCode, 'lost');
  }

  /** Requests begun and not yet recorded. */
  get pending(): number {
    return this.#sent - this.#answered - this.#transportErrors - this.#clientAborted - this.#lost;
  }

  get succeeded(): number {
    return this.#succeeded;
  }

  get sent(): number {
    return this.#sent;
  }

  snapshot(): TallySnapshot {
    return {
      sent: this.#sent,
      answered: this.#answered,
      succeeded: this.#succeeded,
      transportErrors: this.#transportErrors,
      clientAborted: this.#clientAborted,
      // Requests still pending when a snapshot is taken at the end of a run are lost too.
      lost: this.#lost + this.pending,
      requestIdMismatches: this.#requestIdMismatches,
      byStatus: new Map(this.#byStatus),
      byCode: new Map(this.#byCode),
      total: this.total.summary(),
      ttfb: this.ttfb.summary(),
    };
  }
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
