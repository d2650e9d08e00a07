// The admin listener, on its own port so clients of the traffic port cannot reach it:
// Prometheus metrics, liveness, readiness and /admin/state for the autoscaler.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
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

export function buildAdminServer(deps: AdminServerDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });

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

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { message: `no admin route ${request.method} ${request.url.split('?')[0]}; routes are /metrics, /healthz, /readyz, /admin/state`, code: 'route_not_found' } }),
  );
  return app;
}
