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
    assert.ok(problems.some((p) => p === 'models.0.protocol: "grpc" is invalid; it must be one of "openai", "v2"'), problems.join('\n'));
    assert.ok(problems.some((p) => p === 'models.0.queue.maxSize: 0 is invalid; it must be at least 1'), problems.join('\n'));
  });

  test('errors inside a replica source name the field and what is allowed', () => {
    const url = problemsOf({ models: [{ name: 'm', protocol: 'openai', replicas: { static: ['http://a:1', 'ftp://b:2'] } }] });
    assert.deepEqual(url, ['models.0.replicas.static.1: "ftp://b:2" is invalid; the scheme ftp is not supported; use http or https']);
    const port = problemsOf({ models: [{ name: 'm', protocol: 'openai', replicas: { kubernetes: { namespace: 'ml', service: 's', port: 0 } } }] });
    assert.deepEqual(port, ['models.0.replicas.kubernetes.port: 0 is invalid; it must be a Service port name or a port number from 1 to 65535']);
  });

  test('Kubernetes source names are checked at load', () => {
    const problems = problemsOf({ models: [{ name: 'm', protocol: 'openai', replicas: { kubernetes: { namespace: 'a.b', service: '9llama', port: 'Http_Port' } } }] });
    assert.deepEqual(problems, [
      'models.0.replicas.kubernetes.namespace: "a.b" is invalid; it must be a Kubernetes namespace name: at most 63 lowercase letters, digits and inner hyphens',
      'models.0.replicas.kubernetes.service: "9llama" is invalid; it must be a Kubernetes Service name: at most 63 lowercase letters, digits and inner hyphens, starting with a letter',
      'models.0.replicas.kubernetes.port: "Http_Port" is invalid; it must be a port number or a Kubernetes port name (at most 15 lowercase letters, digits and inner hyphens)',
    ]);
    const config = buildConfig({ models: [{ name: 'm', protocol: 'openai', replicas: { kubernetes: { namespace: 'ml', service: 'llama-3', port: 8000 } } }] });
    assert.deepEqual(config.models[0]!.replicas, { kind: 'kubernetes', namespace: 'ml', service: 'llama-3', port: 8000 });
  });

  test('pattern errors say what is allowed in words', () => {
    const problems = problemsOf({ models: [{ ...minimal.models[0], name: 'my model', health: { path: 'health' } }] });
    assert.ok(problems.includes('models.0.name: "my model" is invalid; it must be a name without spaces or \'/\''), problems.join('\n'));
    assert.ok(problems.includes('models.0.health.path: "health" is invalid; it must be a path starting with \'/\''), problems.join('\n'));
  });

  test('every schema keyword is explained in plain words', () => {
    const model = minimal.models[0]!;
    const cases: [string, unknown, string][] = [
      ['minItems', { models: [] }, 'models: [] is invalid; it must contain at least 1 item'],
      ['maximum', { server: { port: 70000 }, models: [model] }, 'server.port: 70000 is invalid; it must be at most 65535'],
      ['minimum', { models: [{ ...model, batching: { maxDelayMs: -1 } }] }, 'models.0.batching.maxDelayMs: -1 is invalid; it must be at least 0'],
      ['type integer', { models: [{ ...model, queue: { timeoutMs: 1.5 } }] }, 'models.0.queue.timeoutMs: 1.5 is invalid; it must be a positive integer (ms)'],
      ['type boolean', { models: [{ ...model, scaleFromZero: { enabled: 'yes' } }] }, 'models.0.scaleFromZero.enabled: "yes" is invalid; it must be a boolean (true or false)'],
      ['type object', { server: 'x', models: [model] }, 'server: "x" is invalid; it must be an object'],
      ['minLength', { server: { host: '' }, models: [model] }, 'server.host: "" is invalid; it must not be empty'],
      ['maxLength', { models: [{ ...model, name: 'x'.repeat(257) }] }, `models.0.name: "${'x'.repeat(257)}" is invalid; it must be at most 256 characters long`],
      ['pattern', { models: [{ ...model, name: 'a/b' }] }, 'models.0.name: "a/b" is invalid; it must be a name without spaces or \'/\''],
      ['enum', { models: [{ ...model, protocol: 'grpc' }] }, 'models.0.protocol: "grpc" is invalid; it must be one of "openai", "v2"'],
      ['required', { models: [{ protocol: 'openai', replicas: model.replicas }] }, 'models.0.name: missing; this key is required'],
      ['additionalProperties', { models: [{ ...model, extra: 1 }] }, 'models.0.extra: unknown key (value 1); remove it or fix its spelling'],
    ];
    for (const [keyword, input, expected] of cases) {
      const problems = problemsOf(input);
      assert.ok(problems.includes(expected), `${keyword}: got\n${problems.join('\n')}`);
      assert.ok(!problems.some((problem) => /expected (string|integer|union)|greater or equal|less or equal|Expected/.test(problem)), `${keyword}: raw schema wording in\n${problems.join('\n')}`);
    }
  });

  test('static replica URLs say what is wrong with them', () => {
    const cases: [string, string][] = [
      ['ftp://x:1', 'the scheme ftp is not supported; use http or https'],
      ['not a url', 'it is not a valid URL; expected a base URL like http://host:port'],
      ['http://user:pw@127.0.0.1:1/x?y', 'credentials (user:password@) are not allowed in a replica URL; remove them'],
      ['http://127.0.0.1:1?y', 'a query string is not allowed in a replica URL; remove it'],
      ['http://127.0.0.1:1/#top', 'a fragment (#...) is not allowed in a replica URL; remove it'],
      ['http://127.0.0.1:1/v1', 'the path /v1 is not allowed; give only scheme, host and port, as the gateway adds the API paths itself'],
    ];
    for (const [url, reason] of cases) {
      const problems = problemsOf({ models: [{ name: 'm', protocol: 'openai', replicas: { static: ['http://127.0.0.1:2', url] } }] });
      assert.deepEqual(problems, [`models.0.replicas.static.1: ${JSON.stringify(url)} is invalid; ${reason}`]);
    }
    const config = buildConfig({ models: [{ name: 'm', protocol: 'openai', replicas: { static: ['https://[::1]:8443/', 'http://replica-0.svc:8000'] } }] });
    assert.deepEqual(config.models[0]!.replicas, { kind: 'static', urls: ['https://[::1]:8443', 'http://replica-0.svc:8000'] });
  });

  test('the traffic and admin listeners may not share a port', () => {
    const problems = problemsOf({ server: { port: 22185, adminPort: 22185 }, models: minimal.models });
    assert.deepEqual(problems, ['server.port and server.adminPort: both are 22185; the traffic and admin listeners need different ports (0 picks a free one)']);
    assert.equal(buildConfig({ server: { port: 0, adminPort: 0 }, models: minimal.models }).server.adminPort, 0);
    assert.throws(() => withPorts(buildConfig(minimal), { port: SERVER_DEFAULTS.adminPort }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, [`--port and server.adminPort: both are ${SERVER_DEFAULTS.adminPort}; the traffic and admin listeners need different ports (0 picks a free one)`]);
      return true;
    });
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

  test('checks between keys run beside schema errors', () => {
    const problems = problemsOf({
      server: { port: 22185, adminPort: 22185, bodyLimitBytes: -1 },
      models: [
        { name: 'a b/c', protocol: 'openai', replicas: { static: ['ftp://x:1'] }, health: { intervalMs: 1000, timeoutMs: 5000 } },
        { name: 'm', protocol: 'openai', replicas: { static: ['http://127.0.0.1:8000'] }, ejection: { baseMs: 'soon', maxMs: 10 } },
        { name: 'm', protocol: 'openai', replicas: { static: ['http://127.0.0.1:8001'] } },
      ],
    });
    const keys = problems.map((problem) => problem.slice(0, problem.indexOf(':')));
    assert.deepEqual(keys.sort(), [
      'models.0.health.timeoutMs',
      'models.0.name',
      'models.0.replicas.static.0',
      'models.1.ejection.baseMs',
      'models.2.name',
      'server.bodyLimitBytes',
      'server.port and server.adminPort',
    ]);
    assert.ok(problems.includes('models.2.name: duplicate model name "m"; names must be unique'), problems.join('\n'));
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
