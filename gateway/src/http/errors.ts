// The errors the gateway returns to clients: a stable code, an HTTP status, a message that
// names the offending value, and the outcome recorded for the request. Each route family
// renders them in its own wire shape.
import type { FastifyReply } from 'fastify';

export const OUTCOMES = [
  'success',
  'rejected_queue_full',
  'rejected_deadline',
  'rejected_no_replicas',
  'rejected_invalid',
  'expired_in_queue',
  'client_cancelled',
  'upstream_error',
  'upstream_timeout',
  'shutdown',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type ErrorStyle = 'openai' | 'v2';

export interface GatewayErrorOptions {
  param?: string | null;
  retryAfterSeconds?: number;
  outcome?: Outcome;
  cause?: unknown;
}

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
  499: 'client_cancelled',
  502: 'upstream_error',
  503: 'service_unavailable',
  504: 'timeout_error',
};

export class GatewayError extends Error {
  readonly status: number;
  readonly code: string;
  readonly param: string | null;
  readonly retryAfterSeconds: number | undefined;
  readonly outcome: Outcome;

  constructor(status: number, code: string, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.status = status;
    this.code = code;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.outcome = options.outcome ?? (status >= 500 ? 'upstream_error' : 'rejected_invalid');
  }

  /** Body in the OpenAI error shape {"error":{"message","type","code","param"}}. */
  toOpenAI(): { error: { message: string; type: string; code: string; param: string | null } } {
    return { error: { message: this.message, type: TYPE_BY_STATUS[this.status] ?? 'api_error', code: this.code, param: this.param } };
  }

  /** Body in the KServe V2 error shape {"error": "..."}; the code leads the message so clients can match it. */
  toV2(): { error: string } {
    return { error: `${this.code}: ${this.message}` };
  }
}

export function invalidField(param: string, value: unknown, expected: string): GatewayError {
  return new GatewayError(400, 'invalid_value', `invalid value ${preview(value)} for ${param}: ${expected}`, { param });
}

/**
 * Returns the 404 for a model that the routes of style do not serve. servedByOther means
 * that the gateway serves it on the other protocol's routes, which the message then names.
 */
export function unknownModel(name: string, style: ErrorStyle, servedByOther = false): GatewayError {
  const param = style === 'openai' ? 'model' : null;
  if (servedByOther) {
    const routes = style === 'openai' ? 'the V2 routes (/v2/models/...)' : 'the OpenAI routes (/v1/...)';
    return new GatewayError(404, 'model_not_found', `model ${JSON.stringify(name)} is served on ${routes}, not on this route`, { param });
  }
  const where = style === 'openai' ? 'GET /v1/models' : 'the gateway configuration';
  return new GatewayError(404, 'model_not_found', `model ${JSON.stringify(name)} is not served by this gateway; see ${where} for the models it serves`, { param });
}

export function shuttingDown(): GatewayError {
  return new GatewayError(503, 'shutting_down', 'the gateway is shutting down; retry on another gateway instance', {
    outcome: 'shutdown',
    retryAfterSeconds: 1,
  });
}

/** Writes err to reply in the route family's shape, with Retry-After on 429 and 503. */
export function sendError(reply: FastifyReply, err: GatewayError, style: ErrorStyle): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
  reply.code(err.status);
  return reply.send(style === 'openai' ? err.toOpenAI() : err.toV2());
}

/** Shortens a client value for an error message so a huge prompt is never echoed back. */
export function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
