// The JSON served by the gateway at GET /admin/state on its admin port. It is the
// only input of the autoscaler, so both services import these types from here.

export const PRIORITIES = ['critical', 'standard', 'sheddable'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const PROTOCOLS = ['openai', 'v2'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const REPLICA_STATES = ['probing', 'ready', 'ejected', 'unhealthy', 'draining'] as const;
export type ReplicaState = (typeof REPLICA_STATES)[number];

export interface ReplicaSnapshot {
  /** host:port of the replica, unique within a model. */
  id: string;
  state: ReplicaState;
  inFlight: number;
  limit: number;
}

export interface ModelSnapshot {
  name: string;
  protocol: Protocol;
  /** Requests waiting in the admission queue, by priority class. */
  queued: Record<Priority, number>;
  /** Requests waiting because the model has no ready replica (scale from zero). */
  held: number;
  /** Requests sent upstream and not yet answered. */
  inFlight: number;
  /** Age in milliseconds of the oldest queued or held request, 0 when none waits. */
  oldestQueuedMs: number;
  arrivalsPerSecond: number;
  completionsPerSecond: number;
  replicas: ReplicaSnapshot[];
  /**
   * Present only for models discovered from Kubernetes: false while the
   * EndpointSlice watch is failing and the last known endpoints are in use.
   */
  discoveryHealthy?: boolean;
}

export interface GatewayState {
  /** Pod name from the downward API, or host:port outside Kubernetes. */
  gateway: string;
  /** ISO 8601 time at which the snapshot was taken. */
  time: string;
  models: ModelSnapshot[];
}
