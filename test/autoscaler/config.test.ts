import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfigText } from '../../autoscaler/src/config/load.ts';
import { parseCommandLine, UsageError } from '../../autoscaler/src/cli.ts';
import { DEFAULTS } from '../../autoscaler/src/config/defaults.ts';

const VALID = `
gateways:
  static: ["http://127.0.0.1:9090"]
metricsApi:
  clientCAFile: /etc/ca/requestheader-client-ca-file
models:
  - name: llama-3-8b
    target: { kind: Deployment, namespace: ml, name: llama }
    targetPerReplica: 8
`;

function problemsOf(text: string): readonly string[] {
  try {
    parseConfigText(text, 'test.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected the config to be rejected');
}

test('config applies defaults', () => {
  const config = parseConfigText(VALID);
  assert.equal(config.mode, 'cluster');
  assert.equal(config.pollIntervalMs, DEFAULTS.pollIntervalMs);
  assert.equal(config.staleAfterMs, DEFAULTS.staleAfterMs);
  assert.equal(config.metricsApi.port, DEFAULTS.metricsApi.port);
  assert.deepEqual(config.metricsApi.allowedNames, []);
  assert.equal(config.gpuBudget, undefined);
  const model = config.models[0]!;
  assert.equal(model.minReplicas, DEFAULTS.model.minReplicas);
  assert.equal(model.scaleDownWindowSeconds, 300);
  assert.equal(model.gpusPerReplica, undefined);
});

test('config result is frozen', () => {
  const config = parseConfigText(VALID);
  assert.equal(Object.isFrozen(config.models[0]!.target), true);
});

test('config error names path, value and allowed kinds', () => {
  const problems = problemsOf(VALID.replace('kind: Deployment', 'kind: Pod'));
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^models\[0\]\.target\.kind: expected one of "Deployment", "StatefulSet", got "Pod"$/);
});

test('config error for a number out of range', () => {
  const problems = problemsOf(VALID.replace('targetPerReplica: 8', 'targetPerReplica: 0'));
  assert.match(problems[0]!, /^models\[0\]\.targetPerReplica: expected a number, > 0, got 0$/);
});

test('config error for an unknown key', () => {
  const problems = problemsOf(`${VALID}pollIntervalMillis: 5\n`);
  assert.match(problems[0]!, /^pollIntervalMillis: unknown key/);
});

test('config error for a missing key', () => {
  const problems = problemsOf(VALID.replace('    targetPerReplica: 8\n', ''));
  assert.match(problems[0]!, /^models\[0\]\.targetPerReplica: missing required key/);
});

test('config error for both gateway sources', () => {
  const text = VALID.replace('  static: ["http://127.0.0.1:9090"]', '  static: ["http://127.0.0.1:9090"]\n  kubernetes: { namespace: infergate, service: gw-admin, port: admin }');
  assert.match(problemsOf(text)[0]!, /^gateways: set exactly one .* got both$/);
});

test('config error for a bad gateway URL', () => {
  const problems = problemsOf(VALID.replace('http://127.0.0.1:9090', 'ftp://gw:21'));
  assert.match(problems[0]!, /^gateways\.static\[0\]: expected a gateway admin origin \(scheme, host and port\), got "ftp:\/\/gw:21", which has the protocol ftp, not http or https; pass an origin such as http:\/\/127\.0\.0\.1:9090$/);
});

test('config error for minReplicas above maxReplicas', () => {
  const problems = problemsOf(VALID.replace('targetPerReplica: 8', 'targetPerReplica: 8\n    minReplicas: 5\n    maxReplicas: 2'));
  assert.match(problems[0]!, /^models\[0\]\.minReplicas: must not exceed maxReplicas \(2\), got 5$/);
});

test('config error for duplicate model names', () => {
  const second = `  - name: llama-3-8b\n    target: { kind: StatefulSet, namespace: ml, name: other }\n    targetPerReplica: 4\n`;
  assert.match(problemsOf(VALID + second)[0]!, /^models\[1\]\.name: duplicate model name "llama-3-8b"$/);
});

