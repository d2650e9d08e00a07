// The actuator of local mode: no cluster, so scale actions are logged as what the
// autoscaler would do, and the replica count is always what the gateways report.
import type { Logger } from '../../../shared/src/logger.ts';
import type { ModelConfig } from '../config/load.ts';
import type { Actuator, ScaleRequest } from './actuator.ts';

interface LoggedAction {
  to: number;
  /** Ready replicas the gateways reported when the action was logged. */
  observed: number;
}

export class DryRunActuator implements Actuator {
  readonly dryRun = true;
  readonly #logger: Logger;
  /**
   * The last action logged per model. Nothing changes the replicas after a dry run, so
   * the same decision comes back on every poll. It is logged again only when the target
   * count or the count the gateways report changed.
   */
  readonly #logged = new Map<string, LoggedAction>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Returns the ready replicas the gateways report; undefined when no fresh snapshot lists the model. */
  async readReplicas(_model: ModelConfig, observed?: number): Promise<number | undefined> {
    return observed;
  }

  async readGpusPerReplica(model: ModelConfig): Promise<number | undefined> {
    return model.gpusPerReplica;
  }

  /** Logs the action it would take; returns true, as there is nothing that could fail. */
  async scale(request: ScaleRequest, observed?: number): Promise<boolean> {
    const current = observed ?? request.from;
    const last = this.#logged.get(request.model.name);
    if (last && last.to === request.to && last.observed === current) return true;
    this.#logged.set(request.model.name, { to: request.to, observed: current });
    const { target } = request.model;
    // Built from the cause alone, because the Event message starts with "Scaled" and nothing was scaled.
    this.#logger.info(
      { dryRun: true, model: request.model.name, target: `${target.kind}/${target.namespace}/${target.name}`, from: request.from, to: request.to, reason: request.reason },
      `dry run, no cluster: would scale ${target.kind} ${target.name} from ${request.from} to ${request.to} ${request.to === 1 ? 'replica' : 'replicas'}: ${request.cause}`,
    );
    return true;
  }
}
