// The autoscaler loop. Each poll: collect the gateways' snapshots, sum demand per model,
// stabilize it, split the GPU budget, publish the values the metrics API serves, and
// take the two actions the HPA cannot: activation from 0 replicas and scale to 0.
import type { Clock, TimerHandle } from '../../shared/src/clock.ts';
import type { Logger } from '../../shared/src/logger.ts';
import type { AutoscalerConfig, ModelConfig } from './config/load.ts';
import { LOCAL_MODEL_DEFAULTS } from './config/defaults.ts';
import type { Collector } from './collector/collector.ts';
import { aggregateDemand, type ModelDemand } from './collector/demand.ts';
import { Stabilizer, type StabilizedDemand } from './stabilizer.ts';
import { allocateGpus, type BudgetGrant, type BudgetRequest } from './budget.ts';
import type { Actuator, ScaleRequest } from './kube/actuator.ts';
import type { GatewayList } from './gateways.ts';
import type { AutoscalerMetrics } from './metrics.ts';
import type { ServedModel, ServedModelSource } from './api/server.ts';

/** Milliseconds between retries of a pod template read that failed. */
const GPU_READ_RETRY_MS = 10_000;
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export interface ControllerDeps {
  config: AutoscalerConfig;
  clock: Clock;
  logger: Logger;
  metrics: AutoscalerMetrics;
  collector: Collector;
  gateways: GatewayList;
  actuator: Actuator;
}

export type ScaleAction = 'activate' | 'scale_to_zero' | 'none';

/** Everything one poll decided for one model, as logged and returned to tests. */
export interface ModelDecision {
  model: string;
  stale: boolean;
  demand: number | undefined;
  queued: number | undefined;
  held: number | undefined;
  inFlight: number | undefined;
  windowMax: number | undefined;
  idleForMs: number;
  idle: boolean;
  gpusPerReplica: number | undefined;
  budgetGpus: number | undefined;
  neededReplicas: number;
  grantedReplicas: number;
  capped: boolean;
  /** Served value; undefined while stale. */
  value: number | undefined;
  desiredReplicas: number | undefined;
  currentReplicas: number | undefined;
  action: ScaleAction;
  /** Reason a due action was not taken, such as a full GPU budget or an unreadable scale subresource. */
  blockedBy: string | undefined;
}

interface ModelRuntime {
  config: ModelConfig;
  stabilizer: Stabilizer;
  gpusPerReplica: number | undefined;
  nextGpuReadAt: number;
  lastLogged: string;
}

