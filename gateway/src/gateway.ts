// Starts a complete gateway in this process: one runtime per model, the traffic and admin
// listeners, and graceful shutdown. main.ts, the demo, tests and benchmarks all use it.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import type { GatewayState } from '../../shared/src/admin-state.ts';
import { GatewayMetrics } from './admin/metrics.ts';
import { buildAdminServer } from './admin/server.ts';
import type { GatewayConfig } from './config/load.ts';
import type { ReplicaSourceDeps } from './discovery/index.ts';
import { buildTrafficServer } from './http/traffic.ts';
import { ModelRuntime } from './model-runtime.ts';

export interface GatewayDeps {
  clock?: Clock;
  logger?: Logger;
  /** Random source in [0, 1) for replica tie-breaks. */
  random?: () => number;
  /** Name in /admin/state; defaults to env POD_NAME, then host:port of the traffic listener. */
  name?: string;
  /** Registers Node.js process metrics (default true); benchmarks with several gateways may turn it off. */
  defaultMetrics?: boolean;
  kubernetes?: ReplicaSourceDeps['kubernetes'];
}

export interface RunningGateway {
  /** Base URL of the traffic listener, such as http://127.0.0.1:8080. */
  trafficUrl: string;
  adminUrl: string;
  state(): GatewayState;
  /**
   * Graceful stop: readiness turns 503, new requests get 503, queued and in-flight work may
   * finish for graceMs (server.shutdownGraceMs by default), the rest ends with outcome shutdown.
   */
  close(graceMs?: number): Promise<void>;
}

const VERSION = readVersion();

/** A listener could not bind its address: the port is taken, or the host is not an address of this machine. */
export class ListenError extends Error {
  readonly listener: 'traffic' | 'admin';
  readonly address: string;
  /** The system error code, such as EADDRINUSE, EADDRNOTAVAIL, EACCES or ENOTFOUND. */
  readonly code: string;

  constructor(listener: 'traffic' | 'admin', address: string, code: string, cause: unknown) {
    super(`cannot listen on ${address} for ${listener}: ${REASON_BY_CODE[code] ?? code}`, { cause });
    this.name = 'ListenError';
    this.listener = listener;
    this.address = address;
    this.code = code;
  }
}

const REASON_BY_CODE: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is already in use; stop the other process or choose another port',
  EADDRNOTAVAIL: 'the host is not an address of this machine; set server.host to one of its addresses, or 0.0.0.0',
  EACCES: 'permission denied; ports below 1024 need privileges, choose a higher port',
  ENOTFOUND: 'the host name does not resolve; set server.host to an address of this machine',
  EAI_AGAIN: 'the host name could not be resolved; set server.host to an address of this machine',
};

async function listenOn(server: FastifyInstance, listener: 'traffic' | 'admin', host: string, port: number): Promise<void> {
  try {
    await server.listen({ port, host });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    throw new ListenError(listener, address, code, error);
  }
}

export async function startGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<RunningGateway> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? createLogger({ service: 'gateway' });
  const models = new Map<string, ModelRuntime>();
  let shuttingDown = false;
  let listening = false;
  let name = deps.name ?? process.env.POD_NAME ?? '';

  const state = (): GatewayState => ({
    gateway: name,
    time: new Date(clock.wallNow()).toISOString(),
    models: [...models.values()].map((model) => model.snapshot()),
  });
  const metrics = new GatewayMetrics(() => state().models, { defaultMetrics: deps.defaultMetrics ?? true });

  for (const modelConfig of config.models) {
    models.set(
      modelConfig.name,
      new ModelRuntime(modelConfig, {
        clock,
        logger,
        metrics,
        ...(deps.random === undefined ? {} : { random: deps.random }),
        ...(deps.kubernetes === undefined ? {} : { kubernetes: deps.kubernetes }),
      }),
    );
  }

  const traffic = buildTrafficServer(
    { bodyLimitBytes: config.server.bodyLimitBytes, logger, version: VERSION },
    { clock, metrics, logger, models, isShuttingDown: () => shuttingDown, startedAtSeconds: Math.floor(clock.wallNow() / 1000) },
  );
  const admin = buildAdminServer({ logger, metrics, state, isReady: () => listening && !shuttingDown });

  try {
    await Promise.all([...models.values()].map((model) => model.start()));
    await listenOn(traffic, 'traffic', config.server.host, config.server.port);
    await listenOn(admin, 'admin', config.server.host, config.server.adminPort);
  } catch (error) {
    await Promise.allSettled([traffic.close(), admin.close(), ...[...models.values()].map((model) => model.close())]);
    throw error;
  }
  listening = true;

  const trafficAddress = traffic.server.address() as AddressInfo;
  const adminAddress = admin.server.address() as AddressInfo;
  const trafficUrl = urlOf(trafficAddress);
  const adminUrl = urlOf(adminAddress);
  if (name === '') name = `${isWildcard(trafficAddress.address) ? hostname() : trafficAddress.address}:${trafficAddress.port}`;

  logger.info(
    {
      trafficUrl,
      adminUrl,
      version: VERSION,
      models: config.models.map((model) => ({ name: model.name, protocol: model.protocol, replicas: model.replicas.kind, maxInflightPerReplica: model.maxInflightPerReplica, maxBatchSize: model.batching.maxBatchSize })),
    },
    'gateway started',
  );

  let closing: Promise<void> | undefined;
  const close = (graceMs = config.server.shutdownGraceMs): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      logger.info({ graceMs }, 'gateway shutting down');
      const runtimes = [...models.values()];
      for (const model of runtimes) model.scheduler.beginShutdown();
      const idle = Promise.all(runtimes.map((model) => model.scheduler.whenIdle()));
      const finished = await raceTimeout(idle, graceMs, clock);
      if (!finished) {
        logger.warn({ graceMs }, 'grace period over, ending the remaining requests with outcome shutdown');
        for (const model of runtimes) model.scheduler.abortAll();
        await raceTimeout(idle, 5000, clock);
      }
      await traffic.close();
      await admin.close();
      await Promise.all(runtimes.map((model) => model.close()));
      logger.info('gateway stopped');
    })();
    return closing;
  };

  return { trafficUrl, adminUrl, state, close };
}

function raceTimeout(promise: Promise<unknown>, ms: number, clock: Clock): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = clock.setTimer(ms, () => resolve(false));
    promise.then(
      () => {
        timer.cancel();
        resolve(true);
      },
      () => {
        timer.cancel();
        resolve(true);
      },
    );
  });
}

function urlOf(address: AddressInfo): string {
  if (isWildcard(address.address)) return `http://127.0.0.1:${address.port}`;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
