import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseReplicaArgs } from '../../loadtest/replica/config.ts';
import { spawnReplica, type SpawnedReplica } from '../../loadtest/replica/spawn.ts';
import { getJson, postJson, sseData, waitFor } from './helpers.ts';

const MAIN = fileURLToPath(new URL('../../loadtest/replica/main.ts', import.meta.url));

/**
 * promtool lint findings that the upstream metric names themselves cause: vLLM's names
 * contain ':', and Triton's counters have no `_total` suffix and use `_us` or `_count`.
 * Anything else (and any parse error, exit status 1) fails the test.
 */
const UPSTREAM_LINT = [
  /^vllm:\S+ metric names should not contain ':'$/,
  /^nv_inference_\S+ counter metrics should have "_total" suffix$/,
  /^nv_inference_\S+_us metric names should not contain abbreviated units$/,
  /^nv_inference_(\S+_)?count non-histogram and non-summary metrics should not have "_count" suffix$/,
];

function promtool(body: string): { status: number | null; findings: string[] } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 20_000 });
  const findings = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.trim() !== '');
  return { status: result.status, findings };
}

describe('metrics', () => {
  const replicas: SpawnedReplica[] = [];
  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
  });

  test('promtool accepts both protocols', async () => {
    const fast = ['--prefill-base-ms', '1', '--itl-base-ms', '1', '--exec-base-ms', '1'];
    const openai = await spawnReplica(['--port', '0', '--protocol', 'openai', '--model', 'chat', ...fast]);
    const v2 = await spawnReplica(['--port', '0', '--protocol', 'v2', '--model', 'ranker', ...fast]);
    replicas.push(openai, v2);
    await postJson(`${openai.url}/v1/chat/completions`, { model: 'chat', messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
    await postJson(`${v2.url}/v2/models/ranker/infer`, { inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [2, 1], data: [1, 2] }] });

    const openaiBody = (await getJson(`${openai.url}/metrics`)).body as string;
    assert.match(openaiBody, /^vllm:num_requests_running\{model_name="chat"\} 0$/m);
    assert.match(openaiBody, /^vllm:num_requests_waiting\{model_name="chat"\} 0$/m);
    assert.match(openaiBody, /^# TYPE vllm:kv_cache_usage_perc gauge$/m);
    assert.match(openaiBody, /^vllm:time_to_first_token_seconds_count\{model_name="chat"\} 1$/m);
    assert.match(openaiBody, /^vllm:e2e_request_latency_seconds_count\{model_name="chat"\} 1$/m);
    assert.match(openaiBody, /^vllm:generation_tokens_total\{model_name="chat"\} 3$/m);

    const v2Body = (await getJson(`${v2.url}/metrics`)).body as string;
    assert.match(v2Body, /^nv_inference_request_success\{model="ranker",version="1"\} 1$/m);
    assert.match(v2Body, /^nv_inference_count\{model="ranker",version="1"\} 2$/m);
    assert.match(v2Body, /^nv_inference_exec_count\{model="ranker",version="1"\} 1$/m);
    assert.match(v2Body, /^# TYPE nv_inference_pending_request_count gauge$/m);
    assert.match(v2Body, /^# TYPE nv_inference_queue_duration_us counter$/m);

    for (const [label, body] of [['openai', openaiBody], ['v2', v2Body]] as const) {
      const { status, findings } = promtool(body);
      assert.ok(status === 0 || status === 3, `${label}: promtool exit ${status}: ${findings.join('; ')}`);
      const unexpected = findings.filter((line) => !UPSTREAM_LINT.some((pattern) => pattern.test(line)));
      assert.deepEqual(unexpected, [], label);
    }
  });
});

describe('process lifecycle', () => {
  test('sigterm drains in-flight requests', async () => {
    const replica = await spawnReplica(['--port', '0', '--prefill-base-ms', '1', '--itl-base-ms', '20', '--itl-per-running-ms', '0']);
    const body = { model: 'sim-model', messages: [{ role: 'user', content: 'drain' }], max_tokens: 15 };
    const plain = postJson(`${replica.url}/v1/chat/completions`, body);
    const stream = fetch(`${replica.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
    }).then((response) => response.text());
    await waitFor('two running', async () => (await replica.stats()).running === 2);
    const exitCode = replica.stop('SIGTERM');
    const [reply, streamed] = await Promise.all([plain, stream]);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.usage.completion_tokens, 15);
    assert.equal(sseData(streamed).at(-1), '[DONE]');
    assert.equal(await exitCode, 0);
  });

  test('invalid flag exits 2', async () => {
    for (const [args, pattern] of [
      [['--max-batch', '0'], /--max-batch 0/],
      [['--protocol', 'grpc'], /--protocol "grpc"/],
      [['--itl-base-ms', 'fast'], /--itl-base-ms "fast"/],
      [['--fault-error-status', '404'], /--fault-error-status 404/],
      [['--colour'], /--colour/],
    ] as const) {
      const child = spawn(process.execPath, [MAIN, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', (exit) => resolve(exit)));
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, pattern);
    }
  });

  test('--help prints every flag with its default and exits 0', () => {
    const result = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 0);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^Usage: npm run replica -- \[flags\]/);
    assert.match(result.stdout, /--itl-base-ms MS +inter-token latency with no other sequence running, in milliseconds \(default: 10\)/);
    assert.match(result.stdout, /--max-batch N +.*\(default: 32\)/);
    assert.match(result.stdout, /--fault-retry-after-s S +.*\(default: unset\)/);
    for (const flag of ['protocol', 'model', 'host', 'port', 'max-concurrency', 'max-waiting', 'gpu-streams', 'startup-delay-ms', 'prefill-base-ms', 'prefill-per-token-ms', 'itl-per-running-ms', 'exec-base-ms', 'exec-per-item-ms', 'default-max-tokens', 'embedding-dimensions', 'max-model-len', 'kv-cache-tokens', 'keep-alive-timeout-ms', 'fault-error-rate', 'fault-error-status', 'fault-reset-rate', 'fault-reset-after-chunks', 'fault-hang-rate', 'fault-exit-after-ms']) {
      assert.match(result.stdout, new RegExp(`\\n  --${flag} `), flag);
    }
  });

  test('foreign address exits 1 naming flags', () => {
    // 192.0.2.1 is reserved for documentation (RFC 5737): binding to it fails locally, and no packet is sent.
    const result = spawnSync(process.execPath, [MAIN, '--host', '192.0.2.1', '--port', '0'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 1);
    assert.equal(result.stderr, 'replica: cannot listen on 192.0.2.1 port 0 (--host, --port): the address is not an address of this machine; pass --host with one of its addresses, such as 127.0.0.1\n');
  });

  test('spawnReplica rejects failed start', async () => {
    await assert.rejects(spawnReplica(['--max-waiting', '-1']), /did not start: exited with code 2/);
  });
});

describe('config parsing', () => {
  test('defaults and repeated models', () => {
    const config = parseReplicaArgs(['--model', 'a', '--model', 'b', '--itl-base-ms', '2.5']);
    assert.deepEqual(config.models, ['a', 'b']);
    assert.equal(config.itlBaseMs, 2.5);
    assert.equal(config.protocol, 'openai');
    assert.equal(config.port, 8000);
    assert.equal(config.keepAliveTimeoutMs, 5000);
    assert.equal(config.defaultMaxTokens, undefined);
  });

  test('errors name flag and value', () => {
    assert.throws(() => parseReplicaArgs(['--fault-error-rate', '1.5']), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /--fault-error-rate 1.5/);
      return true;
    });
    assert.throws(() => parseReplicaArgs(['--max-concurrency', '2.5']), /--max-concurrency 2.5: expected an integer/);
    assert.throws(() => parseReplicaArgs(['--model', 'a', '--model', 'a']), /must be unique/);
  });

  test('numbers are plain decimals in range', () => {
    assert.throws(() => parseReplicaArgs(['--port', '-1']), /invalid --port -1: expected a value from 0 to 65535$/);
    assert.throws(() => parseReplicaArgs(['--itl-base-ms', '-10']), /invalid --itl-base-ms -10: expected a value from 0 to 60000/);
    for (const raw of ['0x10', '1e3', ' 5', '', '5ms']) {
      assert.throws(() => parseReplicaArgs(['--max-model-len', raw]), new RegExp(`invalid --max-model-len ${JSON.stringify(raw)}: expected a decimal number from 2 to 10000000`), raw);
    }
    assert.equal(parseReplicaArgs(['--itl-base-ms', '.5']).itlBaseMs, 0.5);
  });

  test('host must be an address of this machine', () => {
    assert.throws(() => parseReplicaArgs(['--host', 'notahost']), /invalid --host "notahost": expected an IP address of this machine/);
    assert.equal(parseReplicaArgs(['--host', '::1']).host, '::1');
    assert.equal(parseReplicaArgs(['--host', 'localhost']).host, 'localhost');
  });
});
