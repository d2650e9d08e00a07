// The list of gateway admin URLs to poll: fixed in the config, or the endpoints of the
// gateway admin Service, followed through its EndpointSlices.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../../shared/src/clock.ts';
import type { Logger } from '../../shared/src/logger.ts';
import { createKubernetesReplicaSource } from '../../gateway/src/discovery/kubernetes.ts';
import type { ReplicaSource } from '../../gateway/src/discovery/types.ts';
import type { GatewaySource } from './config/load.ts';

export interface GatewayList {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Admin base URLs to poll now. */
  urls(): readonly string[];
  /** False while the endpoint watch is failing and the last known list is in use. */
  healthy(): boolean;
}

export interface GatewayListDeps {
  logger: Logger;
  clock: Clock;
  kubeConfig?: KubeConfig;
}

export function createGatewayList(source: GatewaySource, deps: GatewayListDeps): GatewayList {
  if (source.static) return new StaticGatewayList(source.static);
  if (source.kubernetes) return new ServiceGatewayList(source.kubernetes, deps);
  throw new Error('gateways: neither static nor kubernetes is set');
}

class StaticGatewayList implements GatewayList {
  readonly #urls: readonly string[];

  constructor(urls: readonly string[]) {
    // The same URL given twice is one gateway, so it is fetched once per poll.
    this.#urls = [...new Set(urls.map((url) => url.replace(/\/+$/, '')))];
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  urls(): readonly string[] {
    return this.#urls;
  }
  healthy(): boolean {
    return true;
  }
}

/**
 * Follows the EndpointSlices of the gateway admin Service with the same watcher the
 * gateway uses for its replicas (list, watch, restart with capped backoff, relist on
 * 410 Gone). Terminating gateways stay in the list while they are serving, since their
 * queues still hold requests that count as demand.
 */
class ServiceGatewayList implements GatewayList {
  readonly #source: ReplicaSource;
  readonly #logger: Logger;
  #urls: readonly string[] = [];

  constructor(spec: { namespace: string; service: string; port: number | string }, deps: GatewayListDeps) {
    this.#logger = deps.logger.child({ component: 'gateway-discovery', namespace: spec.namespace, service: spec.service });
    const sourceDeps = { logger: this.#logger, clock: deps.clock, ...(deps.kubeConfig ? { kubeConfig: deps.kubeConfig } : {}) };
    this.#source = createKubernetesReplicaSource({ namespace: spec.namespace, service: spec.service, port: spec.port }, sourceDeps);
  }

  async start(): Promise<void> {
    await this.#source.start((endpoints) => {
      const urls = endpoints.filter((e) => e.ready || e.serving).map((e) => e.url);
      this.#urls = [...new Set(urls)].sort();
      this.#logger.info({ gateways: this.#urls }, 'gateway admin endpoints changed');
    });
  }

  async stop(): Promise<void> {
    await this.#source.stop();
  }

  urls(): readonly string[] {
    return this.#urls;
  }

  healthy(): boolean {
    return this.#source.healthy();
  }
}
