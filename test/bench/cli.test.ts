// Exit statuses and messages of the replay and bench entry points for bad input, an absent
// server, failed requests and interrupts. Every target is a replica on loopback port 0. bench
// starts its servers in one test only, which closes its output early.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { REPOSITORY_ROOT } from '../../loadtest/bench/cli-support.ts';

const TRACE = path.resolve(REPOSITORY_ROOT, '..', 'shared', 'traces', 'AzureLLMInferenceTrace_conv.csv');
const REPLAY_ENTRY = path.join(REPOSITORY_ROOT, 'loadtest', 'bench', 'replay.ts');
const BENCH_ENTRY = path.join(REPOSITORY_ROOT, 'loadtest', 'bench', 'main.ts');
const FAST_REPLICA = ['--protocol', 'openai', '--model', 'cli-chat', '--port', '0', '--prefill-base-ms', '1', '--prefill-per-token-ms', '0', '--itl-base-ms', '0.2', '--itl-per-running-ms', '0'];
const HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';
const ROW = '2023-11-16 18:15:46.6805900';

const replicas: SpawnedReplica[] = [];
const children: ChildProcess[] = [];
let healthy: SpawnedReplica;
let scratch: string;

before(async () => {
  healthy = await spawnReplica(FAST_REPLICA);
  replicas.push(healthy);
  scratch = await mkdtemp(path.join(os.tmpdir(), 'infergate-cli-test-'));
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(replicas.map((replica) => replica.kill()));
  await rm(scratch, { recursive: true, force: true });
});

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts an entry point; `output` reads what it has printed so far. */
function startCli(entry: string, args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; done: Promise<CliRun>; output: () => string } {
  const child = spawn(process.execPath, [entry, ...args], { cwd: REPOSITORY_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done, output: () => stdout };
}

const runCli = (entry: string, args: string[]): Promise<CliRun> => startCli(entry, args).done;

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Returns a loopback port with nothing listening: bound to port 0, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  return address.port;
}

const NOT_TRACES: Array<[string, string, RegExp]> = [
  ['empty', '', /line 1: expected header/],
  ['header-only', `${HEADER}\n`, /no data rows after the header/],
  ['letters', `${HEADER}\n${ROW},abc,3\n`, /line 2: invalid ContextTokens "abc"/],
  ['negative', `${HEADER}\n${ROW},-4,3\n`, /line 2: invalid ContextTokens "-4"/],
  ['unsorted', `${HEADER}\n2023-11-16 18:15:47.0000000,1,1\n${ROW},1,1\n`, /line 3: TIMESTAMP .* earlier than the previous row/],
];

for (const [name, text, message] of NOT_TRACES) {
  test(`replay exits 2 without a stack for the ${name} trace file`, async () => {
    const file = path.join(scratch, `${name}.csv`);
    await writeFile(file, text);
    const run = await runCli(REPLAY_ENTRY, ['--trace', file, '--url', healthy.url, '--model', 'cli-chat']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^replay: --trace: /);
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  });
}

test('replay exits 2 without a stack for a directory and a markdown file', async () => {
  for (const target of [scratch, path.join(REPOSITORY_ROOT, 'README.md')]) {
    const run = await runCli(REPLAY_ENTRY, ['--trace', target, '--url', healthy.url, '--model', 'cli-chat']);
    assert.equal(run.code, 2, target);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  }
});

test('replay exits 1 when the model lookup cannot reach the server', async () => {
  const port = await closedPort();
  const run = await runCli(REPLAY_ENTRY, ['--trace', TRACE, '--url', `http://127.0.0.1:${port}`, '--minutes', '0.05']);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /GET http:\/\/127\.0\.0\.1:\d+\/v1\/models failed \(connect ECONNREFUSED[^)]*\); start the gateway, or pass --url with the address of a running one/);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
});

