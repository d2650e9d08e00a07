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
  assertUsageExit(await run(['--gateway', GATEWAY, '--gpu-budget', '-3']), /^--gpu-budget: expected a decimal integer of 0 or more, got "-3"$/);
  assertUsageExit(await run(['--gateway', GATEWAY, '--port', '-1']), /^--port: expected a decimal integer from 0 to 65535, got "-1"$/);
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

test('startup rejects a gateway URL with a path or credentials', async () => {
  assertUsageExit(await run(['--gateway', 'http://127.0.0.1:9090/admin']), /^--gateway: expected a gateway admin origin .*got "http:\/\/127\.0\.0\.1:9090\/admin", which has the path \/admin .*; pass the origin http:\/\/127\.0\.0\.1:9090 instead$/);
  const exit = await run(['--gateway', 'http://ops:s3cret@127.0.0.1:9090']);
  assertUsageExit(exit, /^--gateway: .*got "http:\/\/\*\*\*@127\.0\.0\.1:9090\/", which contains credentials/);
  assert.doesNotMatch(exit.stderr + exit.stdout, /s3cret/);
});

test('startup rejects loose numbers and repeated flags', async () => {
  assertUsageExit(await run(['--gateway', GATEWAY, '--port', '']), /^--port: expected a decimal integer from 0 to 65535, got ""$/);
  assertUsageExit(await run(['--gateway', GATEWAY, '--port', '0x10']), /^--port: expected a decimal integer from 0 to 65535, got "0x10"$/);
  assertUsageExit(await run(['--gateway', GATEWAY, '--port', '0', '--port', '1']), /^--port was given more than once \("0" and "1"\); pass it once$/);
});
