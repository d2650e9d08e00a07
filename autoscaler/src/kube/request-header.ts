// Reads the request-header authentication settings that the kube-apiserver publishes in
// the ConfigMap kube-system/extension-apiserver-authentication: the CA that signs the
// front proxy's client certificate (requestheader-client-ca-file) and the common names
// it may use (requestheader-allowed-names, a JSON list). Aggregated API servers read it
// through the API because a pod cannot mount a ConfigMap of another namespace. The
// chart binds the Role extension-apiserver-authentication-reader for this read.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

export const AUTH_CONFIGMAP_NAMESPACE = 'kube-system';
export const AUTH_CONFIGMAP_NAME = 'extension-apiserver-authentication';

export interface RequestHeaderSettings {
  /** PEM bundle of the request-header client CA. */
  clientCA: string;
  /** Allowed common names; empty allows any name the CA signed. */
  allowedNames: string[];
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
  const namesText = data?.['requestheader-allowed-names'] ?? '[]';
  let allowedNames: unknown;
  try {
    allowedNames = JSON.parse(namesText || '[]');
  } catch {
    throw new Error(`${where} key requestheader-allowed-names is not a JSON list: ${JSON.stringify(namesText.slice(0, 100))}`);
  }
  if (!Array.isArray(allowedNames) || !allowedNames.every((n) => typeof n === 'string')) {
    throw new Error(`${where} key requestheader-allowed-names is not a list of strings: ${JSON.stringify(namesText.slice(0, 100))}`);
  }
  return { clientCA, allowedNames };
}
