import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { systemClock } from '../../shared/src/clock.ts';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { REPOSITORY_ROOT } from '../../loadtest/bench/cli-support.ts';
import { runReplay } from '../../loadtest/bench/replay-run.ts';
import { loadTrace, scheduleRows, selectWindow } from '../../loadtest/bench/trace.ts';

const TRACE = path.resolve(REPOSITORY_ROOT, '..', 'shared', 'traces', 'AzureLLMInferenceTrace_conv.csv');
const REPLAY_ENTRY = path.join(REPOSITORY_ROOT, 'loadtest', 'bench', 'replay.ts');
// A fast replica, so a few seconds of trace finish in about a second.
const FAST_REPLICA = ['--protocol', 'openai', '--model', 'replay-chat', '--port', '0', '--prefill-base-ms', '1', '--prefill-per-token-ms', '0', '--itl-base-ms', '0.2', '--itl-per-running-ms', '0'];

const replicas: SpawnedReplica[] = [];
let healthy: SpawnedReplica;

before(async () => {
  healthy = await spawnReplica(FAST_REPLICA);
  replicas.push(healthy);
});

after(async () => {
  await Promise.all(replicas.map((replica) => replica.kill()));
});

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node loadtest/bench/replay.ts ...args` and collects its output. */
function runReplayCli(args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REPLAY_ENTRY, ...args], { cwd: REPOSITORY_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('replay answers every request once', async () => {
  const trace = await loadTrace(TRACE);
  // 15 s of trace at 30x: about 70 requests within half a second.
  const rows = scheduleRows(selectWindow(trace.rows, { startMinute: 0, minutes: 0.25 }), 30);
  await healthy.resetStats();
  const result = await runReplay({
    baseUrl: healthy.url,
    model: 'replay-chat',
    rows,
    stream: false,
    maxPromptTokens: 2048,
    maxInFlight: 256,
    overflow: 'skip',
    requestTimeoutMs: 30_000,
    maxWallMs: 60_000,
    clock: systemClock,
    requestIdPrefix: 'replay-test',
  });
  const { tally, schedule } = result;
  assert.ok(rows.length > 10, `window holds ${rows.length} rows`);
  assert.equal(schedule.sent, rows.length);
  assert.equal(tally.sent, rows.length);
  assert.equal(tally.answered, rows.length);
  assert.equal(tally.succeeded, rows.length);
  assert.equal(tally.lost, 0);
  assert.equal(tally.transportErrors, 0);
  assert.equal(tally.requestIdMismatches, 0);
  assert.equal(result.hitWallCap, false);

  const stats = await healthy.stats();
  assert.equal(stats.received, rows.length);
  assert.equal(stats.completed, rows.length);
  const ids = stats.requestIds.filter((id) => id.startsWith('replay-test-'));
  assert.equal(new Set(ids).size, rows.length);
  assert.equal(ids.length, rows.length);
});

test('replay cli streams and exits 0', async () => {
  const run = await runReplayCli([
    '--trace', '../shared/traces/AzureLLMInferenceTrace_conv.csv',
    '--url', healthy.url, '--model', 'replay-chat', '--speed', '60', '--minutes', '0.25', '--stream', '--no-progress',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /OK: every one of \d+ requests got exactly one response/);
  assert.match(run.stdout, /lost \(no answer\)\s+0/);
  assert.match(run.stdout, /time to first byte/);
});

test('replay cli exits 1 on unanswered requests', async () => {
  const hanging = await spawnReplica([...FAST_REPLICA, '--fault-hang-rate', '1']);
  replicas.push(hanging);
  const run = await runReplayCli([
    '--trace', TRACE, '--url', hanging.url, '--model', 'replay-chat', '--speed', '60', '--minutes', '0.1',
    '--timeout-ms', '1000', '--drain-seconds', '20', '--no-progress',
  ]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stdout, /FAILED: \d+ of \d+ requests got no response/);
  assert.match(run.stdout, /transport UND_ERR_HEADERS_TIMEOUT/);
});

test('replay cli rejects a remote url', async () => {
  const run = await runReplayCli(['--trace', TRACE, '--url', 'http://10.1.2.3:8080']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--url: 10\.1\.2\.3 is not a loopback address/);
});
