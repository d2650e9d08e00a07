import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_DEFAULTS, SERVER_DEFAULTS } from '../../gateway/src/config/defaults.ts';
import { buildConfig, ConfigError, loadConfigFile, withPorts } from '../../gateway/src/config/load.ts';

const minimal = { models: [{ name: 'm', protocol: 'openai', replicas: { static: ['http://127.0.0.1:8000/'] } }] };

function problemsOf(input: unknown): string[] {
  try {
    buildConfig(input);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.problems];
  }
  assert.fail('expected a ConfigError');
}

describe('gateway config', () => {
  test('defaults fill every key', () => {
    const config = buildConfig(minimal);
    assert.deepEqual(config.server, SERVER_DEFAULTS);
    const model = config.models[0]!;
    assert.deepEqual(model.replicas, { kind: 'static', urls: ['http://127.0.0.1:8000'] });
    assert.deepEqual(model.queue, MODEL_DEFAULTS.queue);
    assert.deepEqual(model.batching, MODEL_DEFAULTS.batching);
    assert.equal(model.health.path, '/health');
    assert.equal(model.maxInflightPerReplica, 32);
  });

  test('V2 models probe the V2 readiness path', () => {
    const config = buildConfig({ models: [{ name: 'v', protocol: 'v2', replicas: { static: ['http://127.0.0.1:8000'] } }] });
    assert.equal(config.models[0]!.health.path, '/v2/health/ready');
  });

  test('result is frozen', () => {
    const config = buildConfig(minimal);
    assert.equal(Object.isFrozen(config), true);
    assert.equal(Object.isFrozen(config.models[0]!.queue), true);
  });

  test('errors name key path, value and what is allowed', () => {
    const problems = problemsOf({ server: { port: 70000 }, models: [{ name: 'm', protocol: 'grpc', replicas: { static: ['http://127.0.0.1:1'] }, queue: { maxSize: 0 } }] });
    assert.ok(problems.some((p) => p.startsWith('server.port: 70000 is invalid') && p.includes('65535')), problems.join('\n'));
    assert.ok(problems.some((p) => p === 'models.0.protocol: "grpc" is invalid; allowed values are "openai", "v2"'), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('models.0.queue.maxSize: 0 is invalid') && p.includes('greater or equal to 1')), problems.join('\n'));
  });

  test('errors inside a replica source name the field and what is allowed', () => {
    const url = problemsOf({ models: [{ name: 'm', protocol: 'openai', replicas: { static: ['http://a:1', 'ftp://b:2'] } }] });
    assert.deepEqual(url, ['models.0.replicas.static.1: "ftp://b:2" is invalid; expected a base URL like http://host:port, without a path']);
    const port = problemsOf({ models: [{ name: 'm', protocol: 'openai', replicas: { kubernetes: { namespace: 'ml', service: 's', port: 0 } } }] });
    assert.deepEqual(port, ['models.0.replicas.kubernetes.port: 0 is invalid; expected a Service port name or a port number from 1 to 65535']);
  });

  test('pattern errors say what is allowed in words', () => {
    const problems = problemsOf({ models: [{ ...minimal.models[0], name: 'my model', health: { path: 'health' } }] });
    assert.ok(problems.includes('models.0.name: "my model" is invalid; expected a model name of 1 to 256 characters without spaces or slashes'), problems.join('\n'));
    assert.ok(problems.includes('models.0.health.path: "health" is invalid; expected a path starting with /'), problems.join('\n'));
  });

  test('unknown keys are rejected', () => {
    const problems = problemsOf({ models: [{ ...minimal.models[0], queue: { maxsize: 5 } }] });
    assert.ok(problems.some((p) => p.startsWith('models.0.queue.maxsize: unknown key')), problems.join('\n'));
  });

  test('replicas needs exactly one source', () => {
    const both = problemsOf({ models: [{ name: 'm', protocol: 'openai', replicas: { static: ['http://a:1'], kubernetes: { namespace: 'ml', service: 's', port: 'http' } } }] });
    assert.ok(both.some((p) => p.startsWith('models.0.replicas:') && p.includes('exactly one')), both.join('\n'));
    const config = buildConfig({ models: [{ name: 'm', protocol: 'openai', replicas: { kubernetes: { namespace: 'ml', service: 's', port: 'http' } } }] });
    assert.deepEqual(config.models[0]!.replicas, { kind: 'kubernetes', namespace: 'ml', service: 's', port: 'http' });
  });

  test('duplicate model names are rejected', () => {
    const problems = problemsOf({ models: [minimal.models[0], minimal.models[0]] });
    assert.ok(problems.some((p) => p.startsWith('models.1.name: duplicate model name "m"')), problems.join('\n'));
  });

  test('ejection and probe timing must be consistent', () => {
    const problems = problemsOf({ models: [{ ...minimal.models[0], ejection: { baseMs: 5000, maxMs: 1000 }, health: { intervalMs: 100, timeoutMs: 500 } }] });
    assert.ok(problems.some((p) => p.startsWith('models.0.ejection.maxMs: 1000')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('models.0.health.timeoutMs: 500')), problems.join('\n'));
  });

  test('missing models list is reported', () => {
    const problems = problemsOf({});
    assert.ok(problems.some((p) => p.startsWith('models: missing')), problems.join('\n'));
  });

  test('withPorts overrides only the given ports', () => {
    const config = withPorts(buildConfig(minimal), { port: 0 });
    assert.equal(config.server.port, 0);
    assert.equal(config.server.adminPort, SERVER_DEFAULTS.adminPort);
  });

  test('YAML files load and parse errors name the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'infergate-config-'));
    try {
      const good = join(dir, 'good.yaml');
      writeFileSync(good, 'models:\n  - name: m\n    protocol: v2\n    replicas:\n      static: ["http://127.0.0.1:8001"]\n    batching: { maxBatchSize: 8, maxDelayMs: 5 }\n');
      const config = await loadConfigFile(good);
      assert.deepEqual(config.models[0]!.batching, { maxBatchSize: 8, maxDelayMs: 5 });
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, 'models: [\n');
      await assert.rejects(loadConfigFile(bad), (error: Error) => error instanceof ConfigError && error.message.includes('bad.yaml') && error.message.includes('not valid YAML'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
