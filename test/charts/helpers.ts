// Renders charts/infergate with the Go renderer in test/charts/render (text/template
// plus sprig, Helm's engine) and checks rendered objects against the Kubernetes
// schemas of the kubernetes-models packages. Helm cannot run on the test machines,
// so these helpers stand in for `helm template` and for the API server's validation.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const chartDir = join(repoRoot, 'charts/infergate');
export const valuesDir = join(repoRoot, 'test/charts/values');
const rendererSource = join(repoRoot, 'test/charts/render/main.go');

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

export interface RenderedDocument {
  /** Template file that produced the object, from the "# Source:" comment. */
  source: string;
  object: KubeObject;
}

export interface RenderOptions {
  /** Values files under test/charts/values, merged in order. */
  valuesFiles?: string[];
  /** Inline values merged after the files, like a last -f file. */
  values?: Record<string, unknown>;
  /** Objects that lookup finds; defaults to standardCluster(). */
  cluster?: KubeObject[];
  releaseName?: string;
  namespace?: string;
  upgrade?: boolean;
  apiVersions?: string[];
  /** Render again instead of reusing an earlier result for the same options. */
  fresh?: boolean;
}

export interface RenderResult {
  ok: boolean;
  /** The renderer's error output when ok is false. */
  error: string;
  documents: RenderedDocument[];
  notes: string;
  /** The merged values the chart saw. */
  values: Record<string, unknown>;
}

let rendererPath: string | undefined;

/**
 * Builds the renderer once per source version into the temp dir and returns its path.
 * The binary is keyed by the source's hash, so parallel test files reuse one build.
 */
export function buildRenderer(): string {
  if (rendererPath !== undefined) return rendererPath;
  const hash = createHash('sha256').update(readFileSync(rendererSource)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'infergate-chart-renderer');
  const binary = join(dir, `render-${hash}`);
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    const partial = `${binary}.${process.pid}.tmp`;
    try {
      // GOPATH mode with the Debian sources: no module download, no network.
      execFileSync('go', ['build', '-o', partial, '.'], {
        cwd: dirname(rendererSource),
        env: {
          ...process.env,
          GOPATH: '/usr/share/gocode',
          GO111MODULE: 'off',
          GOFLAGS: '',
          GOCACHE: join(dir, 'gocache'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 300_000,
      });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(
        `building the chart renderer failed (go build in test/charts/render); it needs the Debian packages golang-go, golang-github-masterminds-sprig-dev and golang-k8s-sigs-yaml-dev:\n${stderr}`,
        { cause: error },
      );
    }
    // Parallel test files may build at the same time. rename is atomic, so no test runs a partial binary.
    renameSync(partial, binary);
  }
  rendererPath = binary;
  return binary;
}

// Results by options, because most tests render the same few value sets and each render
// generates RSA keys. Callers treat results as read-only.
const renderCache = new Map<string, RenderResult>();

/** Renders the chart; a template failure returns ok false with the message. */
export function renderChart(options: RenderOptions = {}): RenderResult {
  const key = JSON.stringify(options);
  const cached = options.fresh === true ? undefined : renderCache.get(key);
  if (cached !== undefined) return cached;
  const result = runRenderer(options);
  renderCache.set(key, result);
  return result;
}

function runRenderer(options: RenderOptions): RenderResult {
  const binary = buildRenderer();
  const work = mkdtempSync(join(tmpdir(), 'infergate-chart-'));
  try {
    const args = ['-chart', chartDir, '-name', options.releaseName ?? 'infergate', '-namespace', options.namespace ?? 'inference'];
    for (const file of options.valuesFiles ?? []) args.push('-f', join(valuesDir, file));
    if (options.values !== undefined) {
      const inline = join(work, 'inline-values.yaml');
      writeFileSync(inline, stringify(options.values));
      args.push('-f', inline);
    }
    const clusterFile = join(work, 'cluster.json');
    writeFileSync(clusterFile, JSON.stringify(options.cluster ?? standardCluster()));
    args.push('-cluster', clusterFile);
    const notesFile = join(work, 'NOTES.txt');
    const valuesOut = join(work, 'values.json');
    args.push('-notes', notesFile, '-values-out', valuesOut);
    if (options.upgrade === true) args.push('-upgrade');
    for (const version of options.apiVersions ?? []) args.push('-api-versions', version);

    const result = spawnSync(binary, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (result.error !== undefined) throw result.error;
    const values = existsSync(valuesOut) ? (JSON.parse(readFileSync(valuesOut, 'utf8')) as Record<string, unknown>) : {};
    if (result.status !== 0) {
      return { ok: false, error: result.stderr, documents: [], notes: '', values };
    }
    return {
      ok: true,
      error: '',
      documents: parseManifests(result.stdout),
      notes: existsSync(notesFile) ? readFileSync(notesFile, 'utf8') : '',
      values,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Renders and fails the test with the renderer's message when rendering fails. */
export function renderOk(options: RenderOptions = {}): RenderResult {
  const result = renderChart(options);
  if (!result.ok) throw new Error(`rendering failed: ${result.error}`);
  return result;
}

/** Splits the renderer's YAML stream into objects, keeping each one's template. */
export function parseManifests(stream: string): RenderedDocument[] {
  const documents: RenderedDocument[] = [];
  for (const chunk of stream.split(/^---$/m)) {
    const source = /^# Source: (\S+)$/m.exec(chunk)?.[1];
    if (source === undefined) continue;
    const parsed = parseAllDocuments(chunk);
    for (const document of parsed) {
      if (document.errors.length > 0) throw new Error(`${source} renders invalid YAML: ${document.errors[0]?.message}`);
      const object = document.toJS() as KubeObject | null;
      if (object !== null) documents.push({ source, object });
    }
  }
  return documents;
}

/** Finds objects by kind, and by name when given. */
export function objectsOf(result: RenderResult, kind: string, name?: string): KubeObject[] {
  return result.documents
    .map((document) => document.object)
    .filter((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
}

/** Finds exactly one object by kind and name, or fails. */
export function objectOf(result: RenderResult, kind: string, name: string): KubeObject {
  const found = objectsOf(result, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind} named ${name}, found ${found.length}`);
  return found[0] as KubeObject;
}

/**
 * Returns the objects lookup finds in a cluster before infergate is installed. The chart
 * looks up only its own TLS Secret and the external metrics APIService, and a fresh
 * cluster has neither.
 */
export function standardCluster(): KubeObject[] {
  return [];
}

/** Decodes one key of a Secret's data. */
export function secretValue(secret: KubeObject, key: string): string {
  const data = secret.data as Record<string, string> | undefined;
  const encoded = data?.[key];
  if (encoded === undefined) throw new Error(`Secret ${secret.metadata.name} has no key ${key}`);
  return Buffer.from(encoded, 'base64').toString('utf8');
}
