// One upstream HTTP call through a replica's undici Pool, and the classification of its
// failures into what the retry rules need: did the replica provably do no work?
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Replica } from '../replicas/replica.ts';
import type { Job } from '../scheduling/job.ts';

export type UpstreamFailureKind =
  /** Connection refused, unreachable or connect timeout: the request never left. */
  | 'connect_error'
  /** Socket closed before response headers. */
  | 'reset'
  /** headersTimeout or bodyTimeout of the pool after the body was sent. */
  | 'timeout'
  /** The job's own signal aborted (client gone, deadline, shutdown). */
  | 'aborted'
  | 'other';

export class UpstreamFailure extends Error {
  readonly kind: UpstreamFailureKind;
  /** The error code of the cause, such as UND_ERR_HEADERS_TIMEOUT; empty when it has none. */
  readonly code: string;

  constructor(kind: UpstreamFailureKind, message: string, cause: unknown, code = '') {
    super(message, { cause });
    this.name = 'UpstreamFailure';
    this.kind = kind;
    this.code = code;
  }
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNABORTED']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Classifies an error of an upstream call. aborted means the request's own abort caused it. */
export function classifyUpstreamError(error: unknown, aborted: boolean): UpstreamFailure {
  if (error instanceof UpstreamFailure) return error;
  const cause = error instanceof UpstreamCallError ? error.cause : error;
  const code = errorCode(cause);
  const message = cause instanceof Error ? cause.message : String(cause);
  if (aborted) return new UpstreamFailure('aborted', `upstream call aborted: ${message}`, error);
  if (CONNECT_CODES.has(code)) return new UpstreamFailure('connect_error', `cannot connect to the replica (${code}): ${message}`, error);
  if (RESET_CODES.has(code)) return new UpstreamFailure('reset', `the replica closed the connection (${code}): ${message}`, error);
  if (TIMEOUT_CODES.has(code)) return new UpstreamFailure('timeout', `the replica timed out (${code}): ${message}`, error, code);
  return new UpstreamFailure('other', `upstream call failed (${code || 'no code'}): ${message}`, error);
}

function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return '';
}

/**
 * Header of a merged upstream call listing the x-request-id of every request in it, in
 * batch order. x-request-id itself carries the first request's id.
 */
export const BATCH_REQUEST_IDS_HEADER = 'x-batch-request-ids';

/**
 * Joins request ids into the x-batch-request-ids value: comma-separated, with "%" and ","
 * inside an id percent-encoded (%25, %2C), since request ids may contain commas.
 */
export function formatBatchRequestIds(ids: readonly string[]): string {
  return ids.map((id) => id.replaceAll('%', '%25').replaceAll(',', '%2C')).join(',');
}

/** A response the replica sent in full. */
export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The whole body, or empty when the body went to a StreamSink. */
  body: Buffer;
  /** Whether the body went to the StreamSink as it arrived. */
  streamed: boolean;
}

/** The destination of a streamed response: the client's connection. */
export interface StreamSink {
  /** Called when response headers arrive; returns whether to stream this response (a 2xx SSE reply) instead of buffering it. */
  start(status: number): boolean;
  /** Writes one chunk; false means the client's buffer is full. */
  write(chunk: Buffer): boolean;
  /** Calls resume once after the client's buffer drained. */
  onDrain(resume: () => void): void;
}

/** The failure of an upstream call, and whether response headers had arrived (then the replica did the work). */
export class UpstreamCallError extends Error {
  readonly afterHeaders: boolean;
  /** Whether part of the body already went to the client through the StreamSink. */
  readonly streamed: boolean;

  constructor(cause: unknown, afterHeaders: boolean, streamed: boolean) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'UpstreamCallError';
    this.afterHeaders = afterHeaders;
    this.streamed = streamed;
  }
}

/**
 * One POST to a replica for one request or a merged batch, through undici's dispatch
 * interface, on the gateway's hottest path. dispatch hands over each response chunk without
 * the stream, promise and AbortSignal that undici's request() builds per call. Those took
 * roughly a fifth of the gateway's CPU per proxied request in a profile on one machine. The
 * call carries the first request's id, and for a batch every id.
 */
export class UpstreamCall implements Dispatcher.DispatchHandler {
  readonly done: Promise<UpstreamResponse>;
  readonly #sink: StreamSink | undefined;
  #resolve!: (response: UpstreamResponse) => void;
  #reject!: (error: UpstreamCallError) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #abortReason: Error | undefined;
  #settled = false;
  #afterHeaders = false;
  #streaming = false;
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  #chunks: Buffer[] = [];
  readonly #replica: Replica;
  readonly #responsesAtStart: number;

  constructor(replica: Replica, jobs: readonly Job[], path: string, body: Buffer | string, sink?: StreamSink) {
    const { promise, resolve, reject } = Promise.withResolvers<UpstreamResponse>();
    this.done = promise;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#sink = sink;
    this.#replica = replica;
    this.#responsesAtStart = replica.responses;
    const first = jobs[0];
    if (first === undefined) throw new Error('an upstream call needs at least one request');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: first.stream ? 'text/event-stream' : 'application/json',
      'x-request-id': first.id,
    };
    if (jobs.length > 1) headers[BATCH_REQUEST_IDS_HEADER] = formatBatchRequestIds(jobs.map((job) => job.id));
    const options: Dispatcher.DispatchOptions = { method: 'POST', path, headers, body };
    // A replica that sends no headers for a stream is not responding at all, so a stream waits
    // for headers much less than a non-streaming call, whose headers come after the last token.
    if (first.stream) options.headersTimeout = replica.upstream.streamHeadersTimeoutMs;
    try {
      replica.pool.dispatch(options, this);
    } catch (error) {
      this.#fail(error);
    }
  }

  /** Whether the replica sent response headers on no call, this one or another, since this call started. */
  get replicaSilent(): boolean {
    return this.#replica.responses === this.#responsesAtStart;
  }

  /** Whether abort() was called. */
  get aborted(): boolean {
    return this.#abortReason !== undefined;
  }

  /** Cancels the call. done rejects at once, even before a connection was assigned. */
  abort(reason: Error): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
    this.#fail(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason !== undefined) controller.abort(this.#abortReason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#afterHeaders = true;
    this.#replica.responses++;
    this.#status = statusCode;
    this.#headers = headers;
    this.#streaming = this.#sink?.start(statusCode) ?? false;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    if (!this.#streaming) {
      this.#chunks.push(chunk);
      return;
    }
    const sink = this.#sink as StreamSink;
    if (!sink.write(chunk)) {
      controller.pause();
      sink.onDrain(() => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#settled = true;
    const body = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#resolve({ status: this.#status, headers: this.#headers, body, streamed: this.#streaming });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#fail(error);
  }

  #fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#chunks = [];
    this.#reject(new UpstreamCallError(error, this.#afterHeaders, this.#streaming));
  }
}

/** Parses the Retry-After header of an upstream response into seconds (delta-seconds or HTTP date); undefined when absent or invalid. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim());
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, (date - nowMs) / 1000);
}
