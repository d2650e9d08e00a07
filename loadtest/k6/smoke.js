// Smoke test: one virtual user calls every route the gateway serves a few times and
// checks each response. Run it first, against a new deployment or after a change, before
// any load test: it fails on the first wrong status or body shape.
//
//   k6 run loadtest/k6/smoke.js
//   k6 run -e BASE_URL=http://127.0.0.1:18080 loadtest/k6/smoke.js
//
// Settings (environment variables, defaults in lib/config.js): BASE_URL, CHAT_MODEL,
// EMBEDDINGS_MODEL, V2_MODEL, V2_INPUTS, V2_ROWS, PRIORITY, REQUEST_TIMEOUT_MS,
// PROMPT_TOKENS, MAX_TOKENS, EMBEDDING_INPUTS, MAX_ERROR_RATE, the *_P95_MS and
// *_P99_MS latency budgets, SMOKE_ITERATIONS.

import { readNumber, readRequestSizes, readString, readTarget } from './lib/config.js';
import { checkV2Ready, listModels, resolveV2InputSpecs, sendChat, sendEmbeddings, sendStreamingChat, sendV2Infer } from './lib/requests.js';
import { SUMMARY_TREND_STATS, globalThresholds, mergeThresholds, readLatencyBudget, requestThresholds } from './lib/thresholds.js';

const target = readTarget(__ENV);
const { promptTokens, maxTokens, embeddingInputs, v2Rows } = readRequestSizes(__ENV);
const maxErrorRate = readNumber(__ENV, 'MAX_ERROR_RATE', { min: 0, max: 1 });
const priority = target.priority;

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    smoke: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: readNumber(__ENV, 'SMOKE_ITERATIONS', { min: 1, integer: true }),
      maxDuration: '5m',
    },
  },
  thresholds: mergeThresholds(
    globalThresholds(maxErrorRate),
    requestThresholds({ model: target.chatModel, protocol: 'openai', operation: 'chat', priority }, readLatencyBudget(__ENV, 'chat'), maxErrorRate),
    requestThresholds(
      { model: target.chatModel, protocol: 'openai', operation: 'chat_stream', priority },
      readLatencyBudget(__ENV, 'chat_stream'),
      maxErrorRate,
    ),
    requestThresholds(
      { model: target.embeddingsModel, protocol: 'openai', operation: 'embeddings', priority },
      readLatencyBudget(__ENV, 'embeddings'),
      maxErrorRate,
    ),
    requestThresholds({ model: target.v2Model, protocol: 'v2', operation: 'infer', priority }, readLatencyBudget(__ENV, 'infer'), maxErrorRate),
  ),
  summaryTrendStats: [...SUMMARY_TREND_STATS],
};

/**
 * Resolves the V2 input tensors once, before the iterations start.
 * @returns {{specs: import('./lib/payloads.js').V2InputSpec[]}}
 */
export function setup() {
  return { specs: resolveV2InputSpecs(target, readString(__ENV, 'V2_INPUTS')) };
}

/**
 * Calls every route once: model listings, chat, streaming chat, embeddings, V2 readiness
 * and V2 infer.
 * @param {{specs: import('./lib/payloads.js').V2InputSpec[]}} data
 */
export default function smoke(data) {
  listModels(target);
  sendChat(target, { promptTokens, maxTokens });
  // The stream's duration is the time to its last token. Time to first token is the
  // gateway's infergate_time_to_first_byte_seconds metric, which k6 cannot observe.
  sendStreamingChat(target, { promptTokens, maxTokens });
  sendEmbeddings(target, embeddingInputs);
  checkV2Ready(target);
  sendV2Infer(target, data.specs, v2Rows);
}
