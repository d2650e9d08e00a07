// The traffic listener: body limit on every route, JSON-only content type, the error
// shapes of each route family, and the OpenAI and V2 routes.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { GatewayError, preview, sendError, type ErrorStyle } from './errors.ts';
import { registerOpenAIRoutes, type RouteDeps } from './openai.ts';
import { registerV2Routes } from './v2.ts';
import { requestIdOf } from './admission.ts';
import { parseJsonBody } from './json-body.ts';
import { describeExpectation } from '../schema-errors.ts';
import { rejectInvalid } from './rejections.ts';

export interface TrafficServerOptions {
  bodyLimitBytes: number;
  logger: Logger;
  version: string;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
  data?: unknown;
  parentSchema?: Record<string, unknown>;
}

export function buildTrafficServer(options: TrafficServerOptions, deps: RouteDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    // Bodies are forwarded byte for byte, so validation must not coerce or strip anything.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, verbose: true, allErrors: false } },
    return503OnClosing: false,
    // No child logger per request: the gateway's log lines carry requestId themselves, and
    // creating a pino child for every request costs more than the rest of routing.
    childLoggerFactory: (logger) => logger,
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buffer = body as Buffer;
    try {
      const parsed = parseJsonBody(buffer.toString('utf8'));
      // Only a body that passed the checks is kept for forwarding upstream.
      (request as FastifyRequest & { rawBody?: Buffer }).rawBody = buffer;
      done(null, parsed);
    } catch (error) {
      done(error as GatewayError, undefined);
    }
  });

  // fastify checks the limit only on routes that read a body; this makes it apply to all of
  // them. The hooks take a callback rather than returning a promise: they run on every request.
  app.addHook('onRequest', (request, reply, done) => {
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > options.bodyLimitBytes) {
      const err = new GatewayError(413, 'body_too_large', `the request body of ${length} bytes exceeds the limit of ${options.bodyLimitBytes} bytes (server.bodyLimitBytes)`);
      reply.header('connection', 'close');
      rejectInvalid(deps, request, reply, err, styleOf(request));
      return;
    }
    // The binary extension's body is JSON followed by raw bytes, often sent as
    // application/octet-stream, so it is recognized by its header before any parsing.
    if (request.headers['inference-header-content-length'] !== undefined && isV2Infer(request)) {
      rejectInvalid(deps, request, reply, binaryExtensionError('header Inference-Header-Content-Length'), 'v2');
      return;
    }
    done();
  });

  // Runs before schema validation, so binary-extension inputs (no `data`) get 415, not 400 missing_field.
  app.addHook('preValidation', (request, reply, done) => {
    const param = isV2Infer(request) ? binaryExtensionParam(request.body) : undefined;
    if (param === undefined) {
      done();
      return;
    }
    rejectInvalid(deps, request, reply, binaryExtensionError(param), 'v2');
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const style = styleOf(request);
    reply.header('x-request-id', requestIdOf(request));
    const reject = (err: GatewayError): FastifyReply => rejectInvalid(deps, request, reply, err, style);
    if (error instanceof GatewayError) return reject(error);
    if (error.validation !== undefined) return reject(validationError(error.validation as AjvError[], error.validationContext ?? 'body'));
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reject(new GatewayError(413, 'body_too_large', `the request body exceeds the limit of ${options.bodyLimitBytes} bytes (server.bodyLimitBytes)`));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
        const type = request.headers['content-type'];
        const problem = type === undefined || type === '' ? 'the request has no content-type header' : `content type ${preview(type)} is not supported`;
        return reject(new GatewayError(415, 'unsupported_media_type', `${problem}; send application/json`, { param: 'content-type' }));
      }
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reject(new GatewayError(400, 'invalid_json', 'the request body is empty; send a JSON object'));
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reject(new GatewayError(400, 'invalid_content_length', 'the request body length does not match its Content-Length header'));
      default:
        break;
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return reject(new GatewayError(error.statusCode, 'bad_request', error.message));
    }
    request.log.error({ err: error, requestId: requestIdOf(request) }, 'unhandled error in a traffic route');
    // Counted like a rejection, so an inference request that hit a gateway bug still has its one outcome.
    return reject(new GatewayError(500, 'internal_error', 'the gateway failed to process the request', { outcome: 'upstream_error' }));
  });

  app.setNotFoundHandler((request, reply) => {
    reply.header('x-request-id', requestIdOf(request));
    const path = request.url.split('?')[0] ?? '';
    // A path that exists for another method gets 405 with Allow (RFC 9110), so a client
    // that sent GET to an inference route learns to send POST.
    const allowed = ROUTE_METHODS.filter((method) => method !== request.method && app.findRoute({ method, url: path }) !== null);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendError(reply, new GatewayError(405, 'method_not_allowed', `method ${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}`), styleOf(request));
    }
    return sendError(reply, new GatewayError(404, 'route_not_found', `no route ${request.method} ${path}; see the OpenAI (/v1/...) and V2 (/v2/...) routes`), styleOf(request));
  });

  registerOpenAIRoutes(app, deps);
  registerV2Routes(app, deps, options.version);
  return app;
}

