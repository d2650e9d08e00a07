// The replicas of one model: reconciles discovery snapshots, runs the active probes,
// picks the least-loaded available replica and closes pools of replicas that left.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../../shared/src/clock.ts';
import type { ReplicaSnapshot } from '../../../shared/src/admin-state.ts';
import type { EndpointObservation } from '../discovery/types.ts';
import type { ModelConfig } from '../config/load.ts';
import { Replica } from './replica.ts';
import { probeReplica } from './prober.ts';

export interface ReplicaSetDeps {
  clock: Clock;
  logger: Logger;
  /** Called whenever a replica may have become available, so the scheduler can dispatch. */
  onChange: () => void;
  onRemoved?: (replicaId: string) => void;
  /** Random number in [0, 1) for tie-breaks; injectable for tests. */
  random?: () => number;
}

export class ReplicaSet {
  readonly #config: ModelConfig;
  readonly #deps: ReplicaSetDeps;
  readonly #replicas = new Map<string, Replica>();
  readonly #probeTimers = new Map<string, TimerHandle>();
  readonly #wakeTimers = new Set<TimerHandle>();
  readonly #random: () => number;
  #closed = false;

  constructor(config: ModelConfig, deps: ReplicaSetDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
  }

  get size(): number {
    return this.#replicas.size;
  }

  get(id: string): Replica | undefined {
    return this.#replicas.get(id);
  }

  all(): Replica[] {
    return [...this.#replicas.values()];
  }

  /** Some replica serves now or will return by itself (ejected replicas come back through a trial). */
  hasServing(): boolean {
    for (const replica of this.#replicas.values()) if (replica.serving) return true;
    return false;
  }

  /**
   * Applies a full discovery snapshot: new endpoints start probing, missing ones drain and
   * close once idle, and readiness and termination flags are copied.
   */
  reconcile(endpoints: readonly EndpointObservation[]): void {
    if (this.#closed) return;
    const seen = new Set<string>();
    for (const endpoint of endpoints) {
      seen.add(endpoint.id);
      let replica = this.#replicas.get(endpoint.id);
      if (replica === undefined || replica.url !== endpoint.url) {
        if (replica !== undefined) this.#retire(replica);
        replica = new Replica(endpoint.id, endpoint.url, this.#config, this.#deps.clock);
        this.#replicas.set(endpoint.id, replica);
        this.#deps.logger.info({ replica: replica.id, url: replica.url }, 'replica added, probing');
        this.#startProbing(replica);
      }
      const draining = endpoint.terminating || !endpoint.serving;
      if (draining !== replica.draining || endpoint.ready !== replica.endpointReady) {
        replica.draining = draining;
        replica.endpointReady = endpoint.ready;
        this.#deps.logger.info({ replica: replica.id, state: replica.state }, 'replica endpoint changed');
      }
    }
    for (const replica of [...this.#replicas.values()]) {
      if (!seen.has(replica.id)) this.#retire(replica);
    }
    this.#deps.onChange();
  }

  /**
   * Picks the least-loaded available replica (in-flight ÷ limit), ties broken at random.
   * Replicas in avoid, which already failed this request, are used only when no other
   * replica serves at all.
   */
  pick(avoid?: ReadonlySet<string>): Replica | undefined {
    let best: Replica[] = [];
    let bestLoad = Number.POSITIVE_INFINITY;
    let otherServing = false;
    const avoided: Replica[] = [];
    for (const replica of this.#replicas.values()) {
      const isAvoided = avoid?.has(replica.id) ?? false;
      if (!isAvoided && replica.serving) otherServing = true;
      if (!replica.available()) continue;
      if (isAvoided) {
        avoided.push(replica);
        continue;
      }
      const load = replica.inFlight / replica.limit;
      if (load < bestLoad) {
        best = [replica];
        bestLoad = load;
      } else if (load === bestLoad) {
        best.push(replica);
      }
    }
    if (best.length === 0 && !otherServing && avoided.length > 0) return this.pick();
    if (best.length === 0) return undefined;
    return best[Math.floor(this.#random() * best.length)] ?? best[0];
  }

  /**
   * Earliest clock time at which a serving replica may take a new call, in-flight limits
   * aside: now when one may already, otherwise the end of the first cooldown or ejection
   * period; +Infinity when no replica serves.
   */
  nextAvailableAt(): number {
    const now = this.#deps.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const replica of this.#replicas.values()) {
      if (!replica.serving) continue;
      const until = Math.max(replica.health.cooldownUntil, replica.health.ejectedUntil ?? 0);
      if (until <= now) return now;
      next = Math.min(next, until);
    }
    return next;
  }

  /** Makes the scheduler look again at time at (a cooldown or ejection period ending). */
  wakeAt(at: number): void {
    if (this.#closed) return;
    const timer = this.#deps.clock.setTimer(at - this.#deps.clock.now(), () => {
      this.#wakeTimers.delete(timer);
      this.#deps.onChange();
    });
    this.#wakeTimers.add(timer);
  }

  /** Closes the pool of a removed replica once its last call finished. */
  releaseIfRetired(replica: Replica): void {
    if (replica.removed && replica.inFlight === 0) void this.#closePool(replica);
  }

  snapshot(): ReplicaSnapshot[] {
    return this.all().map((replica) => replica.snapshot());
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#probeTimers.values()) timer.cancel();
    this.#probeTimers.clear();
    for (const timer of this.#wakeTimers) timer.cancel();
    this.#wakeTimers.clear();
    const replicas = [...this.#replicas.values()];
    this.#replicas.clear();
    await Promise.all(replicas.map((replica) => replica.pool.destroy().catch(() => undefined)));
  }

  #retire(replica: Replica): void {
    this.#replicas.delete(replica.id);
    this.#probeTimers.get(replica.id)?.cancel();
    this.#probeTimers.delete(replica.id);
    replica.draining = true;
    replica.removed = true;
    this.#deps.logger.info({ replica: replica.id, inFlight: replica.inFlight }, 'replica removed, draining');
    this.#deps.onRemoved?.(replica.id);
    this.releaseIfRetired(replica);
  }

  async #closePool(replica: Replica): Promise<void> {
    try {
      await replica.pool.close();
    } catch (error) {
      this.#deps.logger.warn({ replica: replica.id, err: error }, 'closing the replica connection pool failed');
    }
  }

  #startProbing(replica: Replica): void {
    const { intervalMs, timeoutMs, path } = this.#config.health;
    const run = async (): Promise<void> => {
      this.#probeTimers.delete(replica.id);
      const probe = await probeReplica(replica.pool, path, timeoutMs);
      if (this.#closed || replica.removed) return;
      const before = replica.state;
      if (replica.health.recordProbe(probe.passed)) {
        const level = probe.passed ? 'info' : 'warn';
        const after = replica.state;
        // An ejected or draining replica keeps that state while its probes change, so the line then names the probe state.
        const message = before === after ? 'replica probe state changed' : 'replica health changed';
        this.#deps.logger[level]({ replica: replica.id, from: before, to: after, probeState: replica.health.probeState, probe: probe.detail }, message);
        this.#deps.onChange();
      }
      this.#probeTimers.set(replica.id, this.#deps.clock.setTimer(intervalMs, () => void run()));
    };
    this.#probeTimers.set(replica.id, this.#deps.clock.setTimer(0, () => void run()));
  }
}
