// The --help text of the simulated replica: every flag with its unit and its default, the
// defaults read from REPLICA_DEFAULTS so the text cannot drift from the behaviour.
import { FAULT_ERROR_STATUSES, REPLICA_DEFAULTS, REPLICA_PROTOCOLS, type ReplicaConfig } from './config.ts';

interface FlagHelp {
  flag: string;
  /** Placeholder and unit of the value, such as "MS" for milliseconds. */
  value: string;
  key: keyof ReplicaConfig;
  meaning: string;
}

const FLAGS: readonly FlagHelp[] = [
  { flag: 'protocol', value: REPLICA_PROTOCOLS.join('|'), key: 'protocol', meaning: 'endpoint families served' },
  { flag: 'model', value: 'NAME', key: 'models', meaning: 'served model name; repeat the flag for several models' },
  { flag: 'host', value: 'HOST', key: 'host', meaning: 'listen address' },
  { flag: 'port', value: 'N', key: 'port', meaning: 'listen port; 0 picks a free one and prints it' },
  { flag: 'max-concurrency', value: 'N', key: 'maxConcurrency', meaning: 'sequences generating at once, like vLLM max_num_seqs' },
  { flag: 'max-waiting', value: 'N', key: 'maxWaiting', meaning: 'requests allowed to wait; the next one gets 429' },
  { flag: 'max-batch', value: 'N', key: 'maxBatch', meaning: 'items per batched execution (embedding inputs, V2 rows)' },
  { flag: 'gpu-streams', value: 'N', key: 'gpuStreams', meaning: 'batched executions running at once' },
  { flag: 'startup-delay-ms', value: 'MS', key: 'startupDelayMs', meaning: 'milliseconds until the model is loaded (health answers 503 before)' },
  { flag: 'prefill-base-ms', value: 'MS', key: 'prefillBaseMs', meaning: 'fixed part of the time to first token, in milliseconds' },
  { flag: 'prefill-per-token-ms', value: 'MS', key: 'prefillPerTokenMs', meaning: 'time to first token added per prompt token, in milliseconds' },
  { flag: 'itl-base-ms', value: 'MS', key: 'itlBaseMs', meaning: 'inter-token latency with no other sequence running, in milliseconds' },
  { flag: 'itl-per-running-ms', value: 'MS', key: 'itlPerRunningMs', meaning: 'inter-token latency added per running sequence, in milliseconds' },
  { flag: 'exec-base-ms', value: 'MS', key: 'execBaseMs', meaning: 'fixed part of a batched execution, in milliseconds' },
  { flag: 'exec-per-item-ms', value: 'MS', key: 'execPerItemMs', meaning: 'execution time added per item, in milliseconds' },
  { flag: 'default-max-tokens', value: 'N', key: 'defaultMaxTokens', meaning: 'output tokens when a request sets no max_tokens (unset: chosen from the prompt, 16 to 512)' },
  { flag: 'embedding-dimensions', value: 'N', key: 'embeddingDimensions', meaning: 'embedding length in floats' },
  { flag: 'max-model-len', value: 'N', key: 'maxModelLen', meaning: 'prompt plus output tokens allowed per sequence; more is a 400' },
  { flag: 'kv-cache-tokens', value: 'N', key: 'kvCacheTokens', meaning: 'KV cache capacity in tokens, for vllm:kv_cache_usage_perc' },
  { flag: 'keep-alive-timeout-ms', value: 'MS', key: 'keepAliveTimeoutMs', meaning: 'idle keep-alive timeout of client connections, in milliseconds' },
  { flag: 'fault-error-rate', value: 'R', key: 'faultErrorRate', meaning: 'share of inference requests (0 to 1) answered with --fault-error-status' },
  { flag: 'fault-error-status', value: 'STATUS', key: 'faultErrorStatus', meaning: `status of injected errors: ${FAULT_ERROR_STATUSES.join(', ')}` },
  { flag: 'fault-retry-after-s', value: 'S', key: 'faultRetryAfterS', meaning: 'Retry-After in seconds sent on injected errors' },
  { flag: 'fault-reset-rate', value: 'R', key: 'faultResetRate', meaning: 'share of inference requests (0 to 1) reset before headers' },
  { flag: 'fault-reset-after-chunks', value: 'N', key: 'faultResetAfterChunks', meaning: 'streaming responses are reset after N SSE events' },
  { flag: 'fault-hang-rate', value: 'R', key: 'faultHangRate', meaning: 'share of inference requests (0 to 1) accepted and never answered' },
  { flag: 'fault-exit-after-ms', value: 'MS', key: 'faultExitAfterMs', meaning: 'milliseconds after start at which the process exits with status 1' },
];

function shownDefault(key: keyof ReplicaConfig): string {
  const value = REPLICA_DEFAULTS[key];
  if (value === undefined) return 'unset';
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** Builds the text printed by --help. */
export function replicaUsage(): string {
  const left = FLAGS.map((help) => `  --${help.flag} ${help.value}`);
  const width = Math.max(...left.map((text) => text.length)) + 2;
  const lines = FLAGS.map((help, index) => `${(left[index] ?? '').padEnd(width)}${help.meaning} (default: ${shownDefault(help.key)})`);
  return [
    'Usage: npm run replica -- [flags]',
    '',
    'One simulated GPU model replica (vLLM-like OpenAI routes and/or Triton-like V2 routes).',
    'Units: MS milliseconds, S seconds, R a rate from 0 to 1, N a count.',
    '',
    ...lines,
    `${'  --help'.padEnd(width)}print this text and exit`,
    '',
    'Faults can also be changed at run time with POST /sim/faults; see docs/replica.md.',
    '',
  ].join('\n');
}
