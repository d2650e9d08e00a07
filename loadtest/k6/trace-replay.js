// Trace replay: chat requests at the arrival rates of a recorded production trace, each
// with the prompt length and output length of its trace row. The trace is an Azure LLM
// inference trace CSV (columns TIMESTAMP, ContextTokens, GeneratedTokens).
//
//   k6 run -e TRACE_FILE=/data/AzureLLMInferenceTrace_conv.csv loadtest/k6/trace-replay.js
//   k6 run -e TRACE_FILE=/data/AzureLLMInferenceTrace_code.csv -e TRACE_SPEED=20 -e TRACE_MINUTES=10 loadtest/k6/trace-replay.js
//
// k6 reads TRACE_FILE with open() in the init context, and resolves a relative path
// against the directory of this script, so pass an absolute path.
//
// How arrivals are reproduced: the window [TRACE_START_MINUTE, TRACE_START_MINUTE +
// TRACE_MINUTES) of trace time is cut into buckets of TRACE_BUCKET_MS. The number of
// requests in each bucket becomes the rate of a `ramping-arrival-rate` stage that lasts
// TRACE_BUCKET_MS / TRACE_SPEED of real time. k6 starts each bucket's requests within
// that bucket, evenly spaced, so bursts shorter than a bucket are smoothed. The n-th
// request started gets the n-th trace row of the window. For exact arrival times, use
// the Node replayer (`npm run replay`).
//
// Prompts longer than TRACE_MAX_PROMPT_TOKENS are cut to that length. A model server
// rejects prompt plus output beyond its context length (vLLM's max_model_len) with 400.
// The demo's simulated replicas allow 8192 tokens, and the default cut of 6144 leaves
// room for the longest outputs of both Azure traces (1,899 tokens). Set it to your
// model's context length minus its longest output.
//
// Settings (environment variables, defaults in lib/config.js): TRACE_FILE (required),
// TRACE_START_MINUTE, TRACE_MINUTES, TRACE_SPEED, TRACE_BUCKET_MS, TRACE_P95_MS,
// TRACE_P99_MS, TRACE_MAX_PROMPT_TOKENS, BASE_URL, CHAT_MODEL, PRIORITY, REQUEST_TIMEOUT_MS, MAX_ERROR_RATE,
// PRE_ALLOCATED_VUS, MAX_VUS.

import { SharedArray } from 'k6/data';
import exec from 'k6/execution';

import { readNumber, readString, readTarget } from './lib/config.js';
import { sendChat } from './lib/requests.js';
import { readVuPool } from './lib/scenarios.js';
import { SUMMARY_TREND_STATS, arrivalThresholds, readLatencyBudget, requestThresholds } from './lib/thresholds.js';
import { buildArrivalPlan, countPerBucket, parseTrace, selectWindow } from './lib/trace.js';

/** @typedef {import('./lib/trace.js').TraceRow} TraceRow */

const target = readTarget(__ENV);
const maxErrorRate = readNumber(__ENV, 'MAX_ERROR_RATE', { min: 0, max: 1 });
const vuPool = readVuPool(__ENV);
const traceFile = readString(__ENV, 'TRACE_FILE');
if (traceFile === '') {
  throw new Error('TRACE_FILE is not set: pass the absolute path of an Azure LLM inference trace CSV, e.g. -e TRACE_FILE=/data/AzureLLMInferenceTrace_conv.csv');
}
const window = {
  startMinute: readNumber(__ENV, 'TRACE_START_MINUTE', { min: 0 }),
  minutes: readNumber(__ENV, 'TRACE_MINUTES', { min: 0.001 }),
};
const bucketMs = readNumber(__ENV, 'TRACE_BUCKET_MS', { min: 1, integer: true });
const speed = readNumber(__ENV, 'TRACE_SPEED', { min: 0.001 });
const maxPromptTokens = readNumber(__ENV, 'TRACE_MAX_PROMPT_TOKENS', { min: 1, integer: true });

// SharedArray parses the file once and shares the rows read-only between VUs, instead of
// every VU holding its own copy.
const rows = new SharedArray('trace window', () => {
  const selected = selectWindow(parseTrace(open(traceFile), traceFile), window);
  if (selected.length === 0) {
    throw new Error(
      `${traceFile} has no rows between minute ${window.startMinute} and minute ${window.startMinute + window.minutes}: lower TRACE_START_MINUTE`,
    );
  }
  return selected;
});
const plan = buildArrivalPlan(countPerBucket(rows, bucketMs), { bucketMs, speed });

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    replay: {
      executor: 'ramping-arrival-rate',
      startRate: plan.startRate,
      timeUnit: plan.timeUnit,
      stages: plan.stages,
      ...vuPool,
    },
  },
  // arrivalThresholds fails the run on any dropped iteration: that is a trace request that
  // was never sent, so the replay would no longer match the trace.
  thresholds: arrivalThresholds(
    maxErrorRate,
    requestThresholds(
      { model: target.chatModel, protocol: 'openai', operation: 'chat', priority: target.priority },
      readLatencyBudget(__ENV, 'trace'),
      maxErrorRate,
    ),
  ),
  tags: { trace: traceFile.split(/[\\/]/).pop() ?? traceFile },
  summaryTrendStats: [...SUMMARY_TREND_STATS],
};

/** Sends the chat request of the trace row whose turn it is. */
export default function replay() {
  const index = exec.scenario.iterationInTest;
  /** @type {TraceRow | undefined} */
  const row = rows[index];
  if (row === undefined) {
    // k6 starts exactly plan.totalRequests iterations, one per row, so this is reached
    // only if k6 starts more iterations than the plan asked for.
    throw new Error(`trace replay iteration ${index} has no trace row; the window has ${rows.length} rows`);
  }
  sendChat(target, {
    promptTokens: Math.min(maxPromptTokens, Math.max(1, row.contextTokens)),
    maxTokens: Math.max(1, row.generatedTokens),
  });
}
