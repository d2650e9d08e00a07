// Every default of the autoscaler, in one table. docs/autoscaler.md documents the same
// values; change both together.

export const DEFAULTS = Object.freeze({
  /** Milliseconds between two collections of every gateway's /admin/state. */
  pollIntervalMs: 1000,
  /** Milliseconds one /admin/state call may take, connection included, before it is aborted. */
  requestTimeoutMs: 800,
  /** Milliseconds after a gateway's last successful response at which its snapshot stops counting. */
  staleAfterMs: 5000,
  /** Milliseconds one Kubernetes API call (scale, event, pod template read) may take. */
  kubernetesTimeoutMs: 5000,
  /** Milliseconds between two reads of a target's pod template for its GPU count. */
  podTemplateRefreshMs: 60_000,
  /** Address both listeners bind to. */
  listenHost: '0.0.0.0',
  /** Port of /healthz, /readyz and /metrics. */
  adminPort: 9091,
  metricsApi: Object.freeze({
    /** Port of the external metrics API (the port the APIService's Service targets). */
    port: 6443,
    /** Milliseconds between checks of the certificate files for changes. */
    certReloadIntervalMs: 10_000,
    clientCAFromCluster: false,
    /** Empty: any common name signed by the client CA is accepted. */
    allowedNames: Object.freeze([] as string[]),
    insecureHttp: false,
    /**
     * Delegated authorization (SubjectAccessReview). The mode defaults to delegated in
     * cluster mode and to none in local mode and with insecureHttp (see config/load.ts).
     * The TTLs are those of the generic Kubernetes API server's delegated authorizer.
     */
    authorization: Object.freeze({
      /** Milliseconds an allowed decision is reused. */
      allowTtlMs: 10_000,
      /** Milliseconds a denied decision is reused. */
      denyTtlMs: 10_000,
      /** Most cached decisions; the oldest is dropped first. */
      cacheSize: 8192,
      /** Allowed without a review: the cluster's hard-wired superuser group. */
      alwaysAllowGroups: Object.freeze(['system:masters']),
    }),
    /** Request-header names used when neither the config nor the cluster ConfigMap sets them. */
    requestHeader: Object.freeze({
      usernameHeaders: Object.freeze(['X-Remote-User']),
      groupHeaders: Object.freeze(['X-Remote-Group']),
      extraHeadersPrefixes: Object.freeze(['X-Remote-Extra-']),
    }),
  }),
  model: Object.freeze({
    minReplicas: 1,
    maxReplicas: 10,
    scaleDownWindowSeconds: 300,
    idleToZeroSeconds: 300,
    /** Higher numbers get GPUs first when a budget is set. */
    priority: 0,
  }),
});

/**
 * Settings of models found in gateway snapshots in local mode, where no config file
 * names them. Local mode only logs scale actions, so these settings only shape the
 * served values and the logged decisions.
 */
export const LOCAL_MODEL_DEFAULTS = Object.freeze({
  namespace: 'default',
  kind: 'Deployment' as const,
  targetPerReplica: 10,
  minReplicas: 0,
  maxReplicas: 10,
  gpusPerReplica: 1,
  scaleDownWindowSeconds: 300,
  idleToZeroSeconds: 300,
  priority: 0,
});

/** Name of the one metric served; HPAs select a model with the label selector model=<name>. */
export const DEMAND_METRIC = 'infergate_demand';
