// Kubernetes client configuration shared by the gateway and the autoscaler.
//
// KubeConfig.loadFromDefault() in @kubernetes/client-node 2.0 silently falls back to a
// cluster at http://localhost:8080 when it finds nothing, which turns a missing
// configuration into confusing connection errors much later. loadKubeConfig() tries the
// same sources in a fixed order and fails at start-up with every source it tried.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** Directory where the kubelet mounts the pod's service account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadKubeConfigOptions {
  /** Environment to read KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT and KUBECONFIG from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Prefix put in front of the service account directory, so tests can point at a
   * temporary copy; defaults to '' (the real mount).
   */
  serviceAccountPrefix?: string;
  /** Home directory holding .kube/config; defaults to os.homedir(). */
  homeDir?: string;
}

/** Source of the configuration, for the start-up log line. */
export type KubeConfigSource = 'in-cluster' | 'KUBECONFIG' | 'default-kubeconfig';

export interface LoadedKubeConfig {
  kubeConfig: KubeConfig;
  source: KubeConfigSource;
  /** API server URL of the current context. */
  server: string;
}

/**
 * Loads the Kubernetes client configuration, trying in order:
 * 1. the in-cluster service account, when KUBERNETES_SERVICE_HOST is set and the token file exists;
 * 2. the files listed in KUBECONFIG (separated by the platform path delimiter);
 * 3. ~/.kube/config.
 * Throws an Error that lists every source tried and why it was skipped when none works,
 * or when the chosen kubeconfig has no current context with a cluster.
 */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): LoadedKubeConfig {
  const env = options.env ?? process.env;
  const prefix = options.serviceAccountPrefix ?? '';
  const tried: string[] = [];

  const tokenFile = `${prefix}${SERVICE_ACCOUNT_DIR}/token`;
  const serviceHost = env.KUBERNETES_SERVICE_HOST;
  if (serviceHost === undefined || serviceHost === '') {
    tried.push('in-cluster service account: KUBERNETES_SERVICE_HOST is not set');
  } else if (!existsSync(tokenFile)) {
    tried.push(`in-cluster service account: token file ${tokenFile} does not exist`);
  } else {
    return fromServiceAccount(env, prefix);
  }

  const kubeconfigList = env.KUBECONFIG ?? '';
  const files = kubeconfigList.split(delimiter).filter((file) => file !== '');
  if (files.length === 0) {
    tried.push('KUBECONFIG: not set');
  } else {
    const missing = files.filter((file) => !existsSync(file));
    if (missing.length > 0) {
      tried.push(`KUBECONFIG: file(s) not found: ${missing.join(', ')}`);
    } else {
      return fromFiles(files, 'KUBECONFIG');
    }
  }

  const home = options.homeDir ?? homedir();
  const defaultFile = join(home, '.kube', 'config');
  if (existsSync(defaultFile)) return fromFiles([defaultFile], 'default-kubeconfig');
  tried.push(`default kubeconfig: ${defaultFile} does not exist`);

  throw new Error(
    `No Kubernetes configuration found. Tried ${tried.join('; ')}. ` +
      'Run inside a pod with a service account token mounted, or set KUBECONFIG to a kubeconfig file.',
  );
}

function fromServiceAccount(env: NodeJS.ProcessEnv, prefix: string): LoadedKubeConfig {
  const kubeConfig = new KubeConfig();
  // loadFromCluster reads the host and port from process.env, so a caller-supplied
  // environment is applied through loadFromOptions with the same file layout instead.
  if (env === process.env) {
    kubeConfig.loadFromCluster(prefix);
  } else {
    const host = env.KUBERNETES_SERVICE_HOST ?? '';
    const port = env.KUBERNETES_SERVICE_PORT ?? '443';
    const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
    const serverHost = host.includes(':') ? `[${host}]` : host;
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'inCluster', server: `${scheme}://${serverHost}:${port}`, caFile: `${prefix}${SERVICE_ACCOUNT_DIR}/ca.crt`, skipTLSVerify: false }],
      users: [{ name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: `${prefix}${SERVICE_ACCOUNT_DIR}/token` } } }],
      contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser' }],
      currentContext: 'inClusterContext',
    });
  }
  return finish(kubeConfig, 'in-cluster', 'in-cluster service account');
}

function fromFiles(files: string[], source: KubeConfigSource): LoadedKubeConfig {
  const kubeConfig = new KubeConfig();
  const [first, ...rest] = files;
  try {
    if (first !== undefined) kubeConfig.loadFromFile(first);
    for (const file of rest) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kubeConfig.mergeConfig(more);
    }
  } catch (err) {
    throw new Error(`Cannot read kubeconfig ${files.join(delimiter)} (from ${source}): ${(err as Error).message}`, { cause: err });
  }
  return finish(kubeConfig, source, files.join(delimiter));
}

function finish(kubeConfig: KubeConfig, source: KubeConfigSource, origin: string): LoadedKubeConfig {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) {
    const context = kubeConfig.getCurrentContext();
    throw new Error(
      `Kubernetes configuration from ${origin} has no usable cluster: current context "${context}" is missing or names no cluster. ` +
        'Set current-context in the kubeconfig to a context whose cluster exists.',
    );
  }
  return { kubeConfig, source, server: cluster.server };
}

/** Builds a KubeConfig for a plain HTTP API server URL with an optional bearer token, as used by local tools and tests. */
export function kubeConfigForServer(server: string, token?: string): KubeConfig {
  const url = new URL(server);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`Kubernetes API server URL must use http or https, got "${server}".`);
  }
  const kubeConfig = new KubeConfig();
  // @kubernetes/client-node 2.0 rejects plain http unless skipTLSVerify is set, although
  // there is no certificate to verify; https servers keep full verification.
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'target', server: url.origin, skipTLSVerify: url.protocol === 'http:' }],
    users: [token === undefined ? { name: 'user' } : { name: 'user', token }],
    contexts: [{ name: 'target', cluster: 'target', user: 'user', namespace: 'default' }],
    currentContext: 'target',
  });
  return kubeConfig;
}
