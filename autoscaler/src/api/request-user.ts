// The end user of a request and what the request does, in the terms of Kubernetes
// authorization. The front proxy (kube-apiserver) authenticates the user and passes the
// result in request headers: the user name, the groups and extra attributes, under header
// names it publishes as requestheader-username-headers, requestheader-group-headers and
// requestheader-extra-headers-prefix. These headers are trusted only on requests whose
// client certificate was verified against the request-header CA, because any other
// caller could forge them.
import type { IncomingMessage } from 'node:http';

/** Header names of the request-header authentication scheme. Matching is case-insensitive. */
export interface RequestHeaderNames {
  /** The first of these headers with a non-empty value names the user. */
  usernameHeaders: readonly string[];
  /** Every value of every one of these headers is one group. */
  groupHeaders: readonly string[];
  /** A header starting with one of these prefixes carries one extra attribute: the rest of the name is the key. */
  extraHeadersPrefixes: readonly string[];
}

export interface RequestUser {
  name: string;
  groups: string[];
  extra: Record<string, string[]>;
}

/**
 * Authorization attributes of a request, as the generic Kubernetes API server derives them:
 * resource attributes for paths under /apis/{group}/{version}/ that name a resource,
 * non-resource attributes (the path) for everything else, such as discovery documents.
 */
export type RequestAttributes =
  | { kind: 'resource'; verb: string; group: string; version: string; resource: string; namespace: string; name: string; subresource: string }
  | { kind: 'nonResource'; verb: string; path: string };

/**
 * Reads the user from the request headers; undefined when no username header has a value.
 * Uses the raw headers so that repeated group headers stay separate values instead of
 * being joined with commas.
 */
export function userFromHeaders(request: IncomingMessage, names: RequestHeaderNames): RequestUser | undefined {
  const headers = request.headersDistinct;
  let name: string | undefined;
  for (const header of names.usernameHeaders) {
    const value = headers[header.toLowerCase()]?.find((v) => v !== '');
    if (value !== undefined) {
      name = value;
      break;
    }
  }
  if (name === undefined) return undefined;

  const groups: string[] = [];
  for (const header of names.groupHeaders) groups.push(...(headers[header.toLowerCase()] ?? []).filter((v) => v !== ''));

  const extra: Record<string, string[]> = {};
  const prefixes = names.extraHeadersPrefixes.map((p) => p.toLowerCase());
  for (const [header, values] of Object.entries(headers)) {
    const prefix = prefixes.find((p) => header.startsWith(p) && header.length > p.length);
    if (prefix === undefined || values === undefined) continue;
    // Keys are lower case and percent-encoded by the front proxy, so that keys with
    // characters not allowed in header names survive the trip.
    const key = safeDecode(header.slice(prefix.length)).toLowerCase();
    (extra[key] ??= []).push(...values);
  }
  return { name, groups, extra };
}

/** Non-resource verbs are the lower-case method; resource verbs follow the Kubernetes REST mapping. */
const RESOURCE_VERBS: Record<string, string> = { GET: 'get', HEAD: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/**
 * Derives the attributes from method and URL the way the generic API server's request
 * info resolver does: a GET without an object name (a collection, such as
 * /apis/external.metrics.k8s.io/v1beta1/namespaces/ml/infergate_demand) is the verb list,
 * and with watch=true in the query the verb watch.
 */
export function requestAttributes(method: string, url: string): RequestAttributes {
  const parsed = new URL(url, 'http://request.invalid');
  const path = parsed.pathname;
  const upper = method.toUpperCase();
  const nonResource: RequestAttributes = { kind: 'nonResource', verb: upper.toLowerCase(), path };
  const segments = path.split('/').filter((s) => s !== '');
  if (segments[0] !== 'apis' || segments.length < 4) return nonResource;
  const [, group = '', version = '', ...rest] = segments.map(safeDecode);
  let namespace = '';
  let parts = rest;
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    namespace = parts[1] ?? '';
    parts = parts.slice(2);
  } else if (parts[0] === 'namespaces' && parts.length === 2) {
    // /namespaces/{name} is the namespace object itself.
    parts = ['namespaces', parts[1] ?? ''];
  }
  const [resource = '', name = '', subresource = ''] = parts;
  let verb = RESOURCE_VERBS[upper] ?? upper.toLowerCase();
  if (name === '' && verb === 'get') verb = parsed.searchParams.get('watch') === 'true' || parsed.searchParams.get('watch') === '1' ? 'watch' : 'list';
  if (name === '' && verb === 'delete') verb = 'deletecollection';
  return { kind: 'resource', verb, group, version, resource, namespace, name, subresource };
}

/** The message of a 403, worded like the Kubernetes API server's, so operators recognise it. */
export function forbiddenMessage(user: RequestUser, attributes: RequestAttributes, reason: string): string {
  let message: string;
  if (attributes.kind === 'nonResource') {
    message = `forbidden: User ${JSON.stringify(user.name)} cannot ${attributes.verb} path ${JSON.stringify(attributes.path)}`;
  } else {
    const resource = attributes.subresource ? `${attributes.resource}/${attributes.subresource}` : attributes.resource;
    const scope = attributes.namespace ? `in the namespace ${JSON.stringify(attributes.namespace)}` : 'at the cluster scope';
    const what = attributes.group ? `${attributes.resource}.${attributes.group}` : attributes.resource;
    message = `${what} is forbidden: User ${JSON.stringify(user.name)} cannot ${attributes.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(attributes.group)} ${scope}`;
  }
  return reason ? `${message}: ${reason}` : message;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
