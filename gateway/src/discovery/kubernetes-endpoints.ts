// Turns the EndpointSlices of one Service into the endpoint snapshot a model pool reconciles.
// Condition semantics follow the discovery.k8s.io/v1 EndpointConditions API reference:
// a nil `ready` means ready, a nil `serving` defers to `ready`, a nil `terminating` means
// not terminating.
import { isIP } from 'node:net';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { NAMESPACE_NAME_PATTERN, SERVICE_NAME_PATTERN } from '../../../shared/src/kube-names.ts';
import type { EndpointObservation } from './types.ts';

/** Port of the model server: a port name from the Service, or the target port number. */
export type PortSelector = { kind: 'name'; name: string } | { kind: 'number'; port: number };

// IANA service name syntax used by Kubernetes for port names: at most 15 characters of
// lowercase letters, digits and inner hyphens, at least one letter, no double hyphen.
const PORT_NAME = /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

const NAMESPACE_NAME = new RegExp(NAMESPACE_NAME_PATTERN);
const SERVICE_NAME = new RegExp(SERVICE_NAME_PATTERN);

/**
 * Returns the problems of a `replicas.kubernetes` block, each starting with its key path
 * under prefix, so the configuration loader reports them with the other problems at start-up.
 */
export function kubernetesSourceProblems(spec: { namespace?: unknown; service?: unknown; port?: unknown }, prefix: string): string[] {
  const problems: string[] = [];
  if (typeof spec.namespace === 'string' && !NAMESPACE_NAME.test(spec.namespace)) {
    problems.push(`${prefix}.namespace: ${JSON.stringify(spec.namespace)} is invalid; it must be a Kubernetes namespace name: at most 63 lowercase letters, digits and inner hyphens`);
  }
  if (typeof spec.service === 'string' && !SERVICE_NAME.test(spec.service)) {
    problems.push(`${prefix}.service: ${JSON.stringify(spec.service)} is invalid; it must be a Kubernetes Service name: at most 63 lowercase letters, digits and inner hyphens, starting with a letter`);
  }
  if (typeof spec.port === 'string' || typeof spec.port === 'number') {
    const problem = portProblem(spec.port);
    if (problem !== undefined) problems.push(`${prefix}.port: ${JSON.stringify(spec.port)} is invalid; it must be ${problem}`);
  }
  return problems;
}

/**
 * Parses the `port` of `replicas.kubernetes`. A number, or a string of digits, selects the
 * endpoint port with that number; any other string selects the port with that name.
 * Throws naming the value when it is neither a valid port number nor a valid port name.
 */
export function parsePortSelector(port: string | number, field = 'port'): PortSelector {
  const problem = portProblem(port);
  if (problem !== undefined) throw new Error(`${field} must be ${problem}, got ${JSON.stringify(port)}.`);
  return typeof port === 'number' || /^[0-9]+$/.test(port) ? { kind: 'number', port: Number(port) } : { kind: 'name', name: port };
}

/** Returns what a valid port would be when port is neither a port number nor a port name, else undefined. */
function portProblem(port: string | number): string | undefined {
  if (typeof port === 'number' || /^[0-9]+$/.test(port)) {
    const value = Number(port);
    return Number.isInteger(value) && value >= 1 && value <= 65535 ? undefined : 'a port number from 1 to 65535 or a port name';
  }
  if (!PORT_NAME.test(port) || !/[a-z]/.test(port) || port.includes('--')) {
    return 'a port number or a Kubernetes port name (at most 15 lowercase letters, digits and inner hyphens)';
  }
  return undefined;
}

/** Describes a port selector for log lines and messages. */
export function describePort(selector: PortSelector): string {
  return selector.kind === 'name' ? `port named "${selector.name}"` : `port ${selector.port}`;
}

/** Returns the port number a slice publishes for the selector, or undefined when the slice has no such TCP port. */
export function slicePort(slice: V1EndpointSlice, selector: PortSelector): number | undefined {
  for (const entry of slice.ports ?? []) {
    // An omitted protocol means TCP, and the model servers speak HTTP over TCP only.
    if (entry.protocol !== undefined && entry.protocol !== 'TCP') continue;
    if (entry.port === undefined || entry.port === null) continue;
    if (selector.kind === 'name' && (entry.name ?? '') === selector.name) return entry.port;
    if (selector.kind === 'number' && entry.port === selector.port) return entry.port;
  }
  return undefined;
}

/** Formats host and port as the replica id, with an IPv6 address in brackets. */
export function endpointId(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Builds the endpoint snapshot from every slice of the Service, sorted by id.
 *
 * An endpoint present in several slices (it moves between slices while the controller
 * rebalances them) is reported once. Its copies are merged so that going away wins:
 * terminating if any copy is terminating, serving if any copy is serving, and ready only
 * when some copy is ready and none is terminating, because termination never reverses.
 */
export function endpointsFromSlices(slices: readonly V1EndpointSlice[], selector: PortSelector): EndpointObservation[] {
  const merged = new Map<string, EndpointObservation>();
  for (const slice of slices) {
    const port = slicePort(slice, selector);
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      // Only the first address has defined semantics; kube-proxy ignores the others too.
      const host = endpoint.addresses?.[0];
      if (host === undefined || host === '') continue;
      const conditions = endpoint.conditions ?? {};
      const terminating = conditions.terminating ?? false;
      const readyCondition = conditions.ready ?? true;
      const serving = conditions.serving ?? readyCondition;
      const id = endpointId(host, port);
      const observed: EndpointObservation = {
        id,
        url: `http://${id}`,
        ready: readyCondition && !terminating,
        serving,
        terminating,
      };
      const previous = merged.get(id);
      if (previous === undefined) {
        merged.set(id, observed);
        continue;
      }
      const anyTerminating = previous.terminating || observed.terminating;
      merged.set(id, {
        id,
        url: observed.url,
        terminating: anyTerminating,
        serving: previous.serving || observed.serving,
        ready: !anyTerminating && (previous.ready || observed.ready),
      });
    }
  }
  return [...merged.values()].sort(compareById);
}

function compareById(a: EndpointObservation, b: EndpointObservation): number {
  if (a.id < b.id) return -1;
  return a.id > b.id ? 1 : 0;
}

/** True when two sorted snapshots list the same endpoints with the same conditions. */
export function sameSnapshot(a: readonly EndpointObservation[], b: readonly EndpointObservation[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined) return false;
    if (x.id !== y.id || x.url !== y.url || x.ready !== y.ready || x.serving !== y.serving || x.terminating !== y.terminating) {
      return false;
    }
  }
  return true;
}
