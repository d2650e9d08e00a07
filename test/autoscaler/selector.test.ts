import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesSelector, parseSelector, SelectorError } from '../../autoscaler/src/api/selector.ts';

const llama = { model: 'llama-3-8b' };
const mistral = { model: 'mistral-7b' };
const none = {};

function matches(selector: string, labels: Record<string, string>): boolean {
  return matchesSelector(parseSelector(selector), labels);
}

test('selector empty matches everything', () => {
  assert.equal(matches('', llama), true);
  assert.equal(matches('  ', none), true);
});

test('selector equality forms', () => {
  assert.equal(matches('model=llama-3-8b', llama), true);
  assert.equal(matches('model==llama-3-8b', llama), true);
  assert.equal(matches('model = llama-3-8b', llama), true);
  assert.equal(matches('model=llama-3-8b', mistral), false);
  assert.equal(matches('model=llama-3-8b', none), false);
});

test('selector values are case-sensitive', () => {
  assert.equal(matches('model=Llama-3-8b', llama), false);
});

test('selector inequality matches missing labels', () => {
  assert.equal(matches('model!=llama-3-8b', llama), false);
  assert.equal(matches('model!=llama-3-8b', mistral), true);
  assert.equal(matches('model!=llama-3-8b', none), true);
});

test('selector in and notin', () => {
  assert.equal(matches('model in (llama-3-8b, mistral-7b)', llama), true);
  assert.equal(matches('model in (mistral-7b)', llama), false);
  assert.equal(matches('model in (llama-3-8b)', none), false);
  assert.equal(matches('model notin (mistral-7b)', llama), true);
  assert.equal(matches('model notin (llama-3-8b,mistral-7b)', mistral), false);
  assert.equal(matches('model notin (llama-3-8b)', none), true);
});

test('selector exists and does not exist', () => {
  assert.equal(matches('model', llama), true);
  assert.equal(matches('model', none), false);
  assert.equal(matches('!model', none), true);
  assert.equal(matches('!model', llama), false);
});

test('selector requirements are ANDed', () => {
  assert.equal(matches('model,model in (llama-3-8b,x),model!=mistral-7b', llama), true);
  assert.equal(matches('model,model in (llama-3-8b,x),model!=llama-3-8b', llama), false);
});

test('selector accepts prefixed keys and empty values', () => {
  assert.deepEqual(parseSelector('infergate.io/model=a'), [{ key: 'infergate.io/model', operator: 'equals', values: ['a'] }]);
  assert.equal(matches('model=', { model: '' }), true);
});

test('selector rejects malformed input', () => {
  for (const bad of ['model in (a', 'model in a)', 'model in ()', 'model=a b', 'model=a,', '=a', 'mo del', 'model=' + 'x'.repeat(64), '-model=a', 'model=a/b', 'model notin']) {
    assert.throws(() => parseSelector(bad), SelectorError, `expected ${JSON.stringify(bad)} to be rejected`);
  }
});

test('selector error names the requirement', () => {
  assert.throws(() => parseSelector('model=ok,bad key'), /requirement "bad key"/);
});

test('selector rejects comparison operators', () => {
  for (const bad of ['model>1', 'model < 2', 'model>1,x=y']) {
    assert.throws(() => parseSelector(bad), /uses the operator "[<>]", which this server does not support/, `expected ${JSON.stringify(bad)} to name the operator`);
  }
});

test('selector key error states the prefix rule', () => {
  assert.throws(() => parseSelector('a/b/c=x'), /optional DNS subdomain prefix and "\/", then a name of at most 63 characters/);
  assert.throws(() => parseSelector('Example.com/model=x'), /invalid key prefix "Example\.com": expected a DNS subdomain/);
});