test('config error for a model name that is no label value', () => {
  assert.match(problemsOf(VALID.replace('name: llama-3-8b', 'name: meta/llama'))[0]!, /^models\[0\]\.name: .*got "meta\/llama"$/);
});

test('config requires a client CA unless insecure', () => {
  assert.match(problemsOf(VALID.replace('  clientCAFile: /etc/ca/requestheader-client-ca-file', '  port: 7443'))[0]!, /^metricsApi: no client CA is set/);
});

test('config rejects two client CA sources', () => {
  assert.match(problemsOf(VALID.replace('metricsApi:', 'metricsApi:\n  clientCAFromCluster: true'))[0]!, /^metricsApi\.clientCAFromCluster: true reads the client CA from the cluster/);
});

test('config requires cert and key together', () => {
  assert.match(problemsOf(VALID.replace('metricsApi:', 'metricsApi:\n  tlsCertFile: /tls/tls.crt'))[0]!, /set both tlsCertFile and tlsKeyFile/);
});

test('config reports every problem at once', () => {
  const text = VALID.replace('kind: Deployment', 'kind: Job').replace('targetPerReplica: 8', 'targetPerReplica: -1');
  assert.equal(problemsOf(text).length, 2);
});

test('config error for YAML syntax', () => {
  assert.match(problemsOf('gateways: [\n')[0]!, /^YAML syntax/);
});

test('config error for a non-mapping document', () => {
  assert.match(problemsOf('- a\n- b\n')[0]!, /must be a mapping/);
});

test('config file missing names the path', () => {
  assert.throws(() => loadConfigFile('/nonexistent/autoscaler.yaml'), /\/nonexistent\/autoscaler\.yaml[\s\S]*cannot read the file/);
});

