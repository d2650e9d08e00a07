import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { parsePriority, parseTimeout, requestIdOf } from '../../gateway/src/http/admission.ts';
import { GatewayError } from '../../gateway/src/http/errors.ts';

const requestWith = (headers: Record<string, string>): FastifyRequest => ({ headers }) as unknown as FastifyRequest;

describe('admission headers', () => {
  test('timeout defaults to the queue timeout', () => {
    assert.deepEqual(parseTimeout(requestWith({}), 60_000), { timeoutMs: 60_000, explicit: false });
  });

  test('timeout is capped by the queue timeout', () => {
    assert.deepEqual(parseTimeout(requestWith({ 'x-request-timeout-ms': '900000' }), 60_000), { timeoutMs: 60_000, explicit: true });
    assert.deepEqual(parseTimeout(requestWith({ 'x-request-timeout-ms': '250' }), 60_000), { timeoutMs: 250, explicit: true });
  });

  test('invalid timeouts name the header', () => {
    for (const value of ['0', '-5', '1.5', 'soon', '']) {
      assert.throws(
        () => parseTimeout(requestWith({ 'x-request-timeout-ms': value }), 60_000),
        (error: unknown) => error instanceof GatewayError && error.status === 400 && error.param === 'header x-request-timeout-ms',
        `value ${JSON.stringify(value)}`,
      );
    }
  });

  test('priority is case-insensitive and defaults to standard', () => {
    assert.equal(parsePriority(requestWith({})), 'standard');
    assert.equal(parsePriority(requestWith({ 'x-priority': 'Critical' })), 'critical');
    assert.throws(() => parsePriority(requestWith({ 'x-priority': 'high' })), /allowed values are critical, standard, sheddable/);
  });

  test('request id kept or replaced', () => {
    assert.equal(requestIdOf(requestWith({ 'x-request-id': 'abc-123' })), 'abc-123');
    assert.match(requestIdOf(requestWith({ 'x-request-id': 'has space' })), /^[0-9a-f-]{36}$/);
    assert.match(requestIdOf(requestWith({ 'x-request-id': 'x'.repeat(201) })), /^[0-9a-f-]{36}$/);
  });
});
