import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCodeOf, SseScanner, type RequestOutcome } from '../../loadtest/bench/http-client.ts';
import { verdictLines } from '../../loadtest/bench/replay-run.ts';
import { formatTally } from '../../loadtest/bench/report.ts';
import { OutcomeTally } from '../../loadtest/bench/tally.ts';

const response = (status: number, totalMs: number, code?: string): RequestOutcome => ({
  kind: 'response',
  status,
  code,
  ttfbMs: totalMs / 2,
  totalMs,
  bodyBytes: 10,
  requestIdMismatch: false,
});

test('sse scanner accepts a stream ending in DONE', () => {
  const scanner = new SseScanner();
  scanner.push('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n');
  scanner.push('data: [DONE]\n\n');
  assert.equal(scanner.finish(), undefined);
});

test('sse scanner joins lines split across chunks', () => {
  const scanner = new SseScanner();
  scanner.push('data: {"choices":[]}\r\n\r\ndata: [DO');
  scanner.push('NE]\r\n\r\n');
  assert.equal(scanner.finish(), undefined);
});

test('sse scanner flags a stream without DONE', () => {
  const scanner = new SseScanner();
  scanner.push('data: {"choices":[]}\n\n');
  assert.equal(scanner.finish(), 'stream_incomplete');
});

test('sse scanner reads an error event code', () => {
  const scanner = new SseScanner();
  scanner.push('data: {"choices":[]}\n\nevent: error\ndata: {"error":{"message":"upstream reset","code":"upstream_error"}}\n\n');
  assert.equal(scanner.finish(), 'upstream_error');
});

test('sse scanner flags a bare error event', () => {
  const scanner = new SseScanner();
  scanner.push('event: error\ndata: {}\n\n');
  assert.equal(scanner.finish(), 'stream_error');
});

test('sse scanner ignores the word error in content', () => {
  const scanner = new SseScanner();
  scanner.push('data: {"choices":[{"delta":{"content":"\\"error\\""}}]}\n\ndata: [DONE]\n\n');
  assert.equal(scanner.finish(), undefined);
});

test('error code from an OpenAI error body', () => {
  assert.equal(errorCodeOf('{"error":{"message":"queue full","type":"rate_limit","code":"queue_full","param":null}}'), 'queue_full');
});

test('error code falls back to the type', () => {
  assert.equal(errorCodeOf('{"error":{"message":"bad","type":"invalid_request_error","code":null}}'), 'invalid_request_error');
});

test('error code of a V2 error body', () => {
  assert.equal(errorCodeOf('{"error":"unknown model"}'), 'v2_error');
});

test('error code of a non-JSON body', () => {
  assert.equal(errorCodeOf('<html>bad gateway</html>'), 'http_error');
});

test('tally balances every outcome kind', () => {
  const tally = new OutcomeTally();
  for (let index = 0; index < 6; index++) tally.begin();
  tally.record(response(200, 10));
  tally.record(response(200, 30));
  tally.record(response(429, 1, 'queue_full'));
  tally.record({ kind: 'transport_error', code: 'ECONNRESET', totalMs: 5, bodyBytes: 0, requestIdMismatch: false });
  tally.record({ kind: 'aborted', code: 'client_aborted', totalMs: 5, bodyBytes: 0, requestIdMismatch: false });
  tally.recordLost();
  const snapshot = tally.snapshot();
  assert.equal(snapshot.sent, 6);
  assert.equal(snapshot.answered, 3);
  assert.equal(snapshot.succeeded, 2);
  assert.equal(snapshot.transportErrors, 1);
  assert.equal(snapshot.clientAborted, 1);
  assert.equal(snapshot.lost, 1);
  assert.equal(snapshot.byStatus.get('200'), 2);
  assert.equal(snapshot.byCode.get('429 queue_full'), 1);
  assert.equal(snapshot.byCode.get('transport ECONNRESET'), 1);
  assert.equal(snapshot.total.count, 2);
});

test('tally counts pending requests as lost', () => {
  const tally = new OutcomeTally();
  tally.begin();
  tally.begin();
  tally.record(response(200, 10));
  assert.equal(tally.pending, 1);
  assert.equal(tally.snapshot().lost, 1);
});

test('tally keeps failed streams out of latency', () => {
  const tally = new OutcomeTally();
  tally.begin();
  tally.record(response(200, 10, 'stream_incomplete'));
  const snapshot = tally.snapshot();
  assert.equal(snapshot.succeeded, 0);
  assert.equal(snapshot.total.count, 0);
  assert.equal(snapshot.byCode.get('200 stream_incomplete'), 1);
});

test('tally counts request id mismatches', () => {
  const tally = new OutcomeTally();
  tally.begin();
  tally.record({ ...response(200, 1), requestIdMismatch: true });
  assert.equal(tally.snapshot().requestIdMismatches, 1);
});

test('report shows a balanced check', () => {
  const tally = new OutcomeTally();
  tally.begin();
  tally.record(response(200, 10));
  const text = formatTally(tally.snapshot());
  assert.match(text, /check: sent 1 = answered 1 \+ transport errors 0 \+ client aborts 0 \+ lost 0: balanced/);
});

test('a 2xx with another request id is not a success', () => {
  const tally = new OutcomeTally();
  tally.begin();
  tally.record({ ...response(200, 1), requestIdMismatch: true });
  const snapshot = tally.snapshot();
  assert.equal(snapshot.succeeded, 0);
  assert.equal(snapshot.answered, 1);
});

const fullSchedule = { planned: 10, skippedInFlight: 0, notSent: 0 };

test('verdict warns when every request was answered and none succeeded', () => {
  const lines = verdictLines({ sent: 10, succeeded: 0, lost: 0, transportErrors: 0 }, fullSchedule, 0);
  assert.match(lines[0]?.text ?? '', /OK: every one of 10 requests got exactly one response/);
  assert.match(lines[1]?.text ?? '', /^WARNING: only 0 of 10 requests succeeded \(0\.0%\)/);
  assert.equal(Math.max(...lines.map((line) => line.exitCode)), 0);
});

test('verdict fails below --min-success-ratio', () => {
  const lines = verdictLines({ sent: 10, succeeded: 8, lost: 0, transportErrors: 0 }, fullSchedule, 0.9);
  assert.match(lines[1]?.text ?? '', /^FAILED: only 8 of 10 requests succeeded \(80\.0%\), below --min-success-ratio 0\.9/);
  assert.equal(lines[1]?.exitCode, 1);
});

test('verdict passes at --min-success-ratio without a warning', () => {
  const lines = verdictLines({ sent: 100, succeeded: 100, lost: 0, transportErrors: 0 }, { ...fullSchedule, planned: 100 }, 1);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.exitCode, 0);
});
