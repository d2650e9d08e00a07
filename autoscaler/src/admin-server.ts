// The admin port: liveness, readiness and Prometheus metrics, kept apart from the
// metrics API so probes and scrapes need no client certificate.
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from '../../shared/src/logger.ts';
import type { AutoscalerMetrics } from './metrics.ts';

export interface AdminServerOptions {
  logger: Logger;
  metrics: AutoscalerMetrics;
  /** Returns undefined when ready, else the reason it is not. */
  notReadyReason: () => string | undefined;
}

export function createAdminServer(options: AdminServerOptions): FastifyInstance {
  const app = Fastify({ loggerInstance: options.logger.child({ component: 'admin' }), logController: new LogController({ disableRequestLogging: true }) }) as unknown as FastifyInstance;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const reason = options.notReadyReason();
    if (reason === undefined) return { status: 'ready' };
    return reply.code(503).send({ status: 'not_ready', reason });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await options.metrics.registry.metrics();
    return reply.type(options.metrics.registry.contentType).send(body);
  });

  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}; the admin port serves /healthz, /readyz and /metrics` } }),
  );
  return app;
}
