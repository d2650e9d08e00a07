// Reads the request-header authentication settings that the kube-apiserver publishes in
// the ConfigMap kube-system/extension-apiserver-authentication: the CA that signs the
// front proxy's client certificate (requestheader-client-ca-file) and the common names
// it may use (requestheader-allowed-names, a JSON list), and the names of the headers
// that carry the user, the groups and extra attributes (requestheader-username-headers,
// requestheader-group-headers, requestheader-extra-headers-prefix, JSON lists). Aggregated API servers read it
// through the API because a pod cannot mount a ConfigMap of another namespace. The
// chart binds the Role extension-apiserver-authentication-reader for this read.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { DEFAULTS } from '../config/defaults.ts';
import type { ConfiguredRequestHeader } from '../config/load.ts';
import type { RequestHeaderNames } from '../api/request-user.ts';

export const AUTH_CONFIGMAP_NAMESPACE = 'kube-system';
export const AUTH_CONFIGMAP_NAME = 'extension-apiserver-authentication';

export interface RequestHeaderSettings {
  /** PEM bundle of the request-header client CA. */
  clientCA: string;
  /** Allowed common names; empty allows any name the CA signed. */
  allowedNames: string[];
  /** Header names the front proxy uses; a key the ConfigMap does not set is undefined. */
  headers: ConfiguredRequestHeader;
}

/** Per key: the config's names, else the cluster's, else the defaults. */
export function resolveRequestHeaderNames(configured: ConfiguredRequestHeader, cluster?: ConfiguredRequestHeader): RequestHeaderNames {
  const defaults = DEFAULTS.metricsApi.requestHeader;
  return {
    usernameHeaders: configured.usernameHeaders ?? cluster?.usernameHeaders ?? defaults.usernameHeaders,
    groupHeaders: configured.groupHeaders ?? cluster?.groupHeaders ?? defaults.groupHeaders,
    extraHeadersPrefixes: configured.extraHeadersPrefixes ?? cluster?.extraHeadersPrefixes ?? defaults.extraHeadersPrefixes,
  };
}

/** Reads the ConfigMap; throws an Error naming the ConfigMap and key when it is missing or malformed. */
export async function readRequestHeaderSettings(kubeConfig: KubeConfig, timeoutMs: number): Promise<RequestHeaderSettings> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const where = `ConfigMap ${AUTH_CONFIGMAP_NAMESPACE}/${AUTH_CONFIGMAP_NAME}`;
  let data: Record<string, string> | undefined;
  try {
    const configMap = await Promise.race([
      core.readNamespacedConfigMap({ name: AUTH_CONFIGMAP_NAME, namespace: AUTH_CONFIGMAP_NAMESPACE }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    data = configMap.data;
  } catch (error) {
    throw new Error(`cannot read ${where}: ${(error as Error).message}; grant the Role extension-apiserver-authentication-reader or set metricsApi.clientCAFile`, { cause: error });
  }
  const clientCA = data?.['requestheader-client-ca-file'];
  if (!clientCA || !clientCA.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error(`${where} has no requestheader-client-ca-file certificate; the kube-apiserver sets it when started with --requestheader-client-ca-file`);
  }
  const allowedNames = readStringList(data, 'requestheader-allowed-names', where) ?? [];
  const usernameHeaders = readStringList(data, 'requestheader-username-headers', where);
  return {
    clientCA,
    allowedNames,
    headers: {
      // An empty username list would leave no way to name the user; the defaults apply then.
      usernameHeaders: usernameHeaders && usernameHeaders.length > 0 ? usernameHeaders : undefined,
      groupHeaders: readStringList(data, 'requestheader-group-headers', where),
      extraHeadersPrefixes: readStringList(data, 'requestheader-extra-headers-prefix', where),
    },
  };
}

/** Reads a key holding a JSON list of strings; undefined when the key is absent or empty. */
function readStringList(data: Record<string, string> | undefined, key: string, where: string): string[] | undefined {
  const text = data?.[key];
  if (text === undefined || text.trim() === '') return undefined;
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw new Error(`${where} key ${key} is not a JSON list: ${JSON.stringify(text.slice(0, 100))}`);
  }
  if (!Array.isArray(list) || !list.every((n) => typeof n === 'string')) {
    throw new Error(`${where} key ${key} is not a list of strings: ${JSON.stringify(text.slice(0, 100))}`);
  }
  return list;
}
