// Reads, validates and freezes the autoscaler config. Validation runs once at start-up,
// and each error names the key path, the value found and what is allowed, so an operator
// can fix a ConfigMap without reading the code.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { ConfigFileSchema, type ConfigFile } from './schema.ts';
import { DEFAULTS } from './defaults.ts';
import { checkGatewayUrl, describeGatewayUrlProblem } from './gateway-url.ts';

export type TargetKind = 'Deployment' | 'StatefulSet';

export interface TargetRef {
  kind: TargetKind;
  namespace: string;
  name: string;
}

export interface ModelConfig {
  name: string;
  target: TargetRef;
  targetPerReplica: number;
  minReplicas: number;
  maxReplicas: number;
  /** Unset: read from the target's pod template (`nvidia.com/gpu` limits). */
  gpusPerReplica: number | undefined;
  scaleDownWindowSeconds: number;
  idleToZeroSeconds: number;
  priority: number;
}

export interface GatewaySource {
  static?: readonly string[];
  kubernetes?: { namespace: string; service: string; port: number | string };
}

export interface MetricsApiConfig {
  port: number;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  clientCAFile: string | undefined;
  /** Read the client CA and allowed names from kube-system/extension-apiserver-authentication. */
  clientCAFromCluster: boolean;
  allowedNames: readonly string[];
  insecureHttp: boolean;
  certReloadIntervalMs: number;
  authorization: AuthorizationConfig;
  /** Header names set in the config; an unset key comes from the cluster ConfigMap (with clientCAFromCluster) or the defaults. */
  requestHeader: ConfiguredRequestHeader;
}

export interface AuthorizationConfig {
  /** delegated: a SubjectAccessReview per request (cached); none: every authenticated caller may read everything. */
  mode: 'delegated' | 'none';
  allowTtlMs: number;
  denyTtlMs: number;
  cacheSize: number;
}

export interface ConfiguredRequestHeader {
  usernameHeaders: readonly string[] | undefined;
  groupHeaders: readonly string[] | undefined;
  extraHeadersPrefixes: readonly string[] | undefined;
}

export interface AutoscalerConfig {
  /** cluster: models from the config, scale actions through Kubernetes. local: models from gateways, actions only logged. */
  mode: 'cluster' | 'local';
  gateways: GatewaySource;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  staleAfterMs: number;
  kubernetesTimeoutMs: number;
  podTemplateRefreshMs: number;
  listenHost: string;
  adminPort: number;
  metricsApi: MetricsApiConfig;
  /** Unset: no cap on the GPUs of all models together. */
  gpuBudget: number | undefined;
  models: readonly ModelConfig[];
}

/** Raised for an invalid config; `problems` contains one line per key path. */
export class ConfigError extends Error {
  readonly code = 'INFERGATE_AUTOSCALER_CONFIG_INVALID';
  readonly problems: readonly string[];

  constructor(source: string, problems: string[]) {
    super(`invalid autoscaler config ${source}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Reads and validates the YAML file at `path`. */
export function loadConfigFile(path: string): AutoscalerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as Error).message}`]);
  }
  return parseConfigText(text, path);
}

/** Parses and validates YAML text; `source` names the file in error messages. */
export function parseConfigText(text: string, source = '(inline)'): AutoscalerConfig {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      source,
      document.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`),
    );
  }
  const raw: unknown = document.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, [`the document must be a mapping with keys gateways and models, got ${describe(raw)}`]);
  }

  const schemaErrors = [...Value.Errors(ConfigFileSchema, raw)];
  const schemaProblems = schemaErrors.map((e) => formatSchemaError(e.path, e.value, e.message, e.schema));
  // The relations between keys are checked even when some keys failed the schema, so one
  // run reports every problem. A relation is checked only when each key in it is valid.
  const invalidPaths = schemaErrors.filter((e) => e.message !== 'Unexpected property').map((e) => pointerToPath(e.path));
  const config = resolveConfigFile(raw as ConfigFile);
  const semanticProblems = checkSemantics(
    config,
    (path) => isValidPath(path, invalidPaths),
    (path) => !invalidPaths.some((invalid) => invalid === path || path.startsWith(`${invalid}.`)),
  );
  const problems = dedupe([...schemaProblems, ...semanticProblems]);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze(config);
}

/**
 * Returns false when the schema rejected the key at `path`, one of its parents, or one of
 * its children: its value then says nothing reliable about a relation with another key.
 */
function isValidPath(path: string, invalidPaths: readonly string[]): boolean {
  const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`) || outer === '';
  return !invalidPaths.some((invalid) => within(path, invalid) || within(invalid, path));
}

