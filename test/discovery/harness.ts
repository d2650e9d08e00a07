// Shared setup for the discovery suites: a fake API server, a KubernetesReplicaSource on
// a ManualClock, and a recorder of the snapshots it delivers.
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { createKubernetesReplicaSource, type KubernetesDiscoveryTuning } from '../../gateway/src/discovery/kubernetes.ts';
import type { EndpointObservation, ReplicaSource } from '../../gateway/src/discovery/types.ts';
import { waitFor } from '../fake-kube/helpers.ts';
import { endpointSlice, type SliceEndpoint } from '../fake-kube/objects.ts';
import { FakeKubeServer, RESOURCES } from '../fake-kube/server.ts';

export const NAMESPACE = 'ml';
export const SERVICE = 'llama';

export interface Harness {
  server: FakeKubeServer;
  clock: ManualClock;
  source: ReplicaSource;
  snapshots: EndpointObservation[][];
  /** The latest snapshot as `id:state` strings, state being ready, notready, draining or gone-serving. */
  latest: () => string[];
  /** Waits until the latest snapshot equals `expected`, advancing the clock by stepMs per poll. */
  waitForSnapshot: (expected: string[], what: string, stepMs?: number) => Promise<void>;
  /** Counts the EndpointSlice list requests the server received. */
  lists: () => number;
  close: () => Promise<void>;
}

/** Summarizes an observation the way the assertions read it. */
export function describeEndpoint(endpoint: EndpointObservation): string {
  if (endpoint.terminating) return `${endpoint.id}:${endpoint.serving ? 'draining' : 'terminating'}`;
  return `${endpoint.id}:${endpoint.ready ? 'ready' : 'notready'}`;
}

/** Writes an EndpointSlice of the test Service with an http port on 8000. */
export function putSlice(server: FakeKubeServer, name: string, endpoints: SliceEndpoint[], port = 8000): void {
  const object = endpointSlice({ name, service: SERVICE, ports: [{ name: 'http', port }, { name: 'metrics', port: 9400 }], endpoints });
  if (server.get(RESOURCES.endpointSlices, NAMESPACE, name) === undefined) {
    server.create(RESOURCES.endpointSlices, NAMESPACE, object);
    return;
  }
  server.modify(RESOURCES.endpointSlices, NAMESPACE, name, (current) => ({ ...current, endpoints: object.endpoints, ports: object.ports }));
}

export async function startHarness(options: { tuning?: Partial<KubernetesDiscoveryTuning>; port?: string | number; start?: boolean } = {}): Promise<Harness> {
  const server = await FakeKubeServer.start();
  const clock = new ManualClock();
  const snapshots: EndpointObservation[][] = [];
  const source = createKubernetesReplicaSource(
    { namespace: NAMESPACE, service: SERVICE, port: options.port ?? 'http' },
    {
      logger: createLogger({ service: 'discovery-test', level: 'silent' }),
      kubeConfig: server.kubeConfig(),
      clock,
      random: () => 0,
      tuning: { restartInitialDelayMs: 1000, restartMaxDelayMs: 4000, ...options.tuning },
    },
  );
  const latest = (): string[] => (snapshots.at(-1) ?? []).map(describeEndpoint);
  const harness: Harness = {
    server,
    clock,
    source,
    snapshots,
    latest,
    async waitForSnapshot(expected, what, stepMs = 0) {
      await waitFor(() => {
        if (stepMs > 0) clock.advance(stepMs);
        return JSON.stringify(latest()) === JSON.stringify(expected);
      }, `${what}: expected ${JSON.stringify(expected)}, latest ${JSON.stringify(latest())}`);
    },
    lists: () => server.requestsMatching({ method: 'GET', pathIncludes: '/endpointslices', watch: false }).length,
    async close() {
      await source.stop();
      await server.close();
    },
  };
  return harness;
}

/** Starts the source and records its snapshots. */
export function startSource(harness: Harness): Promise<void> {
  return harness.source.start((endpoints) => harness.snapshots.push(endpoints));
}
