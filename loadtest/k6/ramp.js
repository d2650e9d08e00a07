// Ramp test: chat requests at an arrival rate that climbs from RAMP_START_RATE to
// RAMP_PEAK_RATE per second, holds, and falls back to zero. It is an open model: k6 starts
// requests at the planned rate whether or not earlier ones have finished, as real
// clients do, so a slow gateway shows up as latency and queueing instead of a lower rate.
//
//   k6 run loadtest/k6/ramp.js
//   k6 run -e RAMP_PEAK_RATE=200 -e RAMP_UP=5m loadtest/k6/ramp.js
//
// A share of the requests (CRITICAL_SHARE) is sent with `x-priority: critical`. When
// requests queue, the critical ones should wait less than the standard ones, and the
// summary shows both sub-metrics side by side.
//
// Settings (environment variables, defaults in lib/config.js): BASE_URL, CHAT_MODEL,
// PRIORITY, REQUEST_TIMEOUT_MS, PROMPT_TOKENS, MAX_TOKENS, MAX_ERROR_RATE, CHAT_P95_MS,
// CHAT_P99_MS, PRE_ALLOCATED_VUS, MAX_VUS, RAMP_START_RATE, RAMP_PEAK_RATE, RAMP_UP,
// RAMP_HOLD, RAMP_DOWN, CRITICAL_SHARE.

import { readDuration, readNumber, readTarget } from './lib/config.js';
import { sendChat } from './lib/requests.js';
import { readVuPool } from './lib/scenarios.js';
import { SUMMARY_TREND_STATS, arrivalThresholds, readLatencyBudget, requestThresholds } from './lib/thresholds.js';

const target = readTarget(__ENV);
const promptTokens = readNumber(__ENV, 'PROMPT_TOKENS', { min: 1, integer: true });
const maxTokens = readNumber(__ENV, 'MAX_TOKENS', { min: 1, integer: true });
const maxErrorRate = readNumber(__ENV, 'MAX_ERROR_RATE', { min: 0, max: 1 });
const criticalShare = readNumber(__ENV, 'CRITICAL_SHARE', { min: 0, max: 1 });
const chatBudget = readLatencyBudget(__ENV, 'chat');
const vuPool = readVuPool(__ENV);
const peakRate = readNumber(__ENV, 'RAMP_PEAK_RATE', { min: 1, integer: true });

/** @type {Array<'critical' | 'standard' | 'sheddable'>} */
const priorities = [target.priority];
if (criticalShare > 0 && target.priority !== 'critical') {
  priorities.push('critical');
}

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    ramp: {
      executor: 'ramping-arrival-rate',
      startRate: readNumber(__ENV, 'RAMP_START_RATE', { min: 0, integer: true }),
      timeUnit: '1s',
      ...vuPool,
      stages: [
        { duration: readDuration(__ENV, 'RAMP_UP'), target: peakRate },
        { duration: readDuration(__ENV, 'RAMP_HOLD'), target: peakRate },
        { duration: readDuration(__ENV, 'RAMP_DOWN'), target: 0 },
      ],
    },
  },
  thresholds: arrivalThresholds(
    maxErrorRate,
    ...priorities.map((priority) =>
      requestThresholds({ model: target.chatModel, protocol: 'openai', operation: 'chat', priority }, chatBudget, maxErrorRate),
    ),
  ),
  summaryTrendStats: [...SUMMARY_TREND_STATS],
};

/** Sends one chat request, critical with probability CRITICAL_SHARE. */
export default function ramp() {
  const priority = priorities.length > 1 && Math.random() < criticalShare ? 'critical' : target.priority;
  sendChat(target, { promptTokens, maxTokens, priority });
}