/** Options of local mode, which runs without a config file and without a cluster. */
export interface LocalModeOptions {
  gateways: string[];
  insecureHttp: boolean;
  port?: number;
  adminPort?: number;
  listenHost?: string;
  clientCAFile?: string;
  allowedNames?: string[];
  gpuBudget?: number;
  pollIntervalMs?: number;
  staleAfterMs?: number;
}

/** Builds the config of local mode: static gateways, models taken from their snapshots. */
export function buildLocalConfig(options: LocalModeOptions): AutoscalerConfig {
  const config: AutoscalerConfig = {
    mode: 'local',
    gateways: { static: [...options.gateways] },
    pollIntervalMs: options.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    requestTimeoutMs: DEFAULTS.requestTimeoutMs,
    staleAfterMs: options.staleAfterMs ?? DEFAULTS.staleAfterMs,
    kubernetesTimeoutMs: DEFAULTS.kubernetesTimeoutMs,
    podTemplateRefreshMs: DEFAULTS.podTemplateRefreshMs,
    // Local mode has no authentication unless a client CA is given, so it listens on loopback.
    listenHost: options.listenHost ?? '127.0.0.1',
    adminPort: options.adminPort ?? DEFAULTS.adminPort,
    metricsApi: {
      port: options.port ?? DEFAULTS.metricsApi.port,
      tlsCertFile: undefined,
      tlsKeyFile: undefined,
      clientCAFile: options.clientCAFile,
      clientCAFromCluster: false,
      allowedNames: options.allowedNames ?? [],
      insecureHttp: options.insecureHttp,
      certReloadIntervalMs: DEFAULTS.metricsApi.certReloadIntervalMs,
      // Local mode has no cluster to ask.
      authorization: resolveAuthorization(undefined, 'none'),
      requestHeader: { usernameHeaders: undefined, groupHeaders: undefined, extraHeadersPrefixes: undefined },
    },
    gpuBudget: options.gpuBudget,
    models: [],
  };
  const problems = checkSemantics(config);
  if (problems.length > 0) throw new ConfigError('(command line)', problems);
  return deepFreeze(config);
}

/**
 * Applies the defaults. It also runs on a file that failed the schema, so every access
 * tolerates a value of the wrong type. checkSemantics skips the keys the schema rejected.
 */
function resolveConfigFile(file: ConfigFile): AutoscalerConfig {
  const api = isMapping(file.metricsApi) ? file.metricsApi : {};
  const rawModels: unknown[] = Array.isArray(file.models) ? file.models : [];
  return {
    mode: 'cluster',
    gateways: isMapping(file.gateways) ? file.gateways : {},
    pollIntervalMs: file.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    requestTimeoutMs: file.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    staleAfterMs: file.staleAfterMs ?? DEFAULTS.staleAfterMs,
    kubernetesTimeoutMs: file.kubernetesTimeoutMs ?? DEFAULTS.kubernetesTimeoutMs,
    podTemplateRefreshMs: file.podTemplateRefreshMs ?? DEFAULTS.podTemplateRefreshMs,
    listenHost: file.listenHost ?? DEFAULTS.listenHost,
    adminPort: file.adminPort ?? DEFAULTS.adminPort,
    metricsApi: {
      port: api.port ?? DEFAULTS.metricsApi.port,
      tlsCertFile: api.tlsCertFile,
      tlsKeyFile: api.tlsKeyFile,
      clientCAFile: api.clientCAFile,
      clientCAFromCluster: api.clientCAFromCluster ?? DEFAULTS.metricsApi.clientCAFromCluster,
      allowedNames: api.allowedNames ?? [...DEFAULTS.metricsApi.allowedNames],
      insecureHttp: api.insecureHttp ?? DEFAULTS.metricsApi.insecureHttp,
      certReloadIntervalMs: api.certReloadIntervalMs ?? DEFAULTS.metricsApi.certReloadIntervalMs,
      // Without TLS there is no verified client certificate, so the user headers could be forged.
      authorization: resolveAuthorization(api.authorization, api.insecureHttp === true ? 'none' : 'delegated'),
      requestHeader: {
        usernameHeaders: api.requestHeader?.usernameHeaders,
        groupHeaders: api.requestHeader?.groupHeaders,
        extraHeadersPrefixes: api.requestHeader?.extraHeadersPrefixes,
      },
    },
    gpuBudget: file.gpuBudget,
    models: rawModels.map((entry) => (isMapping(entry) ? entry : {}) as ConfigFile['models'][number]).map((m) => ({
      name: m.name,
      target: { ...m.target },
      targetPerReplica: m.targetPerReplica,
      minReplicas: m.minReplicas ?? DEFAULTS.model.minReplicas,
      maxReplicas: m.maxReplicas ?? DEFAULTS.model.maxReplicas,
      gpusPerReplica: m.gpusPerReplica,
      scaleDownWindowSeconds: m.scaleDownWindowSeconds ?? DEFAULTS.model.scaleDownWindowSeconds,
      idleToZeroSeconds: m.idleToZeroSeconds ?? DEFAULTS.model.idleToZeroSeconds,
      priority: m.priority ?? DEFAULTS.model.priority,
    })),
  };
}

