import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ManualClock } from '../../shared/src/clock.ts';
import { createLogger } from '../../shared/src/logger.ts';
import { GatewayMetrics } from '../../gateway/src/admin/metrics.ts';
import { buildConfig } from '../../gateway/src/config/load.ts';
import { admit, parsePriority, parseTimeout, requestIdOf } from '../../gateway/src/http/admission.ts';
import { GatewayError } from '../../gateway/src/http/errors.ts';
import type { ModelRuntime } from '../../gateway/src/model-runtime.ts';
import { RecordingReply } from './scheduler-harness.ts';
import { metricValue } from './helpers.ts';

const requestWith = (headers: Record<string, string>): FastifyRequest => ({ headers }) as unknown as FastifyRequest;

describe('admission headers', () => {
  test('timeout defaults to the queue timeout', () => {
    assert.deepEqual(parseTimeout(requestWith({}), 60_000), { timeoutMs: 60_000, explicit: false });
  });

  test('timeout is capped by the queue timeout', () => {
    assert.deepEqual(parseTimeout(requestWith({ 'x-request-timeout-ms': '900000' }), 60_000), { timeoutMs: 60_000, explicit: true });
    assert.deepEqual(parseTimeout(requestWith({ 'x-request-timeout-ms': '250' }), 60_000), { timeoutMs: 250, explicit: true });
    assert.deepEqual(parseTimeout(requestWith({ 'x-request-timeout-ms': '10000000000' }), 60_000), { timeoutMs: 60_000, explicit: true });
    assert.deepEqual(parseTimeout(requestWith({ 'x-request-timeout-ms': '9'.repeat(400) }), 60_000), { timeoutMs: 60_000, explicit: true });
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

  test('a generated request id stays the same for one request', () => {
    const request = requestWith({});
    const id = requestIdOf(request);
    assert.equal(requestIdOf(request), id);
    assert.notEqual(requestIdOf(requestWith({})), id);
  });
});

describe('admission failures', () => {
  test('an unexpected error while admitting still answers once and records the outcome', async () => {
    const config = buildConfig({ models: [{ name: 'm', protocol: 'openai', replicas: { static: ['http://127.0.0.1:9'] } }] }).models[0]!;
    const model = {
      config,
      scheduler: {
        submit: () => {
          throw new TypeError('scheduler bug');
        },
      },
    } as unknown as ModelRuntime;
    const metrics = new GatewayMetrics(() => [], { defaultMetrics: false });
    const clock = new ManualClock();
    const reply = new RecordingReply();
    const deps = { clock, metrics, logger: createLogger({ service: 'admission-test', level: 'silent' }), isShuttingDown: () => false };
    await admit(deps, model, requestWith({ 'x-request-id': 'boom' }), reply as unknown as FastifyReply, { style: 'openai', upstreamPath: '/v1/chat/completions', payload: {}, rows: 1, batchKey: null, stream: false });
    assert.equal(reply.statusCode, 500);
    assert.equal((reply.body as { error: { code: string } }).error.code, 'internal_error');
    assert.equal(clock.pendingTimers, 0, 'the deadline timer was released');
    assert.equal(metricValue(await metrics.registry.metrics(), 'infergate_requests_total', { model: 'm', outcome: 'upstream_error' }), 1);
  });
});
