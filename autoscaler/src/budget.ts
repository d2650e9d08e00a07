// Splits an optional GPU budget between models and caps each served value so that the
// replicas an HPA derives from it, ceil(value / targetPerReplica), fit the model's share.
// Order of allocation:
//   1. reservations, by priority: minReplicas, and replicas still starting up to what the
//      demand needs. Starting replicas already hold their GPUs (their pods are scheduled or
//      pulling images), so they count as capacity on its way and are not handed to another
//      model, which could not schedule on them anyway until they are gone.
//   2. the rest of each model's need, tier by tier from the highest priority. A tier whose
//      need fits gets all of it. Otherwise each of the tier's models with demand and no
//      replica gets one while one fits, the GPUs left are split in proportion to demand in
//      whole replicas, the rounding remainder goes to the least covered need, and lower
//      tiers get nothing.

export interface BudgetRequest {
  name: string;
  /** Higher numbers are served first. */
  priority: number;
  /** Stabilized demand, >= 0. */
  value: number;
  targetPerReplica: number;
  /** Undefined when unknown: the model is then neither counted nor capped. */
  gpusPerReplica: number | undefined;
  minReplicas: number;
  maxReplicas: number;
  /** Replicas created but not ready yet. */
  startingReplicas: number;
}

export interface BudgetGrant {
  name: string;
  /** Replicas the demand needs: ceil(value / targetPerReplica), within [minReplicas, maxReplicas]. */
  neededReplicas: number;
  /** Replicas the budget allows. Equal to neededReplicas without a budget or without a GPU count. */
  grantedReplicas: number;
  /** GPUs of the granted replicas; 0 when the GPU count is unknown. */
  grantedGpus: number;
  /** The served value: value, lowered so that ceil(cappedValue / targetPerReplica) <= grantedReplicas. */
  cappedValue: number;
  /** True when the budget lowered the value. */
  capped: boolean;
}

export interface BudgetResult {
  grants: Map<string, BudgetGrant>;
  /** GPUs all needed replicas would use (models with a known GPU count only). */
  requestedGpus: number;
  allocatedGpus: number;
}

/** Returns the replica count the demand needs, within the model's bounds. */
export function neededReplicas(value: number, targetPerReplica: number, minReplicas: number, maxReplicas: number): number {
  const raw = Math.ceil(value / targetPerReplica);
  return Math.min(maxReplicas, Math.max(minReplicas, raw));
}

/** Allocates `budget` GPUs (undefined: no budget) to the requests. Pure. */
export function allocateGpus(budget: number | undefined, requests: readonly BudgetRequest[]): BudgetResult {
  const needed = new Map<string, number>();
  const granted = new Map<string, number>();
  let requestedGpus = 0;
  for (const r of requests) {
    const need = neededReplicas(r.value, r.targetPerReplica, r.minReplicas, r.maxReplicas);
    needed.set(r.name, need);
    granted.set(r.name, 0);
    requestedGpus += need * (r.gpusPerReplica ?? 0);
  }

  const budgeted = requests.filter((r) => budget !== undefined && r.gpusPerReplica !== undefined && r.gpusPerReplica > 0);
  const unbudgeted = requests.filter((r) => !budgeted.includes(r));
  for (const r of unbudgeted) granted.set(r.name, needed.get(r.name)!);

  if (budget !== undefined) {
    let remaining = budget;
    const byPriority = [...budgeted].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));

    for (const r of byPriority) {
      const reserve = Math.max(r.minReplicas, Math.min(needed.get(r.name)!, r.startingReplicas));
      const fit = Math.min(reserve, Math.floor(remaining / r.gpusPerReplica!));
      granted.set(r.name, fit);
      remaining -= fit * r.gpusPerReplica!;
    }

    for (const tier of groupByPriority(byPriority)) {
      remaining = grantTier(tier, remaining, needed, granted);
      if (remaining <= 0) break;
    }
  }

  const grants = new Map<string, BudgetGrant>();
  let allocatedGpus = 0;
  for (const r of requests) {
    const grantedReplicas = granted.get(r.name)!;
    const gpus = grantedReplicas * (r.gpusPerReplica ?? 0);
    allocatedGpus += gpus;
    // Only a budget shortfall lowers the value. Demand above maxReplicas stays visible,
    // since the HPA clamps to maxReplicas by itself.
    const shortfall = grantedReplicas < needed.get(r.name)!;
    const cappedValue = shortfall ? Math.min(r.value, grantedReplicas * r.targetPerReplica) : r.value;
    grants.set(r.name, {
      name: r.name,
      neededReplicas: needed.get(r.name)!,
      grantedReplicas,
      grantedGpus: gpus,
      cappedValue,
      capped: cappedValue < r.value,
    });
  }
  return { grants, requestedGpus, allocatedGpus };
}

