// Replica discovery from the EndpointSlices of a Kubernetes Service.
//
// The informer (ListWatch from @kubernetes/client-node 2.0) lists the slices, then watches
// them, and relists by itself after a 410 Gone. It stops for good on any other error, such
// as a refused connection or a 5xx response. This module then restarts it with capped
// exponential backoff on the injected clock. Each restart builds a new informer, so it
// starts with a fresh list, and that list replaces the cached slices: a pod deleted while
// the watch was down disappears from the next snapshot. Between the error and the next
// successful list the last snapshot stays in force and healthy() returns false.
import { DiscoveryV1Api, ListWatch, Watch, type KubeConfig, type V1EndpointSlice, type V1EndpointSliceList } from '@kubernetes/client-node';
import { systemClock, type Clock, type TimerHandle } from '../../../shared/src/clock.ts';
import { loadKubeConfig } from '../../../shared/src/kube.ts';
import type { Logger } from '../../../shared/src/logger.ts';
import { describePort, endpointsFromSlices, kubernetesSourceProblems, parsePortSelector, sameSnapshot, type PortSelector } from './kubernetes-endpoints.ts';
import { RateLimitedLog, errorStatus, isPermanentStartError, withTimeout } from './kubernetes-errors.ts';
import type { EndpointObservation, ReplicaSource } from './types.ts';

/** `replicas.kubernetes` of a model: the Service whose endpoints are the model's replicas. */
export interface KubernetesReplicaSpec {
  namespace: string;
  service: string;
  /** Port name in the Service, or the target (container) port number. */
  port: string | number;
}

/** Timing of the watch restarts; every value is in milliseconds. */
export interface KubernetesDiscoveryTuning {
  /** Delay before the first restart after an error; it doubles per consecutive failure. */
  restartInitialDelayMs: number;
  /** Cap of the restart delay. */
  restartMaxDelayMs: number;
  /** Time start() keeps retrying transient errors before it rejects; 0 rejects on the first error. */
  startTimeoutMs: number;
  /** Time a list request may take before it counts as failed. */
  listTimeoutMs: number;
  /** Minimum time between two log lines about repeated errors; the lines in between are counted. */
  errorLogIntervalMs: number;
}

export const KUBERNETES_DISCOVERY_DEFAULTS: Readonly<KubernetesDiscoveryTuning> = Object.freeze({
  restartInitialDelayMs: 500,
  restartMaxDelayMs: 30_000,
  startTimeoutMs: 30_000,
  listTimeoutMs: 15_000,
  errorLogIntervalMs: 30_000,
});

export interface KubernetesReplicaSourceDeps {
  logger: Logger;
  /** Client configuration; loadKubeConfig() (service account, then KUBECONFIG) when omitted. */
  kubeConfig?: KubeConfig;
  clock?: Clock;
  tuning?: Partial<KubernetesDiscoveryTuning>;
  /** Random source in [0, 1) for the restart jitter; Math.random when omitted. */
  random?: () => number;
}

// DNS-1123 label, the syntax of namespace names; Service names are DNS-1035 labels, which
// additionally start with a letter.
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** Creates a ReplicaSource for one model, validating the spec at once (it throws naming the field and value). */
export function createKubernetesReplicaSource(spec: KubernetesReplicaSpec, deps: KubernetesReplicaSourceDeps): ReplicaSource {
  return new KubernetesReplicaSource(spec, deps);
}

class KubernetesReplicaSource implements ReplicaSource {
  // dependencies
  readonly #namespace: string;
  readonly #service: string;
  readonly #port: PortSelector;
  readonly #kubeConfig: KubeConfig;
  readonly #api: DiscoveryV1Api;
  readonly #clock: Clock;
  readonly #tuning: Readonly<KubernetesDiscoveryTuning>;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #errorLog: RateLimitedLog;

  // lifecycle
  #onSnapshot: ((endpoints: EndpointObservation[]) => void) | undefined;
  #started = false;
  #stopped = false;
  #startSettle: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #startDeadline: TimerHandle | undefined;
  #restartTimer: TimerHandle | undefined;
  readonly #reconnectDelays = new Set<TimerHandle>();

  // state of the current informer generation
  #generation = 0;
  #informer: ListWatch<V1EndpointSlice> | undefined;
  #listed = false;
  #rebuildPending = false;
  #failures = 0;
  #watchConnectTimedOut = false;
  #lastSnapshot: EndpointObservation[] | undefined;

  constructor(spec: KubernetesReplicaSpec, deps: KubernetesReplicaSourceDeps) {
    // The configuration loader reports these already; this guards sources created from code.
    const problems = kubernetesSourceProblems(spec, 'replicas.kubernetes');
    if (problems.length > 0) throw new Error(problems.join('; '));
    this.#namespace = spec.namespace;
    this.#service = spec.service;
    this.#port = parsePortSelector(spec.port, 'replicas.kubernetes.port');
    this.#tuning = validateTuning({ ...KUBERNETES_DISCOVERY_DEFAULTS, ...deps.tuning });
    this.#kubeConfig = deps.kubeConfig ?? loadKubeConfig().kubeConfig;
    this.#api = this.#kubeConfig.makeApiClient(DiscoveryV1Api);
    this.#clock = deps.clock ?? systemClock;
    this.#random = deps.random ?? Math.random;
    this.#log = deps.logger.child({ component: 'kubernetes-discovery', namespace: this.#namespace, service: this.#service });
    this.#errorLog = new RateLimitedLog(this.#clock, this.#tuning.errorLogIntervalMs);
  }

