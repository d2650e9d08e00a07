// Environment-driven settings of the k6 scripts: one table of defaults and readers that
// validate each value once, in the init context, so a typo stops the run before any load.
// Plain ES module without k6 imports: scripts pass k6's `__ENV`, Node tests pass an object.

/**
 * Every environment variable the scripts read, with its default. The defaults target the
 * gateway demo that `npm start` runs on this machine (traffic port 8080). Latency budgets
 * are in milliseconds and apply to successful responses only.
 */
export const DEFAULTS = Object.freeze({
  // Target
  BASE_URL: 'http://127.0.0.1:8080',
  CHAT_MODEL: 'demo-chat',
  EMBEDDINGS_MODEL: 'demo-embeddings',
  V2_MODEL: 'demo-v2',

  // Request shape
  PRIORITY: 'standard',
  REQUEST_TIMEOUT_MS: '60000',
  PROMPT_TOKENS: '128',
  MAX_TOKENS: '64',
  EMBEDDING_INPUTS: '4',
  V2_ROWS: '1',
  V2_INPUTS: '',

  // Thresholds
  MAX_ERROR_RATE: '0.01',
  CHAT_P95_MS: '5000',
  CHAT_P99_MS: '10000',
  STREAM_P95_MS: '8000',
  STREAM_P99_MS: '15000',
  EMBEDDINGS_P95_MS: '1000',
  EMBEDDINGS_P99_MS: '2000',
  V2_P95_MS: '500',
  V2_P99_MS: '1000',
  TRACE_P95_MS: '30000',
  TRACE_P99_MS: '60000',

  // Virtual users of the arrival-rate executors
  PRE_ALLOCATED_VUS: '20',
  MAX_VUS: '500',

  // smoke.js
  SMOKE_ITERATIONS: '3',

  // ramp.js
  RAMP_START_RATE: '1',
  RAMP_PEAK_RATE: '50',
  RAMP_UP: '2m',
  RAMP_HOLD: '3m',
  RAMP_DOWN: '1m',
  CRITICAL_SHARE: '0.1',

  // spike.js
  SPIKE_BASE_RATE: '2',
  SPIKE_WARMUP: '30s',
  SPIKE_RATE: '60',
  SPIKE_RAMP: '10s',
  SPIKE_HOLD: '1m',
  SPIKE_IDLE: '6m',
  SPIKE_IDLE_RATE: '0',
  SHEDDABLE_SHARE: '0.3',

  // soak.js
  SOAK_DURATION: '30m',
  SOAK_CHAT_RATE: '4',
  SOAK_STREAM_RATE: '4',
  SOAK_EMBEDDINGS_RATE: '4',
  SOAK_V2_RATE: '20',

  // trace-replay.js
  TRACE_FILE: '',
  TRACE_START_MINUTE: '0',
  TRACE_MINUTES: '10',
  TRACE_SPEED: '1',
  TRACE_BUCKET_MS: '1000',
  TRACE_MAX_PROMPT_TOKENS: '6144',

  // v2-batching.js
  V2_RATE: '200',
  V2_DURATION: '2m',

  // streaming.js
  STREAM_RATE: '10',
  STREAM_DURATION: '2m',
});

/** @typedef {keyof typeof DEFAULTS} SettingName */
/** @typedef {Readonly<Record<string, string | undefined>>} Environment */

/**
 * Number constraints of readNumber.
 * @typedef {object} NumberRange
 * @property {number} [min] Inclusive lower bound.
 * @property {number} [max] Inclusive upper bound.
 * @property {boolean} [integer] Require a whole number.
 */

/**
 * The gateway and models every script talks to.
 * @typedef {object} Target
 * @property {string} baseUrl Traffic URL without a trailing slash.
 * @property {string} chatModel
 * @property {string} embeddingsModel
 * @property {string} v2Model
 * @property {number} requestTimeoutMs Sent as x-request-timeout-ms.
 * @property {'critical' | 'standard' | 'sheddable'} priority Sent as x-priority.
 */

const PRIORITIES = /** @type {const} */ (['critical', 'standard', 'sheddable']);
const NUMBER_PATTERN = /^-?\d+(\.\d+)?$/;
// Go's time.ParseDuration syntax, which k6 uses for durations: one or more number-unit pairs.
const DURATION_PATTERN = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/**
 * Returns the value of `name`, or its default when unset or empty.
 * @param {Environment} env
 * @param {SettingName} name
 * @returns {string}
 */
