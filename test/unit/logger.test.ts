import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createLogger, InvalidLogLevelError } from '../../shared/src/logger.ts';

test('logger rejects unknown LOG_LEVEL', () => {
  const saved = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = 'verbose';
  try {
    assert.throws(() => createLogger({ service: 'test' }), InvalidLogLevelError);
    assert.throws(() => createLogger({ service: 'test' }), /invalid LOG_LEVEL "verbose": expected one of trace, debug, info/);
  } finally {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  }
});

test('logger takes the level setting', () => {
  const saved = process.env.LOG_LEVEL;
  delete process.env.LOG_LEVEL;
  try {
    assert.equal(createLogger({ service: 'test', level: 'warn' }).level, 'warn');
  } finally {
    if (saved !== undefined) process.env.LOG_LEVEL = saved;
  }
});

for (const entry of ['gateway/src/main.ts', 'loadtest/replica/main.ts']) {
  test(`${entry} exits 2 on bad LOG_LEVEL`, () => {
    const result = spawnSync(process.execPath, [entry, '--port', '0'], {
      env: { ...process.env, LOG_LEVEL: 'verbose' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /invalid LOG_LEVEL "verbose"/);
    assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/);
  });
}
