// One simulated GPU replica as a fastify server: protocol routes, start-up delay, fault
// injection, per-request outcome tracking, /sim/* control routes and /metrics.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { systemClock, type Clock, type TimerHandle } from '../../shared/src/clock.ts';
import { createLogger, type Logger } from '../../shared/src/logger.ts';
import { resolveReplicaConfig, type ReplicaConfig } from './config.ts';
import { InvalidRequestError, openaiErrorBody, v2ErrorBody, type InferenceTracker, type ReplicaContext } from './context.ts';
import { Engine } from './engine.ts';
import { FaultSettingsError, decideFault, faultsFromConfig, parseFaultSettings, type FaultSettings } from './faults.ts';
import { createReplicaMetrics } from './metrics.ts';
import { registerOpenAIRoutes } from './openai.ts';
import { StatsRecorder, type RequestOutcome, type SimStats } from './stats.ts';
import { registerV2Routes } from './v2.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Counted in /sim/stats and subject to start-up 503s and faults. */
    inference?: boolean;
    /** Selects the error body shape. */
    protocol?: 'openai' | 'v2' | 'sim';
  }
}

/** Large enough for V2 JSON tensors of a full batch; real servers allow more than fastify's 1 MiB. */
const BODY_LIMIT_BYTES = 64 * 1024 * 1024;

export interface ReplicaServerOptions extends Partial<ReplicaConfig> {
  /** Time source for latencies, start-up delay and the exit fault; tests pass a ManualClock. */
  clock?: Clock;
  /** Uniform [0, 1) source for fault rates. */
  random?: () => number;
  logger?: Logger;
  /** Runs when the exitAfterMs fault fires; the default closes every connection and the server. */
  onExitFault?: () => void;
}