/** Grants one priority tier its remaining need, or a demand-proportional part of it. Returns the GPUs left. */
function grantTier(tier: BudgetRequest[], remaining: number, needed: Map<string, number>, granted: Map<string, number>): number {
  const missing = (r: BudgetRequest) => needed.get(r.name)! - granted.get(r.name)!;
  const wanting = tier.filter((r) => missing(r) > 0);
  const tierNeed = wanting.reduce((sum, r) => sum + missing(r) * r.gpusPerReplica!, 0);
  if (tierNeed <= remaining) {
    for (const r of wanting) granted.set(r.name, needed.get(r.name)!);
    return remaining - tierNeed;
  }

  // Not enough. First every model with demand and no replica yet gets one, while one fits:
  // a model served 0 while it has demand would never be scaled up by its HPA. Larger
  // demand goes first when not all of them fit.
  const unserved = wanting
    .filter((r) => r.value > 0 && granted.get(r.name)! === 0)
    .sort((a, b) => b.value - a.value || a.name.localeCompare(b.name));
  for (const r of unserved) {
    if (r.gpusPerReplica! > remaining) continue;
    granted.set(r.name, 1);
    remaining -= r.gpusPerReplica!;
  }

  // Then split what is left in proportion to demand, in whole replicas rounded down. A model
  // with no demand but a missing minimum was served by the reservations already, so
  // weights of zero are fine.
  const splitting = wanting.filter((r) => missing(r) > 0);
  const totalDemand = splitting.reduce((sum, r) => sum + r.value, 0);
  const pool = remaining;
  for (const r of splitting) {
    const share = totalDemand > 0 ? (pool * r.value) / totalDemand : pool / splitting.length;
    const replicas = Math.min(missing(r), Math.floor(share / r.gpusPerReplica!));
    granted.set(r.name, granted.get(r.name)! + replicas);
    remaining -= replicas * r.gpusPerReplica!;
  }

  // Hand out what the rounding down left, one replica at a time, to the model whose need is
  // least covered (the lowest granted / needed replicas), while a replica still fits. Ties go
  // to the larger demand, then to the name in alphabetical order.
  const coverage = (r: BudgetRequest) => granted.get(r.name)! / needed.get(r.name)!;
  for (;;) {
    const candidates = wanting
      .filter((r) => missing(r) > 0 && r.gpusPerReplica! <= remaining)
      .sort((a, b) => coverage(a) - coverage(b) || b.value - a.value || a.name.localeCompare(b.name));
    const next = candidates[0];
    if (!next) break;
    granted.set(next.name, granted.get(next.name)! + 1);
    remaining -= next.gpusPerReplica!;
  }
  return remaining;
}

function groupByPriority(sorted: BudgetRequest[]): BudgetRequest[][] {
  const tiers: BudgetRequest[][] = [];
  for (const r of sorted) {
    const last = tiers[tiers.length - 1];
    if (last && last[0]!.priority === r.priority) last.push(r);
    else tiers.push([r]);
  }
  return tiers;
}
