// Soak test: a steady mix of chat, streaming chat, embeddings and V2 infer requests for a
// long time (SOAK_DURATION, 30 minutes by default). It looks for what only shows over
// time: latency that creeps up, errors that start after a while, connections or memory
// that the gateway never releases. Watch the gateway's process metrics alongside it.
//
//   k6 run loadtest/k6/soak.js
//   k6 run -e SOAK_DURATION=2h -e SOAK_V2_RATE=100 loadtest/k6/soak.js
//
// Each request type is its own scenario at a constant arrival rate, so a slow type
// cannot slow the others down. A rate of 0 leaves that type out. PRE_ALLOCATED_VUS and
// MAX_VUS apply to each scenario.
//
// Streaming requests see only the time to their last token, because k6's HTTP client
// returns after the whole body. Time to first token is the gateway's
// infergate_time_to_first_byte_seconds metric.
//
// Settings (environment variables, defaults in lib/config.js): BASE_URL, CHAT_MODEL,
// EMBEDDINGS_MODEL, V2_MODEL, V2_INPUTS, V2_ROWS, PRIORITY, REQUEST_TIMEOUT_MS,
// PROMPT_TOKENS, MAX_TOKENS, EMBEDDING_INPUTS, MAX_ERROR_RATE, the *_P95_MS and *_P99_MS
// latency budgets, PRE_ALLOCATED_VUS, MAX_VUS, SOAK_DURATION, SOAK_CHAT_RATE,
// SOAK_STREAM_RATE, SOAK_EMBEDDINGS_RATE, SOAK_V2_RATE.

import { readDuration, readNumber, readRequestSizes, readString, readTarget } from './lib/config.js';
import { resolveV2InputSpecs, sendChat, sendEmbeddings, sendStreamingChat, sendV2Infer } from './lib/requests.js';
import { constantArrivalScenario, readVuPool } from './lib/scenarios.js';
import { SUMMARY_TREND_STATS, arrivalThresholds, readLatencyBudget, requestThresholds } from './lib/thresholds.js';

/** @typedef {import('./lib/thresholds.js').Thresholds} Thresholds */
/** @typedef {import('./lib/payloads.js').V2InputSpec} V2InputSpec */

const target = readTarget(__ENV);
const { promptTokens, maxTokens, embeddingInputs, v2Rows } = readRequestSizes(__ENV);
const maxErrorRate = readNumber(__ENV, 'MAX_ERROR_RATE', { min: 0, max: 1 });
const duration = readDuration(__ENV, 'SOAK_DURATION');
const vuPool = readVuPool(__ENV);
const priority = target.priority;

/**
 * Request types of the mix: scenario and exec function name, arrival rate per second,
 * and the thresholds of the type's requests.
 */
const STREAMS = [
  {
    name: 'chat',
    rate: readNumber(__ENV, 'SOAK_CHAT_RATE', { min: 0, integer: true }),
    thresholds: () =>
      requestThresholds({ model: target.chatModel, protocol: 'openai', operation: 'chat', priority }, readLatencyBudget(__ENV, 'chat'), maxErrorRate),
  },
  {
    name: 'stream',
    rate: readNumber(__ENV, 'SOAK_STREAM_RATE', { min: 0, integer: true }),
    thresholds: () =>
      requestThresholds(
        { model: target.chatModel, protocol: 'openai', operation: 'chat_stream', priority },
        readLatencyBudget(__ENV, 'chat_stream'),
        maxErrorRate,
      ),
  },
  {
    name: 'embeddings',
    rate: readNumber(__ENV, 'SOAK_EMBEDDINGS_RATE', { min: 0, integer: true }),
    thresholds: () =>
      requestThresholds(
        { model: target.embeddingsModel, protocol: 'openai', operation: 'embeddings', priority },
        readLatencyBudget(__ENV, 'embeddings'),
        maxErrorRate,
      ),
  },
  {
    name: 'infer',
    rate: readNumber(__ENV, 'SOAK_V2_RATE', { min: 0, integer: true }),
    thresholds: () =>
      requestThresholds({ model: target.v2Model, protocol: 'v2', operation: 'infer', priority }, readLatencyBudget(__ENV, 'infer'), maxErrorRate),
  },
].filter((stream) => stream.rate > 0);

if (STREAMS.length === 0) {
  throw new Error('every SOAK_*_RATE is 0: set at least one of SOAK_CHAT_RATE, SOAK_STREAM_RATE, SOAK_EMBEDDINGS_RATE, SOAK_V2_RATE above 0');
}

/** @type {NonNullable<import('k6/options').Options['scenarios']>} */
const scenarios = {};
for (const stream of STREAMS) {
  scenarios[stream.name] = { ...constantArrivalScenario(stream.rate, duration, vuPool), exec: stream.name };
}

/** @type {Thresholds} */
const thresholds = arrivalThresholds(maxErrorRate, ...STREAMS.map((stream) => stream.thresholds()));
// A deployment that fails half its requests after the first minute will not recover by
// itself, so the run stops there instead of soaking for the full duration.
thresholds.http_req_failed = [...(thresholds.http_req_failed ?? []), { threshold: 'rate<0.5', abortOnFail: true, delayAbortEval: '1m' }];

/** @type {import('k6/options').Options} */
export const options = {
  scenarios,
  thresholds,
  summaryTrendStats: [...SUMMARY_TREND_STATS],
};

/**
 * Resolves the V2 input tensors once when V2 traffic is part of the mix.
 * @returns {{specs: V2InputSpec[]}}
 */
export function setup() {
  const sendsV2 = STREAMS.some((stream) => stream.name === 'infer');
  return { specs: sendsV2 ? resolveV2InputSpecs(target, readString(__ENV, 'V2_INPUTS')) : [] };
}

export function chat() {
  sendChat(target, { promptTokens, maxTokens });
}

export function stream() {
  sendStreamingChat(target, { promptTokens, maxTokens });
}

export function embeddings() {
  sendEmbeddings(target, embeddingInputs);
}

/** @param {{specs: V2InputSpec[]}} data */
export function infer(data) {
  sendV2Infer(target, data.specs, v2Rows);
}
