// loadKubeConfig: the order of configuration sources and the start-up error.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadKubeConfig, SERVICE_ACCOUNT_DIR } from '../../shared/src/kube.ts';

const KUBECONFIG_YAML = `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: http://127.0.0.1:6443
contexts:
- name: local
  context:
    cluster: local
    user: dev
current-context: local
users:
- name: dev
  user:
    token: dev-token
`;

describe('loadKubeConfig', () => {
  let dir: string;
  let kubeconfig: string;
  let emptyHome: string;
  let serviceAccountPrefix: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-kube-'));
    kubeconfig = join(dir, 'config.yaml');
    writeFileSync(kubeconfig, KUBECONFIG_YAML);
    emptyHome = join(dir, 'home');
    mkdirSync(emptyHome);
    serviceAccountPrefix = join(dir, 'sa');
    mkdirSync(join(serviceAccountPrefix, SERVICE_ACCOUNT_DIR), { recursive: true });
    writeFileSync(join(serviceAccountPrefix, SERVICE_ACCOUNT_DIR, 'token'), 'sa-token');
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('service account wins when its token exists', () => {
    const loaded = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: kubeconfig }, serviceAccountPrefix, homeDir: emptyHome });
    assert.equal(loaded.source, 'in-cluster');
    assert.equal(loaded.server, 'https://10.96.0.1:443');
  });

  test('service account host in IPv6 gets brackets', () => {
    const loaded = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountPrefix, homeDir: emptyHome });
    assert.equal(loaded.server, 'https://[fd00::1]:443');
  });

  test('KUBECONFIG used without a token file', () => {
    const loaded = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBECONFIG: kubeconfig }, serviceAccountPrefix: join(dir, 'none'), homeDir: emptyHome });
    assert.equal(loaded.source, 'KUBECONFIG');
    assert.equal(loaded.server, 'http://127.0.0.1:6443');
  });

  test('default kubeconfig in the home directory', () => {
    const home = join(dir, 'home-with-config');
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(join(home, '.kube', 'config'), KUBECONFIG_YAML);
    const loaded = loadKubeConfig({ env: {}, homeDir: home });
    assert.equal(loaded.source, 'default-kubeconfig');
  });

  test('error lists every source tried', () => {
    const missing = join(dir, 'missing.yaml');
    assert.throws(
      () => loadKubeConfig({ env: { KUBECONFIG: missing }, homeDir: emptyHome }),
      (err: Error) =>
        err.message.includes('KUBERNETES_SERVICE_HOST is not set') &&
        err.message.includes(`file(s) not found: ${missing}`) &&
        err.message.includes(join(emptyHome, '.kube', 'config')),
    );
  });

  test('kubeconfig without a current context is rejected', () => {
    const file = join(dir, 'no-context.yaml');
    writeFileSync(file, KUBECONFIG_YAML.replace('current-context: local', 'current-context: gone'));
    assert.throws(() => loadKubeConfig({ env: { KUBECONFIG: file }, homeDir: emptyHome }), /current context "gone"/);
  });
});
