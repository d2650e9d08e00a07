// One admitted request from arrival to its single response: its deadline, its abort
// (client disconnect, deadline and shutdown combined), its scheduling state and the
// recording of its one outcome in metrics and the access log.
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../shared/src/clock.ts';
import type { Priority, Protocol } from '../../../shared/src/admin-state.ts';
import type { GatewayMetrics } from '../admin/metrics.ts';
import { GatewayError, sendError, type ErrorStyle, type Outcome } from '../http/errors.ts';

export type AbortKind = 'client' | 'deadline' | 'shutdown';

export interface JobInit<P> {
  id: string;
  model: string;
  protocol: Protocol;
  style: ErrorStyle;
  priority: Priority;
  /** Explicit client deadline in ms from arrival (x-request-timeout-ms), already capped. */
  timeoutMs: number;
  explicitTimeout: boolean;
  rows: number;
  /** Compatibility key for batching; null when the request is never merged. */
  batchKey: string | null;
  /** Path of the upstream call, such as /v1/chat/completions. */
  upstreamPath: string;
  payload: P;
  /** The request body as received, forwarded unchanged when the request goes alone. */
  rawBody: Buffer;
  stream: boolean;
  reply: FastifyReply;
  clock: Clock;
  metrics: GatewayMetrics;
  logger: Logger;
}

/** The job a response belongs to, so one shared close listener serves every response. */
const JOB = Symbol('infergate.job');

type ResponseWithJob = FastifyReply['raw'] & { [JOB]?: Job };

/**
 * Aborts the job of a response that closed before it finished, which happens only when the
 * client went away. It is one module-level function rather than a closure per job. In GC
 * traces, a closure created in the Job constructor kept each request's objects alive through
 * young-generation collections, so each collection copied megabytes and paused for milliseconds.
 */
function onResponseClose(this: ResponseWithJob): void {
  if (!this.writableFinished) this[JOB]?.abort('client');
}

export class Job<P = unknown> {
  readonly id: string;
  readonly model: string;
  readonly protocol: Protocol;
  readonly style: ErrorStyle;
  readonly priority: Priority;
  readonly arrivedAt: number;
  readonly explicitTimeout: boolean;
  readonly rows: number;
  readonly batchKey: string | null;
  readonly upstreamPath: string;
  readonly payload: P;
  readonly rawBody: Buffer;
  readonly stream: boolean;
  readonly reply: FastifyReply;
  readonly logger: Logger;

  /** Upstream calls that carried this request so far, including merged calls rejected with 400. */
  attempts = 0;
  /**
   * Merged calls the replica rejected with 400 that carried this request. Such a call proves
   * nothing about this request when another one in the batch was the bad input, so it is
   * not a try: the request is sent again alone, without using up retry.maxAttempts.
   */
  batchRejections = 0;
  /** Tries that count: calls made, less merged calls rejected as a whole. A retry is allowed while tries < retry.maxAttempts. */
  get tries(): number {
    return this.attempts - this.batchRejections;
  }

  /** Replicas that failed this request without doing work; retries go elsewhere. */
  readonly avoid = new Set<string>();
  /** Set after a merged batch was rejected with 400: the request is sent alone. */
  solo = false;
  /** Waiting because the model had no serving replica (scale from zero). */
  held = false;
  holdTimer: TimerHandle | undefined;
  dispatchedAt: number | undefined;
  /** Replica of the current or last upstream call, for the access log. */
  replicaId: string | undefined;
  /** Position in the scheduler's list of in-flight jobs, undefined while not in an upstream call. */
  inFlightSlot: number | undefined;
  /** The upstream call carrying this request now, which its abort handler cancels. */
  upstream: { abort(reason: Error): void } | undefined;
  /** The requests of the merged call this request is in, while that call runs. */
  batchMembers: readonly Job[] | undefined;

  readonly #clock: Clock;
  readonly #metrics: GatewayMetrics;
  #abortKind: AbortKind | undefined;
  /**
   * Handler called once when the request aborts. A job is in one place at a time (the queue
   * or one upstream call), so one slot is enough, and it costs less than an AbortSignal.
   */
  #abortHandler: ((job: Job) => void) | undefined;
  #deadline: number;
  #deadlineTimer: TimerHandle | undefined;
  #finished = false;
  #firstByteRecorded = false;

  constructor(init: JobInit<P>) {
    this.id = init.id;
    this.model = init.model;
    this.protocol = init.protocol;
    this.style = init.style;
    this.priority = init.priority;
    this.explicitTimeout = init.explicitTimeout;
    this.rows = init.rows;
    this.batchKey = init.batchKey;
    this.upstreamPath = init.upstreamPath;
    this.payload = init.payload;
    this.rawBody = init.rawBody;
    this.stream = init.stream;
    this.reply = init.reply;
    this.logger = init.logger;
    this.#clock = init.clock;
    this.#metrics = init.metrics;
    this.arrivedAt = init.clock.now();
    this.#deadline = this.arrivedAt + init.timeoutMs;
    this.#armDeadline();

    (this.reply.raw as ResponseWithJob)[JOB] = this;
    this.reply.raw.on('close', onResponseClose);
  }

  get deadline(): number {
    return this.#deadline;
  }

  get finished(): boolean {
    return this.#finished;
  }

  get abortKind(): AbortKind | undefined {
    return this.#abortKind;
  }

  get aborted(): boolean {
    return this.#abortKind !== undefined;
  }

