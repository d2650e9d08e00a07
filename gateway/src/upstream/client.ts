// One upstream HTTP call through a replica's undici Pool, and the classification of its
// failures into what the retry rules need: did the replica provably do no work?
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

  constructor(kind: UpstreamFailureKind, message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'UpstreamFailure';
    this.kind = kind;
  }
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNABORTED']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Classifies an error thrown by undici. An aborted signal means the request's own abort caused it. */
export function classifyUpstreamError(error: unknown, signal: AbortSignal): UpstreamFailure {
  if (error instanceof UpstreamFailure) return error;
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (signal.aborted) return new UpstreamFailure('aborted', `upstream call aborted: ${message}`, error);
  if (CONNECT_CODES.has(code)) return new UpstreamFailure('connect_error', `cannot connect to the replica (${code}): ${message}`, error);
  if (RESET_CODES.has(code)) return new UpstreamFailure('reset', `the replica closed the connection (${code}): ${message}`, error);
  if (TIMEOUT_CODES.has(code)) return new UpstreamFailure('timeout', `the replica timed out (${code}): ${message}`, error);
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

/**
 * Sends a POST with body to the replica for jobs (one request or a merged batch), tagged
 * with the first request's id, and for a batch with every id, bound to signal.
 */
export function postUpstream(replica: Replica, jobs: readonly Job[], path: string, body: Buffer | string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  const first = jobs[0];
  if (first === undefined) throw new Error('postUpstream needs at least one request');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: first.stream ? 'text/event-stream' : 'application/json',
    'x-request-id': first.id,
  };
  if (jobs.length > 1) headers[BATCH_REQUEST_IDS_HEADER] = formatBatchRequestIds(jobs.map((job) => job.id));
  return replica.pool.request({ method: 'POST', path, headers, body, signal });
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
