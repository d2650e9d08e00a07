// Shared state of the protocol route modules: config, clock, engine, metrics, and the
// per-request tracker that counts each inference request's single outcome.
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../../shared/src/clock.ts';
import type { Logger } from '../../shared/src/logger.ts';
import type { ReplicaConfig } from './config.ts';
import type { Engine } from './engine.ts';
import type { FaultSettings } from './faults.ts';
import type { ReplicaMetrics } from './metrics.ts';
import type { RequestOutcome } from './stats.ts';

/** Follows one inference request from arrival to its single outcome in /sim/stats. */
export interface InferenceTracker {
  readonly requestId: string;
  /** Clock time of arrival, in milliseconds. */
  readonly arrivedAt: number;
  /** Outcome counted when the response finishes; 'completed' unless set. */
  setOutcome(outcome: RequestOutcome): void;
  /** Outcome counted however the connection ends, for injected resets. */
  forceOutcome(outcome: RequestOutcome): void;
  /** Runs fn once if the client disconnects before the response finished. */
  onAbort(fn: () => void): void;
  readonly aborted: boolean;
}

export interface ReplicaContext {
  readonly config: Readonly<ReplicaConfig>;
  readonly clock: Clock;
  readonly engine: Engine;
  readonly metrics: ReplicaMetrics;
  readonly logger: Logger;
  /** The tracker created on arrival for an inference route. */
  tracker(request: FastifyRequest): InferenceTracker;
  /** False until the start-up delay has passed. */
  isReady(): boolean;
  /** Fault settings active now. */
  faults(): Readonly<FaultSettings>;
}

/**
 * A request rejected because of its own content (400) or an unknown model (404). The
 * server's error handler formats it in the route's protocol; `param` is the field path.
 */
export class InvalidRequestError extends Error {
  readonly status: number;
  readonly param: string | null;
  constructor(message: string, param: string | null, status = 400) {
    super(message);
    this.param = param;
    this.status = status;
  }
}

/** Error `type` values in OpenAI-protocol error bodies, by HTTP status, as vLLM names them. */
export const OPENAI_ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'BadRequestError',
  404: 'NotFoundError',
  413: 'BadRequestError',
  415: 'BadRequestError',
  429: 'TooManyRequestsError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

/** Builds the error body of vLLM's OpenAI server, where `code` repeats the HTTP status. */
export function openaiErrorBody(status: number, message: string, param: string | null = null): Record<string, unknown> {
  return { object: 'error', message, type: OPENAI_ERROR_TYPES[status] ?? 'InternalServerError', param, code: status };
}

/** Builds the error body of Triton's HTTP server. */
export function v2ErrorBody(message: string): { error: string } {
  return { error: message };
}
