// The actuator of local mode: no cluster, so scale actions are logged as what the
// autoscaler would do, and the replica count is what the gateways report.
import type { Logger } from '../../../shared/src/logger.ts';
import type { ModelConfig } from '../config/load.ts';
import type { Actuator, ScaleRequest } from './actuator.ts';

interface Override {
  replicas: number;
  /** Replicas the gateways reported when the action was logged. */
  observedAtAction: number;
}

export class DryRunActuator implements Actuator {
  readonly dryRun = true;
  readonly #logger: Logger;
  /**
   * Replica counts as they would be after the logged actions, so one decision is logged
   * once and not on every poll. An entry is dropped when the gateways report a different
   * count, because then someone changed the replicas for real.
   */
  readonly #overrides = new Map<string, Override>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async readReplicas(model: ModelConfig, observed?: number): Promise<number | undefined> {
    const override = this.#overrides.get(model.name);
    if (override && override.observedAtAction === observed) return override.replicas;
    this.#overrides.delete(model.name);
    return observed;
  }

  async readGpusPerReplica(model: ModelConfig): Promise<number | undefined> {
    return model.gpusPerReplica;
  }

  async scale(request: ScaleRequest, observed?: number): Promise<boolean> {
    this.#overrides.set(request.model.name, { replicas: request.to, observedAtAction: observed ?? request.from });
    this.#logger.info(
      { dryRun: true, model: request.model.name, target: `${request.model.target.kind}/${request.model.target.namespace}/${request.model.target.name}`, from: request.from, to: request.to, reason: request.reason },
      `dry run, no cluster: would scale ${request.from} -> ${request.to}: ${request.message}`,
    );
    return true;
  }
}
