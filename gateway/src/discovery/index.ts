// Builds the replica source that a model's configuration selects.
import type { Logger } from 'pino';
import type { ReplicaSourceConfig } from '../config/load.ts';
import { createStaticReplicaSource } from './static.ts';
import type { ReplicaSource } from './types.ts';
import type { KubernetesReplicaSourceDeps } from './kubernetes.ts';

export interface ReplicaSourceDeps {
  logger: Logger;
  /** Extra dependencies of the Kubernetes source, such as a kubeConfig pointing at a test API server. */
  kubernetes?: Omit<KubernetesReplicaSourceDeps, 'logger'>;
}

export interface BuiltReplicaSource {
  source: ReplicaSource;
  /** Whether discoveryHealthy is reported in /admin/state: only for sources that can degrade. */
  reportsHealth: boolean;
}

export async function createReplicaSource(config: ReplicaSourceConfig, deps: ReplicaSourceDeps): Promise<BuiltReplicaSource> {
  if (config.kind === 'static') return { source: createStaticReplicaSource(config.urls), reportsHealth: false };
  // Loaded on demand so a gateway with static replicas never loads the Kubernetes client.
  const { createKubernetesReplicaSource } = await import('./kubernetes.ts');
  const source = createKubernetesReplicaSource({ namespace: config.namespace, service: config.service, port: config.port }, { ...deps.kubernetes, logger: deps.logger });
  return { source, reportsHealth: true };
}
