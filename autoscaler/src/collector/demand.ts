// Sums the fresh gateway snapshots into one demand figure per model.
import { PRIORITIES } from '../../../shared/src/admin-state.ts';
import type { FreshSnapshot } from './collector.ts';

export interface ModelDemand {
  /** queued (all priorities) + held + inFlight, summed over gateways: the concurrency the model needs. */
  demand: number;
  queued: number;
  held: number;
  inFlight: number;
  /**
   * Ready replicas as the gateways see them. Every gateway routes to every replica of a
   * model, so this is the maximum over gateways, not the sum.
   */
  readyReplicas: number;
  /** Replicas still probing (started, not yet healthy), maximum over gateways. */
  startingReplicas: number;
  /** Gateways whose fresh snapshot lists the model. */
  gateways: number;
  /** Epoch milliseconds of the newest snapshot that lists the model: the time the demand was measured. */
  sampledAt: number;
}

/** Returns the demand of every model that at least one fresh snapshot lists. */
export function aggregateDemand(snapshots: readonly FreshSnapshot[]): Map<string, ModelDemand> {
  const models = new Map<string, ModelDemand>();
  for (const { state, receivedAt } of snapshots) {
    for (const model of state.models) {
      let entry = models.get(model.name);
      if (!entry) {
        entry = { demand: 0, queued: 0, held: 0, inFlight: 0, readyReplicas: 0, startingReplicas: 0, gateways: 0, sampledAt: receivedAt };
        models.set(model.name, entry);
      }
      const queued = PRIORITIES.reduce((sum, p) => sum + model.queued[p], 0);
      entry.queued += queued;
      entry.held += model.held;
      entry.inFlight += model.inFlight;
      entry.demand += queued + model.held + model.inFlight;
      entry.gateways += 1;
      entry.sampledAt = Math.max(entry.sampledAt, receivedAt);
      const ready = model.replicas.filter((r) => r.state === 'ready').length;
      const starting = model.replicas.filter((r) => r.state === 'probing').length;
      entry.readyReplicas = Math.max(entry.readyReplicas, ready);
      entry.startingReplicas = Math.max(entry.startingReplicas, starting);
    }
  }
  return models;
}
