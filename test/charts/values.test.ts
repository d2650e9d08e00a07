import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { chartDir, renderChart, renderOk, valuesDir } from './helpers.ts';

// ajv-formats is CommonJS; its default export arrives wrapped under Node's ESM loader.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

function compileSchema(): ValidateFunction {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
  // Helm validates with JSON Schema draft 7. Strict mode flags keywords ajv would
  // ignore; strictRequired is off because oneOf branches name properties declared
  // by the parent schema.
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

const validate = compileSchema();

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`).join('\n');
}

/** Merged values for the overrides, as Helm validates them: the renderer merges like Helm. */
function mergedValues(values: Record<string, unknown>): Record<string, unknown> {
  return renderChart({ values }).values;
}

function rejection(values: Record<string, unknown>): string {
  const merged = mergedValues(values);
  assert.equal(validate(merged), false, 'values were accepted');
  return describeErrors(validate.errors);
}

test('values.yaml passes the schema', () => {
  const values = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as unknown;
  assert.equal(validate(values), true, describeErrors(validate.errors));
});

test('every test values file passes the schema', () => {
  const files = readdirSync(valuesDir).filter((file) => file.endsWith('.yaml'));
  assert.ok(files.length >= 7);
  for (const file of files) {
    const merged = renderChart({ valuesFiles: [file] }).values;
    assert.equal(validate(merged), true, `${file}: ${describeErrors(validate.errors)}`);
  }
});

test('every value has a comment', () => {
  // A key is documented when a comment line sits right above it or above one of the
  // keys it is nested in (a block such as resources is documented once).
  const lines = readFileSync(join(chartDir, 'values.yaml'), 'utf8').split('\n');
  const undocumented: string[] = [];
  for (const [index, line] of lines.entries()) {
    if (!/^\s*(- )?[A-Za-z][\w./-]*:(\s|$)/.test(line)) continue;
    if (!hasCommentAboveSelfOrParent(lines, index)) undocumented.push(`${index + 1}: ${line.trim()}`);
  }
  assert.deepEqual(undocumented, []);
});

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

function commentAbove(lines: string[], index: number): boolean {
  let previous = index - 1;
  while (previous >= 0 && (lines[previous] ?? '').trim() === '') previous--;
  return (lines[previous] ?? '').trim().startsWith('#');
}

function hasCommentAboveSelfOrParent(lines: string[], index: number): boolean {
  let current = index;
  while (current >= 0) {
    if (commentAbove(lines, current)) return true;
    const indent = indentOf(lines[current] ?? '');
    if (indent === 0) return false;
    let parent = current - 1;
    while (parent >= 0) {
      const candidate = lines[parent] ?? '';
      if (candidate.trim() !== '' && !candidate.trim().startsWith('#') && indentOf(candidate) < indent) break;
      parent--;
    }
    current = parent;
  }
  return false;
}

test('unknown key is rejected by name', () => {
  const errors = rejection({ gateway: { replicas: 3 } });
  assert.match(errors, /\/gateway must NOT have additional properties/);
  assert.match(errors, /"additionalProperty":"replicas"/);
});

test('invalid model name is rejected', () => {
  const errors = rejection({ models: [{ name: 'meta-llama/Llama-3-8B', protocol: 'openai', replicas: { kubernetes: { service: 'llama' } } }] });
  assert.match(errors, /\/models\/0\/name must match pattern/);
});

test('unknown protocol is rejected', () => {
  const errors = rejection({ models: [{ name: 'llama', protocol: 'grpc', replicas: { kubernetes: { service: 'llama' } } }] });
  assert.match(errors, /\/models\/0\/protocol must be equal to one of the allowed values/);
});

test('both replica sources are rejected', () => {
  const errors = rejection({ models: [{ name: 'llama', protocol: 'openai', replicas: { kubernetes: { service: 'llama' }, static: ['http://10.0.0.1:8000'] } }] });
  assert.match(errors, /\/models\/0\/replicas must match exactly one schema in oneOf/);
});

test('non-positive targetPerReplica is rejected', () => {
  const errors = rejection({ models: [{ name: 'llama', protocol: 'openai', replicas: { kubernetes: { service: 'llama' } }, autoscaling: { targetPerReplica: 0, maxReplicas: 2 } }] });
  assert.match(errors, /\/models\/0\/autoscaling\/targetPerReplica must be > 0/);
});

test('fractional GPU count is rejected', () => {
  const errors = rejection({ exampleModel: { gpus: 0.5 } });
  assert.match(errors, /\/exampleModel\/gpus must be integer/);
});

test('missing resources limits are rejected', () => {
  const errors = rejection({ gateway: { resources: { limits: null } } });
  assert.match(errors, /\/gateway\/resources must have required property 'limits'/);
});

test('unknown autoscaler authorization mode is rejected', () => {
  const errors = rejection({ autoscaler: { metricsApi: { authorization: { mode: 'webhook' } } } });
  assert.match(errors, /\/autoscaler\/metricsApi\/authorization\/mode must be equal to one of the allowed values/);
});

test('invalid port is rejected', () => {
  const errors = rejection({ gateway: { server: { adminPort: 70000 } } });
  assert.match(errors, /\/gateway\/server\/adminPort must be <= 65535/);
});

test('null deletes a default', () => {
  // Helm's merge: an explicit null removes the key from the defaults.
  const merged = mergedValues({ gateway: { nodeSelector: { pool: 'cpu' }, affinity: null } });
  const gateway = merged.gateway as Record<string, unknown>;
  assert.deepEqual(gateway.nodeSelector, { pool: 'cpu' });
  assert.equal('affinity' in gateway, false);
  assert.equal(gateway.replicaCount, 2);
});

test('template checks name the value', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ gateway: { terminationGracePeriodSeconds: 20 } }, /gateway\.terminationGracePeriodSeconds: 20 leaves no time to drain; it must exceed preStopSleepSeconds \+ shutdownGraceMs \/ 1000 = 35/],
    [{ models: [{ name: 'a', protocol: 'openai', replicas: { static: ['http://10.0.0.1:8000'] }, autoscaling: { targetPerReplica: 4, maxReplicas: 2 } }] }, /models\[0\]\.autoscaling\.target\.name: missing/],
    [{ models: [{ name: 'a', protocol: 'openai', replicas: { kubernetes: { service: 'a' } }, autoscaling: { targetPerReplica: 4, minReplicas: 5, maxReplicas: 2 } }] }, /models\[0\]\.autoscaling\.maxReplicas: 2 is below minReplicas 5/],
    [{ models: [{ name: 'a', protocol: 'openai', replicas: { kubernetes: { service: 'a' } }, autoscaling: { maxReplicas: 2 } }] }, /models\[0\]\.autoscaling\.targetPerReplica: missing/],
    [{ models: [{ name: 'a', protocol: 'openai' }] }, /models\[0\]\.replicas: missing/],
    [{ models: [{ name: 'Chat.Model', protocol: 'openai', replicas: { kubernetes: { service: 'a' } }, autoscaling: { enabled: false } }, { name: 'chat-model', protocol: 'openai', replicas: { kubernetes: { service: 'b' } }, autoscaling: { enabled: false } }] }, /the model names "Chat.Model" and "chat-model" both become the object name suffix "chat-model"/],
    [{ exampleModel: { enabled: true, name: 'llama-3-8b' } }, /the model name "llama-3-8b" appears twice/],
  ];
  for (const [values, message] of cases) {
    const result = renderChart({ values });
    assert.equal(result.ok, false, `accepted ${JSON.stringify(values)}`);
    assert.match(result.error, message);
  }
});

test('default values render without overrides', () => {
  const result = renderOk();
  assert.equal(validate(result.values), true, describeErrors(validate.errors));
});
