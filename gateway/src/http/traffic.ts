// The traffic listener: body limit on every route, JSON-only content type, the error
// shapes of each route family, and the OpenAI and V2 routes.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { GatewayError, preview, sendError, type ErrorStyle } from './errors.ts';
import { registerOpenAIRoutes, type RouteDeps } from './openai.ts';
import { registerV2Routes } from './v2.ts';
import { requestIdOf } from './admission.ts';
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
  parentSchema?: { description?: string };
}

export function buildTrafficServer(options: TrafficServerOptions, deps: RouteDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes,
    // Bodies are forwarded byte for byte, so validation must not coerce or strip anything.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, verbose: true, allErrors: false } },
    return503OnClosing: false,
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buffer = body as Buffer;
    (request as FastifyRequest & { rawBody?: Buffer }).rawBody = buffer;
    try {
      done(null, JSON.parse(buffer.toString('utf8')));
    } catch (error) {
      done(new GatewayError(400, 'invalid_json', `the request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });

  // fastify checks the limit only on routes that read a body; this makes it apply to all of them.
  app.addHook('onRequest', async (request, reply) => {
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > options.bodyLimitBytes) {
      const err = new GatewayError(413, 'body_too_large', `the request body of ${length} bytes exceeds the limit of ${options.bodyLimitBytes} bytes (server.bodyLimitBytes)`);
      reply.header('connection', 'close');
      return rejectInvalid(deps, request, reply, err, styleOf(request));
    }
    return undefined;
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
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reject(new GatewayError(415, 'unsupported_media_type', `content type ${preview(request.headers['content-type'] ?? 'missing')} is not supported; send application/json`, { param: 'content-type' }));
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
    return sendError(reply, new GatewayError(500, 'internal_error', 'the gateway failed to process the request'), style);
  });

  app.setNotFoundHandler((request, reply) => {
    reply.header('x-request-id', requestIdOf(request));
    return sendError(reply, new GatewayError(404, 'route_not_found', `no route ${request.method} ${request.url.split('?')[0]}; see the OpenAI (/v1/...) and V2 (/v2/...) routes`), styleOf(request));
  });

  registerOpenAIRoutes(app, deps);
  registerV2Routes(app, deps, options.version);
  return app;
}

function styleOf(request: FastifyRequest): ErrorStyle {
  return request.url.startsWith('/v2') ? 'v2' : 'openai';
}

/** Builds a 400 error naming the first invalid field, its value and what is allowed. */
function validationError(errors: AjvError[], context: string): GatewayError {
  const error = errors.find((candidate) => candidate.keyword === 'anyOf') ?? errors[0];
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
  const expected = error.parentSchema?.description ?? error.message ?? 'invalid';
  return new GatewayError(400, 'invalid_value', `invalid value ${preview(error.data)} for ${param}: expected ${expected.replace(/^must be /, '')}`, { param });
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