test('command line reads INFERGATE_CONFIG', () => {
  const dir = mkdtempSync(join(tmpdir(), 'as-config-'));
  try {
    const file = join(dir, 'autoscaler.yaml');
    writeFileSync(file, VALID);
    const result = parseCommandLine([], { INFERGATE_CONFIG: file });
    assert.equal(result.help, false);
    assert.equal(result.help === false && result.config.models[0]!.name, 'llama-3-8b');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('command line local mode from gateways', () => {
  const result = parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--gateway', 'http://127.0.0.1:9091', '--insecure-http', '--port', '0'], {});
  assert.equal(result.help, false);
  if (result.help) return;
  assert.equal(result.config.mode, 'local');
  assert.deepEqual(result.config.gateways.static, ['http://127.0.0.1:9090', 'http://127.0.0.1:9091']);
  assert.equal(result.config.metricsApi.insecureHttp, true);
  assert.equal(result.config.listenHost, '127.0.0.1');
});

test('command line rejects no source', () => {
  assert.throws(() => parseCommandLine([], {}), UsageError);
});

test('command line rejects a bad port', () => {
  assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--port', 'abc'], {}), /--port: expected a decimal integer from 0 to 65535, got "abc"/);
});

test('command line rejects config with gateway', () => {
  assert.throws(() => parseCommandLine(['--config', 'x.yaml', '--gateway', 'http://127.0.0.1:1'], {}), /cannot be combined/);
});

test('command line rejects allowed names without CA', () => {
  assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--allowed-name', 'front-proxy-client'], {}), /--allowed-name needs --client-ca/);
});

test('config reports relations with schema errors', () => {
  const text = `
gateways:
  static: ["http://127.0.0.1:9090"]
  kubernetes: { namespace: infergate, service: gw-admin, port: admin }
pollIntervalMs: 9000
metricsApi:
  tlsCertFile: /tls/tls.crt
  clientCAFile: /etc/ca/ca.crt
  clientCAFromCluster: true
models:
  - name: llama-3-8b
    target: { kind: Job, namespace: ml, name: llama }
    targetPerReplica: 8
    minReplicas: 5
    maxReplicas: 2
`;
  const problems = problemsOf(text);
  assert.ok(problems.some((p) => p.startsWith('models[0].target.kind: expected one of')), 'the schema error');
  assert.ok(problems.some((p) => p.startsWith('gateways: set exactly one')), 'both gateway sources');
  assert.ok(problems.some((p) => p.startsWith('pollIntervalMs: must not exceed staleAfterMs')), 'poll interval above staleAfterMs');
  assert.ok(problems.some((p) => p.includes('set both tlsCertFile and tlsKeyFile')), 'certificate without key');
  assert.ok(problems.some((p) => p.startsWith('metricsApi.clientCAFromCluster: true reads the client CA')), 'two client CA sources');
  assert.ok(problems.some((p) => p.startsWith('models[0].minReplicas: must not exceed maxReplicas')), 'minReplicas above maxReplicas');
  assert.equal(problems.length, 6);
});

test('config skips relations of invalid keys', () => {
  const text = VALID.replace('targetPerReplica: 8', 'targetPerReplica: 8\n    minReplicas: -5\n    maxReplicas: 2').replace('metricsApi:', 'pollIntervalMs: 0\nmetricsApi:');
  const problems = problemsOf(text);
  assert.deepEqual(problems, ['pollIntervalMs: expected an integer, >= 1, got 0', 'models[0].minReplicas: expected an integer, >= 0, got -5']);
});

test('config error for a port name or number', () => {
  const text = VALID.replace('  static: ["http://127.0.0.1:9090"]', '  kubernetes: { namespace: infergate, service: gw-admin, port: 0 }');
  assert.deepEqual(problemsOf(text), ['gateways.kubernetes.port: expected an integer from 1 to 65535, or a port name of at most 15 lowercase letters, digits and inner hyphens, got 0']);
});

test('config error for Kubernetes names', () => {
  const text = VALID.replace('  static: ["http://127.0.0.1:9090"]', '  kubernetes: { namespace: a.b, service: 9gw, port: Admin_Port }');
  assert.deepEqual(problemsOf(text), [
    'gateways.kubernetes.namespace: expected a namespace name: at most 63 lowercase letters, digits and inner hyphens, got "a.b"',
    'gateways.kubernetes.service: expected a Service name: at most 63 lowercase letters, digits and inner hyphens, starting with a letter, got "9gw"',
    'gateways.kubernetes.port: expected an integer from 1 to 65535, or a port name of at most 15 lowercase letters, digits and inner hyphens, got "Admin_Port"',
  ]);
});

test('config error for an empty model list', () => {
  const text = VALID.slice(0, VALID.indexOf('models:')) + 'models: []\n';
  assert.deepEqual(problemsOf(text), ['models: expected a list with at least 1 item, got an empty list']);
});

test('command line takes negative numbers as values', () => {
  assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--gpu-budget', '-3'], {}), /^UsageError: --gpu-budget: expected a decimal integer of 0 or more, got "-3"$/);
  assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--port', '-1'], {}), /^UsageError: --port: expected a decimal integer from 0 to 65535, got "-1"$/);
  assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--poll-interval-ms', '-1'], {}), /--poll-interval-ms: expected a decimal integer from 1 to 5000, got "-1"/);
});

test('command line rejects a host that is no address', () => {
  assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--host', '999.1.1.1'], {}), /^UsageError: --host: expected an IP address .* got "999\.1\.1\.1"$/);
});

test('command line checks the client CA file', () => {
  assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--client-ca', '/nonexistent/ca.crt'], {}), /^UsageError: --client-ca: cannot read "\/nonexistent\/ca\.crt": no such file or directory \(ENOENT\); pass the PEM file/);
  const dir = mkdtempSync(join(tmpdir(), 'as-ca-'));
  try {
    const file = join(dir, 'ca.crt');
    writeFileSync(file, 'not a certificate\n');
    assert.throws(() => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--client-ca', file], {}), /--client-ca: ".*ca\.crt" contains no PEM block/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config rejects a gateway URL that is more than an origin', () => {
  const gateways = ['http://127.0.0.1:9090/admin', 'http://127.0.0.1:9090?x=1', 'http://127.0.0.1:9090#top', 'http://ops:s3cret@127.0.0.1:9090', 'http://127.0.0.1:9090/'];
  const problems = problemsOf(VALID.replace('["http://127.0.0.1:9090"]', JSON.stringify(gateways)));
  assert.deepEqual(problems, [
    'gateways.static[0]: expected a gateway admin origin (scheme, host and port), got "http://127.0.0.1:9090/admin", which has the path /admin (the autoscaler adds /admin/state itself); pass the origin http://127.0.0.1:9090 instead',
    'gateways.static[1]: expected a gateway admin origin (scheme, host and port), got "http://127.0.0.1:9090?x=1", which has a query; pass the origin http://127.0.0.1:9090 instead',
    'gateways.static[2]: expected a gateway admin origin (scheme, host and port), got "http://127.0.0.1:9090#top", which has a fragment; pass the origin http://127.0.0.1:9090 instead',
    'gateways.static[3]: expected a gateway admin origin (scheme, host and port), got "http://***@127.0.0.1:9090/", which contains credentials (the gateway admin port takes none, and the start-up log would show them); pass the origin http://127.0.0.1:9090 instead',
  ]);
});

test('command line rejects a gateway URL that is more than an origin', () => {
  const parse = (url: string) => () => parseCommandLine(['--gateway', 'http://127.0.0.1:9091', '--gateway', url], {});
  assert.throws(parse('http://127.0.0.1:9090/admin'), /^UsageError: --gateway: expected a gateway admin origin \(scheme, host and port\), got "http:\/\/127\.0\.0\.1:9090\/admin", which has the path \/admin \(the autoscaler adds \/admin\/state itself\); pass the origin http:\/\/127\.0\.0\.1:9090 instead$/);
  assert.throws(parse('http://127.0.0.1:9090/?'), /^UsageError: --gateway: .*got "http:\/\/127\.0\.0\.1:9090\/\?", which has a query; pass the origin http:\/\/127\.0\.0\.1:9090 instead$/);
  assert.throws(parse('http://127.0.0.1:9090#'), /^UsageError: --gateway: .*which has a fragment; pass the origin http:\/\/127\.0\.0\.1:9090 instead$/);
  assert.throws(parse('localhost:9090'), /^UsageError: --gateway: .*got "localhost:9090", which has the protocol localhost, not http or https; pass an origin such as http:\/\/127\.0\.0\.1:9090$/);
  assert.throws(parse('not a url'), /^UsageError: --gateway: .*got "not a url", which is not a valid URL; pass an origin such as http:\/\/127\.0\.0\.1:9090$/);
  // The password must not reach stderr either.
  const credentials = [parse('http://ops:s3cr@t@127.0.0.1:9090'), parse('https://ops@localhost:9090/'), parse('http:ops:s3cret@127.0.0.1:9090//a@b')];
  assert.throws(credentials[0]!, (error: Error) => {
    assert.equal(error.message, '--gateway: expected a gateway admin origin (scheme, host and port), got "http://***@127.0.0.1:9090/", which contains credentials (the gateway admin port takes none, and the start-up log would show them); pass the origin http://127.0.0.1:9090 instead');
    return true;
  });
  assert.throws(credentials[2]!, (error: Error) => {
    assert.doesNotMatch(error.message, /s3cret/);
    assert.match(error.message, /got "http:\/\/\*\*\*@127\.0\.0\.1:9090\/\/a@b", which contains credentials/);
    return true;
  });
  assert.throws(credentials[1]!, /got "https:\/\/\*\*\*@localhost:9090\/", which contains credentials .*; pass the origin https:\/\/localhost:9090 instead$/);
  const ok = parseCommandLine(['--gateway', 'http://127.0.0.1:9090/', '--gateway', 'https://[::1]:9443'], {});
  assert.equal(ok.help, false);
});

test('command line accepts only decimal integers', () => {
  const parse = (...args: string[]) => () => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', ...args], {});
  for (const text of ['', ' 0', '0 ', '0x10', '1e3', '1.5', '+5', '٣']) {
    assert.throws(parse('--port', text), new RegExp(`^UsageError: --port: expected a decimal integer from 0 to 65535, got ${JSON.stringify(JSON.stringify(text)).slice(1, -1).replace(/[.+]/g, '\\$&')}$`), `--port ${JSON.stringify(text)}`);
  }
  assert.throws(parse('--admin-port', '0x10'), /^UsageError: --admin-port: expected a decimal integer from 0 to 65535, got "0x10"$/);
  assert.throws(parse('--gpu-budget', '2.0'), /^UsageError: --gpu-budget: expected a decimal integer of 0 or more, got "2\.0"$/);
  assert.throws(parse('--gpu-budget', '99999999999999999999'), /^UsageError: --gpu-budget: expected a decimal integer of 0 or more, got "99999999999999999999"$/);
  assert.throws(parse('--poll-interval-ms', ''), /^UsageError: --poll-interval-ms: expected a decimal integer from 1 to 5000, got ""$/);
  assert.throws(parse('--port=0x10'), /^UsageError: --port: expected a decimal integer from 0 to 65535, got "0x10"$/);

  const result = parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--port', '016', '--admin-port', '0', '--gpu-budget', '4', '--poll-interval-ms', '250'], {});
  assert.equal(result.help, false);
  if (result.help) return;
  assert.equal(result.config.metricsApi.port, 16);
  assert.equal(result.config.adminPort, 0);
  assert.equal(result.config.gpuBudget, 4);
  assert.equal(result.config.pollIntervalMs, 250);
});

test('command line rejects a one-value flag given twice', () => {
  const parse = (...args: string[]) => () => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', ...args], {});
  assert.throws(parse('--port', '1', '--port', '2'), /^UsageError: --port was given more than once \("1" and "2"\); pass it once$/);
  assert.throws(parse('--port', '7000', '--port=7000'), /^UsageError: --port was given more than once \("7000" and "7000"\); pass it once$/);
  assert.throws(parse('--host', '127.0.0.1', '--host', '::1'), /^UsageError: --host was given more than once/);
  assert.throws(parse('--poll-interval-ms', '100', '--poll-interval-ms', '-1'), /^UsageError: --poll-interval-ms was given more than once \("100" and "-1"\)/);
  assert.throws(() => parseCommandLine(['--config', 'a.yaml', '--config', 'b.yaml'], {}), /^UsageError: --config was given more than once \("a\.yaml" and "b\.yaml"\); pass it once$/);
  // Flags that take several values, and switches, may repeat.
  assert.doesNotThrow(parse('--insecure-http', '--insecure-http', '--gateway', 'http://127.0.0.1:9091'));
});

test('command line names flags, not config keys, in local mode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'as-flags-'));
  try {
    const ca = join(dir, 'ca.crt');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    assert.throws(
      () => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', '--insecure-http', '--client-ca', ca], {}),
      /^UsageError: --insecure-http and --client-ca exclude each other: client certificates need TLS$/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const parse = (...args: string[]) => () => parseCommandLine(['--gateway', 'http://127.0.0.1:9090', ...args], {});
  assert.throws(parse('--port', '7000', '--admin-port', '7000'), /^UsageError: --admin-port: must differ from --port, both are 7000$/);
  assert.throws(parse('--port', String(DEFAULTS.adminPort)), /^UsageError: --port: must differ from the admin port \(default 9091, set with --admin-port\), got 9091$/);
  assert.throws(parse('--admin-port', String(DEFAULTS.metricsApi.port)), /^UsageError: --admin-port: must differ from the metrics API port \(default 6443, set with --port\), got 6443$/);
});

test('config file names keys for the same problems', () => {
  const text = VALID.replace('  clientCAFile: /etc/ca/requestheader-client-ca-file', '  clientCAFile: /etc/ca/requestheader-client-ca-file\n  insecureHttp: true\n  authorization: { mode: none }\n  port: 9091');
  assert.deepEqual(problemsOf(text), [
    'adminPort: must differ from metricsApi.port, both are 9091',
    'metricsApi.insecureHttp: true serves plain HTTP, so tlsCertFile, tlsKeyFile, clientCAFile and clientCAFromCluster must not be set',
  ]);
});
