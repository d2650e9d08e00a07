// The model name rule in values.schema.json against the services: every name the
// schema accepts must be accepted by the autoscaler (a label value of at most 63
// characters, because HPAs select model=<name>) and by the gateway, which reserves
// its metric label for unconfigured models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { Value } from '@sinclair/typebox/value';
import { ModelSchema as AutoscalerModelSchema } from '../../autoscaler/src/config/schema.ts';
import { ModelConfigSchema as GatewayModelSchema } from '../../gateway/src/config/schema.ts';
import { UNKNOWN_MODEL_LABEL } from '../../gateway/src/config/defaults.ts';
import { chartDir } from './helpers.ts';

interface JsonSchema {
  properties: Record<string, JsonSchema>;
  items: JsonSchema;
}

const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as JsonSchema;
const ajv = new Ajv({ strict: true, allowUnionTypes: true });
const nameRules = {
  'models[].name': ajv.compile(schema.properties.models?.items.properties.name as object),
  'exampleModel.name': ajv.compile(schema.properties.exampleModel?.properties.name as object),
};

const sixtyThree = `a${'b'.repeat(61)}c`;

const names: string[] = [
  'llama-3-8b',
  'qwen2.5-1.5b-instruct',
  'bge_large.en',
  'A',
  '7',
  sixtyThree,
  `${sixtyThree}d`,
  UNKNOWN_MODEL_LABEL,
  '-leading-dash',
  'trailing.',
  '_under',
  'meta-llama/Llama-3-8B',
  'with space',
  'colon:tag',
  '',
];

function autoscalerAccepts(name: string): boolean {
  return Value.Check(AutoscalerModelSchema.properties.name, name);
}

function gatewayAccepts(name: string): boolean {
  return Value.Check(GatewayModelSchema.properties.name, name) && name !== UNKNOWN_MODEL_LABEL;
}

test('chart rejects the reserved model name', () => {
  for (const [path, validate] of Object.entries(nameRules)) {
    assert.equal(validate(UNKNOWN_MODEL_LABEL), false, `${path} accepts ${UNKNOWN_MODEL_LABEL}`);
  }
});

test('chart name rule equals the autoscaler rule', () => {
  for (const [path, validate] of Object.entries(nameRules)) {
    for (const name of names) {
      assert.equal(validate(name), autoscalerAccepts(name), `${path}: ${JSON.stringify(name)}`);
    }
  }
});

test('chart model names pass the gateway', () => {
  for (const [path, validate] of Object.entries(nameRules)) {
    for (const name of names.filter((candidate) => validate(candidate))) {
      assert.ok(gatewayAccepts(name), `${path}: ${JSON.stringify(name)}`);
    }
  }
});

test('name table covers both outcomes', () => {
  // Guards the tests above against a table that contains only accepted or only rejected names.
  assert.ok(names.some(autoscalerAccepts));
  assert.ok(names.some((name) => !autoscalerAccepts(name)));
  assert.equal(autoscalerAccepts(sixtyThree), true);
  assert.equal(autoscalerAccepts(`${sixtyThree}d`), false);
});
