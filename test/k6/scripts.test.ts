// Tests of the k6 scripts' exported options: each script's init context runs in Node (see
// k6-init-context.ts), and the tests read the scenarios and thresholds k6 would use.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { TRACES_DIR, durationMs, loadLibrary, loadScript } from './k6-init-context.ts';
import type { K6Options } from './k6-init-context.ts';

interface ConfigLibrary {
  DEFAULTS: Readonly<Record<string, string>>;
}

interface TraceLibrary {
  parseTrace(text: string, source?: string): { offsetMs: number }[];
}

const { DEFAULTS } = await loadLibrary<ConfigLibrary>('config.js');
const SCRIPTS = ['smoke.js', 'ramp.js', 'spike.js', 'soak.js', 'trace-replay.js', 'v2-batching.js', 'streaming.js'];
const CONV_TRACE = `${TRACES_DIR}AzureLLMInferenceTrace_conv.csv`;
const traceMissing = existsSync(CONV_TRACE) ? false : `Azure trace file not found: ${CONV_TRACE}`;

/** Environment every script can start with; trace-replay.js needs a trace file. */
function baseEnv(script: string): Record<string, string> {
  return script === 'trace-replay.js' ? { TRACE_FILE: CONV_TRACE } : {};
}

/** Threshold keys of one metric that select a sub-metric by tags. */
function taggedKeys(options: K6Options, metric: string): string[] {
  return Object.keys(options.thresholds).filter((key) => key.startsWith(`${metric}{`));
}

/** Parses the tags of a sub-metric threshold key such as `m{a:1,b:2}`. */
function keyTags(key: string): Record<string, string> {
  const inner = /\{(.*)\}$/.exec(key)?.[1] ?? '';
  return Object.fromEntries(inner.split(',').map((pair) => pair.split(':') as [string, string]));
}

describe('every script', () => {
  for (const script of SCRIPTS) {
    test(`${script} has tagged thresholds`, { skip: script === 'trace-replay.js' ? traceMissing : false }, async () => {
      const { options } = await loadScript(script, baseEnv(script));

      assert.deepEqual(options.thresholds.http_req_failed?.[0], `rate<=${DEFAULTS.MAX_ERROR_RATE}`);
      const latencyKeys = taggedKeys(options, 'http_req_duration');
      assert.ok(latencyKeys.length > 0, 'no tagged http_req_duration threshold');
      for (const key of latencyKeys) {
        const tags = keyTags(key);
        assert.ok(['openai', 'v2'].includes(tags.protocol ?? ''), `${key} has no protocol tag`);
        assert.ok((tags.model ?? '') !== '', `${key} has no model tag`);
        assert.equal(tags.expected_response, 'true');
        assert.match(String(options.thresholds[key]?.[0]), /^p\(95\)<\d+$/);
        assert.match(String(options.thresholds[key]?.[1]), /^p\(99\)<\d+$/);
      }
      assert.ok(taggedKeys(options, 'http_req_failed').length > 0, 'no tagged http_req_failed threshold');
    });

    test(`${script} scenarios name exported functions`, { skip: script === 'trace-replay.js' ? traceMissing : false }, async () => {
      const module = await loadScript(script, baseEnv(script));

      const scenarios = Object.values(module.options.scenarios);
      assert.ok(scenarios.length > 0);
      for (const scenario of scenarios) {
        assert.equal(typeof module[scenario.exec ?? 'default'], 'function', `exec ${scenario.exec ?? 'default'} is not exported`);
      }
    });
  }

  test('model names come from the environment', async () => {
    const { options } = await loadScript('smoke.js', { CHAT_MODEL: 'qwen-7b', EMBEDDINGS_MODEL: 'e5', V2_MODEL: 'densenet' });

    const models = new Set(taggedKeys(options, 'http_req_duration').map((key) => keyTags(key).model));
    assert.deepEqual([...models].sort(), ['densenet', 'e5', 'qwen-7b']);
  });

  test('latency budget comes from the environment', async () => {
    const { options } = await loadScript('streaming.js', { STREAM_P95_MS: '1234', STREAM_P99_MS: '4321' });

    const [key] = taggedKeys(options, 'http_req_duration');
    assert.deepEqual(options.thresholds[key ?? ''], ['p(95)<1234', 'p(99)<4321']);
  });

  test('invalid number stops the init context', async () => {
    await assert.rejects(loadScript('ramp.js', { RAMP_PEAK_RATE: 'fast' }), /invalid environment variable RAMP_PEAK_RATE="fast": expected an integer >= 1/);
  });

  test('p99 budget below p95 is rejected', async () => {
    await assert.rejects(loadScript('v2-batching.js', { V2_P95_MS: '900', V2_P99_MS: '100' }), /V2_P99_MS=100 is below V2_P95_MS=900/);
  });
});

describe('ramp.js', () => {
  test('stages follow the ramp variables', async () => {
    const { options } = await loadScript('ramp.js', { RAMP_START_RATE: '3', RAMP_PEAK_RATE: '77', RAMP_UP: '45s', RAMP_HOLD: '2m', RAMP_DOWN: '15s' });

    const scenario = options.scenarios.ramp;
    assert.equal(scenario?.executor, 'ramping-arrival-rate');
    assert.equal(scenario?.startRate, 3);
    assert.deepEqual(scenario?.stages, [
      { duration: '45s', target: 77 },
      { duration: '2m', target: 77 },
      { duration: '15s', target: 0 },
    ]);
  });

  test('critical share adds thresholds for critical requests', async () => {
    const { options } = await loadScript('ramp.js');

    const priorities = taggedKeys(options, 'http_req_duration').map((key) => keyTags(key).priority);
    assert.deepEqual(priorities.sort(), ['critical', 'standard']);
  });

  test('zero critical share keeps one request stream', async () => {
    const { options } = await loadScript('ramp.js', { CRITICAL_SHARE: '0' });

    assert.equal(taggedKeys(options, 'http_req_duration').length, 1);
  });
});