export class Controller implements ServedModelSource {
  readonly #deps: ControllerDeps;
  readonly #models = new Map<string, ModelRuntime>();
  readonly #rejectedNames = new Set<string>();
  #served: readonly ServedModel[] = [];
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #completedPolls = 0;
  /** True once any gateway has responded. Until then local mode has no models. */
  #gatewayResponded = false;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    for (const model of deps.config.models) this.#addModel(model);
  }

  /** Number of polls completed; readiness waits for the first. */
  get completedPolls(): number {
    return this.#completedPolls;
  }

  servedModels(): readonly ServedModel[] {
    return this.#served;
  }

  /**
   * Local mode learns its models from the gateways, so before the first response an empty
   * list would read as "no demand" instead of "unknown".
   */
  unavailableReason(): string | undefined {
    if (this.#deps.config.mode !== 'local' || this.#gatewayResponded) return undefined;
    return 'no gateway has responded to /admin/state yet, so no model is known; check the --gateway URLs and infergate_autoscaler_source_up';
  }

  /** Starts polling now and every pollIntervalMs after the previous poll started. */
  start(): void {
    this.#schedule(0);
  }

  /** Stops the loop and waits for a poll in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#running;
  }

  /** Runs one poll: collect, decide, act, publish. */
  async pollOnce(): Promise<ModelDecision[]> {
    const { clock, collector, gateways, actuator, config, metrics } = this.#deps;
    const result = await collector.poll(gateways.urls());
    metrics.polls.inc({ result: result.ok > 0 ? 'ok' : 'no_gateway' });

    const demand = aggregateDemand(collector.freshSnapshots());
    if (config.mode === 'local') this.#discoverModels(demand);
    const runtimes = [...this.#models.values()];

    // Replicas as the gateways see them; only the dry-run actuator of local mode uses this.
    // A replica that never passed a probe does not count, so held requests in front of a
    // replica that is down read as a model at 0.
    const observed = runtimes.map((r) => demand.get(r.config.name)?.readyReplicas);
    // NOTE: this is one scale subresource GET per model per poll, so 50 models at the
    // default 1 s interval send 50 reads a second to the API server.
    const replicaReads = Promise.all(runtimes.map((r, i) => actuator.readReplicas(r.config, observed[i])));
    await Promise.all(runtimes.map((r) => this.#refreshGpus(r)));

    const stabilized = runtimes.map((r) => r.stabilizer.update(demand.get(r.config.name)?.demand));
    const budget = allocateGpus(
      config.gpuBudget,
      runtimes.map((r, i) => budgetRequest(r, stabilized[i]!, demand.get(r.config.name))),
    );

    // The served values are published before the scale reads finish, so a slow API server
    // delays the actions but not the values the HPA reads. A value carries the time of the
    // newest response it is based on, which stays the same while gateways fail and their
    // last responses still count.
    const wallNow = clock.wallNow();
    this.#served = runtimes.map((r) => {
      const measured = demand.get(r.config.name);
      return {
        name: r.config.name,
        namespace: r.config.target.namespace,
        value: measured ? budget.grants.get(r.config.name)!.cappedValue : undefined,
        sampledAt: measured?.sampledAt ?? wallNow,
      };
    });
    if (result.ok > 0) this.#gatewayResponded = true;

    const current = await replicaReads;
    const decisions = runtimes.map((r, i) =>
      decide(r, demand.get(r.config.name), stabilized[i]!, budget.grants.get(r.config.name)!, current[i], config.gpuBudget),
    );

    await Promise.all(
      decisions.map(async (decision, i) => {
        const request = scaleRequest(runtimes[i]!.config, decision);
        if (!request) return;
        const ok = await actuator.scale(request, observed[i]);
        if (!ok) decision.blockedBy = 'scale call failed';
        // A dry run changes nothing, so it is only logged and not counted as an action taken.
        else if (!actuator.dryRun) metrics.scaleActions.inc({ model: decision.model, direction: request.direction });
      }),
    );

    this.#publishMetrics(decisions, budget.requestedGpus, budget.allocatedGpus);
    for (let i = 0; i < decisions.length; i += 1) this.#logDecision(runtimes[i]!, decisions[i]!);
    this.#completedPolls += 1;
    return decisions;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = this.#deps.clock.setTimer(delayMs, () => {
      const startedAt = this.#deps.clock.now();
      this.#running = this.pollOnce()
        .then(
          () => undefined,
          (error: unknown) => {
            this.#deps.logger.error({ err: error }, 'poll failed; retrying at the next interval');
          },
        )
        .finally(() => {
          const elapsed = this.#deps.clock.now() - startedAt;
          this.#schedule(Math.max(0, this.#deps.config.pollIntervalMs - elapsed));
        });
    });
  }

  #addModel(config: ModelConfig): void {
    this.#models.set(config.name, {
      config,
      stabilizer: new Stabilizer(this.#deps.clock, config),
      gpusPerReplica: config.gpusPerReplica,
      nextGpuReadAt: 0,
      lastLogged: '',
    });
  }

  /** Local mode: every model a gateway reports becomes a model with the local defaults. */
  #discoverModels(demand: Map<string, ModelDemand>): void {
    for (const name of demand.keys()) {
      if (this.#models.has(name)) continue;
      if (!LABEL_VALUE.test(name)) {
        if (!this.#rejectedNames.has(name)) {
          this.#rejectedNames.add(name);
          this.#deps.logger.warn({ model: name }, 'model name is not a valid Kubernetes label value, so no HPA could select it; not served');
        }
        continue;
      }
      const d = LOCAL_MODEL_DEFAULTS;
      this.#addModel({
        name,
        target: { kind: d.kind, namespace: d.namespace, name: name.toLowerCase().replace(/[^a-z0-9-]/g, '-') },
        targetPerReplica: d.targetPerReplica,
        minReplicas: d.minReplicas,
        maxReplicas: d.maxReplicas,
        gpusPerReplica: d.gpusPerReplica,
        scaleDownWindowSeconds: d.scaleDownWindowSeconds,
        idleToZeroSeconds: d.idleToZeroSeconds,
        priority: d.priority,
      });
      this.#deps.logger.info({ model: name, ...d }, 'found a new model in gateway snapshots; serving it with the local-mode defaults');
    }
  }

  async #refreshGpus(runtime: ModelRuntime): Promise<void> {
    if (runtime.config.gpusPerReplica !== undefined) return;
    const now = this.#deps.clock.now();
    if (now < runtime.nextGpuReadAt) return;
    const gpus = await this.#deps.actuator.readGpusPerReplica(runtime.config);
    if (gpus === undefined) {
      runtime.nextGpuReadAt = now + Math.min(GPU_READ_RETRY_MS, this.#deps.config.podTemplateRefreshMs);
      return;
    }
    if (gpus !== runtime.gpusPerReplica) this.#deps.logger.info({ model: runtime.config.name, gpusPerReplica: gpus }, 'read GPUs per replica from the pod template');
    runtime.gpusPerReplica = gpus;
    runtime.nextGpuReadAt = now + this.#deps.config.podTemplateRefreshMs;
  }

  #publishMetrics(decisions: ModelDecision[], requestedGpus: number, allocatedGpus: number): void {
    const { metrics, config } = this.#deps;
    for (const d of decisions) {
      if (d.demand === undefined) metrics.demand.remove({ model: d.model });
      else metrics.demand.set({ model: d.model }, d.demand);
      if (d.value === undefined) metrics.metricValue.remove({ model: d.model });
      else metrics.metricValue.set({ model: d.model }, d.value);
      if (d.desiredReplicas === undefined) metrics.desiredReplicas.remove({ model: d.model });
      else metrics.desiredReplicas.set({ model: d.model }, d.desiredReplicas);
    }
    if (config.gpuBudget !== undefined) metrics.gpus.set({ state: 'budget' }, config.gpuBudget);
    metrics.gpus.set({ state: 'requested' }, requestedGpus);
    metrics.gpus.set({ state: 'allocated' }, allocatedGpus);
  }

  /** Logs a decision at info when its outcome changed since the last poll, at debug otherwise. */
  #logDecision(runtime: ModelRuntime, decision: ModelDecision): void {
    const key = JSON.stringify([decision.stale, decision.value, decision.desiredReplicas, decision.currentReplicas, decision.action, decision.blockedBy, decision.capped]);
    const changed = key !== runtime.lastLogged;
    runtime.lastLogged = key;
    const logger = this.#deps.logger;
    if (changed) logger.info({ decision }, `decision for model ${decision.model}`);
    else logger.debug({ decision }, `decision for model ${decision.model}`);
  }
}

