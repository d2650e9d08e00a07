import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chatBody, metricValue, postJson, startReplica, startTestGateway, waitFor, waitReady, type SpawnedReplica } from './helpers.ts';

const MAIN = new URL('../../gateway/src/main.ts', import.meta.url).pathname;
const REPOSITORY_ROOT = new URL('../../', import.meta.url).pathname;

describe('scale from zero', () => {
  const replicas: SpawnedReplica[] = [];
  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
  });

  test('held request is served once a replica becomes ready', async (t) => {
    const replica = await startReplica('openai', 'cold', ['--startup-delay-ms', '1500']);
    replicas.push(replica);
    const gateway = await startTestGateway([{ name: 'cold', protocol: 'openai', replicas: { static: [replica.url] }, scaleFromZero: { enabled: true, holdTimeoutMs: 20_000, maxHeld: 5 } }]);
    t.after(() => gateway.close(0));
    const pending = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('cold'), { 'x-request-id': 'held-1' });
    const held = await waitFor(() => gateway.state().models[0]!.held === 1, 'the request to be held');
    assert.equal(held, true);
    assert.equal(gateway.state().models[0]!.queued.standard, 0, 'held requests are not counted as queued');
    const response = await pending;
    assert.equal(response.status, 200);
    assert.equal(gateway.state().models[0]!.held, 0);
    assert.ok((await replica.stats()).requestIds.includes('held-1'));
  });

  test('hold timeout and hold limit answer 503 with Retry-After', async (t) => {
    // Port 9 on loopback (discard) has no listener here, so the replica never becomes ready.
    const gateway = await startTestGateway([{ name: 'never', protocol: 'openai', replicas: { static: ['http://127.0.0.1:9'] }, scaleFromZero: { enabled: true, holdTimeoutMs: 400, maxHeld: 1 } }]);
    t.after(() => gateway.close(0));
    const first = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('never'));
    await waitFor(() => gateway.state().models[0]!.held === 1, 'the first request to be held');
    const second = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('never'));
    assert.equal(second.status, 503);
    assert.equal(second.body.error.code, 'hold_limit_reached');
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    const timedOut = await first;
    assert.equal(timedOut.status, 503);
    assert.equal(timedOut.body.error.code, 'no_replicas_ready');
    assert.ok(Number(timedOut.headers.get('retry-after')) >= 1);
    assert.equal(metricValue(await gateway.metricsText(), 'infergate_requests_total', { model: 'never', outcome: 'rejected_no_replicas' }), 2);
  });

  test('no ready replica without scale from zero answers 503 at once', async (t) => {
    const gateway = await startTestGateway([{ name: 'down', protocol: 'openai', replicas: { static: ['http://127.0.0.1:9'] } }]);
    t.after(() => gateway.close(0));
    const response = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('down'));
    assert.equal(response.status, 503);
    assert.equal(response.body.error.code, 'no_replicas_ready');
    assert.ok(Number(response.headers.get('retry-after')) >= 1);
  });
});

