// Type-checks the k6 scripts against @types/k6 with tsconfig.k6.json, and proves that
// the check catches a type error in a k6 script.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { REPO_ROOT } from './k6-init-context.ts';

const run = promisify(execFile);
// Run through this process's Node, because the tsc launcher's shebang would pick the first
// `node` on PATH.
const TSC = `${REPO_ROOT}node_modules/typescript/bin/tsc`;
const TIMEOUT_MS = 120_000;

interface TscResult {
  code: number;
  output: string;
}

/** Runs tsc with `project` and returns its exit code and combined output. */
async function typeCheck(project: string): Promise<TscResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [TSC, '--noEmit', '-p', project], { cwd: REPO_ROOT, timeout: TIMEOUT_MS });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failure = error as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof failure.code !== 'number') throw error;
    return { code: failure.code, output: (failure.stdout ?? '') + (failure.stderr ?? '') };
  }
}

test('k6 scripts pass the type check', { timeout: TIMEOUT_MS }, async () => {
  const result = await typeCheck('tsconfig.k6.json');

  assert.equal(result.output, '');
  assert.equal(result.code, 0);
});

test('type error in a k6 script fails the check', { timeout: TIMEOUT_MS }, async () => {
  const result = await typeCheck('test/k6/fixtures/tsconfig.type-error.json');

  assert.notEqual(result.code, 0);
  assert.match(result.output, /type-error\.js\(6,\d+\): error TS2322/);
});
