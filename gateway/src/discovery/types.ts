// Replica discovery contract. The static list from the config and the Kubernetes
// EndpointSlice watcher both implement ReplicaSource, and the model pool reconciles
// each full snapshot against the replicas it already tracks.

export interface EndpointObservation {
  /** host:port, unique within a model. It is also the replica id in metrics and /admin/state. */
  id: string;
  /** Base URL of the replica, such as http://10.0.3.7:8000. */
  url: string;
  /** The endpoint may receive new requests (after a passing active probe). */
  ready: boolean;
  /** The endpoint can still finish work it already has. */
  serving: boolean;
  /** The pod is going away: no new picks, running requests and streams finish. */
  terminating: boolean;
}

export interface ReplicaSource {
  /**
   * Starts discovery. onSnapshot receives the complete current set of endpoints every
   * time it changes; an endpoint missing from a snapshot has disappeared. Resolves once
   * the first snapshot was delivered, or rejects when discovery cannot start at all.
   */
  start(onSnapshot: (endpoints: EndpointObservation[]) => void): Promise<void>;
  /** Stops watching; delivers no snapshot after it resolves. */
  stop(): Promise<void>;
  /** false while discovery is degraded, for example when the watch keeps failing and the last known endpoints are in use. */
  healthy(): boolean;
}
