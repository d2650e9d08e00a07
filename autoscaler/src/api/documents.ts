// JSON documents of the external metrics API: discovery, metric value lists and Status
// errors. They have the shapes the Kubernetes API machinery serves: meta/v1 APIGroupList,
// APIGroup, APIResourceList and Status, and external.metrics.k8s.io/v1beta1
// ExternalMetricValueList.

export const GROUP = 'external.metrics.k8s.io';
export const VERSION = 'v1beta1';
export const GROUP_VERSION = `${GROUP}/${VERSION}`;

const groupVersion = { groupVersion: GROUP_VERSION, version: VERSION };

export function apiGroupDocument() {
  return { kind: 'APIGroup', apiVersion: 'v1', name: GROUP, versions: [groupVersion], preferredVersion: groupVersion };
}

export function apiGroupListDocument() {
  const { kind: _kind, apiVersion: _apiVersion, ...group } = apiGroupDocument();
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] };
}

/** APIResourceList of the group version: one namespaced, get-only resource per metric name. */
export function apiResourceListDocument(metricNames: readonly string[]) {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: GROUP_VERSION,
    resources: metricNames.map((name) => ({
      name: name.toLowerCase(),
      singularName: '',
      namespaced: true,
      kind: 'ExternalMetricValueList',
      verbs: ['get'],
    })),
  };
}

export interface ExternalMetricValue {
  metricName: string;
  metricLabels: Record<string, string>;
  /** RFC 3339 time, seconds precision, as metav1.Time serializes. */
  timestamp: string;
  /** Canonical Kubernetes quantity. */
  value: string;
}

export function externalMetricValueListDocument(items: ExternalMetricValue[]) {
  return { kind: 'ExternalMetricValueList', apiVersion: GROUP_VERSION, metadata: {}, items };
}

/** Status reasons used by this server; they are the stable error codes of the API. */
export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'Timeout'
  | 'RequestEntityTooLarge'
  | 'ServiceUnavailable'
  | 'InternalError';

/**
 * HTTP status code per reason. RequestEntityTooLarge is 413 in Kubernetes; this server
 * sends it only for request headers over the size limit, whose HTTP status is 431.
 */
const STATUS_CODES: Record<StatusReason, number> = {
  BadRequest: 400,
  Timeout: 408,
  RequestEntityTooLarge: 431,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  ServiceUnavailable: 503,
  InternalError: 500,
};

export interface StatusDocument {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: { name?: string; group?: string; kind?: string };
  code: number;
}

export function statusDocument(reason: StatusReason, message: string, details?: StatusDocument['details']): StatusDocument {
  const document: StatusDocument = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code: STATUS_CODES[reason] };
  if (details) document.details = details;
  return document;
}

/** Formats epoch milliseconds as metav1.Time does: RFC 3339 in UTC, whole seconds. */
export function formatKubeTime(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
