// Command-line flags of the simulated replica: one defaults table, one parser and one
// validator, so the CLI, spawnReplica() and startReplicaServer() share the same rules.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { joinNegativeValues } from '../../shared/src/cli-args.ts';

export const REPLICA_PROTOCOLS = ['openai', 'v2', 'both'] as const;
export type ReplicaProtocol = (typeof REPLICA_PROTOCOLS)[number];

/** Injected-error statuses that real model servers send when they shed or fail work. */
export const FAULT_ERROR_STATUSES = [500, 503, 429] as const;

export interface ReplicaConfig {
  protocol: ReplicaProtocol;
  models: string[];
  host: string;
  /** 0 lets the operating system pick a free port. */
  port: number;
  /** Sequences generating at once, like vLLM's max_num_seqs. */
  maxConcurrency: number;
  /** Requests allowed to wait for a slot or an execution; one more gets 429. */
  maxWaiting: number;
  /** Items per batched execution (embedding inputs, V2 rows); also the V2 max_batch_size. */
  maxBatch: number;
  /** Batched executions that run at once. */
  gpuStreams: number;
  startupDelayMs: number;
  prefillBaseMs: number;
  prefillPerTokenMs: number;
  itlBaseMs: number;
  itlPerRunningMs: number;
  execBaseMs: number;
  execPerItemMs: number;
  /** Output tokens when a request sets no max_tokens; undefined selects the length distribution. */
  defaultMaxTokens: number | undefined;
  embeddingDimensions: number;
  /** Prompt plus output tokens allowed per sequence, like vLLM's max_model_len. */
  maxModelLen: number;
  /** KV cache capacity in tokens; only vllm:kv_cache_usage_perc uses it. */
  kvCacheTokens: number;
  keepAliveTimeoutMs: number;
  faultErrorRate: number;
  faultErrorStatus: number;
  faultRetryAfterS: number | undefined;
  faultResetRate: number;
  faultResetAfterChunks: number | undefined;
  faultHangRate: number;
  faultExitAfterMs: number | undefined;
}

/** Defaults sized for a small model on one GPU (about 100 tokens/s per sequence when idle). */
export const REPLICA_DEFAULTS: Readonly<ReplicaConfig> = Object.freeze({
  protocol: 'openai',
  models: ['sim-model'],
  host: '127.0.0.1',
  port: 8000,
  maxConcurrency: 256,
  maxWaiting: 1000,
  maxBatch: 32,
  gpuStreams: 1,
  startupDelayMs: 0,
  prefillBaseMs: 20,
  prefillPerTokenMs: 0.05,
  itlBaseMs: 10,
  itlPerRunningMs: 0.05,
  execBaseMs: 5,
  execPerItemMs: 0.5,
  defaultMaxTokens: undefined,
  embeddingDimensions: 384,
  maxModelLen: 8192,
  kvCacheTokens: 262144,
  keepAliveTimeoutMs: 5000,
  faultErrorRate: 0,
  faultErrorStatus: 503,
  faultRetryAfterS: undefined,
  faultResetRate: 0,
  faultResetAfterChunks: undefined,
  faultHangRate: 0,
  faultExitAfterMs: undefined,
});

/** A flag or option with a value outside its allowed range. */
export class ConfigError extends Error {
  readonly code = 'REPLICA_INVALID_CONFIG';
}

type NumberKey = {
  [K in keyof ReplicaConfig]: ReplicaConfig[K] extends number | undefined ? K : never;
}[keyof ReplicaConfig];

interface NumberRule {
  flag: string;
  key: NumberKey;
  integer: boolean;
  min: number;
  max: number;
}

const NUMBER_RULES: readonly NumberRule[] = [
  { flag: 'port', key: 'port', integer: true, min: 0, max: 65535 },
  { flag: 'max-concurrency', key: 'maxConcurrency', integer: true, min: 1, max: 1_000_000 },
  { flag: 'max-waiting', key: 'maxWaiting', integer: true, min: 0, max: 10_000_000 },
  { flag: 'max-batch', key: 'maxBatch', integer: true, min: 1, max: 1_000_000 },
  { flag: 'gpu-streams', key: 'gpuStreams', integer: true, min: 1, max: 1024 },
  { flag: 'startup-delay-ms', key: 'startupDelayMs', integer: false, min: 0, max: 86_400_000 },
  { flag: 'prefill-base-ms', key: 'prefillBaseMs', integer: false, min: 0, max: 3_600_000 },
  { flag: 'prefill-per-token-ms', key: 'prefillPerTokenMs', integer: false, min: 0, max: 60_000 },
  { flag: 'itl-base-ms', key: 'itlBaseMs', integer: false, min: 0, max: 60_000 },
  { flag: 'itl-per-running-ms', key: 'itlPerRunningMs', integer: false, min: 0, max: 60_000 },
  { flag: 'exec-base-ms', key: 'execBaseMs', integer: false, min: 0, max: 3_600_000 },
  { flag: 'exec-per-item-ms', key: 'execPerItemMs', integer: false, min: 0, max: 60_000 },
  { flag: 'default-max-tokens', key: 'defaultMaxTokens', integer: true, min: 1, max: 1_000_000 },
  { flag: 'embedding-dimensions', key: 'embeddingDimensions', integer: true, min: 1, max: 65_536 },
  { flag: 'max-model-len', key: 'maxModelLen', integer: true, min: 2, max: 10_000_000 },
  { flag: 'kv-cache-tokens', key: 'kvCacheTokens', integer: true, min: 1, max: 1_000_000_000 },
  { flag: 'keep-alive-timeout-ms', key: 'keepAliveTimeoutMs', integer: true, min: 1, max: 3_600_000 },
  { flag: 'fault-error-rate', key: 'faultErrorRate', integer: false, min: 0, max: 1 },
  { flag: 'fault-error-status', key: 'faultErrorStatus', integer: true, min: 100, max: 599 },
  { flag: 'fault-retry-after-s', key: 'faultRetryAfterS', integer: true, min: 0, max: 86_400 },
  { flag: 'fault-reset-rate', key: 'faultResetRate', integer: false, min: 0, max: 1 },
  { flag: 'fault-reset-after-chunks', key: 'faultResetAfterChunks', integer: true, min: 0, max: 1_000_000 },
  { flag: 'fault-hang-rate', key: 'faultHangRate', integer: false, min: 0, max: 1 },
  { flag: 'fault-exit-after-ms', key: 'faultExitAfterMs', integer: true, min: 0, max: 86_400_000 },
];

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._\-/:]{0,127}$/;