export function readString(env, name) {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') {
    return DEFAULTS[name];
  }
  return raw.trim();
}

/**
 * Reads a number and checks it against `range`.
 * @param {Environment} env
 * @param {SettingName} name
 * @param {NumberRange} [range]
 * @returns {number}
 */
export function readNumber(env, name, range = {}) {
  const raw = readString(env, name);
  const expected = describeRange(range);
  if (!NUMBER_PATTERN.test(raw)) {
    throw invalidSetting(name, raw, expected);
  }

  const value = Number(raw);
  const tooLow = range.min !== undefined && value < range.min;
  const tooHigh = range.max !== undefined && value > range.max;
  if (tooLow || tooHigh || (range.integer === true && !Number.isInteger(value))) {
    throw invalidSetting(name, raw, expected);
  }
  return value;
}

/**
 * Reads a k6 duration such as `30s`, `1m30s` or `250ms`.
 * @param {Environment} env
 * @param {SettingName} name
 * @returns {string}
 */
export function readDuration(env, name) {
  const raw = readString(env, name);
  if (!DURATION_PATTERN.test(raw)) {
    throw invalidSetting(name, raw, 'a duration such as 45s, 2m or 1m30s');
  }
  return raw;
}

/**
 * Reads the base URL of the gateway's traffic port and drops trailing slashes.
 * @param {Environment} env
 * @param {SettingName} name
 * @returns {string}
 */
export function readBaseUrl(env, name) {
  const raw = readString(env, name);
  if (!/^https?:\/\/[^/\s]+(\/\S*)?$/.test(raw)) {
    throw invalidSetting(name, raw, 'an http:// or https:// URL such as http://127.0.0.1:8080');
  }
  return raw.replace(/\/+$/, '');
}

/**
 * Reads the settings shared by every script.
 * @param {Environment} env
 * @returns {Target}
 */
export function readTarget(env) {
  return {
    baseUrl: readBaseUrl(env, 'BASE_URL'),
    chatModel: readString(env, 'CHAT_MODEL'),
    embeddingsModel: readString(env, 'EMBEDDINGS_MODEL'),
    v2Model: readString(env, 'V2_MODEL'),
    requestTimeoutMs: readNumber(env, 'REQUEST_TIMEOUT_MS', { min: 1, integer: true }),
    priority: readPriority(env, 'PRIORITY'),
  };
}

/**
 * Sizes of the requests that the mixed scripts (smoke, soak) send.
 * @typedef {object} RequestSizes
 * @property {number} promptTokens Prompt length of chat requests.
 * @property {number} maxTokens max_tokens of chat requests.
 * @property {number} embeddingInputs Inputs per embeddings request.
 * @property {number} v2Rows Rows per V2 infer request.
 */

/**
 * Reads PROMPT_TOKENS, MAX_TOKENS, EMBEDDING_INPUTS and V2_ROWS.
 * @param {Environment} env
 * @returns {RequestSizes}
 */
export function readRequestSizes(env) {
  return {
    promptTokens: readNumber(env, 'PROMPT_TOKENS', { min: 1, integer: true }),
    maxTokens: readNumber(env, 'MAX_TOKENS', { min: 1, integer: true }),
    embeddingInputs: readNumber(env, 'EMBEDDING_INPUTS', { min: 1, integer: true }),
    v2Rows: readNumber(env, 'V2_ROWS', { min: 1, integer: true }),
  };
}

/**
 * Reads an x-priority class.
 * @param {Environment} env
 * @param {SettingName} name
 * @returns {'critical' | 'standard' | 'sheddable'}
 */
export function readPriority(env, name) {
  const raw = readString(env, name);
  for (const priority of PRIORITIES) {
    if (priority === raw) {
      return priority;
    }
  }
  throw invalidSetting(name, raw, `one of ${PRIORITIES.join(', ')}`);
}

/**
 * @param {SettingName} name
 * @param {string} raw
 * @param {string} expected
 * @returns {Error}
 */
function invalidSetting(name, raw, expected) {
  return new Error(`invalid environment variable ${name}=${JSON.stringify(raw)}: expected ${expected} (default ${JSON.stringify(DEFAULTS[name])})`);
}

/**
 * @param {NumberRange} range
 * @returns {string}
 */
function describeRange(range) {
  const parts = [range.integer === true ? 'an integer' : 'a number'];
  if (range.min !== undefined) {
    parts.push(`>= ${range.min}`);
  }
  if (range.max !== undefined) {
    parts.push(`<= ${range.max}`);
  }
  return parts.join(' ');
}