export interface ReplicaServer {
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  readonly config: Readonly<ReplicaConfig>;
  stats(): SimStats;
  resetStats(): void;
  faults(): Readonly<FaultSettings>;
  setFaults(settings: FaultSettings): void;
  clearFaults(): void;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

/** Starts a replica in this process and resolves once it listens. */
export async function startReplicaServer(options: ReplicaServerOptions = {}): Promise<ReplicaServer> {
  const { clock = systemClock, random = Math.random, logger = createLogger({ service: 'replica' }), onExitFault, ...partial } = options;
  const config = resolveReplicaConfig(partial);
  const stats = new StatsRecorder();
  const hung = new Set<ServerResponse>();
  const trackers = new WeakMap<FastifyRequest, InferenceTracker>();
  let ready = config.startupDelayMs === 0;
  let faults: Readonly<FaultSettings> = faultsFromConfig(config);
  let exitTimer: TimerHandle | undefined;
  let startupTimer: TimerHandle | undefined;

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request lines would flood the log under load; errors are logged where caught.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  // Model servers take JSON bodies only, so any other content type gets 415.
  app.removeContentTypeParser('text/plain');

  const engine = new Engine(config, clock, {
    onExecution(model, items) {
      stats.recordExecution(items);
      replicaMetrics.v2Executed(model);
    },
  });
  const openai = config.protocol !== 'v2';
  const v2 = config.protocol !== 'openai';
  const replicaMetrics = createReplicaMetrics(engine, { models: config.models, openai, v2, kvCacheTokens: config.kvCacheTokens });

  const context: ReplicaContext = {
    config,
    clock,
    engine,
    metrics: replicaMetrics,
    logger,
    tracker(request) {
      const tracker = trackers.get(request);
      if (tracker === undefined) throw new Error(`no tracker for ${request.method} ${request.url}: route is not marked as inference`);
      return tracker;
    },
    isReady: () => ready,
    faults: () => faults,
  };

  const applyFaults = (settings: Readonly<FaultSettings>): void => {
    faults = settings;
    exitTimer?.cancel();
    exitTimer = undefined;
    app.server.keepAliveTimeout = settings.keepAliveTimeoutMs ?? config.keepAliveTimeoutMs;
    if (settings.exitAfterMs !== undefined) {
      exitTimer = clock.setTimer(settings.exitAfterMs, () => {
        logger.warn({ exitAfterMs: settings.exitAfterMs }, 'exiting now (exitAfterMs fault)');
        if (onExitFault !== undefined) onExitFault();
        else abortServer();
      });
    }
    logger.info({ faults: settings }, 'fault settings changed');
  };

  const abortServer = (): void => {
    engine.stop();
    app.server.closeAllConnections();
    void app.close();
  };

  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route !== undefined && !route.startsWith('/sim/')) stats.recordRoute(request.method, route);
    if (request.routeOptions.config.inference !== true) return;
    const tracker = createTracker(request, reply, stats, clock, logger);
    trackers.set(request, tracker);
    // Echoed like vLLM with --enable-request-id-headers, so callers can match replies.
    if (tracker.requestId !== '') reply.header('x-request-id', tracker.requestId);
  });

  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.config.inference !== true) return;
    const tracker = context.tracker(request);
    const protocol = request.routeOptions.config.protocol ?? 'openai';
    if (!ready) {
      tracker.setOutcome('rejected');
      reply.header('retry-after', String(Math.max(1, Math.ceil(remainingStartupMs() / 1000))));
      return sendError(reply, protocol, 503, 'model is still loading; retry after the start-up delay', null);
    }
    const decision = decideFault(faults, random);
    if (decision.kind === 'none') return;
    const model = modelOf(request);
    if (decision.kind === 'reset') {
      tracker.forceOutcome('failed');
      logger.info({ requestId: tracker.requestId, route: request.routeOptions.url }, 'resetting connection (resetRate fault)');
      reply.hijack();
      request.raw.socket.resetAndDestroy();
      return reply;
    }
    if (decision.kind === 'hang') {
      logger.info({ requestId: tracker.requestId, route: request.routeOptions.url }, 'leaving request unanswered (hangRate fault)');
      reply.hijack();
      hung.add(reply.raw);
      reply.raw.once('close', () => hung.delete(reply.raw));
      return reply;
    }
    tracker.setOutcome('failed');
    if (protocol === 'v2' && model !== undefined && config.models.includes(model)) replicaMetrics.v2Failed(model, 'BACKEND');
    if (decision.retryAfterSeconds !== undefined) reply.header('retry-after', String(decision.retryAfterSeconds));
    return sendError(reply, protocol, decision.status, `injected fault: status ${decision.status} (errorRate fault)`, null);
  });

  const startedAt = clock.now();
  const remainingStartupMs = (): number => Math.max(0, startedAt + config.startupDelayMs - clock.now());

  registerSimRoutes(app, {
    stats: () => stats.snapshot(engine.running, engine.waiting),
    resetStats: () => stats.reset(),
    faults: () => faults,
    setFaults: applyFaults,
  });
  if (openai) registerOpenAIRoutes(app, context);
  if (v2) registerV2Routes(app, context);
  app.get('/metrics', { config: { protocol: openai ? 'openai' : 'v2' } }, async (_request, reply) => {
    const body = await replicaMetrics.registry.metrics();
    return reply.header('content-type', replicaMetrics.registry.contentType).send(body);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const protocol = request.routeOptions.config?.protocol ?? protocolOfUrl(request.url);
    const tracker = trackers.get(request);
    let status: number;
    let param: string | null = null;
    let message: string;
    if (error instanceof InvalidRequestError) {
      status = error.status;
      param = error.param;
      message = error.message;
    } else if (error instanceof FaultSettingsError) {
      status = 400;
      message = error.message;
    } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      message = error.message;
    } else {
      status = 500;
      message = 'internal error in the simulated replica; see its log';
      logger.error({ err: error, route: request.routeOptions.url, requestId: tracker?.requestId }, 'request failed');
    }
    tracker?.setOutcome(status >= 500 ? 'failed' : 'invalid');
    return sendError(reply, protocol, status, message, param);
  });

  app.setNotFoundHandler((request, reply) => {
    const message = `route ${request.method} ${request.url.split('?')[0]} not found`;
    return sendError(reply, protocolOfUrl(request.url), 404, message, null);
  });

  // Requests in progress per connection, so closing can drop connections with none
  // (including ones a client opened but never used, which Node does not count as idle).
  const activeRequests = new Map<Socket, number>();
  let closing = false;
  app.server.on('connection', (socket: Socket) => {
    activeRequests.set(socket, 0);
    socket.once('close', () => activeRequests.delete(socket));
  });
  app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    activeRequests.set(socket, (activeRequests.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (activeRequests.get(socket) ?? 1) - 1;
      activeRequests.set(socket, left);
      if (closing && left === 0) socket.destroySoon();
    });
  });

  app.addHook('preClose', async () => {
    closing = true;
    // A hung request never finishes by itself, so it would hold the close open forever.
    for (const response of hung) response.destroy();
    hung.clear();
    for (const [socket, active] of activeRequests) if (active === 0) socket.destroySoon();
  });
  app.addHook('onClose', async () => {
    exitTimer?.cancel();
    startupTimer?.cancel();
    engine.stop();
  });

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${hostForUrl}:${port}`;

  if (!ready) {
    startupTimer = clock.setTimer(config.startupDelayMs, () => {
      ready = true;
      logger.info({ startupDelayMs: config.startupDelayMs }, 'model loaded; replica is ready');
    });
  }
  if (faults.exitAfterMs !== undefined || faults.keepAliveTimeoutMs !== undefined) applyFaults(faults);

  return {
    url,
    port,
    app,
    config,
    stats: () => stats.snapshot(engine.running, engine.waiting),
    resetStats: () => stats.reset(),
    faults: () => faults,
    setFaults: (settings) => applyFaults(parseFaultSettings(settings)),
    clearFaults: () => applyFaults(Object.freeze({})),
    close: async () => {
      await app.close();
    },
  };
}

interface SimControls {
  stats(): SimStats;
  resetStats(): void;
  faults(): Readonly<FaultSettings>;
  setFaults(settings: Readonly<FaultSettings>): void;
}

function registerSimRoutes(app: FastifyInstance, controls: SimControls): void {
  const sim = { config: { protocol: 'sim' as const } };
  app.get('/sim/stats', sim, async () => controls.stats());
  app.post('/sim/stats/reset', sim, async (_request, reply) => {
    controls.resetStats();
    return reply.code(204).send();
  });
  app.get('/sim/faults', sim, async () => controls.faults());
  app.post('/sim/faults', sim, async (request) => {
    // Only a missing body means no faults; a JSON null is rejected like any other non-object.
    const settings = parseFaultSettings(request.body === undefined ? {} : request.body);
    controls.setFaults(settings);
    return settings;
  });
  app.delete('/sim/faults', sim, async () => {
    controls.setFaults(Object.freeze({}));
    return {};
  });
}

function createTracker(request: FastifyRequest, reply: FastifyReply, stats: StatsRecorder, clock: Clock, logger: Logger): InferenceTracker {
  const header = request.headers['x-request-id'];
  const requestId = typeof header === 'string' ? header : '';
  stats.recordReceived(requestId);
  const raw = reply.raw;
  const abortHandlers: Array<() => void> = [];
  let outcome: RequestOutcome = 'completed';
  let forced: RequestOutcome | undefined;
  let aborted = false;

  raw.once('close', () => {
    const finished = raw.writableFinished;
    if (!finished) {
      aborted = forced === undefined;
      for (const handler of abortHandlers.splice(0)) {
        try {
          handler();
        } catch (error) {
          logger.error({ err: error, requestId }, 'abort handler failed');
        }
      }
    }
    stats.recordOutcome(forced ?? (finished ? outcome : 'aborted'));
    if (aborted) logger.debug({ requestId }, 'client disconnected before the response completed');
  });

  return {
    requestId,
    arrivedAt: clock.now(),
    setOutcome: (value) => {
      outcome = value;
    },
    forceOutcome: (value) => {
      forced = value;
    },
    onAbort: (fn) => {
      if (raw.destroyed && !raw.writableFinished) fn();
      else abortHandlers.push(fn);
    },
    get aborted() {
      return aborted;
    },
  };
}

function sendError(reply: FastifyReply, protocol: 'openai' | 'v2' | 'sim', status: number, message: string, param: string | null): FastifyReply {
  reply.code(status);
  if (protocol === 'v2') return reply.send(v2ErrorBody(message));
  if (protocol === 'sim') return reply.send({ error: message, code: status === 400 ? 'invalid_fault_settings' : `http_${status}` });
  return reply.send(openaiErrorBody(status, message, param));
}

function protocolOfUrl(url: string): 'openai' | 'v2' | 'sim' {
  if (url.startsWith('/v2')) return 'v2';
  if (url.startsWith('/sim/')) return 'sim';
  return 'openai';
}

function modelOf(request: FastifyRequest): string | undefined {
  const params = request.params as { model?: unknown } | undefined;
  return typeof params?.model === 'string' ? params.model : undefined;
}
