// No Docker engine runs on the test machines, so these tests read the Dockerfile and
// check what a build or a container start would trip over. They cover syntax, stages,
// copied paths (present and in the build context), the modules and files each entry
// point loads at run time, and the security settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers.ts';
import { GATEWAY_NODE_FLAGS } from '../../loadtest/bench/processes.ts';
import {
  copiesOf,
  execForm,
  importGraph,
  isIgnored,
  parseDockerfile,
  readDockerignore,
  stageChain,
  type Dockerfile,
} from './dockerfile-parse.ts';

const dockerfile: Dockerfile = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const ignorePatterns = readDockerignore(join(repoRoot, '.dockerignore'));
const packageJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Node flags each image's ENTRYPOINT passes before the entry point. */
const NODE_FLAGS: Record<string, readonly string[]> = {
  gateway: ['--min-semi-space-size=32', '--max-semi-space-size=32'],
  autoscaler: [],
  replica: [],
};

const TARGETS: Record<string, string> = {
  gateway: 'gateway/src/main.ts',
  autoscaler: 'autoscaler/src/main.ts',
  replica: 'loadtest/replica/main.ts',
};

/** Lists the build-context paths a stage's image contains, as context-relative prefixes. */
function copiedPaths(target: string): string[] {
  const paths: string[] = [];
  for (const stage of stageChain(dockerfile, target)) {
    for (const copy of copiesOf(stage)) {
      if (copy.from === undefined) paths.push(...copy.sources.map((source) => source.replace(/\/$/, '')));
    }
  }
  return paths;
}

function isCopied(file: string, paths: string[]): boolean {
  return paths.some((path) => file === path || file.startsWith(`${path}/`));
}

test('Dockerfile parses into the expected stages', () => {
  assert.deepEqual(dockerfile.stages.map((stage) => stage.name), ['base', 'deps', 'runtime', 'gateway', 'autoscaler', 'replica']);
  assert.deepEqual(stageChain(dockerfile, 'gateway').map((stage) => stage.name), ['gateway', 'runtime', 'base']);
});

test('base image is the pinned Node 24 slim', () => {
  const base = dockerfile.stages[0];
  assert.equal(base?.from, 'node:${NODE_VERSION}-slim');
  const versionArg = dockerfile.globalArgs.find((instruction) => instruction.args.startsWith('NODE_VERSION='));
  assert.ok(versionArg);
  const version = versionArg.args.slice('NODE_VERSION='.length);
  assert.match(version, /^24\.\d+\.\d+$/);
  // The image runs the same Node release that npm ci puts in node_modules/.bin.
  assert.equal(version, packageJson.devDependencies.node);
});

test('copied paths exist in the build context', () => {
  for (const stage of dockerfile.stages) {
    for (const copy of copiesOf(stage)) {
      if (copy.from !== undefined) {
        assert.ok(dockerfile.stages.some((other) => other.name === copy.from), `line ${copy.line}: unknown stage ${copy.from}`);
        continue;
      }
      for (const source of copy.sources) {
        assert.ok(existsSync(join(repoRoot, source)), `line ${copy.line}: ${source} does not exist`);
        assert.equal(isIgnored(source.replace(/\/$/, ''), ignorePatterns), false, `line ${copy.line}: ${source} is excluded by .dockerignore`);
      }
    }
  }
});

test('dockerignore keeps secrets and tests out', () => {
  for (const path of ['node_modules', 'test/charts/helpers.ts', '.git', 'deploy/.env', 'certs/server.key', 'docs/helm.md', 'charts/infergate/values.yaml']) {
    assert.equal(isIgnored(path, ignorePatterns), true, path);
  }
  for (const path of ['gateway/src/main.ts', 'package-lock.json', 'loadtest/replica/main.ts', 'shared/src/logger.ts']) {
    assert.equal(isIgnored(path, ignorePatterns), false, path);
  }
});

test('production install omits dev dependencies', () => {
  const deps = dockerfile.stages.find((stage) => stage.name === 'deps');
  assert.ok(deps);
  const runs = deps.instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args);
  const install = runs.find((command) => /\bnpm ci\b/.test(command));
  assert.ok(install, 'no npm ci in the deps stage');
  assert.match(install, /--omit=dev/);
  assert.match(install, /--ignore-scripts/);
  // The pinned runtime must stay a devDependency, or npm ci would install a second Node.
  assert.equal(packageJson.dependencies.node, undefined);
  assert.ok(packageJson.devDependencies.node);
});

