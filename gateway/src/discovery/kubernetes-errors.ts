// Error classification, timeouts and rate-limited logging for Kubernetes discovery.
import type { Clock } from '../../../shared/src/clock.ts';
import type { Logger } from '../../../shared/src/logger.ts';

/**
 * Returns the HTTP status carried by an error of @kubernetes/client-node 2.0: `code` on an
 * ApiException from the generated clients, `statusCode` on a failed Watch request.
 * Returns undefined for network errors, which have no status.
 */
export function errorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  if (typeof statusCode === 'number') return statusCode;
  return undefined;
}

/**
 * True for statuses that retrying will not change before someone fixes the cluster: missing
 * credentials (401), missing RBAC (403), or an API server without discovery.k8s.io/v1 (404).
 */
export function isPermanentStartError(status: number | undefined): boolean {
  return status === 401 || status === 403 || status === 404;
}

/**
 * Settles like `promise`, or rejects when it has not settled after `ms` on the clock.
 * 0 disables the timeout. The underlying request is not cancelled; its late result is dropped.
 */
export function withTimeout<T>(clock: Clock, ms: number, promise: Promise<T>, operation: string): Promise<T> {
  if (ms <= 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimer(ms, () => {
      const err = new Error(`Timed out after ${ms} ms ${operation}.`);
      err.name = 'TimeoutError';
      reject(err);
    });
    promise.then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (err: unknown) => {
        timer.cancel();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Writes a warning per key at most once per interval, so an API outage that fails every
 * restart produces a few lines with a count of the suppressed ones, not a flood.
 */
export class RateLimitedLog {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(clock: Clock, intervalMs: number) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  warn(logger: Logger, key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.#clock.now();
    const entry = this.#last.get(key);
    if (entry !== undefined && now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.set(key, { at: now, suppressed: 0 });
    logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