function resolveAuthorization(raw: NonNullable<ConfigFile['metricsApi']>['authorization'], defaultMode: AuthorizationConfig['mode']): AuthorizationConfig {
  const defaults = DEFAULTS.metricsApi.authorization;
  const file = isMapping(raw) ? raw : undefined;
  return {
    mode: file?.mode ?? defaultMode,
    allowTtlMs: file?.allowTtlMs ?? defaults.allowTtlMs,
    denyTtlMs: file?.denyTtlMs ?? defaults.denyTtlMs,
    cacheSize: file?.cacheSize ?? defaults.cacheSize,
  };
}

/**
 * Checks the rules a JSON Schema cannot state: relations between keys. `valid` returns
 * false for a key path the schema rejected, and a rule that involves such a key is skipped.
 * `validMapping` returns false only when the key itself or a parent was rejected.
 */
function checkSemantics(config: AutoscalerConfig, valid: (path: string) => boolean = () => true, validMapping: (path: string) => boolean = () => true): string[] {
  const problems: string[] = [];
  const { gateways, metricsApi } = config;
  const all = (...paths: string[]) => paths.every(valid);

  // Which sources are set is known whenever gateways is a mapping, even if a source is invalid.
  if (validMapping('gateways')) {
    const sources = (gateways.static !== undefined ? 1 : 0) + (gateways.kubernetes !== undefined ? 1 : 0);
    if (sources !== 1) {
      problems.push(`gateways: set exactly one of gateways.static (admin URLs) or gateways.kubernetes ({namespace, service, port}), got ${sources === 0 ? 'neither' : 'both'}`);
    }
  }
  if (Array.isArray(gateways.static)) {
    gateways.static.forEach((url, index) => {
      if (!valid(`gateways.static[${index}]`)) return;
      const problem = checkGatewayUrl(url);
      if (problem) problems.push(describeGatewayUrlProblem(`gateways.static[${index}]`, problem));
    });
  }

  if (all('requestTimeoutMs', 'staleAfterMs') && config.requestTimeoutMs > config.staleAfterMs) {
    problems.push(`requestTimeoutMs: must not exceed staleAfterMs (${config.staleAfterMs}), got ${config.requestTimeoutMs}`);
  }
  if (all('pollIntervalMs', 'staleAfterMs') && config.pollIntervalMs > config.staleAfterMs) {
    problems.push(`pollIntervalMs: must not exceed staleAfterMs (${config.staleAfterMs}), or every snapshot is stale before the next poll, got ${config.pollIntervalMs}`);
  }
  if (all('adminPort', 'metricsApi.port') && config.adminPort === metricsApi.port && config.adminPort !== 0) {
    problems.push(`adminPort: must differ from metricsApi.port, both are ${config.adminPort}`);
  }
  if (all('metricsApi.tlsCertFile', 'metricsApi.tlsKeyFile') && Boolean(metricsApi.tlsCertFile) !== Boolean(metricsApi.tlsKeyFile)) {
    problems.push(`metricsApi: set both tlsCertFile and tlsKeyFile or neither (a self-signed certificate is generated), got only ${metricsApi.tlsCertFile ? 'tlsCertFile' : 'tlsKeyFile'}`);
  }
  const caKeys = ['metricsApi.insecureHttp', 'metricsApi.clientCAFile', 'metricsApi.clientCAFromCluster'];
  if (all(...caKeys, 'metricsApi.tlsCertFile') && metricsApi.insecureHttp === true && (metricsApi.tlsCertFile || metricsApi.clientCAFile || metricsApi.clientCAFromCluster === true)) {
    problems.push('metricsApi.insecureHttp: true serves plain HTTP, so tlsCertFile, tlsKeyFile, clientCAFile and clientCAFromCluster must not be set');
  }
  if (all('metricsApi.clientCAFile', 'metricsApi.clientCAFromCluster') && metricsApi.clientCAFile && metricsApi.clientCAFromCluster === true) {
    problems.push('metricsApi.clientCAFromCluster: true reads the client CA from the cluster, so clientCAFile must not be set as well');
  }
  if (all(...caKeys) && config.mode === 'cluster' && metricsApi.insecureHttp !== true && !metricsApi.clientCAFile && metricsApi.clientCAFromCluster !== true) {
    problems.push('metricsApi: no client CA is set; set clientCAFromCluster: true (reads kube-system/extension-apiserver-authentication) or clientCAFile (a mounted copy of requestheader-client-ca-file), or every caller would be accepted');
  }

  if (all('metricsApi.authorization.mode', 'metricsApi.insecureHttp') && metricsApi.authorization.mode === 'delegated' && metricsApi.insecureHttp === true) {
    problems.push('metricsApi.authorization.mode: delegated trusts the user headers only on requests with a verified client certificate, which needs TLS; set insecureHttp: false or authorization.mode: none');
  }

  const names = new Set<string>();
  config.models.forEach((model, index) => {
    if (valid(`models[${index}].name`) && typeof model.name === 'string') {
      if (names.has(model.name)) problems.push(`models[${index}].name: duplicate model name ${JSON.stringify(model.name)}`);
      names.add(model.name);
    }
    if (all(`models[${index}].minReplicas`, `models[${index}].maxReplicas`) && model.minReplicas > model.maxReplicas) {
      problems.push(`models[${index}].minReplicas: must not exceed maxReplicas (${model.maxReplicas}), got ${model.minReplicas}`);
    }
  });
  return problems;
}

