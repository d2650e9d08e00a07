// Start-up failures of the autoscaler process: bad input ends with one plain line on
// stderr that names the flag or key and the value, and exit code 2.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../autoscaler/src/main.ts', import.meta.url));
const GATEWAY = 'http://127.0.0.1:1';

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the autoscaler until it exits; kills it after timeoutMs, which fails the test. */
function run(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<Exit> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, LOG_LEVEL: 'info', KUBECONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`autoscaler still running after ${timeoutMs} ms with ${args.join(' ')}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function assertUsageExit(exit: Exit, pattern: RegExp): void {
  assert.equal(exit.code, 2, `exit code, stderr: ${exit.stderr}`);
  const lines = exit.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${exit.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(exit.stdout, /"level":60/, 'no fatal log line');
}

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'as-startup-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('startup rejects an unknown LOG_LEVEL', async () => {
  assertUsageExit(await run(['--gateway', GATEWAY], { LOG_LEVEL: 'loud' }), /^invalid LOG_LEVEL "loud": expected one of trace, debug, info, warn, error, fatal, silent$/);
});

test('startup names a missing client CA flag', async () => {
  const exit = await run(['--gateway', GATEWAY, '--client-ca', '/nonexistent']);
  assertUsageExit(exit, /^--client-ca: cannot read "\/nonexistent": no such file or directory \(ENOENT\); pass the PEM file/);
  assert.equal(exit.stderr.split('ENOENT').length, 2, 'the error code appears once');
});

test('startup takes negative numbers as values', async () => {
  assertUsageExit(await run(['--gateway', GATEWAY, '--gpu-budget', '-3']), /^--gpu-budget: expected an integer of 0 or more, got "-3"$/);
  assertUsageExit(await run(['--gateway', GATEWAY, '--port', '-1']), /^--port: expected an integer from 0 to 65535, got "-1"$/);
});

test('startup rejects a host that is no address', async () => {
  assertUsageExit(await run(['--gateway', GATEWAY, '--host', '999.1.1.1']), /^--host: expected an IP address.*got "999\.1\.1\.1"$/);
});

test('startup names a missing clientCAFile key', async () => {
  // The kubeconfig points at a closed loopback port; nothing is contacted before the files are read.
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    'apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "http://127.0.0.1:1" } }]\nusers: [{ name: u, user: { token: t } }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\ncurrent-context: x\n',
  );
  const config = join(dir, 'autoscaler.yaml');
  writeFileSync(
    config,
    `gateways: { static: ["${GATEWAY}"] }\nadminPort: 0\nlistenHost: 127.0.0.1\nmetricsApi: { port: 0, clientCAFile: ${join(dir, 'missing-ca.crt')} }\nmodels:\n  - name: m\n    target: { kind: Deployment, namespace: ml, name: m }\n    targetPerReplica: 1\n`,
  );
  assertUsageExit(await run(['--config', config], { KUBECONFIG: kubeconfig }), /^metricsApi\.clientCAFile: cannot read ".*missing-ca\.crt": no such file or directory \(ENOENT\)/);
});

test('startup reports a junk kubeconfig once', async () => {
  const kubeconfig = join(dir, 'junk-kubeconfig');
  writeFileSync(kubeconfig, 'junk: [\n :: {{\n');
  const config = join(dir, 'insecure.yaml');
  writeFileSync(config, `gateways: { static: ["${GATEWAY}"] }\nmetricsApi: { insecureHttp: true }\nmodels:\n  - name: m\n    target: { kind: Deployment, namespace: ml, name: m }\n    targetPerReplica: 1\n`);
  assertUsageExit(await run(['--config', config], { KUBECONFIG: kubeconfig }), /^cannot configure the Kubernetes client: .*junk-kubeconfig/);
});
