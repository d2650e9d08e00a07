// The admin listener, on its own port so clients of the traffic port cannot reach it:
// Prometheus metrics, liveness, readiness and /admin/state for the autoscaler.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { GatewayState } from '../../../shared/src/admin-state.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface AdminServerDeps {
  logger: Logger;
  metrics: GatewayMetrics;
  state: () => GatewayState;
  /** True once config is loaded and the traffic listener is up, false again while shutting down. */
  isReady: () => boolean;
}

/** Largest request body the admin listener reads. Its routes take none, so this only bounds what a stray client can send. */
const ADMIN_BODY_LIMIT_BYTES = 16_384;

export function buildAdminServer(deps: AdminServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ADMIN_BODY_LIMIT_BYTES,
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.header('content-type', deps.metrics.registry.contentType).send(text);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const ready = deps.isReady();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });

  app.get('/admin/state', async () => deps.state());

  // Errors fastify raises before a route runs (a body too large, a content type it cannot
  // parse) get the same shape as the admin listener's 404.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) {
      deps.logger.error({ err: error, method: request.method, url: request.url }, 'admin route failed');
      return reply.code(500).send({ error: { message: 'the admin route failed; see the gateway log', code: 'internal_error' } });
    }
    if (status === 413) {
      return reply.code(413).send({ error: { message: `the request body exceeds ${ADMIN_BODY_LIMIT_BYTES} bytes; the admin routes take no body`, code: 'body_too_large' } });
    }
    return reply.code(status).send({ error: { message: error.message, code: 'bad_request' } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { message: `no admin route ${request.method} ${request.url.split('?')[0]}; routes are /metrics, /healthz, /readyz, /admin/state`, code: 'route_not_found' } }),
  );
  return app;
}
