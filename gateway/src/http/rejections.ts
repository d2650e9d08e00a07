// Counting of requests rejected before admission because the request itself is invalid:
// malformed or schema-invalid bodies, unknown models, oversized bodies and wrong content
// types on the inference routes. They count as outcome rejected_invalid, like invalid
// headers, with a bounded model label.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Protocol } from '../../../shared/src/admin-state.ts';
import type { GatewayMetrics } from '../admin/metrics.ts';
import { UNKNOWN_MODEL_LABEL } from '../config/defaults.ts';
import type { ModelConfig } from '../config/load.ts';
import { requestIdOf } from './admission.ts';
import { sendError, type ErrorStyle, type GatewayError } from './errors.ts';

/** Inference routes by fastify route pattern. Other routes (metadata, health, lists) are not counted. */
const INFERENCE_ROUTES: ReadonlyMap<string, Protocol> = new Map([
  ['/v1/chat/completions', 'openai'],
  ['/v1/completions', 'openai'],
  ['/v1/embeddings', 'openai'],
  ['/v2/models/:model/infer', 'v2'],
  ['/v2/models/:model/versions/:version/infer', 'v2'],
]);

export interface RejectionDeps {
  metrics: GatewayMetrics;
  logger: Logger;
  models: ReadonlyMap<string, { readonly config: ModelConfig }>;
}

/**
 * Sends err and, when the request was for an inference route, counts it in
 * infergate_requests_total with the error's outcome (rejected_invalid for a bad request) and
 * writes its access log line.
 */
export function rejectInvalid(deps: RejectionDeps, request: FastifyRequest, reply: FastifyReply, err: GatewayError, style: ErrorStyle): FastifyReply {
  const id = requestIdOf(request);
  reply.header('x-request-id', id);
  const protocol = INFERENCE_ROUTES.get(request.routeOptions.url ?? '');
  if (protocol !== undefined) {
    const model = modelLabel(deps, request, protocol);
    deps.metrics.requests.inc({ model, protocol, outcome: err.outcome });
    const line = { requestId: id, model, outcome: err.outcome, status: err.status, code: err.code, param: err.param };
    if (err.status >= 500) deps.logger.warn(line, 'request finished');
    else deps.logger.info(line, 'request finished');
  }
  return sendError(reply, err, style);
}

/** Returns the configured model the request names, or UNKNOWN_MODEL_LABEL, so label values stay bounded. */
function modelLabel(deps: RejectionDeps, request: FastifyRequest, protocol: Protocol): string {
  let name: unknown;
  if (protocol === 'v2') {
    name = (request.params as { model?: unknown } | undefined)?.model;
  } else {
    const body: unknown = request.body;
    if (body !== null && typeof body === 'object') name = (body as { model?: unknown }).model;
  }
  if (typeof name !== 'string') return UNKNOWN_MODEL_LABEL;
  return deps.models.get(name)?.config.protocol === protocol ? name : UNKNOWN_MODEL_LABEL;
}
