// Everything the gateway runs for one configured model: replica discovery, the replica
// set with its probes, the scheduler and the upstream executor, wired together.
import type { Logger } from 'pino';
import type { Clock } from '../../shared/src/clock.ts';
import type { ModelSnapshot } from '../../shared/src/admin-state.ts';
import type { GatewayMetrics } from './admin/metrics.ts';
import type { ModelConfig } from './config/load.ts';
import { createReplicaSource, type BuiltReplicaSource, type ReplicaSourceDeps } from './discovery/index.ts';
import type { ReplicaSource } from './discovery/types.ts';
import { ReplicaSet } from './replicas/pool.ts';
import { ModelScheduler } from './scheduling/scheduler.ts';
import { createExecutor } from './upstream/executor.ts';

export interface ModelRuntimeDeps {
  clock: Clock;
  logger: Logger;
  metrics: GatewayMetrics;
  random?: () => number;
  kubernetes?: ReplicaSourceDeps['kubernetes'];
  /** Builds the replica source; defaults to the one the model's configuration selects. */
  createSource?: (config: ModelConfig['replicas'], deps: ReplicaSourceDeps) => Promise<BuiltReplicaSource>;
}

export class ModelRuntime {
  readonly config: ModelConfig;
  readonly replicas: ReplicaSet;
  readonly scheduler: ModelScheduler;
  #source: ReplicaSource | undefined;
  #reportsDiscoveryHealth = false;
  readonly #deps: ModelRuntimeDeps;

  constructor(config: ModelConfig, deps: ModelRuntimeDeps) {
    this.config = config;
    this.#deps = deps;
    const logger = deps.logger.child({ model: config.name });
    this.replicas = new ReplicaSet(config, {
      clock: deps.clock,
      logger,
      // Snapshots arrive only after start(), when the scheduler exists.
      onChange: () => this.scheduler.pump(),
      onRemoved: (replicaId) => deps.metrics.forgetReplica(config.name, replicaId),
      ...(deps.random === undefined ? {} : { random: deps.random }),
    });
    const executor = createExecutor({
      clock: deps.clock,
      metrics: deps.metrics,
      replicas: this.replicas,
      scheduler: () => this.scheduler,
    });
    this.scheduler = new ModelScheduler(config, { clock: deps.clock, logger, metrics: deps.metrics, replicas: this.replicas, executor });
  }

  /** Starts discovery; resolves once the first snapshot of replicas was applied. */
  async start(): Promise<void> {
    const create = this.#deps.createSource ?? createReplicaSource;
    const built = await create(this.config.replicas, {
      logger: this.#deps.logger.child({ model: this.config.name }),
      ...(this.#deps.kubernetes === undefined ? {} : { kubernetes: this.#deps.kubernetes }),
    });
    this.#source = built.source;
    this.#reportsDiscoveryHealth = built.reportsHealth;
    await built.source.start((endpoints) => this.replicas.reconcile(endpoints));
  }

  snapshot(): ModelSnapshot {
    const snapshot = this.scheduler.snapshot();
    if (this.#reportsDiscoveryHealth && this.#source !== undefined) snapshot.discoveryHealthy = this.#source.healthy();
    return snapshot;
  }

  /** Stops discovery and closes every replica connection. */
  async close(): Promise<void> {
    try {
      await this.#source?.stop();
    } catch (error) {
      this.#deps.logger.warn({ model: this.config.name, err: error }, 'stopping replica discovery failed');
    }
    await this.replicas.close();
  }
}
