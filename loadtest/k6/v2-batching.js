// V2 batching test: many small KServe V2 infer requests (V2_ROWS rows each, 1 by default)
// at a constant arrival rate. Requests pile up while the replicas are busy, so the
// gateway merges them into batches of up to its maxBatchSize rows.
//
//   k6 run loadtest/k6/v2-batching.js
//   k6 run -e V2_RATE=1000 -e V2_INPUTS='[{"name":"INPUT0","datatype":"FP32","shape":[-1,16]}]' loadtest/k6/v2-batching.js
//
// k6 measures each request on its own and cannot observe how the gateway grouped them. Read
// the batch sizes from the gateway's infergate_batch_size histogram (rows per upstream
// call). What k6 does verify is the split back: every response must carry the request's
// own id and exactly its own number of rows, which fails if the gateway returns another
// request's slice of a merged batch.
//
// The input tensors come from V2_INPUTS when set, else from the model's metadata
// (GET /v2/models/{model}), fetched once in setup().
//
// Settings (environment variables, defaults in lib/config.js): BASE_URL, V2_MODEL,
// V2_INPUTS, V2_ROWS, V2_RATE, V2_DURATION, V2_P95_MS, V2_P99_MS, PRIORITY,
// REQUEST_TIMEOUT_MS, MAX_ERROR_RATE, PRE_ALLOCATED_VUS, MAX_VUS.

import { readDuration, readNumber, readString, readTarget } from './lib/config.js';
import { resolveV2InputSpecs, sendV2Infer } from './lib/requests.js';
import { constantArrivalScenario, readVuPool } from './lib/scenarios.js';
import { SUMMARY_TREND_STATS, arrivalThresholds, readLatencyBudget, requestThresholds } from './lib/thresholds.js';

/** @typedef {import('./lib/payloads.js').V2InputSpec} V2InputSpec */

const target = readTarget(__ENV);
const rows = readNumber(__ENV, 'V2_ROWS', { min: 1, integer: true });
const maxErrorRate = readNumber(__ENV, 'MAX_ERROR_RATE', { min: 0, max: 1 });
const vuPool = readVuPool(__ENV);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    infer: constantArrivalScenario(readNumber(__ENV, 'V2_RATE', { min: 1, integer: true }), readDuration(__ENV, 'V2_DURATION'), vuPool),
  },
  thresholds: arrivalThresholds(
    maxErrorRate,
    requestThresholds(
      { model: target.v2Model, protocol: 'v2', operation: 'infer', priority: target.priority },
      readLatencyBudget(__ENV, 'infer'),
      maxErrorRate,
    ),
  ),
  summaryTrendStats: [...SUMMARY_TREND_STATS],
};

/**
 * Resolves the V2 input tensors once, before the load starts.
 * @returns {{specs: V2InputSpec[]}}
 */
export function setup() {
  return { specs: resolveV2InputSpecs(target, readString(__ENV, 'V2_INPUTS')) };
}

/**
 * Sends one small infer request.
 * @param {{specs: V2InputSpec[]}} data
 */
export default function infer(data) {
  sendV2Infer(target, data.specs, rows);
}