  /**
   * Sets what runs when the request aborts, replacing the previous handler. The owner of
   * the job (the queue, then an upstream call) sets it. When the job already aborted, the
   * handler runs in a microtask, unless it was replaced by then. Owners pass one shared
   * function that takes the job, not a closure per job (see onResponseClose).
   */
  onAbort(handler: (job: Job) => void): void {
    this.#abortHandler = handler;
    if (this.#abortKind !== undefined) {
      queueMicrotask(() => {
        if (this.#abortHandler === handler) handler(this);
      });
    }
  }

  /**
   * Clears the abort handler. With an argument, it clears only that handler, so an upstream
   * call that ends after handing the job back to the queue leaves the queue's handler in place.
   */
  dropAbortHandler(handler?: (job: Job) => void): void {
    if (handler === undefined || this.#abortHandler === handler) this.#abortHandler = undefined;
  }
  /** Milliseconds left before the deadline, never negative. */
  remainingMs(): number {
    return Math.max(0, this.#deadline - this.#clock.now());
  }

  /** Moves the deadline, as when a held request is released with a fresh queue timeout. */
  setDeadline(at: number): void {
    this.#deadline = at;
    this.#armDeadline();
  }

  /** Aborts the request once and runs its abort handler; the first reason wins. */
  abort(kind: AbortKind): void {
    if (this.#abortKind !== undefined || this.#finished) return;
    this.#abortKind = kind;
    this.#abortHandler?.(this);
  }

  /** Returns an Error that describes the abort, passed to undici when the upstream call is cancelled. */
  abortReason(): Error {
    switch (this.#abortKind) {
      case 'client':
        return new Error('request cancelled by the client');
      case 'deadline':
        return new Error('request deadline passed');
      default:
        return new Error('request stopped by shutdown');
    }
  }

  /** Returns the error that matches the abort reason, for a request without a response yet. */
  abortError(inQueue: boolean): GatewayError {
    switch (this.#abortKind) {
      case 'deadline':
        return inQueue
          ? new GatewayError(504, 'queue_timeout', `request ${this.id} waited in the queue past its deadline; raise x-request-timeout-ms or retry later`, { outcome: 'expired_in_queue' })
          : new GatewayError(504, 'upstream_timeout', `request ${this.id} did not complete before its deadline`, { outcome: 'upstream_timeout' });
      case 'shutdown':
        return new GatewayError(503, 'shutting_down', 'the gateway shut down before the request completed; retry it', { outcome: 'shutdown', retryAfterSeconds: 1 });
      default:
        return new GatewayError(499, 'client_cancelled', `request ${this.id} was cancelled by the client`, { outcome: 'client_cancelled' });
    }
  }

  /** Records that the first response byte is about to be sent. */
  markFirstByte(): void {
    if (this.#firstByteRecorded) return;
    this.#firstByteRecorded = true;
    this.#metrics.timeToFirstByte.observe({ model: this.model }, (this.#clock.now() - this.arrivedAt) / 1000);
  }

  markDispatched(): void {
    if (this.dispatchedAt !== undefined) return;
    this.dispatchedAt = this.#clock.now();
    this.#metrics.queueWait.observe({ model: this.model }, (this.dispatchedAt - this.arrivedAt) / 1000);
  }

  /**
   * Sends body (serialized unless already a Buffer) and records the outcome. code is the
   * access log's error code for a non-2xx status passed through from the replica.
   */
  respondJson(status: number, body: unknown, outcome: Outcome, contentType = 'application/json', code?: string): void {
    if (this.#finished) return;
    if (this.reply.raw.destroyed) {
      this.finish('client_cancelled', 499);
      return;
    }
    this.markFirstByte();
    this.reply
      .code(status)
      .header('content-type', contentType)
      .send(Buffer.isBuffer(body) ? body : JSON.stringify(body));
    this.finish(outcome, status, code);
  }

  /** Sends err in the route family's shape, or only records it when the client is gone. */
  respondError(err: GatewayError): void {
    if (this.#finished) return;
    if (err.status === 499 || this.reply.raw.destroyed || this.reply.sent) {
      this.finish(err.outcome, err.status);
      return;
    }
    this.markFirstByte();
    sendError(this.reply, err, this.style);
    this.finish(err.outcome, err.status, err.code);
  }

  /**
   * Records the one outcome of this request and writes the access log line. The finished flag makes later calls no-ops, so a request is counted once.
   */
  finish(outcome: Outcome, status: number, code?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#abortHandler = undefined;
    this.#deadlineTimer?.cancel();
    this.holdTimer?.cancel();
    this.reply.raw.off('close', onResponseClose);
    (this.reply.raw as ResponseWithJob)[JOB] = undefined;
    const seconds = (this.#clock.now() - this.arrivedAt) / 1000;
    this.#metrics.requests.inc({ model: this.model, protocol: this.protocol, outcome });
    this.#metrics.requestDuration.observe({ model: this.model, protocol: this.protocol }, seconds);
    const level = status >= 500 ? 'warn' : 'info';
    // The access log line is built only when it is written: at level warn, as in benchmarks, it is not.
    if (!this.logger.isLevelEnabled(level)) return;
    const line = {
      requestId: this.id,
      model: this.model,
      priority: this.priority,
      outcome,
      status,
      code,
      replica: this.replicaId,
      attempts: this.tries,
      queueMs: this.dispatchedAt === undefined ? undefined : Math.round(this.dispatchedAt - this.arrivedAt),
      durationMs: Math.round(seconds * 1000),
    };
    this.logger[level](line, 'request finished');
  }

  #armDeadline(): void {
    this.#deadlineTimer?.cancel();
    if (!Number.isFinite(this.#deadline)) return;
    this.#deadlineTimer = this.#clock.setTimer(this.#deadline - this.#clock.now(), () => this.abort('deadline'));
  }
}