function formatSchemaError(pointer: string, value: unknown, message: string, schema: TSchema): string {
  const path = pointerToPath(pointer) || '(root)';
  const allowed = describeAllowed(schema);
  if (message === 'Unexpected property') {
    return `${path}: unknown key; check its spelling against docs/autoscaler.md`;
  }
  if (value === undefined) return `${path}: missing required key${allowed ? ` (${allowed})` : ''}`;
  return `${path}: ${allowed || message}, got ${describe(value)}`;
}

function isMapping<T>(value: T | undefined): value is T & object {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function describeAllowed(schema: TSchema): string {
  const expected = describeExpected(schema);
  return expected ? `expected ${expected}` : '';
}

/** Describes the values a schema accepts, such as "an integer from 1 to 65535". */
function describeExpected(schema: TSchema): string {
  // A pattern reads badly in a message, so a schema with one may describe in words what it accepts.
  if (schema.pattern !== undefined && typeof schema.description === 'string') return schema.description;
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf;
  if (anyOf && anyOf.every((s) => 'const' in s)) return `one of ${anyOf.map((s) => JSON.stringify(s.const)).join(', ')}`;
  if (anyOf) return anyOf.map((s) => describeExpected(s)).join(', or ');

  const type = schema.type as string | undefined;
  const { minimum, maximum, exclusiveMinimum, minLength, maxLength, minItems } = schema as {
    minimum?: number;
    maximum?: number;
    exclusiveMinimum?: number;
    minLength?: number;
    maxLength?: number;
    minItems?: number;
  };
  if ((type === 'integer' || type === 'number') && minimum !== undefined && maximum !== undefined) {
    return `${type === 'integer' ? 'an integer' : 'a number'} from ${minimum} to ${maximum}`;
  }
  if (type === 'string' && minLength !== undefined && minLength > 0 && maxLength !== undefined && schema.pattern === undefined) {
    return `a string of ${minLength} to ${maxLength} characters`;
  }
  if (type === 'array' && minItems !== undefined && minItems > 0) {
    return `a list with at least ${minItems} item${minItems === 1 ? '' : 's'}`;
  }

  const parts: string[] = [];
  if (type === 'integer') parts.push('an integer');
  else if (type === 'number') parts.push('a number');
  else if (type === 'string') parts.push('a string');
  else if (type === 'boolean') parts.push('true or false');
  else if (type === 'array') parts.push('a list');
  else if (type === 'object') parts.push('a mapping');
  if (minimum !== undefined) parts.push(`>= ${minimum}`);
  if (exclusiveMinimum !== undefined) parts.push(`> ${exclusiveMinimum}`);
  if (maximum !== undefined) parts.push(`<= ${maximum}`);
  if (minLength !== undefined && minLength > 0) parts.push('not empty');
  if (maxLength !== undefined) parts.push(`at most ${maxLength} characters`);
  if (schema.pattern !== undefined) parts.push(`matching ${schema.pattern}`);
  return parts.join(', ');
}

/** Turns a JSON pointer such as /models/0/target/kind into models[0].target.kind. */
export function pointerToPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^\d+$/.test(segment)) path += `[${segment}]`;
    else path += path ? `.${segment}` : segment;
  }
  return path;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function dedupe(lines: string[]): string[] {
  return [...new Set(lines)];
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