describe('admin port and shutdown', () => {
  let replica: SpawnedReplica;
  after(async () => {
    await replica?.stop();
  });

  test('admin state matches the contract and metrics pass promtool', async (t) => {
    replica = await startReplica('openai', 'llm', ['--itl-base-ms', '20']);
    const gateway = await startTestGateway([{ name: 'llm', protocol: 'openai', replicas: { static: [replica.url] }, maxInflightPerReplica: 4 }], { name: 'gw-test-0' });
    t.after(() => gateway.close(0));
    await waitReady(gateway);
    assert.equal((await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('llm'))).status, 200);

    const state = (await (await fetch(`${gateway.adminUrl}/admin/state`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(state).sort(), ['gateway', 'models', 'time']);
    assert.equal(state.gateway, 'gw-test-0');
    assert.ok(!Number.isNaN(Date.parse(state.time as string)));
    const model = (state.models as Record<string, unknown>[])[0]!;
    assert.deepEqual(Object.keys(model).sort(), ['arrivalsPerSecond', 'completionsPerSecond', 'held', 'inFlight', 'name', 'oldestQueuedMs', 'protocol', 'queued', 'replicas']);
    assert.deepEqual(model.queued, { critical: 0, standard: 0, sheddable: 0 });
    assert.deepEqual(model.replicas, [{ id: `127.0.0.1:${replica.port}`, state: 'ready', inFlight: 0, limit: 4 }]);
    assert.ok((model.arrivalsPerSecond as number) > 0);

    const metrics = await gateway.metricsText();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool output: ${check.stdout}${check.stderr}`);
    for (const name of ['infergate_requests_total', 'infergate_request_duration_seconds_bucket', 'infergate_queue_wait_seconds_bucket', 'infergate_time_to_first_byte_seconds_bucket', 'infergate_queue_depth', 'infergate_inflight_requests', 'infergate_batch_size_bucket', 'infergate_replicas', 'infergate_upstream_requests_total']) {
      assert.ok(metrics.includes(`\n${name}{`), `metric ${name} is exported`);
    }
    assert.equal(metricValue(metrics, 'infergate_replicas', { model: 'llm', state: 'ready' }), 1);

    const oversized = await fetch(`${gateway.adminUrl}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(100_000) });
    assert.equal(oversized.status, 413);
    assert.deepEqual(await oversized.json(), { error: { message: 'the request body exceeds 16384 bytes; the admin routes take no body', code: 'body_too_large' } });
    const unknown = await fetch(`${gateway.adminUrl}/nothing`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'route_not_found');
  });

  test('default process metrics pass promtool without a warning', async (t) => {
    const gateway = await startTestGateway([{ name: 'llm', protocol: 'openai', replicas: { static: ['http://127.0.0.1:9'] } }], { defaultMetrics: true });
    t.after(() => gateway.close(0));
    const metrics = await gateway.metricsText();
    assert.match(metrics, /\nnodejs_active_handles\{/, 'the per-type handle gauge stays');
    assert.doesNotMatch(metrics, /nodejs_active_(handles|requests|resources)_total/);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool output: ${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`, '');
  });

  test('graceful close finishes in-flight work and refuses new requests', async (t) => {
    replica ??= await startReplica('openai', 'llm', ['--itl-base-ms', '20']);
    const gateway = await startTestGateway([{ name: 'llm', protocol: 'openai', replicas: { static: [replica.url] } }]);
    t.after(() => gateway.close(0));
    await waitReady(gateway);
    const inFlight = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('llm', { max_tokens: 25 }));
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the request to be in flight');
    const closing = gateway.close(10_000);
    await waitFor(async () => (await fetch(`${gateway.adminUrl}/readyz`)).status === 503, 'readiness to turn 503');
    const refused = await postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('llm'), { connection: 'close' });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'shutting_down');
    assert.equal((await inFlight).status, 200);
    await closing;
  });

  test('work left after the grace period ends with outcome shutdown', async () => {
    replica ??= await startReplica('openai', 'llm', ['--itl-base-ms', '20']);
    const gateway = await startTestGateway([{ name: 'llm', protocol: 'openai', replicas: { static: [replica.url] }, maxInflightPerReplica: 1 }]);
    await waitReady(gateway);
    const url = `${gateway.trafficUrl}/v1/chat/completions`;
    const streaming = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chatBody('llm', { stream: true, max_tokens: 400 })) });
    await waitFor(() => gateway.state().models[0]!.inFlight === 1, 'the stream to be in flight');
    const queued = postJson(url, chatBody('llm'));
    await waitFor(() => gateway.state().models[0]!.queued.standard === 1, 'the second request to queue');
    await gateway.close(100);
    const queuedResponse = await queued;
    assert.equal(queuedResponse.status, 503);
    assert.equal(queuedResponse.body.error.code, 'shutting_down');
    const streamText = await (await streaming).text();
    assert.match(streamText, /event: error\ndata: .*shutting_down/);
  });
});

interface GatewayProcess {
  child: ChildProcess;
  trafficUrl: string;
  adminUrl: string;
  output: string[];
  exited: Promise<number | null>;
}

/**
 * Runs main.ts, or `npm start` with viaNpm, and resolves once the "gateway started" log line
 * gives its URLs.
 */
function runGateway(args: string[], env: NodeJS.ProcessEnv = {}, viaNpm = false): Promise<GatewayProcess> {
  const [file, prefix] = viaNpm ? ['npm', ['start', '--']] : [process.execPath, [MAIN]];
  const child = spawn(file, [...prefix, ...args], { cwd: REPOSITORY_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      if (!line.includes('"gateway started"')) return;
      const entry = JSON.parse(line) as { trafficUrl: string; adminUrl: string };
      clearTimeout(timer);
      resolve({ child, trafficUrl: entry.trafficUrl, adminUrl: entry.adminUrl, output, exited });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${output.join('\n')}`));
    });
  });
}

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('gateway process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'infergate-gw-'));
  const children: ChildProcess[] = [];
  let replica: SpawnedReplica | undefined;

  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await replica?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('invalid config exits 2 naming key and value', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'models:\n  - name: m\n    protocol: grpc\n    replicas: { static: ["http://127.0.0.1:1"] }\n    queue: { maxSize: 0 }\n');
    const result = spawnSync(process.execPath, [MAIN, '--config', path], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /models\.0\.protocol: "grpc"/);
    assert.match(result.stderr, /models\.0\.queue\.maxSize: 0/);
  });

  test('shared traffic and admin port exits 2', () => {
    const flags = spawnSync(process.execPath, [MAIN, '--port', '22185', '--admin-port', '22185'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(flags.status, 2);
    assert.match(flags.stderr, /--port and --admin-port: both are 22185; the traffic and admin listeners need different ports/);
    assert.doesNotMatch(flags.stderr, /EADDRINUSE|\n\s+at /);
    const path = join(dir, 'same-port.yaml');
    writeFileSync(path, 'server: { port: 22185, adminPort: 22185 }\nmodels:\n  - { name: m, protocol: openai, replicas: { static: ["http://127.0.0.1:9"] } }\n');
    const file = spawnSync(process.execPath, [MAIN, '--config', path], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(file.status, 2);
    assert.match(file.stderr, /server\.port and server\.adminPort: both are 22185/);
  });

  // One plain log line naming the address, no stack trace, exit 1.
  test('port in use exits 1', async (t) => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as AddressInfo).port;
    const path = join(dir, 'busy.yaml');
    writeFileSync(path, `server: { host: 127.0.0.1, port: ${port}, adminPort: 0 }\nmodels:\n  - { name: m, protocol: openai, replicas: { static: ["http://127.0.0.1:9"] } }\n`);
    const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN, '--config', path], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.once('close', (status) => resolve({ status, stdout, stderr }));
    });
    assert.equal(result.status, 1);
    assert.equal(result.stderr, '');
    const errors = result.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.level === 50);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.msg, `cannot listen on 127.0.0.1:${port} for traffic: the port is already in use; stop the other process or choose another port`);
    assert.equal(errors[0]!.code, 'EADDRINUSE');
    assert.equal(errors[0]!.err, undefined, 'no error object, so no stack trace');
  });

  test('negative port exits 2 naming the flag', () => {
    const result = spawnSync(process.execPath, [MAIN, '--port', '-1'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--port: "-1" is invalid; expected a port number from 0 to 65535/);
  });

  test('missing config file exits 2 naming the path', () => {
    const result = spawnSync(process.execPath, [MAIN], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, INFERGATE_CONFIG: join(dir, 'absent.yaml') } });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /absent\.yaml/);
  });

  test('SIGTERM lets in-flight work finish, then exits 0', async () => {
    replica = await startReplica('openai', 'proc', ['--itl-base-ms', '20']);
    const path = join(dir, 'gateway.yaml');
    writeFileSync(path, `server: { host: 127.0.0.1, shutdownGraceMs: 10000 }\nmodels:\n  - name: proc\n    protocol: openai\n    replicas: { static: ["${replica.url}"] }\n    health: { intervalMs: 200, timeoutMs: 150 }\n`);
    const gateway = await runGateway(['--config', path, '--port', '0', '--admin-port', '0']);
    children.push(gateway.child);
    await waitFor(async () => (await fetch(`${gateway.adminUrl}/admin/state`).then((r) => r.json()) as { models: { replicas: { state: string }[] }[] }).models[0]!.replicas[0]!.state === 'ready', 'the replica to be ready');
    const inFlight = postJson(`${gateway.trafficUrl}/v1/chat/completions`, chatBody('proc', { max_tokens: 25 }));
    await waitFor(async () => (await replica!.stats()).running === 1, 'the request to run');
    gateway.child.kill('SIGTERM');
    assert.equal((await inFlight).status, 200);
    assert.equal(await gateway.exited, 0);
    assert.ok(gateway.output.some((line) => line.includes('"gateway stopped"')));
  });

  test('SIGTERM exits 0 after stdout closed', async () => {
    const path = join(dir, 'closed-stdout.yaml');
    writeFileSync(path, 'server: { host: 127.0.0.1 }\nmodels:\n  - { name: m, protocol: openai, replicas: { static: ["http://127.0.0.1:9"] } }\n');
    const gateway = await runGateway(['--config', path, '--port', '0', '--admin-port', '0']);
    children.push(gateway.child);
    // The reader of stdout goes away, as when the output is piped into head.
    gateway.child.stdout!.destroy();
    gateway.child.kill('SIGTERM');
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still running after 15 s'), 15_000).unref());
    assert.equal(await Promise.race([gateway.exited, timeout]), 0);
  });

  test('a stop signal while the demo starts stops the replicas it already started', async () => {
    const child = spawn(process.execPath, [MAIN, '--port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const output: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => output.push(line));
    createInterface({ input: child.stderr! }).on('line', (line) => output.push(line));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const childrenOf = (pid: number): number[] => {
      try {
        return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((text) => text !== '').map(Number);
      } catch {
        return [];
      }
    };
    // The first replica process exists as soon as the demo spawns it, long before all six listen.
    const replicaPids = await waitFor(() => (childrenOf(child.pid!).length > 0 ? childrenOf(child.pid!) : undefined), 'the demo to spawn a replica');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output.join('\n'));
    assert.ok(output.some((line) => line.includes('stop signal received during start-up')), output.join('\n'));
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (const pid of replicaPids) await waitFor(() => !alive(pid), `replica process ${pid} to exit`);
  });

  /** Starts the demo and returns it with the ports of its replicas, once all of them are ready. */
  async function readyDemo(viaNpm: boolean): Promise<{ demo: GatewayProcess; replicaPorts: number[] }> {
    const demo = await runGateway(['--port', '0', '--admin-port', '0'], {}, viaNpm);
    children.push(demo.child);
    const state = await waitFor(async () => {
      const body = (await (await fetch(`${demo.adminUrl}/admin/state`)).json()) as { models: { replicas: { id: string; state: string }[] }[] };
      return body.models.every((model) => model.replicas.length > 0 && model.replicas.every((r) => r.state === 'ready')) ? body : undefined;
    }, 'demo replicas to be ready', 20_000);
    return { demo, replicaPorts: state.models.flatMap((model) => model.replicas.map((r) => Number(r.id.split(':')[1]))) };
  }

  test('npm start passes SIGTERM to the demo', async () => {
    const { demo, replicaPorts } = await readyDemo(true);
    // npm passes the signal to its script's shell, which the script replaces with node by exec.
    demo.child.kill('SIGTERM');
    await demo.exited;
    const trafficPort = Number(new URL(demo.trafficUrl).port);
    for (const port of [trafficPort, ...replicaPorts]) assert.equal(await waitFor(() => portIsClosed(port), `port ${port} to close`), true);
    assert.ok(demo.output.some((line) => line.includes('"gateway stopped"')), demo.output.join('\n'));
  });

  test('replicas of a killed demo stop', async () => {
    const { demo, replicaPorts } = await readyDemo(false);
    demo.child.kill('SIGKILL');
    await demo.exited;
    for (const port of replicaPorts) assert.equal(await waitFor(() => portIsClosed(port), `replica port ${port} to close`), true);
  });

  test('demo serves three models and stops its replicas', async () => {
    const demo = await runGateway(['--port', '0', '--admin-port', '0']);
    children.push(demo.child);
    await waitFor(() => demo.output.some((line) => line.includes('curl -s')), 'the demo banner');
    assert.ok(demo.output.some((line) => line.includes(`traffic: ${demo.trafficUrl}`)));
    const state = await waitFor(async () => {
      const body = (await (await fetch(`${demo.adminUrl}/admin/state`)).json()) as { models: { name: string; protocol: string; replicas: { id: string; state: string }[] }[] };
      return body.models.every((model) => model.replicas.every((r) => r.state === 'ready')) ? body : undefined;
    }, 'demo replicas to be ready', 20_000);
    assert.deepEqual(
      state.models.map((model) => [model.name, model.protocol, model.replicas.length]),
      [
        ['demo-chat', 'openai', 2],
        ['demo-embeddings', 'openai', 2],
        ['demo-v2', 'v2', 2],
      ],
    );
    assert.equal((await postJson(`${demo.trafficUrl}/v1/chat/completions`, chatBody('demo-chat'))).status, 200);
    demo.child.kill('SIGTERM');
    assert.equal(await demo.exited, 0);
    const ports = state.models.flatMap((model) => model.replicas.map((r) => Number(r.id.split(':')[1])));
    for (const port of ports) assert.equal(await waitFor(() => portIsClosed(port), `replica port ${port} to close`), true);
  });
});