/** A plain decimal number, negative ones included so the range check can name them. */
const DECIMAL = /^-?(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * Parses command-line arguments into a validated, frozen config.
 * Throws ConfigError naming the flag and the value on any invalid or unknown flag.
 */
export function parseReplicaArgs(argv: readonly string[]): Readonly<ReplicaConfig> {
  const options: Record<string, { type: 'string'; multiple?: boolean }> = {
    protocol: { type: 'string' },
    model: { type: 'string', multiple: true },
    host: { type: 'string' },
  };
  for (const rule of NUMBER_RULES) options[rule.flag] = { type: 'string' };

  let values: Record<string, string | string[] | undefined>;
  try {
    // Joined as --port=-1, a negative number reaches the range check, which names the flag.
    const args = joinNegativeValues(argv, new Set(NUMBER_RULES.map((rule) => `--${rule.flag}`)));
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | string[] | undefined>;
    });
  } catch (error) {
    throw new ConfigError(`invalid command line: ${(error as Error).message}`, { cause: error });
  }

  const partial: Partial<ReplicaConfig> = {};
  if (typeof values.protocol === 'string') partial.protocol = values.protocol as ReplicaProtocol;
  if (Array.isArray(values.model)) partial.models = values.model;
  if (typeof values.host === 'string') partial.host = values.host;
  for (const rule of NUMBER_RULES) {
    const raw = values[rule.flag];
    if (typeof raw !== 'string') continue;
    // Number() would also take hex, exponents and surrounding spaces, which no one means here.
    if (!DECIMAL.test(raw)) {
      throw new ConfigError(`invalid --${rule.flag} ${JSON.stringify(raw)}: expected a decimal number from ${rule.min} to ${rule.max}`);
    }
    partial[rule.key] = Number(raw);
  }
  return resolveReplicaConfig(partial, 'flag');
}

/**
 * Fills defaults into a partial config and validates every field. `naming` selects
 * whether messages name CLI flags (`--max-batch`) or option keys (`maxBatch`).
 */
export function resolveReplicaConfig(
  partial: Partial<ReplicaConfig>,
  naming: 'flag' | 'option' = 'option',
): Readonly<ReplicaConfig> {
  const config: ReplicaConfig = { ...REPLICA_DEFAULTS, models: [...REPLICA_DEFAULTS.models] };
  for (const [key, value] of Object.entries(partial)) {
    if (value !== undefined) (config as unknown as Record<string, unknown>)[key] = value;
  }
  const name = (flag: string, key: string): string => (naming === 'flag' ? `--${flag}` : key);

  if (!REPLICA_PROTOCOLS.includes(config.protocol)) {
    throw new ConfigError(
      `invalid ${name('protocol', 'protocol')} ${JSON.stringify(config.protocol)}: expected one of ${REPLICA_PROTOCOLS.join(', ')}`,
    );
  }
  if (config.models.length === 0) {
    throw new ConfigError(`invalid ${name('model', 'models')}: at least one model name is required`);
  }
  for (const model of config.models) {
    if (typeof model !== 'string' || !MODEL_NAME.test(model)) {
      throw new ConfigError(
        `invalid ${name('model', 'models')} ${JSON.stringify(model)}: use 1-128 letters, digits and . _ - / : starting with a letter or digit`,
      );
    }
  }
  if (new Set(config.models).size !== config.models.length) {
    throw new ConfigError(`invalid ${name('model', 'models')} ${JSON.stringify(config.models)}: model names must be unique`);
  }
  // A listen address: a name other than localhost would need a DNS lookup at start.
  if (typeof config.host !== 'string' || (isIP(config.host) === 0 && config.host !== 'localhost')) {
    throw new ConfigError(`invalid ${name('host', 'host')} ${JSON.stringify(config.host)}: expected an IP address of this machine, such as 127.0.0.1 or ::1, or localhost`);
  }
  for (const rule of NUMBER_RULES) {
    const value = config[rule.key];
    if (value === undefined) continue;
    const label = name(rule.flag, rule.key);
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new ConfigError(`invalid ${label} ${JSON.stringify(value)}: expected a number`);
    }
    if (rule.integer && !Number.isInteger(value)) {
      throw new ConfigError(`invalid ${label} ${value}: expected an integer`);
    }
    if (value < rule.min || value > rule.max) {
      throw new ConfigError(`invalid ${label} ${value}: expected a value from ${rule.min} to ${rule.max}`);
    }
  }
  if (!(FAULT_ERROR_STATUSES as readonly number[]).includes(config.faultErrorStatus)) {
    throw new ConfigError(
      `invalid ${name('fault-error-status', 'faultErrorStatus')} ${config.faultErrorStatus}: expected one of ${FAULT_ERROR_STATUSES.join(', ')}`,
    );
  }
  return Object.freeze({ ...config, models: Object.freeze([...config.models]) as string[] });
}
