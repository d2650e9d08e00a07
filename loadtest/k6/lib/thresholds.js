// Request tags and the k6 thresholds on their sub-metrics. Plain ES module without k6
// imports, so Node tests can check the generated threshold keys.
//
// Every request carries the tags model, protocol and operation. protocol uses the
// gateway's metric label values (openai, v2), so a k6 result lines up with the gateway's
// infergate_request_duration_seconds{model,protocol}. operation separates calls to one
// model whose latencies differ by design, such as streaming and non-streaming chat.

import { readNumber } from './config.js';

/**
 * Tags set on every request, check and custom metric sample.
 * @typedef {object} RequestTags
 * @property {string} model
 * @property {'openai' | 'v2'} protocol
 * @property {Operation} operation
 * @property {'critical' | 'standard' | 'sheddable'} [priority] The x-priority sent.
 */

/** @typedef {'chat' | 'chat_stream' | 'embeddings' | 'infer' | 'models' | 'metadata'} Operation */

/**
 * Latency budgets in milliseconds for successful responses.
 * @typedef {object} LatencyBudget
 * @property {number} p95Ms
 * @property {number} p99Ms
 */

/**
 * A k6 threshold: an expression such as `p(95)<500`, or the object form that can abort
 * the run when the threshold fails.
 * @typedef {string | {threshold: string, abortOnFail?: boolean, delayAbortEval?: string}} Threshold
 */

/** @typedef {Record<string, Threshold[]>} Thresholds */

/** @typedef {import('./config.js').Environment} Environment */

/**
 * Percentiles shown in the end-of-test summary. k6 shows no p(99) by default, and the
 * thresholds below use it.
 */
export const SUMMARY_TREND_STATS = Object.freeze(['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max']);

/**
 * Latency budget variables by budget name: one per operation, and one for trace replay,
 * whose output lengths are far longer than the other scripts' MAX_TOKENS.
 */
const BUDGET_SETTINGS = Object.freeze({
  chat: /** @type {const} */ (['CHAT_P95_MS', 'CHAT_P99_MS']),
  chat_stream: /** @type {const} */ (['STREAM_P95_MS', 'STREAM_P99_MS']),
  embeddings: /** @type {const} */ (['EMBEDDINGS_P95_MS', 'EMBEDDINGS_P99_MS']),
  infer: /** @type {const} */ (['V2_P95_MS', 'V2_P99_MS']),
  trace: /** @type {const} */ (['TRACE_P95_MS', 'TRACE_P99_MS']),
});

/**
 * Formats tags as the selector of a k6 sub-metric, `metric{key:value,...}`.
 * k6 splits the selector on commas and braces, so those characters cannot appear in
 * a tag value.
 * @param {Readonly<Record<string, string>>} tags
 * @returns {string}
 */
export function tagSelector(tags) {
  const parts = [];
  for (const [key, value] of Object.entries(tags)) {
    if (/[,{}]/.test(value) || value === '') {
      throw new Error(`tag ${key}=${JSON.stringify(value)} cannot be used in a k6 threshold: a tag value must be non-empty without commas or braces`);
    }
    parts.push(`${key}:${value}`);
  }
  return parts.join(',');
}

/**
 * Reads a latency budget from the environment.
 * @param {Environment} env
 * @param {keyof typeof BUDGET_SETTINGS} budget
 * @returns {LatencyBudget}
 */
export function readLatencyBudget(env, budget) {
  const [p95Name, p99Name] = BUDGET_SETTINGS[budget];
  const p95Ms = readNumber(env, p95Name, { min: 1 });
  const p99Ms = readNumber(env, p99Name, { min: 1 });
  if (p99Ms < p95Ms) {
    throw new Error(`invalid latency budget: ${p99Name}=${p99Ms} is below ${p95Name}=${p95Ms}; the p99 budget must be at least the p95 budget`);
  }
  return { p95Ms, p99Ms };
}

/**
 * Builds the thresholds of one tagged request stream: the failure rate and check pass
 * rate of all its requests, and p95/p99 latency of its successful ones. Latency is taken from expected
 * responses only because fast rejections (429, 503) would otherwise pull the
 * percentiles down and hide an overloaded gateway.
 * @param {RequestTags} tags
 * @param {LatencyBudget} budget
 * @param {number} maxErrorRate Highest acceptable share of failed requests, 0 to 1.
 * @returns {Thresholds}
 */
export function requestThresholds(tags, budget, maxErrorRate) {
  const selector = tagSelector(tags);
  return {
    [`http_req_failed{${selector}}`]: [`rate<=${maxErrorRate}`],
    [`http_req_duration{${selector},expected_response:true}`]: [`p(95)<${budget.p95Ms}`, `p(99)<${budget.p99Ms}`],
    [`checks{${selector}}`]: [`rate>=${minimumPassRate(maxErrorRate)}`],
  };
}

/**
 * Builds the thresholds every script carries on the whole run: the overall failure rate
 * and the share of passed checks.
 * @param {number} maxErrorRate
 * @returns {Thresholds}
 */
export function globalThresholds(maxErrorRate) {
  return {
    http_req_failed: [`rate<=${maxErrorRate}`],
    checks: [`rate>=${minimumPassRate(maxErrorRate)}`],
  };
}

/**
 * Builds the thresholds of an arrival-rate script: the whole-run thresholds, no dropped
 * iterations, and the given per-stream tables. An iteration that k6 could not start for
 * lack of a free VU is a request the plan called for and never sent, so the measured rate
 * would be lower than the planned one.
 * @param {number} maxErrorRate
 * @param {...Thresholds} tables
 * @returns {Thresholds}
 */
export function arrivalThresholds(maxErrorRate, ...tables) {
  return mergeThresholds(globalThresholds(maxErrorRate), { dropped_iterations: ['count==0'] }, ...tables);
}

/**
 * Merges threshold tables. A key present in more than one table is a programming error,
 * because k6 would keep only the last definition.
 * @param {...Thresholds} tables
 * @returns {Thresholds}
 */
export function mergeThresholds(...tables) {
  /** @type {Thresholds} */
  const merged = {};
  for (const table of tables) {
    for (const [key, expressions] of Object.entries(table)) {
      if (key in merged) {
        throw new Error(`threshold ${key} is defined twice; give each request stream distinct tags`);
      }
      merged[key] = expressions;
    }
  }
  return merged;
}

/**
 * Returns 1 - maxErrorRate rounded to 6 decimals, so 0.07 yields 0.93 and not 0.9299999999999999.
 * @param {number} maxErrorRate
 * @returns {number}
 */
function minimumPassRate(maxErrorRate) {
  return Number((1 - maxErrorRate).toFixed(6));
}