test('replay accepts a negative value after a space and range-checks it', async () => {
  const run = await runCli(REPLAY_ENTRY, ['--trace', TRACE, '--speed', '-5']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--speed: -5 is out of range; expected a number from 0\.01 to 10000/);
});

test('replay warns when no request succeeds, and the ratio gate fails the run', async () => {
  const args = ['--trace', TRACE, '--url', healthy.url, '--model', 'no-such-model', '--speed', '60', '--minutes', '0.05', '--no-progress'];
  const warned = await runCli(REPLAY_ENTRY, args);
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stdout, /OK: every one of \d+ requests got exactly one response/);
  assert.match(warned.stdout, /WARNING: only 0 of \d+ requests succeeded \(0\.0%\)/);
  const gated = await runCli(REPLAY_ENTRY, [...args, '--min-success-ratio', '0.5']);
  assert.equal(gated.code, 1, gated.stderr);
  assert.match(gated.stdout, /FAILED: only 0 of \d+ requests succeeded \(0\.0%\), below --min-success-ratio 0\.5/);
});

test('replay prints a partial report and exits 130 on SIGINT', async () => {
  const hanging = await spawnReplica([...FAST_REPLICA, '--fault-hang-rate', '1']);
  replicas.push(hanging);
  const cli = startCli(REPLAY_ENTRY, ['--trace', TRACE, '--url', hanging.url, '--model', 'cli-chat', '--speed', '20', '--minutes', '1', '--timeout-ms', '60000', '--no-progress']);
  await waitFor(async () => (await hanging.stats()).received >= 3, 'three requests at the hanging replica');
  cli.child.kill('SIGINT');
  const run = await cli.done;
  assert.equal(run.code, 130, run.stderr);
  assert.match(run.stdout, /INTERRUPTED: partial report; [1-9]\d* outstanding requests were aborted/);
  assert.match(run.stdout, /aborted by the client on purpose\s+[1-9]/);
  assert.match(run.stdout, /lost \(no answer\)\s+0\n/);
  assert.match(run.stdout, /balanced/);
});

test('bench rejects a flag of another benchmark, naming both', async () => {
  const run = await runCli(BENCH_ENTRY, ['soak', '--rate', '5']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--rate: belongs to the overhead benchmark and does not apply to soak/);
});

test('bench rejects soak flags in the default run', async () => {
  const run = await runCli(BENCH_ENTRY, ['--minutes', '1']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--minutes: belongs to the soak benchmark and does not apply to overhead and batching/);
});

test('bench range-checks a negative value after a space', async () => {
  const run = await runCli(BENCH_ENTRY, ['overhead', '--rate', '-1']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /--rate: -1 is out of range; expected a number from 1 to 100000/);
});

/** Returns the command lines of running processes that mention text. */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      if (commandLine.includes(text)) found.push(commandLine);
    } catch {
      // The process ended while the list was read.
    }
  }
  return found;
}

test('bench stops its servers when its output closes', async () => {
  // The run's folder is created under TMPDIR, and the gateway's --config path inside it shows
  // in the gateway's command line, so both tell whether the run cleaned up after itself.
  const tmp = path.join(scratch, 'closed-output');
  await mkdir(tmp);
  const cli = startCli(BENCH_ENTRY, ['overhead', '--rounds', '20', '--round-seconds', '1', '--warmup-seconds', '1', '--rate', '100'], { ...process.env, TMPDIR: tmp });
  await waitFor(async () => (await processesMentioning(tmp)).some((line) => line.includes('gateway/src/main.ts')), 'the gateway of the run', 60_000);
  cli.child.stdout?.destroy();
  cli.child.stderr?.destroy();
  const code = await new Promise<number | null>((resolve) => cli.child.once('exit', (exitCode) => resolve(exitCode)));
  assert.equal(code, 1);
  assert.deepEqual(await readdir(tmp), []);
  assert.deepEqual(await processesMentioning(tmp), []);
});