test('npm scripts used in RUN exist', () => {
  for (const stage of dockerfile.stages) {
    for (const instruction of stage.instructions.filter((candidate) => candidate.keyword === 'RUN')) {
      for (const match of instruction.args.matchAll(/\bnpm run(?:-script)? ([\w:-]+)/g)) {
        assert.ok(packageJson.scripts[match[1] as string], `line ${instruction.line}: npm script ${match[1]} is not defined`);
      }
    }
  }
});

test('gateway Node flags agree everywhere', () => {
  const flags = NODE_FLAGS.gateway ?? [];
  assert.deepEqual(GATEWAY_NODE_FLAGS, flags);
  for (const script of ['start', 'gateway']) {
    assert.equal(packageJson.scripts[script], ['exec', 'node', ...flags, TARGETS.gateway].join(' '), `npm script ${script}`);
  }
});

for (const [target, entry] of Object.entries(TARGETS)) {
  test(`${target} image runs its entry point`, () => {
    const stage = dockerfile.stages.find((candidate) => candidate.name === target);
    assert.ok(stage);
    const entrypoint = stage.instructions.find((instruction) => instruction.keyword === 'ENTRYPOINT');
    assert.ok(entrypoint, `${target} has no ENTRYPOINT`);
    assert.deepEqual(execForm(entrypoint), ['node', ...(NODE_FLAGS[target] ?? []), entry]);
    assert.ok(existsSync(join(repoRoot, entry)), `${entry} does not exist`);
    assert.ok(isCopied(entry, copiedPaths(target)), `${entry} is not copied into ${target}`);
  });

  test(`${target} image holds every imported module`, () => {
    const graph = importGraph(repoRoot, entry);
    assert.deepEqual(graph.missing, []);
    const paths = copiedPaths(target);
    const absent = [...graph.files].filter((file) => !isCopied(file, paths));
    assert.deepEqual(absent, [], `${target} imports files the image lacks`);
    for (const name of graph.packages) {
      assert.ok(packageJson.dependencies[name], `${target} imports ${name}, which npm ci --omit=dev does not install`);
    }
  });

  test(`${target} image runs as non-root`, () => {
    const users = stageChain(dockerfile, target)
      .flatMap((stage) => stage.instructions)
      .filter((instruction) => instruction.keyword === 'USER');
    // The chain lists the target first, so the first USER found is the one in effect.
    const user = users[0]?.args;
    assert.ok(user, `${target} sets no USER`);
    const [uid, gid] = user.split(':');
    assert.match(uid ?? '', /^\d+$/, 'USER must be numeric so runAsNonRoot can verify it');
    assert.notEqual(Number(uid), 0);
    assert.notEqual(Number(gid), 0);
  });
}

test('image user matches the chart', () => {
  const values = readFileSync(join(repoRoot, 'charts/infergate/values.yaml'), 'utf8');
  const runtime = dockerfile.stages.find((stage) => stage.name === 'runtime');
  const user = runtime?.instructions.find((instruction) => instruction.keyword === 'USER')?.args;
  assert.equal(user, '10001:10001');
  assert.match(values, /runAsUser: 10001/);
});

test('parser rejects broken Dockerfiles', () => {
  assert.throws(() => parseDockerfile('FROM node:24-slim\nRUNN echo hi\n'), /line 2: unknown instruction RUNN/);
  assert.throws(() => parseDockerfile('COPY . .\nFROM node:24-slim\n'), /line 1: COPY before the first FROM/);
  assert.throws(() => parseDockerfile('FROM node:24-slim\nRUN echo \\'), /ends with a line continuation/);
  assert.throws(() => parseDockerfile('FROM\n'), /line 1: FROM without an image/);
  assert.throws(() => execForm({ keyword: 'CMD', args: 'node main.ts', line: 3 }), SyntaxError);
});

test('import graph crosses directories', () => {
  const graph = importGraph(repoRoot, TARGETS.gateway as string);
  assert.ok(graph.files.has('shared/src/logger.ts'));
  assert.ok(graph.files.has('package.json'), 'the gateway reads its version from package.json');
  assert.ok(graph.packages.has('fastify'));
  assert.ok(!graph.packages.has('node'));
});
