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

/** Sends a POST with body to the replica, tagged with the request id and bound to the job's signal. */
export function postUpstream(replica: Replica, job: Job, path: string, body: Buffer | string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  return replica.pool.request({
    method: 'POST',
    path,
    headers: {
      'content-type': 'application/json',
      accept: job.stream ? 'text/event-stream' : 'application/json',
      'x-request-id': job.id,
    },
    body,
    signal,
  });
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
