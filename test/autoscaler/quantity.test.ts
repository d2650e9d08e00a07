import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatQuantity, parseQuantity } from '../../autoscaler/src/api/quantity.ts';

const CASES: [number, string][] = [
  [0, '0'],
  [1, '1'],
  [7, '7'],
  [1.5, '1500m'],
  [0.001, '1m'],
  [0.5, '500m'],
  [1000, '1k'],
  [1500, '1500'],
  [2_000_000, '2M'],
  [12345.678, '12345678m'],
  [999.999, '999999m'],
  [0.1 + 0.2, '300m'],
  [3e12, '3T'],
];

for (const [value, expected] of CASES) {
  test(`quantity of ${value} is ${expected}`, () => {
    assert.equal(formatQuantity(value), expected);
  });
}

test('quantity rounds sub-milli values up', () => {
  assert.equal(formatQuantity(0.0001), '1m');
  assert.equal(formatQuantity(1.0004), '1001m');
  assert.equal(formatQuantity(2.0000001), '2001m');
});

test('quantity never has an exponent', () => {
  for (const value of [1e-7, 1e21 / 1e12, 123456789.123, 5e9]) {
    assert.doesNotMatch(formatQuantity(value), /e/i);
  }
});

test('quantity rejects negative and non-finite', () => {
  assert.throws(() => formatQuantity(-1), RangeError);
  assert.throws(() => formatQuantity(Number.NaN), RangeError);
  assert.throws(() => formatQuantity(Number.POSITIVE_INFINITY), RangeError);
});

test('quantity round-trips through parseQuantity', () => {
  for (const [value] of CASES) {
    assert.ok(Math.abs(parseQuantity(formatQuantity(value)) - value) < 0.001, `round trip of ${value}`);
  }
});
