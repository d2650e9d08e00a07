// Prometheus metrics of one gateway instance. Each gateway owns its registry so several
// gateways can run in one process (tests, benchmarks) without clashing series.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerDefaultMetrics } from '../../../shared/src/metrics.ts';
import { REPLICA_STATES, PRIORITIES } from '../../../shared/src/admin-state.ts';
import type { ModelSnapshot } from '../../../shared/src/admin-state.ts';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'model' | 'protocol' | 'outcome'>;
  readonly requestDuration: Histogram<'model' | 'protocol'>;
  readonly queueWait: Histogram<'model'>;
  readonly timeToFirstByte: Histogram<'model'>;
  readonly batchSize: Histogram<'model'>;
  readonly upstreamRequests: Counter<'model' | 'replica' | 'code'>;
  readonly retries: Counter<'model' | 'reason'>;
  readonly ejections: Counter<'model' | 'replica'>;

  /** snapshots is called at scrape time, so the gauges always match /admin/state. */
  constructor(snapshots: () => ModelSnapshot[], options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) registerDefaultMetrics(this.registry);
    this.requests = new Counter({
      name: 'infergate_requests_total',
      help: 'Requests that reached a model route, by final outcome.',
      labelNames: ['model', 'protocol', 'outcome'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'infergate_request_duration_seconds',
      help: 'End-to-end request duration, from arrival to the last byte sent.',
      labelNames: ['model', 'protocol'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'infergate_queue_wait_seconds',
      help: 'Time requests spent in the admission queue before dispatch.',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.timeToFirstByte = new Histogram({
      name: 'infergate_time_to_first_byte_seconds',
      help: 'Time from arrival to the first response byte sent to the client.',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'infergate_batch_size',
      help: 'Rows per upstream call.',
      labelNames: ['model'],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.upstreamRequests = new Counter({
      name: 'infergate_upstream_requests_total',
      help: 'Upstream calls by replica and HTTP status, or connect_error, reset, timeout, aborted.',
      labelNames: ['model', 'replica', 'code'],
      registers,
    });
    this.retries = new Counter({
      name: 'infergate_retries_total',
      help: 'Requests sent again to another replica, by reason.',
      labelNames: ['model', 'reason'],
      registers,
    });
    this.ejections = new Counter({
      name: 'infergate_replica_ejections_total',
      help: 'Passive ejections of a replica after consecutive failures.',
      labelNames: ['model', 'replica'],
      registers,
    });

    new Gauge({
      name: 'infergate_queue_depth',
      help: 'Requests waiting in the admission queue for a replica slot; held requests are counted apart.',
      labelNames: ['model', 'priority'],
      registers,
      collect() {
        this.reset();
        for (const model of snapshots()) {
          for (const priority of PRIORITIES) this.set({ model: model.name, priority }, model.queued[priority]);
        }
      },
    });
    new Gauge({
      name: 'infergate_held_requests',
      help: 'Requests held because the model has no ready replica (scale from zero).',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const model of snapshots()) this.set({ model: model.name }, model.held);
      },
    });
    new Gauge({
      name: 'infergate_inflight_requests',
      help: 'Requests sent upstream whose response has not completed.',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const model of snapshots()) this.set({ model: model.name }, model.inFlight);
      },
    });
    new Gauge({
      name: 'infergate_discovery_healthy',
      help: 'Replica discovery of models whose source can degrade (Kubernetes): 1 healthy, 0 while the watch fails and the last known endpoints are in use.',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const model of snapshots()) {
          if (model.discoveryHealthy !== undefined) this.set({ model: model.name }, model.discoveryHealthy ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'infergate_replicas',
      help: 'Replicas by state.',
      labelNames: ['model', 'state'],
      registers,
      collect() {
        this.reset();
        for (const model of snapshots()) {
          for (const state of REPLICA_STATES) {
            this.set({ model: model.name, state }, model.replicas.filter((r) => r.state === state).length);
          }
        }
      },
    });
  }

  /** Status codes seen per model and replica, so a replica's series can be removed when it leaves. */
  readonly #upstreamCodes = new Map<string, Map<string, Set<string>>>();

  countUpstream(model: string, replica: string, code: string): void {
    this.upstreamRequests.inc({ model, replica, code });
    // Nested maps keyed by the same string objects on every call: a key joined per call
    // would be a new string to hash each time, on the path of every proxied request.
    let replicas = this.#upstreamCodes.get(model);
    if (replicas === undefined) this.#upstreamCodes.set(model, (replicas = new Map()));
    let codes = replicas.get(replica);
    if (codes === undefined) replicas.set(replica, (codes = new Set()));
    codes.add(code);
  }

  /** Drops the per-replica series of a replica that left, so label sets stay bounded under churn. */
  forgetReplica(model: string, replica: string): void {
    const replicas = this.#upstreamCodes.get(model);
    for (const code of replicas?.get(replica) ?? []) this.upstreamRequests.remove({ model, replica, code });
    replicas?.delete(replica);
    this.ejections.remove({ model, replica });
  }
}
