// Tests of the environment readers and threshold builders shared by the k6 scripts, and
// of the README's table of environment variables.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { REPO_ROOT, loadLibrary } from './k6-init-context.ts';

type Env = Record<string, string | undefined>;

interface ConfigLibrary {
  DEFAULTS: Readonly<Record<string, string>>;
  readString(env: Env, name: string): string;
  readNumber(env: Env, name: string, range?: { min?: number; max?: number; integer?: boolean }): number;
  readDuration(env: Env, name: string): string;
  readBaseUrl(env: Env, name: string): string;
  readTarget(env: Env): { baseUrl: string; chatModel: string; requestTimeoutMs: number; priority: string };
}

interface ThresholdLibrary {
  tagSelector(tags: Record<string, string | undefined>): string;
  requestThresholds(tags: Record<string, string>, budget: { p95Ms: number; p99Ms: number }, maxErrorRate: number): Record<string, unknown[]>;
  globalThresholds(maxErrorRate: number): Record<string, unknown[]>;
  mergeThresholds(...tables: Record<string, unknown[]>[]): Record<string, unknown[]>;
}

const config = await loadLibrary<ConfigLibrary>('config.js');
const thresholds = await loadLibrary<ThresholdLibrary>('thresholds.js');

describe('environment readers', () => {
  test('unset and blank values take the default', () => {
    assert.equal(config.readString({}, 'BASE_URL'), 'http://127.0.0.1:8080');
    assert.equal(config.readString({ CHAT_MODEL: '  ' }, 'CHAT_MODEL'), config.DEFAULTS.CHAT_MODEL);
  });

  test('target defaults point at the local demo', () => {
    const target = config.readTarget({});

    assert.equal(target.baseUrl, 'http://127.0.0.1:8080');
    assert.equal(target.priority, 'standard');
    assert.equal(target.requestTimeoutMs, 60_000);
  });

  test('base URL loses trailing slashes', () => {
    assert.equal(config.readBaseUrl({ BASE_URL: 'http://gateway.ml.svc:8080//' }, 'BASE_URL'), 'http://gateway.ml.svc:8080');
  });

  test('base URL without scheme is rejected', () => {
    assert.throws(() => config.readBaseUrl({ BASE_URL: '127.0.0.1:8080' }, 'BASE_URL'), /invalid environment variable BASE_URL="127\.0\.0\.1:8080": expected an http:\/\/ or https:\/\/ URL/);
  });

  test('number outside its range names the variable, value and default', () => {
    assert.throws(() => config.readNumber({ MAX_ERROR_RATE: '1.5' }, 'MAX_ERROR_RATE', { min: 0, max: 1 }), {
      message: 'invalid environment variable MAX_ERROR_RATE="1.5": expected a number >= 0 <= 1 (default "0.01")',
    });
  });

  test('fraction where an integer is required is rejected', () => {
    assert.throws(() => config.readNumber({ MAX_VUS: '2.5' }, 'MAX_VUS', { min: 1, integer: true }), /MAX_VUS="2\.5": expected an integer >= 1/);
  });

  test('durations use k6 syntax', () => {
    assert.equal(config.readDuration({ SOAK_DURATION: '1h30m' }, 'SOAK_DURATION'), '1h30m');
    assert.throws(() => config.readDuration({ SOAK_DURATION: '90' }, 'SOAK_DURATION'), /SOAK_DURATION="90": expected a duration such as 45s/);
  });

  test('unknown priority is rejected', () => {
    assert.throws(() => config.readTarget({ PRIORITY: 'urgent' }), /PRIORITY="urgent": expected one of critical, standard, sheddable/);
  });
});

describe('threshold builders', () => {
  test('request thresholds select the tagged sub-metrics', () => {
    const table = thresholds.requestThresholds({ model: 'm', protocol: 'v2', operation: 'infer' }, { p95Ms: 200, p99Ms: 400 }, 0.05);

    assert.deepEqual(table, {
      'http_req_failed{model:m,protocol:v2,operation:infer}': ['rate<=0.05'],
      'http_req_duration{model:m,protocol:v2,operation:infer,expected_response:true}': ['p(95)<200', 'p(99)<400'],
      'checks{model:m,protocol:v2,operation:infer}': ['rate>=0.95'],
    });
  });

  test('check pass rate has no float noise', () => {
    assert.deepEqual(thresholds.globalThresholds(0.07).checks, ['rate>=0.93']);
  });

  test('tag value with a comma is rejected', () => {
    assert.throws(() => thresholds.tagSelector({ model: 'a,b' }), /tag model="a,b" cannot be used in a k6 threshold/);
  });

  test('duplicate threshold keys are rejected', () => {
    assert.throws(() => thresholds.mergeThresholds({ checks: ['rate>0.9'] }, { checks: ['rate>0.5'] }), /threshold checks is defined twice/);
  });
});

describe('loadtest/README.md', () => {
  const readme = readFileSync(`${REPO_ROOT}loadtest/README.md`, 'utf8');

  test('documents every environment variable with its default', () => {
    for (const [name, value] of Object.entries(config.DEFAULTS)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
      assert.ok(row !== undefined, `README has no table row for ${name}`);
      const expectedCell = value === '' ? '(none)' : `\`${value}\``;
      assert.ok(row.includes(`| ${expectedCell} |`), `README row for ${name} does not show the default ${expectedCell}: ${row}`);
    }
  });

  test('describes every script', () => {
    for (const script of ['smoke.js', 'ramp.js', 'spike.js', 'soak.js', 'trace-replay.js', 'v2-batching.js', 'streaming.js']) {
      assert.ok(readme.includes(`k6 run loadtest/k6/${script}`) || readme.includes(`loadtest/k6/${script}`), `README does not mention ${script}`);
    }
  });
});