  start(onSnapshot: (endpoints: EndpointObservation[]) => void): Promise<void> {
    if (this.#started) return Promise.reject(new Error(`Kubernetes discovery for ${this.#namespace}/${this.#service} was already started.`));
    this.#started = true;
    this.#onSnapshot = onSnapshot;
    const started = new Promise<void>((resolve, reject) => {
      this.#startSettle = { resolve, reject };
    });
    if (this.#tuning.startTimeoutMs > 0) {
      this.#startDeadline = this.#clock.setTimer(this.#tuning.startTimeoutMs, () => {
        this.#failStart(
          new Error(
            `Kubernetes discovery for Service ${this.#namespace}/${this.#service} could not list its EndpointSlices within ${this.#tuning.startTimeoutMs} ms. ` +
              'Check that the API server is reachable from the gateway.',
          ),
        );
      });
    }
    this.#log.info({ port: describePort(this.#port), server: this.#kubeConfig.getCurrentCluster()?.server }, 'starting EndpointSlice discovery');
    this.#startInformer();
    return started;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#generation++;
    this.#restartTimer?.cancel();
    this.#restartTimer = undefined;
    this.#startDeadline?.cancel();
    // A cancelled reconnect delay never resolves, so the stopped informer opens no new watch.
    for (const delay of this.#reconnectDelays) delay.cancel();
    this.#reconnectDelays.clear();
    const informer = this.#informer;
    this.#informer = undefined;
    if (informer !== undefined) await informer.stop();
    this.#startSettle?.reject(new Error(`Kubernetes discovery for ${this.#namespace}/${this.#service} was stopped before its first snapshot.`));
    this.#startSettle = undefined;
    this.#log.info('stopped EndpointSlice discovery');
  }

  healthy(): boolean {
    return this.#listed && !this.#watchConnectTimedOut && !this.#stopped;
  }

  #startInformer(): void {
    const generation = ++this.#generation;
    this.#listed = false;
    this.#watchConnectTimedOut = false;
    const path = `/apis/discovery.k8s.io/v1/namespaces/${this.#namespace}/endpointslices`;
    const labelSelector = `${SERVICE_NAME_LABEL}=${this.#service}`;
    const list = async (): Promise<V1EndpointSliceList> => {
      const result = await withTimeout(
        this.#clock,
        this.#tuning.listTimeoutMs,
        this.#api.listNamespacedEndpointSlice({ namespace: this.#namespace, labelSelector }),
        `listing EndpointSlices in namespace ${this.#namespace}`,
      );
      // The informer stores the listed items in the microtask right after this promise
      // settles. setImmediate runs later, so the rebuild reads the complete list.
      if (generation === this.#generation) setImmediate(() => this.#onListed(generation));
      return result;
    };
    const watch = new ObservedWatch(this.#kubeConfig, {
      connected: () => this.#onWatchConnected(generation),
      connectTimedOut: () => this.#onWatchConnectTimeout(generation),
    });
    const informer = new ListWatch<V1EndpointSlice>(path, watch, list, false, labelSelector, undefined, {
      delayFn: (ms) => this.#reconnectDelay(ms),
    });
    const changed = (): void => this.#scheduleRebuild(generation);
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => this.#onInformerError(generation, err));
    this.#informer = informer;
    informer.start().catch((err: unknown) => this.#onInformerError(generation, err));
  }

  #reconnectDelay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.#clock.setTimer(ms, () => {
        this.#reconnectDelays.delete(handle);
        resolve();
      });
      this.#reconnectDelays.add(handle);
    });
  }

  #onListed(generation: number): void {
    if (generation !== this.#generation) return;
    const recovered = this.#failures > 0;
    this.#listed = true;
    this.#failures = 0;
    if (recovered) this.#log.info('EndpointSlice watch recovered; the fresh list replaced the cached endpoints');
    this.#rebuild();
  }

  #onWatchConnected(generation: number): void {
    if (generation !== this.#generation || !this.#watchConnectTimedOut) return;
    this.#watchConnectTimedOut = false;
    this.#log.info('EndpointSlice watch connected again after timing out');
  }

  #onWatchConnectTimeout(generation: number): void {
    if (generation !== this.#generation) return;
    this.#watchConnectTimedOut = true;
    this.#errorLog.warn(this.#log, 'watch-timeout', {}, 'EndpointSlice watch got no response from the API server; keeping the last known endpoints');
  }

  #scheduleRebuild(generation: number): void {
    if (generation !== this.#generation || !this.#listed || this.#rebuildPending) return;
    this.#rebuildPending = true;
    // Coalesces the burst of callbacks one relist produces into one snapshot.
    setImmediate(() => {
      this.#rebuildPending = false;
      if (generation === this.#generation) this.#rebuild();
    });
  }

  #rebuild(): void {
    const informer = this.#informer;
    if (informer === undefined || this.#stopped) return;
    const slices = informer.list(this.#namespace);
    const snapshot = endpointsFromSlices(slices, this.#port);
    const first = this.#lastSnapshot === undefined;
    if (!first && sameSnapshot(this.#lastSnapshot ?? [], snapshot)) return;
    this.#lastSnapshot = snapshot;
    if (slices.length > 0 && snapshot.length === 0 && slices.some((slice) => (slice.endpoints ?? []).length > 0)) {
      this.#errorLog.warn(this.#log, 'no-port', { port: describePort(this.#port) }, 'EndpointSlices of the Service list endpoints, but none has the configured port; check replicas.kubernetes.port against the Service port names and target ports');
    }
    this.#log.debug({ endpoints: snapshot.length, ready: snapshot.filter((e) => e.ready).length }, 'endpoint snapshot changed');
    try {
      this.#onSnapshot?.(snapshot.map((endpoint) => ({ ...endpoint })));
    } catch (err) {
      this.#log.error({ err }, 'snapshot handler threw; discovery continues');
    }
    if (first) {
      this.#startDeadline?.cancel();
      this.#startSettle?.resolve();
      this.#startSettle = undefined;
    }
  }

  #onInformerError(generation: number, err: unknown): void {
    if (generation !== this.#generation || this.#stopped) return;
    // Retire this informer: later callbacks of its generation are ignored.
    this.#generation++;
    this.#listed = false;
    const informer = this.#informer;
    this.#informer = undefined;
    informer?.stop().catch(() => undefined);
    this.#failures++;

    const status = errorStatus(err);
    if (this.#lastSnapshot === undefined && isPermanentStartError(status)) {
      this.#failStart(
        new Error(
          `Kubernetes discovery for Service ${this.#namespace}/${this.#service} failed: the API server returned ${status} for the EndpointSlice list. ` +
            'Grant the gateway get, list and watch on endpointslices (discovery.k8s.io) in this namespace.',
          { cause: err },
        ),
      );
      return;
    }

    const nominal = Math.min(this.#tuning.restartMaxDelayMs, this.#tuning.restartInitialDelayMs * 2 ** Math.min(this.#failures - 1, 30));
    // Jitter in [nominal/2, nominal) spreads the restarts of many gateways after an outage.
    const delayMs = Math.round(nominal * (0.5 + 0.5 * this.#random()));
    this.#errorLog.warn(
      this.#log,
      'watch-error',
      { err, status, failures: this.#failures, restartInMs: delayMs },
      'EndpointSlice informer failed; keeping the last known endpoints and restarting with a fresh list',
    );
    this.#restartTimer = this.#clock.setTimer(delayMs, () => {
      this.#restartTimer = undefined;
      if (!this.#stopped) this.#startInformer();
    });
  }

  #failStart(err: Error): void {
    const settle = this.#startSettle;
    if (settle === undefined) return;
    this.#startSettle = undefined;
    this.#log.error({ err }, 'EndpointSlice discovery could not start');
    settle.reject(err);
    void this.stop();
  }
}

/**
 * A Watch that asks for bookmarks and reports whether the API server responded to the watch request.
 * NOTE: the connect-timeout path has no automated test, because client-node fixes that timeout at 30 s.
 */
class ObservedWatch extends Watch {
  readonly #events: { connected: () => void; connectTimedOut: () => void };

  constructor(config: KubeConfig, events: { connected: () => void; connectTimedOut: () => void }) {
    super(config);
    this.#events = events;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    let returned = false;
    let failedEarly = false;
    const observedDone = (err: unknown): void => {
      // Watch.watch calls done before it returns only when the request itself failed. A
      // TimeoutError then means no response at all, which the informer retries silently.
      if (!returned) {
        failedEarly = true;
        if (err instanceof Error && err.name === 'TimeoutError') this.#events.connectTimedOut();
      }
      done(err);
    };
    // Bookmarks keep a quiet watch alive and its resourceVersion recent, so a reconnect
    // rarely needs a full relist.
    const controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true }, callback, observedDone);
    returned = true;
    if (!failedEarly) this.#events.connected();
    return controller;
  }
}

function validateTuning(tuning: KubernetesDiscoveryTuning): Readonly<KubernetesDiscoveryTuning> {
  for (const [key, value] of Object.entries(tuning)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`Kubernetes discovery tuning ${key} must be a number of milliseconds >= 0, got ${JSON.stringify(value)}.`);
    }
  }
  if (tuning.restartInitialDelayMs <= 0) {
    throw new Error(`Kubernetes discovery tuning restartInitialDelayMs must be > 0, got ${tuning.restartInitialDelayMs}.`);
  }
  if (tuning.restartMaxDelayMs < tuning.restartInitialDelayMs) {
    throw new Error(
      `Kubernetes discovery tuning restartMaxDelayMs (${tuning.restartMaxDelayMs}) must be >= restartInitialDelayMs (${tuning.restartInitialDelayMs}).`,
    );
  }
  return Object.freeze({ ...tuning });
}
