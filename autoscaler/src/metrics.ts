// Prometheus metrics of the autoscaler, on their own registry so tests can start several
// instances in one process. Names are part of the public contract (dashboards, alerts).
import { Counter, Gauge, Registry } from 'prom-client';
import { registerDefaultMetrics } from '../../shared/src/metrics.ts';

export interface AutoscalerMetrics {
  registry: Registry;
  demand: Gauge<'model'>;
  metricValue: Gauge<'model'>;
  desiredReplicas: Gauge<'model'>;
  scaleActions: Counter<'model' | 'direction'>;
  sourceUp: Gauge<'gateway'>;
  sourceFailures: Counter<'gateway' | 'reason'>;
  gpus: Gauge<'state'>;
  polls: Counter<'result'>;
  apiRequests: Counter<'code'>;
  authorizationDecisions: Counter<'decision' | 'source'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): AutoscalerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) registerDefaultMetrics(registry);
  const registers = [registry];
  return {
    registry,
    demand: new Gauge({
      name: 'infergate_autoscaler_demand',
      help: 'Raw demand per model: queued + held + in-flight requests summed over fresh gateway snapshots.',
      labelNames: ['model'],
      registers,
    }),
    metricValue: new Gauge({
      name: 'infergate_autoscaler_metric_value',
      help: 'Value served to the HPA as infergate_demand after stabilization and GPU budget caps; absent while data is stale.',
      labelNames: ['model'],
      registers,
    }),
    desiredReplicas: new Gauge({
      name: 'infergate_autoscaler_desired_replicas',
      help: 'Replicas the served value asks for: ceil(value / targetPerReplica) within minReplicas and maxReplicas, 0 when idle with minReplicas 0.',
      labelNames: ['model'],
      registers,
    }),
    scaleActions: new Counter({
      name: 'infergate_autoscaler_scale_actions_total',
      help: 'Scale actions taken by the autoscaler itself (activation from zero and idle to zero), by direction. Local mode only logs its actions and counts none.',
      labelNames: ['model', 'direction'],
      registers,
    }),
    sourceUp: new Gauge({
      name: 'infergate_autoscaler_source_up',
      help: '1 when the last /admin/state call to the gateway succeeded, 0 when it failed.',
      labelNames: ['gateway'],
      registers,
    }),
    sourceFailures: new Counter({
      name: 'infergate_autoscaler_source_failures_total',
      help: 'Failed /admin/state calls, by gateway and reason (timeout, connect, status, invalid_body, error).',
      labelNames: ['gateway', 'reason'],
      registers,
    }),
    gpus: new Gauge({
      name: 'infergate_autoscaler_gpus',
      help: 'GPUs by state: budget (configured cap), requested (what demand asks for), allocated (what the budget grants).',
      labelNames: ['state'],
      registers,
    }),
    polls: new Counter({
      name: 'infergate_autoscaler_polls_total',
      help: 'Completed polls, by result: ok (at least one gateway responded) or no_gateway (none responded).',
      labelNames: ['result'],
      registers,
    }),
    apiRequests: new Counter({
      name: 'infergate_autoscaler_api_requests_total',
      help: 'Requests to the external metrics API, by HTTP status code.',
      labelNames: ['code'],
      registers,
    }),
    authorizationDecisions: new Counter({
      name: 'infergate_autoscaler_authorization_decisions_total',
      help: 'Authorization decisions on metrics API requests, by decision (allowed, denied, error) and source (review: a SubjectAccessReview, cache: a cached decision, group: an always-allowed group).',
      labelNames: ['decision', 'source'],
      registers,
    }),
  };
}
