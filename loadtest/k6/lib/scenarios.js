// Scenario settings shared by the arrival-rate scripts: the VU pool that k6 allocates for
// each scenario, and the constant-arrival-rate scenario built from it. Plain ES module
// without k6 imports, so Node tests can load it as well.

import { readNumber } from './config.js';

/** @typedef {import('./config.js').Environment} Environment */

/**
 * VUs of an arrival-rate scenario: k6 starts with `preAllocatedVUs` and adds more, up to
 * `maxVUs`, when every allocated VU is still busy at an arrival.
 * @typedef {object} VuPool
 * @property {number} preAllocatedVUs
 * @property {number} maxVUs
 */

/**
 * Reads PRE_ALLOCATED_VUS and MAX_VUS. MAX_VUS may not be below PRE_ALLOCATED_VUS.
 * @param {Environment} env
 * @returns {VuPool}
 */
export function readVuPool(env) {
  const preAllocatedVUs = readNumber(env, 'PRE_ALLOCATED_VUS', { min: 1, integer: true });
  const maxVUs = readNumber(env, 'MAX_VUS', { min: preAllocatedVUs, integer: true });
  return { preAllocatedVUs, maxVUs };
}

/**
 * Returns a `constant-arrival-rate` scenario that starts `rate` iterations per second for
 * `duration`.
 * @param {number} rate Iterations per second.
 * @param {string} duration k6 duration such as 30s.
 * @param {VuPool} pool
 * @returns {{executor: 'constant-arrival-rate', rate: number, timeUnit: string, duration: string, preAllocatedVUs: number, maxVUs: number}}
 */
export function constantArrivalScenario(rate, duration, pool) {
  return {
    executor: 'constant-arrival-rate',
    rate,
    timeUnit: '1s',
    duration,
    preAllocatedVUs: pool.preAllocatedVUs,
    maxVUs: pool.maxVUs,
  };
}
