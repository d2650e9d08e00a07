// Checks that the Go renderer behaves like Helm on the features charts rely on, using a
// throwaway chart, so a difference from Helm shows up here and not as a chart bug.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRenderer, parseManifests } from './helpers.ts';

let chart = '';

before(() => {
  chart = mkdtempSync(join(tmpdir(), 'infergate-probe-chart-'));
  mkdirSync(join(chart, 'templates'));
  mkdirSync(join(chart, 'files'));
  writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: probe\nversion: 1.2.3\nappVersion: "4.5"\n');
  writeFileSync(join(chart, 'values.yaml'), 'greeting: hello\nnested: { keep: 1, drop: 2, list: [a, b] }\ntemplated: "{{ .Values.greeting }} from tpl"\nbig: 8388608\n');
  writeFileSync(join(chart, 'files', 'note.txt'), 'from a file\n');
  writeFileSync(join(chart, 'templates', '_names.tpl'), '{{- define "probe.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end -}}\n');
  writeFileSync(
    join(chart, 'templates', 'probe.yaml'),
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ include "probe.name" . }}',
      '  namespace: {{ .Release.Namespace }}',
      'data:',
      '  chart: {{ .Chart.Version }}-{{ .Chart.AppVersion }}',
      '  tpl: {{ tpl .Values.templated . | quote }}',
      '  file: {{ .Files.Get "files/note.txt" | trim | quote }}',
      '  nested: {{ toJson .Values.nested | quote }}',
      '  roundTrip: {{ (fromYaml (toYaml .Values.nested)).keep | quote }}',
      '  big: {{ .Values.big | quote }}',
      '  bigInt: {{ int .Values.big | quote }}',
      '  missing: "{{ .Values.absent }}"',
      '  upgrade: {{ .Release.IsUpgrade | quote }}',
      '  revision: {{ .Release.Revision | quote }}',
      '  service: {{ .Release.Service | quote }}',
      '  monitoring: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" | quote }}',
      '  apps: {{ .Capabilities.APIVersions.Has "apps/v1" | quote }}',
      '  kube: {{ .Capabilities.KubeVersion.Minor | quote }}',
      '  template: {{ .Template.Name | quote }}',
      '  lookup: {{ dig "metadata" "name" "none" (lookup "v1" "Namespace" "" "kube-system") | quote }}',
      '  lookupList: {{ len (lookup "v1" "Namespace" "" "").items | quote }}',
      '---',
      '# only a comment: dropped like Helm drops empty documents',
      '',
    ].join('\n'),
  );
  writeFileSync(join(chart, 'templates', 'NOTES.txt'), 'Release {{ .Release.Name }} of {{ .Chart.Name }}\n');
});

after(() => {
  rmSync(chart, { recursive: true, force: true });
});

function render(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(buildRenderer(), ['-chart', chart, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function renderData(args: string[]): Record<string, string> {
  const result = render(args);
  assert.equal(result.status, 0, result.stderr);
  const documents = parseManifests(result.stdout);
  assert.equal(documents.length, 1);
  assert.equal(documents[0]?.source, 'probe/templates/probe.yaml');
  return documents[0]?.object.data as Record<string, string>;
}

test('renderer fills Helm objects', () => {
  const data = renderData(['-name', 'demo', '-namespace', 'ns1']);
  assert.equal(data.chart, '1.2.3-4.5');
  assert.equal(data.upgrade, 'false');
  assert.equal(data.revision, '1');
  assert.equal(data.service, 'Helm');
  assert.equal(data.template, 'probe/templates/probe.yaml');
  assert.equal(data.kube, '31');
  assert.equal(data.apps, 'true');
  assert.equal(data.monitoring, 'false');
});

test('renderer supports include, tpl and Files', () => {
  const data = renderData(['-name', 'demo']);
  assert.equal(data.tpl, 'hello from tpl');
  assert.equal(data.file, 'from a file');
  assert.equal(data.roundTrip, '1');
});

test('renderer treats numbers as Helm does', () => {
  // Helm parses values into float64, so large integers print in exponent form unless converted.
  const data = renderData([]);
  assert.equal(data.big, '8.388608e+06');
  assert.equal(data.bigInt, '8388608');
});

test('renderer blanks missing values', () => {
  const data = renderData([]);
  assert.equal(data.missing, '');
});

test('renderer merges values files', () => {
  const work = mkdtempSync(join(tmpdir(), 'infergate-probe-values-'));
  try {
    const file = join(work, 'override.yaml');
    writeFileSync(file, 'nested: { drop: null, list: [c] }\n');
    const data = renderData(['-f', file]);
    assert.deepEqual(JSON.parse(data.nested as string), { keep: 1, list: ['c'] });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('renderer answers lookup from the cluster file', () => {
  const work = mkdtempSync(join(tmpdir(), 'infergate-probe-cluster-'));
  try {
    const file = join(work, 'cluster.json');
    writeFileSync(file, JSON.stringify([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system' } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } },
    ]));
    const data = renderData(['-cluster', file]);
    assert.equal(data.lookup, 'kube-system');
    assert.equal(data.lookupList, '2');
    const empty = renderData([]);
    assert.equal(empty.lookup, 'none');
    assert.equal(empty.lookupList, '0');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('renderer renders upgrades and NOTES', () => {
  const work = mkdtempSync(join(tmpdir(), 'infergate-probe-notes-'));
  try {
    const notes = join(work, 'NOTES.txt');
    const data = renderData(['-upgrade', '-name', 'demo', '-api-versions', 'monitoring.coreos.com/v1', '-notes', notes]);
    assert.equal(data.upgrade, 'true');
    assert.equal(data.revision, '2');
    assert.equal(data.monitoring, 'true');
    assert.equal(readFileSync(notes, 'utf8'), 'Release demo of probe\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('renderer fails on a missing chart flag', () => {
  const result = spawnSync(buildRenderer(), [], { encoding: 'utf8' });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /-chart is required/);
});

test('renderer removes env and expandenv', () => {
  // Helm drops these sprig functions, so a chart using one fails to parse.
  const envChart = mkdtempSync(join(tmpdir(), 'infergate-env-chart-'));
  try {
    mkdirSync(join(envChart, 'templates'));
    writeFileSync(join(envChart, 'Chart.yaml'), 'apiVersion: v2\nname: env-probe\nversion: 0.0.1\n');
    writeFileSync(join(envChart, 'values.yaml'), '{}\n');
    for (const name of ['env', 'expandenv']) {
      writeFileSync(join(envChart, 'templates', 'cm.yaml'), `value: {{ ${name} "HOME" }}\n`);
      const result = spawnSync(buildRenderer(), ['-chart', envChart], { encoding: 'utf8' });
      assert.equal(result.status, 1, name);
      assert.match(result.stderr, new RegExp(`function "${name}" not defined`));
    }
  } finally {
    rmSync(envChart, { recursive: true, force: true });
  }
});
