// Runs the init context of a k6 script in Node, so tests can read the `options` that k6
// would read. k6 cannot run on this machine, so its modules are replaced by stand-ins.
// They provide what init code uses (SharedArray, metric constructors) and throw when VU
// code (http, check, execution) is called. The globals `__ENV` and `open` keep k6's
// meaning: `open` reads a whole file in the init context.
import { readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const K6_DIR = `${REPO_ROOT}loadtest/k6/`;
/** The Azure LLM inference traces, kept next to the repository and not inside it. */
export const TRACES_DIR = fileURLToPath(new URL('../../../shared/traces/', import.meta.url));

const STUB_SCHEME = 'k6-stub:';

const VU_ONLY = `function vuOnly(name) { return () => { throw new Error(name + ' is VU code and must not run in the init context'); }; }`;

// Module sources by k6 import specifier.
const STUBS: Record<string, string> = {
  k6: `${VU_ONLY}
export const check = vuOnly('check()');
export const fail = vuOnly('fail()');
export const sleep = vuOnly('sleep()');
export const group = vuOnly('group()');`,
  'k6/http': `${VU_ONLY}
export function expectedStatuses(...statuses) { return { statuses }; }
const http = { get: vuOnly('http.get()'), post: vuOnly('http.post()'), request: vuOnly('http.request()'), expectedStatuses };
export default http;`,
  'k6/execution': `${VU_ONLY}
const exec = {};
for (const name of ['scenario', 'vu', 'instance', 'test']) {
  Object.defineProperty(exec, name, { get: vuOnly('exec.' + name) });
}
export default exec;`,
  'k6/data': `export class SharedArray {
  constructor(name, build) {
    if (typeof name !== 'string' || name === '') throw new Error('SharedArray needs a name');
    const items = build();
    if (!Array.isArray(items)) throw new Error('SharedArray callback must return an array');
    return Object.freeze(items.map((item) => Object.freeze(item)));
  }
}`,
  'k6/metrics': `${VU_ONLY}
class Metric { constructor(name) { this.name = name; this.add = vuOnly(name + '.add()'); } }
export class Counter extends Metric {}
export class Gauge extends Metric {}
export class Rate extends Metric {}
export class Trend extends Metric {}`,
};

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier in STUBS) {
      return { url: `${STUB_SCHEME}${specifier}`, shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
  load(url, context, nextLoad) {
    if (url.startsWith(STUB_SCHEME)) {
      return { format: 'module', source: STUBS[url.slice(STUB_SCHEME.length)], shortCircuit: true };
    }
    return nextLoad(url, context);
  },
});

const globals = globalThis as { __ENV?: Record<string, string>; open?: (path: string) => string };
globals.open = (path: string) => readFileSync(path, 'utf8');

let loads = 0;

/** The exports of a k6 script, as far as the tests read them. */
export interface ScriptModule {
  options: K6Options;
  default?: unknown;
  setup?: unknown;
  [name: string]: unknown;
}

export interface K6Scenario {
  executor: string;
  exec?: string;
  rate?: number;
  startRate?: number;
  timeUnit?: string;
  duration?: string;
  iterations?: number;
  vus?: number;
  preAllocatedVUs?: number;
  maxVUs?: number;
  stages?: { duration: string; target: number }[];
}

export interface K6Options {
  scenarios: Record<string, K6Scenario>;
  thresholds: Record<string, (string | { threshold: string; abortOnFail?: boolean })[]>;
  tags?: Record<string, string>;
  summaryTrendStats?: string[];
}

/**
 * Evaluates a script's init context with `env` as `__ENV` and returns its exports. Each
 * call loads a fresh instance of the script, because k6 scripts read `__ENV` at the top
 * level.
 */
export async function loadScript(fileName: string, env: Record<string, string> = {}): Promise<ScriptModule> {
  globals.__ENV = { ...env };
  loads += 1;
  const url = new URL(`${pathToFileURL(`${K6_DIR}${fileName}`).href}?load=${loads}`);
  return (await import(url.href)) as ScriptModule;
}

/** Imports a plain library module of loadtest/k6/lib, typed by the caller. */
export async function loadLibrary<T>(fileName: string): Promise<T> {
  return (await import(pathToFileURL(`${K6_DIR}lib/${fileName}`).href)) as T;
}

/** Converts a k6 duration such as `1m30s` or `250ms` to milliseconds. */
export function durationMs(duration: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let matched = '';
  for (const part of duration.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (units[part[2] ?? ''] ?? Number.NaN);
    matched += part[0];
  }
  if (matched !== duration || matched === '') {
    throw new Error(`invalid k6 duration ${JSON.stringify(duration)}`);
  }
  return total;
}
