// Replica source for a fixed list of URLs from the configuration. Every endpoint counts as
// ready for discovery purposes; active probes still decide when it receives traffic.
import type { EndpointObservation, ReplicaSource } from './types.ts';

export function createStaticReplicaSource(urls: readonly string[]): ReplicaSource {
  const endpoints: EndpointObservation[] = urls.map((url) => {
    const parsed = new URL(url);
    const defaultPort = parsed.protocol === 'https:' ? '443' : '80';
    const port = parsed.port === '' ? defaultPort : parsed.port;
    return { id: `${parsed.hostname}:${port}`, url: `${parsed.protocol}//${parsed.host}`, ready: true, serving: true, terminating: false };
  });
  return {
    start(onSnapshot) {
      onSnapshot(endpoints.map((endpoint) => ({ ...endpoint })));
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
    healthy: () => true,
  };
}
