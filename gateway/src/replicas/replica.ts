// One upstream replica: its undici Pool, in-flight count, discovery flags and health.
import { Pool } from 'undici';
import type { Clock } from '../../../shared/src/clock.ts';
import type { ReplicaSnapshot, ReplicaState } from '../../../shared/src/admin-state.ts';
import type { ModelConfig } from '../config/load.ts';
import { ReplicaHealth } from './health.ts';

export class Replica {
  readonly id: string;
  readonly url: string;
  readonly limit: number;
  readonly health: ReplicaHealth;
  readonly pool: Pool;
  /** Upstream timeouts of the model: streaming calls use their own headers timeout, and errors name them. */
  readonly upstream: ModelConfig['upstream'];
  inFlight = 0;
  /**
   * Calls to this replica that received response headers. A call compares the count at its
   * start and end to tell whether the replica responded to anything while it ran.
   */
  responses = 0;
  /** Discovery reports that the endpoint may receive new requests. */
  endpointReady = true;
  /** Terminating or gone from discovery: no new picks, running calls finish. */
  draining = false;
  /** Gone from discovery: close the pool once idle. */
  removed = false;

  constructor(id: string, url: string, config: ModelConfig, clock: Clock) {
    this.id = id;
    this.url = url;
    this.limit = config.maxInflightPerReplica;
    this.upstream = config.upstream;
    this.health = new ReplicaHealth(clock, {
      unhealthyThreshold: config.health.unhealthyThreshold,
      healthyThreshold: config.health.healthyThreshold,
      ...config.ejection,
    });
    this.pool = new Pool(url, {
      // One extra connection for the active probe, so a full replica can still be probed.
      connections: config.maxInflightPerReplica + 1,
      connect: { timeout: config.upstream.connectTimeoutMs },
      headersTimeout: config.upstream.headersTimeoutMs,
      bodyTimeout: config.upstream.bodyTimeoutMs,
      keepAliveTimeout: config.upstream.keepAliveTimeoutMs,
      keepAliveMaxTimeout: config.upstream.keepAliveTimeoutMs,
      // Pipelining would queue one request behind another on a connection, so it stays off.
      pipelining: 1,
    });
  }

  get state(): ReplicaState {
    if (this.draining) return 'draining';
    if (this.health.ejected) return 'ejected';
    if (this.health.probeState === 'unhealthy') return 'unhealthy';
    if (this.health.probeState === 'probing' || !this.endpointReady) return 'probing';
    return 'ready';
  }

  /** Ready or ejected: the replica serves now or will return through a trial request. */
  get serving(): boolean {
    const state = this.state;
    return state === 'ready' || state === 'ejected';
  }

  /** Returns whether a new call may start now. An ejected replica takes one trial call, and only when idle. */
  available(): boolean {
    if (this.draining || !this.endpointReady || !this.health.admits()) return false;
    if (this.health.inTrialWindow) return this.inFlight === 0;
    return this.inFlight < this.limit;
  }

  snapshot(): ReplicaSnapshot {
    return { id: this.id, state: this.state, inFlight: this.inFlight, limit: this.limit };
  }
}
