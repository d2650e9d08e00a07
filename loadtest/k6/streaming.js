// Streaming test: chat completions with `stream: true` (Server-Sent Events) at a constant
// arrival rate. Each response is checked event by event: SSE headers, one
// chat.completion.chunk per event with one id for the whole stream, no error event, and
// `data: [DONE]` at the end.
//
//   k6 run loadtest/k6/streaming.js
//   k6 run -e STREAM_RATE=50 -e MAX_TOKENS=256 loadtest/k6/streaming.js
//
// What k6 cannot observe: its HTTP client returns only after the whole body has arrived,
// so http_req_duration here is the time to the last token. http_req_waiting is the time
// to the response headers, which the gateway may send before the first token. Time to
// first token is the gateway's infergate_time_to_first_byte_seconds{model} histogram,
// read from its admin port's /metrics during the run.
//
// Settings (environment variables, defaults in lib/config.js): BASE_URL, CHAT_MODEL,
// PRIORITY, REQUEST_TIMEOUT_MS, PROMPT_TOKENS, MAX_TOKENS, STREAM_RATE, STREAM_DURATION,
// STREAM_P95_MS, STREAM_P99_MS, MAX_ERROR_RATE, PRE_ALLOCATED_VUS, MAX_VUS.

import { readDuration, readNumber, readTarget } from './lib/config.js';
import { sendStreamingChat } from './lib/requests.js';
import { constantArrivalScenario, readVuPool } from './lib/scenarios.js';
import { SUMMARY_TREND_STATS, arrivalThresholds, readLatencyBudget, requestThresholds } from './lib/thresholds.js';

const target = readTarget(__ENV);
const promptTokens = readNumber(__ENV, 'PROMPT_TOKENS', { min: 1, integer: true });
const maxTokens = readNumber(__ENV, 'MAX_TOKENS', { min: 1, integer: true });
const maxErrorRate = readNumber(__ENV, 'MAX_ERROR_RATE', { min: 0, max: 1 });
const vuPool = readVuPool(__ENV);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    stream: constantArrivalScenario(readNumber(__ENV, 'STREAM_RATE', { min: 1, integer: true }), readDuration(__ENV, 'STREAM_DURATION'), vuPool),
  },
  thresholds: arrivalThresholds(
    maxErrorRate,
    requestThresholds(
      { model: target.chatModel, protocol: 'openai', operation: 'chat_stream', priority: target.priority },
      readLatencyBudget(__ENV, 'chat_stream'),
      maxErrorRate,
    ),
  ),
  summaryTrendStats: [...SUMMARY_TREND_STATS],
};

/** Sends one streaming chat request and checks its events. */
export default function stream() {
  sendStreamingChat(target, { promptTokens, maxTokens });
}
