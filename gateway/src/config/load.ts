// Validates a parsed gateway configuration, fills defaults and freezes the result, so
// every other module reads complete, checked values.
import { readFile } from 'node:fs/promises';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { ValueError } from '@sinclair/typebox/errors';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { Protocol } from '../../../shared/src/admin-state.ts';
import { HEALTH_PATH_BY_PROTOCOL, MODEL_DEFAULTS, SERVER_DEFAULTS, UNKNOWN_MODEL_LABEL } from './defaults.ts';
import { describeExpectation, keywordOfValueError } from '../schema-errors.ts';
import { GatewayConfigSchema, KubernetesReplicasSchema, StaticReplicasSchema, type GatewayConfigInput, type ModelConfigInput } from './schema.ts';
import { kubernetesSourceProblems } from '../discovery/kubernetes-endpoints.ts';

export type ReplicaSourceConfig =
  | { kind: 'static'; urls: readonly string[] }
  | { kind: 'kubernetes'; namespace: string; service: string; port: string | number };

export interface ModelConfig {
  readonly name: string;
  readonly protocol: Protocol;
  readonly replicas: ReplicaSourceConfig;
  readonly maxInflightPerReplica: number;
  readonly queue: { readonly maxSize: number; readonly timeoutMs: number };
  readonly batching: { readonly maxBatchSize: number; readonly maxDelayMs: number };
  readonly health: {
    readonly path: string;
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly unhealthyThreshold: number;
    readonly healthyThreshold: number;
  };
  readonly ejection: { readonly consecutiveFailures: number; readonly baseMs: number; readonly maxMs: number };
  readonly retry: { readonly maxAttempts: number };
  readonly scaleFromZero: { readonly enabled: boolean; readonly holdTimeoutMs: number; readonly maxHeld: number };
  readonly upstream: {
    readonly connectTimeoutMs: number;
    readonly headersTimeoutMs: number;
    readonly streamHeadersTimeoutMs: number;
    readonly bodyTimeoutMs: number;
    readonly keepAliveTimeoutMs: number;
  };
}

export interface GatewayConfig {
  readonly server: {
    readonly port: number;
    readonly adminPort: number;
    readonly host: string;
    readonly bodyLimitBytes: number;
    readonly shutdownGraceMs: number;
  };
  readonly models: readonly ModelConfig[];
}

