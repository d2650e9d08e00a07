// prom-client's default process and Node.js metrics, registered so that the exposition
// passes `promtool check metrics`. Every service registers them through this one helper.
import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * Default metrics that prom-client 15 exports as gauges with a `_total` suffix. Prometheus
 * reserves that suffix for counters, so promtool reports each of them and exits non-zero.
 * Nothing is lost by dropping them: each equals the sum over the `type` label of its
 * per-type gauge (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources).
 */
export const MISNAMED_DEFAULT_METRICS: readonly string[] = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Registers prom-client's default metrics on registry, without MISNAMED_DEFAULT_METRICS. */
export function registerDefaultMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
}