describe('spike.js', () => {
  test('default idle period outlasts the 300 s scale-down window', async () => {
    const { options } = await loadScript('spike.js');

    const stages = options.scenarios.spike?.stages ?? [];
    const idle = stages.at(-1);
    assert.ok(durationMs(idle?.duration ?? '0s') > 300_000, `idle stage ${JSON.stringify(idle)} is too short`);
    assert.equal(idle?.target, 0);
  });

  test('burst reaches SPIKE_RATE', async () => {
    const { options } = await loadScript('spike.js', { SPIKE_RATE: '321', SPIKE_IDLE: '20m' });

    const stages = options.scenarios.spike?.stages ?? [];
    assert.equal(Math.max(...stages.map((stage) => stage.target)), 321);
    assert.equal(stages.at(-1)?.duration, '20m');
  });

  test('sheddable requests get an error-rate threshold only', async () => {
    const { options } = await loadScript('spike.js');

    const sheddable = Object.keys(options.thresholds).filter((key) => key.includes('priority:sheddable'));
    assert.deepEqual(sheddable, [`http_req_failed{model:${DEFAULTS.CHAT_MODEL},protocol:openai,operation:chat,priority:sheddable}`]);
  });
});

describe('soak.js', () => {
  test('one constant-rate scenario per request type', async () => {
    const { options } = await loadScript('soak.js', { SOAK_DURATION: '2h' });

    assert.deepEqual(Object.keys(options.scenarios).sort(), ['chat', 'embeddings', 'infer', 'stream']);
    for (const scenario of Object.values(options.scenarios)) {
      assert.equal(scenario.executor, 'constant-arrival-rate');
      assert.equal(scenario.duration, '2h');
    }
  });

  test('rate 0 leaves a request type out', async () => {
    const { options } = await loadScript('soak.js', { SOAK_V2_RATE: '0', SOAK_EMBEDDINGS_RATE: '0' });

    assert.deepEqual(Object.keys(options.scenarios).sort(), ['chat', 'stream']);
    assert.equal(taggedKeys(options, 'http_req_duration').some((key) => key.includes('protocol:v2')), false);
  });

  test('all rates 0 is rejected', async () => {
    const env = { SOAK_CHAT_RATE: '0', SOAK_STREAM_RATE: '0', SOAK_EMBEDDINGS_RATE: '0', SOAK_V2_RATE: '0' };

    await assert.rejects(loadScript('soak.js', env), /every SOAK_\*_RATE is 0/);
  });

  test('high error rate aborts the run', async () => {
    const { options } = await loadScript('soak.js');

    assert.deepEqual(options.thresholds.http_req_failed?.[1], { threshold: 'rate<0.5', abortOnFail: true, delayAbortEval: '1m' });
  });
});

describe('trace-replay.js', { skip: traceMissing }, () => {
  test('stages replay the trace window at the given speed', async () => {
    const trace = await loadLibrary<TraceLibrary>('trace.js');
    const rows = trace.parseTrace(readFileSync(CONV_TRACE, 'utf8')).filter((row) => row.offsetMs < 120_000);

    const { options } = await loadScript('trace-replay.js', { TRACE_FILE: CONV_TRACE, TRACE_SPEED: '20', TRACE_MINUTES: '2' });

    const scenario = options.scenarios.replay;
    assert.equal(scenario?.executor, 'ramping-arrival-rate');
    assert.equal(scenario?.timeUnit, '50ms');
    let started = 0;
    for (const stage of scenario?.stages ?? []) {
      started += (durationMs(stage.duration) / 50) * stage.target;
    }
    assert.equal(Math.round(started), rows.length);
    assert.equal(options.tags?.trace, 'AzureLLMInferenceTrace_conv.csv');
  });

  test('missing TRACE_FILE is rejected', async () => {
    await assert.rejects(loadScript('trace-replay.js'), /TRACE_FILE is not set/);
  });

  test('window past the end of the trace is rejected', async () => {
    await assert.rejects(loadScript('trace-replay.js', { TRACE_FILE: CONV_TRACE, TRACE_START_MINUTE: '600' }), /has no rows between minute 600 and minute 610/);
  });
});

describe('v2-batching.js and streaming.js', () => {
  test('v2-batching sends at V2_RATE for V2_DURATION', async () => {
    const { options } = await loadScript('v2-batching.js', { V2_RATE: '750', V2_DURATION: '90s' });

    assert.equal(options.scenarios.infer?.rate, 750);
    assert.equal(options.scenarios.infer?.duration, '90s');
    assert.deepEqual(
      taggedKeys(options, 'http_req_duration').map((key) => keyTags(key)),
      [{ model: DEFAULTS.V2_MODEL, protocol: 'v2', operation: 'infer', priority: 'standard', expected_response: 'true' }],
    );
  });

  test('streaming thresholds select the stream operation', async () => {
    const { options } = await loadScript('streaming.js', { STREAM_RATE: '25' });

    assert.equal(options.scenarios.stream?.rate, 25);
    assert.deepEqual(taggedKeys(options, 'http_req_duration').map((key) => keyTags(key).operation), ['chat_stream']);
  });
});
