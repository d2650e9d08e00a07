import { test } from 'node:test';
import assert from 'node:assert/strict';

test('runtime is node 24', () => {
  assert.equal(process.versions.node.split('.')[0], '24');
});