function budgetRequest(runtime: ModelRuntime, stabilized: StabilizedDemand, demand: ModelDemand | undefined): BudgetRequest {
  const { config } = runtime;
  return {
    name: config.name,
    priority: config.priority,
    // A stale model keeps the GPUs its last window maximum asked for: its replicas still run.
    value: stabilized.value ?? stabilized.windowMax ?? 0,
    targetPerReplica: config.targetPerReplica,
    gpusPerReplica: runtime.gpusPerReplica,
    minReplicas: config.minReplicas,
    maxReplicas: config.maxReplicas,
    startingReplicas: demand?.startingReplicas ?? 0,
  };
}

/** Combines one model's inputs into its decision. Pure. */
export function decide(
  runtime: Pick<ModelRuntime, 'config' | 'gpusPerReplica'>,
  demand: ModelDemand | undefined,
  stabilized: StabilizedDemand,
  grant: BudgetGrant,
  currentReplicas: number | undefined,
  gpuBudget: number | undefined,
): ModelDecision {
  const { config } = runtime;
  const stale = demand === undefined;
  const value = stale ? undefined : grant.cappedValue;
  let desiredReplicas: number | undefined;
  if (!stale) desiredReplicas = stabilized.idle && config.minReplicas === 0 ? 0 : Math.min(grant.neededReplicas, grant.grantedReplicas);

  let action: ScaleAction = 'none';
  let blockedBy: string | undefined;
  const waiting = demand ? demand.queued + demand.held : 0;
  if (!stale && waiting > 0 && currentReplicas === 0) {
    if (grant.grantedReplicas < 1) blockedBy = 'GPU budget has no room for one replica';
    else action = 'activate';
  } else if (!stale && stabilized.idle && config.minReplicas === 0) {
    if (currentReplicas === undefined) blockedBy = 'scale subresource unreadable';
    else if (currentReplicas > 0) action = 'scale_to_zero';
  } else if (!stale && waiting > 0 && currentReplicas === undefined) {
    blockedBy = 'scale subresource unreadable';
  }

  return {
    model: config.name,
    stale,
    demand: demand?.demand,
    queued: demand?.queued,
    held: demand?.held,
    inFlight: demand?.inFlight,
    windowMax: stabilized.windowMax,
    idleForMs: stabilized.idleForMs,
    idle: stabilized.idle,
    gpusPerReplica: runtime.gpusPerReplica,
    budgetGpus: gpuBudget === undefined ? undefined : grant.grantedGpus,
    neededReplicas: grant.neededReplicas,
    grantedReplicas: grant.grantedReplicas,
    capped: grant.capped,
    value,
    desiredReplicas,
    currentReplicas,
    action,
    blockedBy,
  };
}

function scaleRequest(model: ModelConfig, decision: ModelDecision): ScaleRequest | undefined {
  const from = decision.currentReplicas ?? 0;
  if (decision.action === 'activate') {
    const cause = `model ${model.name} has ${decision.queued ?? 0} queued and ${decision.held ?? 0} held requests`;
    return {
      model,
      from,
      to: 1,
      direction: 'up',
      reason: 'ScaledFromZero',
      message: `Scaled ${model.target.kind} ${model.target.name} from 0 to 1 replica: ${cause}; the HPA takes over from 1`,
      cause,
    };
  }
  if (decision.action === 'scale_to_zero') {
    const cause = `model ${model.name} had no queued, held or in-flight requests for ${Math.round(decision.idleForMs / 1000)} s (idleToZeroSeconds ${model.idleToZeroSeconds})`;
    return {
      model,
      from,
      to: 0,
      direction: 'down',
      reason: 'ScaledToZero',
      message: `Scaled ${model.target.kind} ${model.target.name} from ${from} to 0 replicas: ${cause}`,
      cause,
    };
  }
  return undefined;
}
