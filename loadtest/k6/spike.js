// Spike test: a steady base rate of chat requests, a sudden burst to SPIKE_RATE per
// second, then a long idle period. The burst should make the autoscaler scale the chat
// model up in one step; the idle period should let it scale back down.
//
//   k6 run loadtest/k6/spike.js
//   k6 run -e SPIKE_RATE=400 -e SPIKE_IDLE=12m loadtest/k6/spike.js
//
// The autoscaler lowers its served demand only to the maximum seen over its scale-down
// window (300 s by default), and the HPA adds its own stabilization, so replicas stay up
// for at least that long after the burst. SPIKE_IDLE defaults to 6 minutes, past that
// window, so the scale-down happens while k6 still runs and its timeline lines up with
// the gateway's and autoscaler's metrics. Set SPIKE_IDLE longer than the model's
// idleToZeroSeconds to watch it scale to zero, and keep SPIKE_IDLE_RATE at 0 for that,
// because any request restarts the idle timer.
//
// A share of the requests (SHEDDABLE_SHARE) is sent with `x-priority: sheddable`. When
// the queue is full the gateway evicts those first with 429 and Retry-After, so for them
// 429 is an expected response: it does not count in http_req_failed, and its headers and
// body are checked instead. The sheddable_rejected rate reports how many were shed.
//
// Settings (environment variables, defaults in lib/config.js): BASE_URL, CHAT_MODEL,
// PRIORITY, REQUEST_TIMEOUT_MS, PROMPT_TOKENS, MAX_TOKENS, MAX_ERROR_RATE, CHAT_P95_MS,
// CHAT_P99_MS, PRE_ALLOCATED_VUS, MAX_VUS, SPIKE_BASE_RATE, SPIKE_WARMUP, SPIKE_RATE,
// SPIKE_RAMP, SPIKE_HOLD, SPIKE_IDLE, SPIKE_IDLE_RATE, SHEDDABLE_SHARE.

import { Rate } from 'k6/metrics';

import { readDuration, readNumber, readTarget } from './lib/config.js';
import { sendChat } from './lib/requests.js';
import { readVuPool } from './lib/scenarios.js';
import { SUMMARY_TREND_STATS, arrivalThresholds, readLatencyBudget, requestThresholds, tagSelector } from './lib/thresholds.js';

const target = readTarget(__ENV);
const promptTokens = readNumber(__ENV, 'PROMPT_TOKENS', { min: 1, integer: true });
const maxTokens = readNumber(__ENV, 'MAX_TOKENS', { min: 1, integer: true });
const maxErrorRate = readNumber(__ENV, 'MAX_ERROR_RATE', { min: 0, max: 1 });
const sheddableShare = readNumber(__ENV, 'SHEDDABLE_SHARE', { min: 0, max: 1 });
const baseRate = readNumber(__ENV, 'SPIKE_BASE_RATE', { min: 0, integer: true });
const spikeRate = readNumber(__ENV, 'SPIKE_RATE', { min: 1, integer: true });
const idleRate = readNumber(__ENV, 'SPIKE_IDLE_RATE', { min: 0, integer: true });
const spikeRamp = readDuration(__ENV, 'SPIKE_RAMP');
const vuPool = readVuPool(__ENV);

// The sheddable stream exists only when its priority differs from the main one.
const sendsSheddable = sheddableShare > 0 && target.priority !== 'sheddable';
const sheddableTags = { model: target.chatModel, protocol: 'openai', operation: 'chat', priority: 'sheddable' };

/** Share of sheddable requests that the gateway rejected with 429. */
const sheddableRejected = new Rate('sheddable_rejected');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: baseRate,
      timeUnit: '1s',
      ...vuPool,
      stages: [
        { duration: readDuration(__ENV, 'SPIKE_WARMUP'), target: baseRate },
        { duration: spikeRamp, target: spikeRate },
        { duration: readDuration(__ENV, 'SPIKE_HOLD'), target: spikeRate },
        { duration: spikeRamp, target: idleRate },
        { duration: readDuration(__ENV, 'SPIKE_IDLE'), target: idleRate },
      ],
    },
  },
  thresholds: arrivalThresholds(
    maxErrorRate,
    requestThresholds(
      { model: target.chatModel, protocol: 'openai', operation: 'chat', priority: target.priority },
      readLatencyBudget(__ENV, 'chat'),
      maxErrorRate,
    ),
    // Sheddable requests get no latency budget: their fast 429s would make any
    // percentile meaningless. A failure here is a 5xx or a timeout, never a shed.
    sendsSheddable ? { [`http_req_failed{${tagSelector(sheddableTags)}}`]: [`rate<=${maxErrorRate}`] } : {},
  ),
  summaryTrendStats: [...SUMMARY_TREND_STATS],
};

/** Sends one chat request, sheddable with probability SHEDDABLE_SHARE. */
export default function spike() {
  if (sendsSheddable && Math.random() < sheddableShare) {
    const response = sendChat(target, { promptTokens, maxTokens, priority: 'sheddable', allowShed: true });
    sheddableRejected.add(response.status === 429, sheddableTags);
    return;
  }
  sendChat(target, { promptTokens, maxTokens });
}
