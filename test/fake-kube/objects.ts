// Builders for the Kubernetes objects tests put into the fake API server.
import type { KubeObject } from './store.ts';

export interface SliceEndpoint {
  /** Address of the pod: IPv4, IPv6, or a host name for addressType FQDN. */
  address: string;
  /** Omitted conditions stay unset, which the API defines as ready, serving and not terminating. */
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  /** Pod name for targetRef. */
  pod?: string;
}

export interface SliceSpec {
  name: string;
  service: string;
  /** Ports the slice publishes; an omitted name is the unnamed port of a single-port Service. */
  ports: { name?: string; port: number; protocol?: string }[];
  endpoints: SliceEndpoint[];
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
}

/** Builds a discovery.k8s.io/v1 EndpointSlice labelled with its Service, as the EndpointSlice controller writes it. */
export function endpointSlice(spec: SliceSpec): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: spec.name,
      labels: { 'kubernetes.io/service-name': spec.service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    },
    addressType: spec.addressType ?? (spec.endpoints.some((e) => e.address.includes(':')) ? 'IPv6' : 'IPv4'),
    ports: spec.ports.map((p) => ({ ...(p.name === undefined ? {} : { name: p.name }), port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints: spec.endpoints.map((e) => {
      const conditions: Record<string, boolean> = {};
      if (e.ready !== undefined) conditions.ready = e.ready;
      if (e.serving !== undefined) conditions.serving = e.serving;
      if (e.terminating !== undefined) conditions.terminating = e.terminating;
      return {
        addresses: [e.address],
        conditions,
        ...(e.pod === undefined ? {} : { targetRef: { kind: 'Pod', name: e.pod } }),
      };
    }),
  };
}

export interface DeploymentSpec {
  name: string;
  replicas: number;
  /** Pod labels, also used as the selector. */
  labels?: Record<string, string>;
  /** nvidia.com/gpu limit per pod; omitted means no GPU. */
  gpus?: number;
}

/** Builds an apps/v1 Deployment with one container, for scale subresource tests. */
export function deployment(spec: DeploymentSpec): KubeObject {
  const labels = spec.labels ?? { app: spec.name };
  const limits: Record<string, string> = spec.gpus === undefined ? {} : { 'nvidia.com/gpu': String(spec.gpus) };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: spec.name, labels },
    spec: {
      replicas: spec.replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'model', image: 'model-server:latest', resources: { limits, requests: limits } }] },
      },
    },
    status: { replicas: spec.replicas, readyReplicas: spec.replicas, availableReplicas: spec.replicas },
  };
}
