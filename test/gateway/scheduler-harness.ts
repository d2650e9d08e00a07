// A ModelScheduler on a ManualClock with a recording executor, shared by the scheduler
// and dispatch tests: calls are recorded and finished by the test, replies are recorded.
import { afterEach } from 'node:test';
import { EventEmitter } from 'node:events';
import type { FastifyReply } from 'fastify';
import type { Priority } from '../../shared/src/admin-state.ts';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { GatewayMetrics } from '../../gateway/src/admin/metrics.ts';
import { buildConfig, type ModelConfig } from '../../gateway/src/config/load.ts';
import type { EndpointObservation } from '../../gateway/src/discovery/types.ts';
import { GatewayError } from '../../gateway/src/http/errors.ts';
import type { CallVerdict } from '../../gateway/src/replicas/health.ts';
import { ReplicaSet } from '../../gateway/src/replicas/pool.ts';
import type { Replica } from '../../gateway/src/replicas/replica.ts';
import { Job } from '../../gateway/src/scheduling/job.ts';
import { ModelScheduler, type Executor } from '../../gateway/src/scheduling/scheduler.ts';

const logger = createLogger({ service: 'scheduler-test', level: 'silent' });

/** The parts of a fastify reply that Job uses, recording what was sent. */
export class RecordingReply {
  raw = Object.assign(new EventEmitter(), { writableFinished: false, destroyed: false });
  sent = false;
  statusCode = 0;
  headers: Record<string, string> = {};
  body: unknown;
  code(status: number): this {
    this.statusCode = status;
    return this;
  }
  header(name: string, value: string): this {
    this.headers[name] = value;
    return this;
  }
  send(body: unknown): this {
    this.body = typeof body === 'string' ? JSON.parse(body) : body;
    this.sent = true;
    return this;
  }
  hijack(): void {}
}

export interface Call {
  jobs: Job[];
  replica: Replica;
  finish(verdict?: CallVerdict): void;
  /** Ends the call without responding, as when its jobs were handed back for a retry. */
  end(verdict?: CallVerdict): void;
}

export interface Harness {
  clock: ManualClock;
  metrics: GatewayMetrics;
  scheduler: ModelScheduler;
  replicas: ReplicaSet;
  calls: Call[];
  job(options?: { priority?: Priority; rows?: number; key?: string | null; timeoutMs?: number; explicit?: boolean; name?: string }): { job: Job; reply: RecordingReply };
  submit(job: Job): GatewayError | undefined;
  endpoints(ids: string[]): void;
  makeReady(): void;
}

const harnesses: Harness[] = [];

afterEach(async () => {
  for (const harness of harnesses.splice(0)) await harness.replicas.close();
});

/** Builds a scheduler on a manual clock. A given executor replaces the recording one, and calls then stays empty. */
export function harness(model: Record<string, unknown> = {}, random = () => 0, executor?: Executor): Harness {
  const config: ModelConfig = buildConfig({
    models: [{ name: 'm', protocol: 'v2', replicas: { static: ['http://127.0.0.1:9'] }, health: { intervalMs: 1_000_000_000, timeoutMs: 100, unhealthyThreshold: 100 }, ...model }],
  }).models[0]!;
  const clock = new ManualClock();
  const metrics = new GatewayMetrics(() => [], { defaultMetrics: false });
  const calls: Call[] = [];
  const holder: { scheduler?: ModelScheduler } = {};
  const replicas = new ReplicaSet(config, { clock, logger, onChange: () => holder.scheduler?.pump(), random });
  const scheduler = new ModelScheduler(config, {
    clock,
    logger,
    metrics,
    replicas,
    executor:
      executor ??
      ((jobs, replica) =>
        new Promise<CallVerdict>((resolve) => {
        calls.push({
          jobs,
          replica,
          finish: (verdict = 'success') => {
            for (const job of jobs) job.respondJson(200, { ok: true }, 'success');
            resolve(verdict);
          },
          end: (verdict = 'neutral') => resolve(verdict),
        });
      })),
  });
  holder.scheduler = scheduler;
  let counter = 0;
  const h: Harness = {
    clock,
    metrics,
    scheduler,
    replicas,
    calls,
    job(options = {}) {
      const reply = new RecordingReply();
      const job = new Job({
        id: options.name ?? `job-${counter++}`,
        model: 'm',
        protocol: 'v2',
        style: 'v2',
        priority: options.priority ?? 'standard',
        timeoutMs: options.timeoutMs ?? config.queue.timeoutMs,
        explicitTimeout: options.explicit ?? options.timeoutMs !== undefined,
        rows: options.rows ?? 1,
        batchKey: options.key === undefined ? 'k' : options.key,
        upstreamPath: '/v2/models/m/infer',
        payload: {},
        rawBody: Buffer.from('{}'),
        stream: false,
        reply: reply as unknown as FastifyReply,
        clock,
        metrics,
        logger,
      });
      return { job, reply };
    },
    submit(job) {
      try {
        scheduler.submit(job);
        return undefined;
      } catch (error) {
        if (error instanceof GatewayError) return error;
        throw error;
      }
    },
    endpoints(ids) {
      const endpoints: EndpointObservation[] = ids.map((id) => ({ id, url: 'http://127.0.0.1:9', ready: true, serving: true, terminating: false }));
      replicas.reconcile(endpoints);
    },
    makeReady() {
      for (const replica of replicas.all()) replica.health.recordProbe(true);
      scheduler.pump();
    },
  };
  harnesses.push(h);
  return h;
}

export const ids = (jobs: Job[]): string[] => jobs.map((job) => job.id);

