// Turns a validated HTTP request into a Job and hands it to its model's scheduler. It reads
// the x-request-id, x-priority and x-request-timeout-ms headers and responds to rejections.
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../../shared/src/clock.ts';
import { PRIORITIES, type Priority } from '../../../shared/src/admin-state.ts';
import type { GatewayMetrics } from '../admin/metrics.ts';
import type { ModelRuntime } from '../model-runtime.ts';
import { Job } from '../scheduling/job.ts';
import { GatewayError, invalidField, shuttingDown, type ErrorStyle } from './errors.ts';

export interface AdmissionDeps {
  clock: Clock;
  metrics: GatewayMetrics;
  logger: Logger;
  isShuttingDown: () => boolean;
}

export interface WorkSpec<P> {
  style: ErrorStyle;
  upstreamPath: string;
  payload: P;
  rows: number;
  batchKey: string | null;
  stream: boolean;
}

const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Property key of a request's decided id, so every log line and header of one request carries the same generated id. */
const REQUEST_ID = Symbol('infergate.requestId');

type WithRequestId = FastifyRequest & { [REQUEST_ID]?: string };

/**
 * Returns x-request-id when it is printable ASCII of at most 200 characters, else a new
 * UUID. The result is remembered per request, so repeated calls return the same id.
 */
export function requestIdOf(request: FastifyRequest): string {
  const known = (request as WithRequestId)[REQUEST_ID];
  if (known !== undefined) return known;
  const header = request.headers['x-request-id'];
  const value = Array.isArray(header) ? header[0] : header;
  const id = value !== undefined && REQUEST_ID_PATTERN.test(value) ? value : randomUUID();
  (request as WithRequestId)[REQUEST_ID] = id;
  return id;
}

export function parsePriority(request: FastifyRequest): Priority {
  const header = request.headers['x-priority'];
  if (header === undefined) return 'standard';
  const value = Array.isArray(header) ? header[0] : header;
  const normalized = value?.trim().toLowerCase();
  if (normalized !== undefined && (PRIORITIES as readonly string[]).includes(normalized)) return normalized as Priority;
  throw invalidField('header x-priority', value, `allowed values are ${PRIORITIES.join(', ')}`);
}

/** Returns the deadline in ms from arrival: x-request-timeout-ms capped by queue.timeoutMs, or that default. */
export function parseTimeout(request: FastifyRequest, capMs: number): { timeoutMs: number; explicit: boolean } {
  const header = request.headers['x-request-timeout-ms'];
  if (header === undefined) return { timeoutMs: capMs, explicit: false };
  const value = Array.isArray(header) ? header[0] : header;
  // Any number of digits is valid: a deadline too large for a Number is capped like any other.
  if (value === undefined || !/^\d+$/.test(value.trim()) || Number(value) <= 0) {
    throw invalidField('header x-request-timeout-ms', value, 'expected a positive integer number of milliseconds');
  }
  return { timeoutMs: Math.min(Number(value), capMs), explicit: true };
}

/**
 * Admits the request to the model's queue, which sends its one response later. Header
 * errors and admission rejections get their response here and count as outcomes.
 */
export function admit<P>(deps: AdmissionDeps, model: ModelRuntime, request: FastifyRequest, reply: FastifyReply, spec: WorkSpec<P>): void {
  const id = requestIdOf(request);
  reply.header('x-request-id', id);
  const config = model.config;
  let priority: Priority = 'standard';
  let timeout = { timeoutMs: config.queue.timeoutMs, explicit: false };
  let headerError: GatewayError | undefined;
  try {
    priority = parsePriority(request);
    timeout = parseTimeout(request, config.queue.timeoutMs);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    headerError = error;
  }

  const job = new Job<P>({
    id,
    model: config.name,
    protocol: config.protocol,
    style: spec.style,
    priority,
    timeoutMs: timeout.timeoutMs,
    explicitTimeout: timeout.explicit,
    rows: spec.rows,
    batchKey: spec.batchKey,
    upstreamPath: spec.upstreamPath,
    payload: spec.payload,
    rawBody: (request as FastifyRequest & { rawBody?: Buffer }).rawBody ?? Buffer.from(JSON.stringify(spec.payload)),
    stream: spec.stream,
    reply,
    clock: deps.clock,
    metrics: deps.metrics,
    logger: deps.logger,
  });

  if (headerError !== undefined) {
    job.respondError(headerError);
  } else if (deps.isShuttingDown()) {
    job.respondError(shuttingDown());
  } else {
    try {
      model.scheduler.submit(job);
    } catch (error) {
      if (error instanceof GatewayError) {
        job.respondError(error);
      } else {
        // The job already holds a deadline timer and a close listener; finishing it releases them and records the outcome.
        deps.logger.error({ err: error, requestId: id, model: config.name }, 'admitting the request failed unexpectedly');
        job.respondError(new GatewayError(500, 'internal_error', 'the gateway failed to admit the request', { outcome: 'upstream_error' }));
      }
    }
  }
}