/** Invalid configuration; the message lists every problem with its key path and value. */
export class ConfigError extends Error {
  readonly code = 'INFERGATE_INVALID_CONFIG';
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(`invalid gateway configuration in ${source}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Reads, validates and completes the YAML file at path. */
export async function loadConfigFile(path: string): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message : String(error);
    throw new ConfigError(path, [`the file is not valid YAML: ${detail}`]);
  }
  return buildConfig(parsed, path);
}

/** Schema problems listed at most; past this the file is likely not a gateway configuration at all. */
const MAX_SCHEMA_PROBLEMS = 20;

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * Returns the problems the schema cannot express: checks between keys, and checks of
 * replica URLs and Kubernetes names. A check runs only when every key it reads passed the
 * schema (invalid lists the rejected pointers), so one run lists these next to the schema
 * problems, and a key the schema rejected does not get a second message.
 */
function crossKeyProblems(input: unknown, invalid: readonly string[]): string[] {
  const usable = (pointer: string): boolean => !invalid.some((bad) => bad === pointer || pointer.startsWith(`${bad}/`));
  const problems: string[] = [];
  const root = asRecord(input);
  if (usable('/server/port') && usable('/server/adminPort')) {
    const server = { ...SERVER_DEFAULTS, ...(asRecord(root?.server) as Partial<GatewayConfig['server']> | undefined) };
    const portProblem = samePortProblem(server, 'server.port and server.adminPort');
    if (portProblem !== undefined) problems.push(portProblem);
  }
  const models = Array.isArray(root?.models) ? (root.models as unknown[]) : [];
  const seen = new Set<string>();
  for (const [index, entry] of models.entries()) {
    const model = asRecord(entry);
    if (model === undefined) continue;
    const base = `/models/${index}`;
    const replicas = asRecord(model.replicas);
    const kubernetes = asRecord(replicas?.kubernetes);
    if (kubernetes !== undefined) {
      // Only the fields the schema accepted are checked further, so none is reported twice.
      const fields = Object.fromEntries(['namespace', 'service', 'port'].filter((key) => usable(`${base}/replicas/kubernetes/${key}`)).map((key) => [key, kubernetes[key]]));
      problems.push(...kubernetesSourceProblems(fields, `models.${index}.replicas.kubernetes`));
    }
    const urls = replicas?.static;
    if (Array.isArray(urls)) {
      for (const [urlIndex, url] of urls.entries()) {
        if (!usable(`${base}/replicas/static/${urlIndex}`) || typeof url !== 'string') continue;
        const problem = replicaUrlProblem(url);
        if (problem !== undefined) problems.push(`models.${index}.replicas.static.${urlIndex}: ${JSON.stringify(url)} is invalid; ${problem}`);
      }
    }
    if (usable(`${base}/name`) && typeof model.name === 'string') {
      if (seen.has(model.name)) problems.push(`models.${index}.name: duplicate model name ${JSON.stringify(model.name)}; names must be unique`);
      if (model.name === UNKNOWN_MODEL_LABEL) problems.push(`models.${index}.name: ${JSON.stringify(model.name)} is reserved for requests naming no configured model; choose another name`);
      seen.add(model.name);
    }
    if (usable(`${base}/ejection/baseMs`) && usable(`${base}/ejection/maxMs`)) {
      const ejection = { ...MODEL_DEFAULTS.ejection, ...(asRecord(model.ejection) as Partial<ModelConfig['ejection']> | undefined) };
      if (ejection.maxMs < ejection.baseMs) {
        problems.push(`models.${index}.ejection.maxMs: ${ejection.maxMs} is below ejection.baseMs ${ejection.baseMs}; use a value >= baseMs`);
      }
    }
    if (usable(`${base}/health/timeoutMs`) && usable(`${base}/health/intervalMs`)) {
      const health = { ...MODEL_DEFAULTS.health, ...(asRecord(model.health) as Partial<ModelConfig['health']> | undefined) };
      if (health.timeoutMs > health.intervalMs) {
        problems.push(`models.${index}.health.timeoutMs: ${health.timeoutMs} exceeds health.intervalMs ${health.intervalMs}; use a value <= intervalMs`);
      }
    }
  }
  return problems;
}

/**
 * Validates an already parsed configuration object and returns it complete and frozen.
 * Throws ConfigError naming each invalid key path, its value and what is allowed.
 */
export function buildConfig(input: unknown, source = 'configuration'): GatewayConfig {
  const problems: string[] = [];
  // Pointers of every key the schema rejected, so the checks between keys skip those keys.
  const invalid: string[] = [];
  // TypeBox reports a missing key once as missing, then again against each of its schemas.
  const missing = new Set<string>();
  for (const error of Value.Errors(GatewayConfigSchema, input)) {
    invalid.push(error.path);
    if (missing.has(error.path)) continue;
    if (keywordOfValueError(error) === 'required') missing.add(error.path);
    // A failed union reports its own summary first; the branch errors repeat it less clearly.
    const branchProblems = error.path.endsWith('/replicas') ? replicaSourceProblems(error.path, error.value) : [];
    if (branchProblems.length > 0) problems.push(...branchProblems);
    else problems.push(describeProblem(error.path, error));
    if (problems.length >= MAX_SCHEMA_PROBLEMS) break;
  }
  if (problems.length < MAX_SCHEMA_PROBLEMS) problems.push(...crossKeyProblems(input, invalid));
  if (problems.length > 0) throw new ConfigError(source, dedupe(problems));

  const valid = input as GatewayConfigInput;
  return deepFreeze({
    server: { ...SERVER_DEFAULTS, ...valid.server },
    models: valid.models.map(completeModel),
  });
}

/**
 * Returns a copy of config with the listener ports replaced, as --port and --admin-port do.
 * Throws ConfigError when the result gives both listeners the same port.
 */
export function withPorts(config: GatewayConfig, ports: { port?: number; adminPort?: number }): GatewayConfig {
  const server = { ...config.server, ...(ports.port === undefined ? {} : { port: ports.port }), ...(ports.adminPort === undefined ? {} : { adminPort: ports.adminPort }) };
  const names = `${ports.port === undefined ? 'server.port' : '--port'} and ${ports.adminPort === undefined ? 'server.adminPort' : '--admin-port'}`;
  const problem = samePortProblem(server, names);
  if (problem !== undefined) throw new ConfigError(names, [problem]);
  return deepFreeze({
    server: {
      ...config.server,
      ...(ports.port === undefined ? {} : { port: ports.port }),
      ...(ports.adminPort === undefined ? {} : { adminPort: ports.adminPort }),
    },
    models: config.models,
  });
}

function completeModel(model: ModelConfigInput): ModelConfig {
  const replicas: ReplicaSourceConfig =
    'static' in model.replicas
      ? { kind: 'static', urls: model.replicas.static.map((url) => url.replace(/\/$/, '')) }
      : { kind: 'kubernetes', ...model.replicas.kubernetes };
  return {
    name: model.name,
    protocol: model.protocol,
    replicas,
    maxInflightPerReplica: model.maxInflightPerReplica ?? MODEL_DEFAULTS.maxInflightPerReplica,
    queue: { ...MODEL_DEFAULTS.queue, ...model.queue },
    batching: { ...MODEL_DEFAULTS.batching, ...model.batching },
    health: { path: HEALTH_PATH_BY_PROTOCOL[model.protocol], ...MODEL_DEFAULTS.health, ...model.health },
    ejection: { ...MODEL_DEFAULTS.ejection, ...model.ejection },
    retry: { ...MODEL_DEFAULTS.retry, ...model.retry },
    scaleFromZero: { ...MODEL_DEFAULTS.scaleFromZero, ...model.scaleFromZero },
    upstream: { ...MODEL_DEFAULTS.upstream, ...model.upstream },
  };
}

/**
 * Describes the problems inside a replica source that sets exactly one kind (static or
 * kubernetes), so each message names the invalid field rather than the whole source.
 */
function replicaSourceProblems(pointer: string, value: unknown): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const keys = Object.keys(value);
  if (keys.length !== 1) return [];
  let branch: TSchema;
  if (keys[0] === 'static') branch = StaticReplicasSchema;
  else if (keys[0] === 'kubernetes') branch = KubernetesReplicasSchema;
  else return [];
  return [...Value.Errors(branch, value)].map((error) => describeProblem(pointer + error.path, error));
}

/** Returns the problem when both listeners get the same fixed port, which the second could never bind. */
export function samePortProblem(server: { port: number; adminPort: number }, names: string): string | undefined {
  if (server.port === 0 || server.port !== server.adminPort) return undefined;
  return `${names}: both are ${server.port}; the traffic and admin listeners need different ports (0 picks a free one)`;
}

/**
 * Says what is wrong with a static replica URL, or undefined when it is a base URL the
 * gateway can call: http or https, a host, an optional port, and nothing else.
 */
export function replicaUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'it is not a valid URL; expected a base URL like http://host:port';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `the scheme ${url.protocol.slice(0, -1)} is not supported; use http or https`;
  if (url.hostname === '') return 'it has no host; expected a base URL like http://host:port';
  if (url.username !== '' || url.password !== '') return 'credentials (user:password@) are not allowed in a replica URL; remove them';
  if (url.search !== '' || text.includes('?')) return 'a query string is not allowed in a replica URL; remove it';
  if (url.hash !== '' || text.includes('#')) return 'a fragment (#...) is not allowed in a replica URL; remove it';
  if (url.pathname !== '/') return `the path ${url.pathname} is not allowed; give only scheme, host and port, as the gateway adds the API paths itself`;
  return undefined;
}

function describeProblem(pointer: string, error: ValueError): string {
  const path = pointer === '' ? '(root)' : pointer.slice(1).replaceAll('/', '.');
  const shown = error.value === undefined ? 'missing' : JSON.stringify(error.value);
  const keyword = keywordOfValueError(error);
  if (keyword === 'anyOf' && path.endsWith('replicas')) {
    return `${path}: ${shown} is not a replica source; set exactly one of static: [URLs like http://host:port] or kubernetes: { namespace, service, port }`;
  }
  if (keyword === 'additionalProperties') return `${path}: unknown key (value ${shown}); remove it or fix its spelling`;
  if (keyword === 'required') return `${path}: missing; this key is required`;
  if (keyword === undefined) return `${path}: ${shown} is invalid; ${error.message.toLowerCase()}`;
  return `${path}: ${shown} is invalid; it ${describeExpectation(keyword, error.schema)}`;
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
