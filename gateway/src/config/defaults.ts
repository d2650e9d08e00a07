// Every default of the gateway configuration, in one table. The loader fills missing keys
// from here, and docs/gateway.md documents the same values.

export const SERVER_DEFAULTS = {
  /** Traffic listener port; 0 picks a free port. */
  port: 8080,
  /** Admin listener port (/metrics, /healthz, /readyz, /admin/state); 0 picks a free port. */
  adminPort: 9090,
  /** Interface both listeners bind to. */
  host: '0.0.0.0',
  /** Maximum request body in bytes on every route; larger bodies get 413. */
  bodyLimitBytes: 8_388_608,
  /** Time in ms that queued and in-flight work may take to finish after SIGTERM. */
  shutdownGraceMs: 30_000,
} as const;

export const MODEL_DEFAULTS = {
  maxInflightPerReplica: 32,
  queue: {
    /** Maximum requests waiting in the admission queue of one model, all priorities together. */
    maxSize: 1000,
    /** Default deadline in ms counted from arrival, and the cap on x-request-timeout-ms. */
    timeoutMs: 60_000,
  },
  batching: {
    /** Maximum rows per upstream call; 1 turns batching off. */
    maxBatchSize: 32,
    /** Maximum time in ms an under-full batch waits for more rows; 0 dispatches at once. */
    maxDelayMs: 0,
  },
  health: {
    intervalMs: 5000,
    timeoutMs: 2000,
    unhealthyThreshold: 2,
    healthyThreshold: 1,
  },
  ejection: {
    /** Consecutive connect errors, resets, timeouts, 5xx responses, or calls ended by the deadline while the replica sent no response headers, that eject a replica; 0 turns ejection off. */
    consecutiveFailures: 5,
    /** First ejection period in ms; each repeat doubles it. */
    baseMs: 5000,
    /** Cap on the ejection period in ms. */
    maxMs: 60_000,
  },
  retry: {
    /** Total tries per request, the first included; 1 turns retries off. */
    maxAttempts: 2,
  },
  scaleFromZero: {
    enabled: false,
    holdTimeoutMs: 180_000,
    maxHeld: 100,
  },
  upstream: {
    connectTimeoutMs: 2000,
    /** Time in ms from the end of the request body to the response headers. */
    headersTimeoutMs: 300_000,
    /**
     * Time in ms from the end of the request body to the response headers of a streaming
     * call. vLLM sends a stream's headers when it accepts the request, before the first
     * token, so a long wait means the replica is not responding at all.
     */
    streamHeadersTimeoutMs: 30_000,
    /** Maximum time in ms between two chunks of a response body. */
    bodyTimeoutMs: 300_000,
    /** Idle keep-alive in ms; keep it below the replica's own keep-alive timeout. */
    keepAliveTimeoutMs: 4000,
  },
} as const;

/** Active probe path by protocol: vLLM serves /health, Triton serves /v2/health/ready. */
export const HEALTH_PATH_BY_PROTOCOL = {
  openai: '/health',
  v2: '/v2/health/ready',
} as const;

/**
 * Model label of infergate_requests_total for an invalid request whose model is not
 * configured or could not be read, so label values stay bounded. Model names cannot
 * contain spaces or slashes but may contain parentheses, so this exact name is reserved.
 */
export const UNKNOWN_MODEL_LABEL = '(unknown)';