/** Methods of the traffic routes, checked in this order when a path exists for another method. */
const ROUTE_METHODS = ['GET', 'POST'] as const;

function styleOf(request: FastifyRequest): ErrorStyle {
  return request.url.startsWith('/v2') ? 'v2' : 'openai';
}

/**
 * Builds a 400 error naming the first invalid field, its value and, in plain words, what is
 * allowed. Of the union failures, the outermost one is used: its description covers every
 * branch, while the branch errors ajv lists before it describe one branch each.
 */
function validationError(errors: AjvError[], context: string): GatewayError {
  const unions = errors.filter((candidate) => candidate.keyword === 'anyOf' || candidate.keyword === 'oneOf');
  const outermost = unions.reduce<AjvError | undefined>((best, candidate) => (best === undefined || candidate.instancePath.length <= best.instancePath.length ? candidate : best), undefined);
  const error = outermost ?? errors[0];
  if (error === undefined) return new GatewayError(400, 'invalid_value', `the request ${context} is invalid`);
  const path = pointerToPath(error.instancePath);
  if (error.keyword === 'required') {
    const field = joinPath(path, String(error.params.missingProperty));
    return new GatewayError(400, 'missing_field', `missing required field ${field}`, { param: field });
  }
  if (error.keyword === 'additionalProperties') {
    const field = joinPath(path, String(error.params.additionalProperty));
    return new GatewayError(400, 'unknown_field', `unknown field ${field}; remove it`, { param: field });
  }
  const param = path === '' ? context : path;
  const expected = describeExpectation(error.keyword, error.parentSchema ?? {});
  return new GatewayError(400, 'invalid_value', `invalid value ${preview(error.data)} for ${param}: ${expected}`, { param });
}

const V2_INFER_ROUTES = new Set(['/v2/models/:model/infer', '/v2/models/:model/versions/:version/infer']);

function isV2Infer(request: FastifyRequest): boolean {
  return V2_INFER_ROUTES.has(request.routeOptions.url ?? '');
}

function binaryExtensionError(param: string): GatewayError {
  return new GatewayError(415, 'unsupported_binary_extension', `the request uses the binary tensor data extension (${param}), which this gateway does not support; send every tensor as JSON in "data"`, { param });
}

/**
 * Returns where a V2 infer body asks for the binary extension: binary_data_size on an input,
 * binary_data_output on an output or on the whole request. The body is not validated yet.
 */
export function binaryExtensionParam(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const { inputs, outputs, parameters } = body as { inputs?: unknown; outputs?: unknown; parameters?: unknown };
  const has = (holder: unknown, key: string): boolean => {
    const params = holder !== null && typeof holder === 'object' ? (holder as { parameters?: unknown }).parameters : undefined;
    return params !== null && typeof params === 'object' && Object.hasOwn(params, key);
  };
  if (Array.isArray(inputs)) {
    for (const [index, input] of inputs.entries()) if (has(input, 'binary_data_size')) return `inputs[${index}].parameters.binary_data_size`;
  }
  if (Array.isArray(outputs)) {
    for (const [index, output] of outputs.entries()) if (has(output, 'binary_data_output')) return `outputs[${index}].parameters.binary_data_output`;
  }
  if (parameters !== null && typeof parameters === 'object' && Object.hasOwn(parameters, 'binary_data_output')) return 'parameters.binary_data_output';
  return undefined;
}

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : joinPath(path, part)), '');
}

function joinPath(base: string, field: string): string {
  return base === '' ? field : `${base}.${field}`;
}
