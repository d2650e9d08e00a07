import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPOSITORY_ROOT } from '../../loadtest/bench/cli-support.ts';
import { loadTrace, parseTrace, scheduleRows, selectWindow, type TraceRow } from '../../loadtest/bench/trace.ts';

// The published traces sit beside the repository, read in place and never modified.
const TRACES = path.resolve(REPOSITORY_ROOT, '..', 'shared', 'traces');
const CONV = path.join(TRACES, 'AzureLLMInferenceTrace_conv.csv');
const CODE = path.join(TRACES, 'AzureLLMInferenceTrace_code.csv');

test('conv trace has 19366 rows', async () => {
  const trace = await loadTrace(CONV);
  assert.equal(trace.rows.length, 19_366);
  assert.equal(trace.firstTimestamp, '2023-11-16 18:15:46.6805900');
});

test('code trace has 8819 rows', async () => {
  const trace = await loadTrace(CODE);
  assert.equal(trace.rows.length, 8_819);
  assert.equal(trace.firstTimestamp, '2023-11-16 18:17:03.9799600');
});

test('trace files use CRLF and no final newline', async () => {
  for (const file of [CONV, CODE]) {
    const text = await readFile(file, 'utf8');
    assert.ok(text.includes('\r\n'), `${file} has CRLF line ends`);
    assert.ok(!text.endsWith('\n'), `${file} has no final newline`);
  }
});

test('conv trace keeps 100 ns offsets', async () => {
  const trace = await loadTrace(CONV);
  const [first, second, third] = trace.rows;
  assert.deepEqual(first, { offsetMs: 0, contextTokens: 374, generatedTokens: 44 });
  // 18:15:50.9951690 - 18:15:46.6805900 = 4.3145790 s
  assert.equal(second?.offsetMs, 4314.579);
  assert.equal(second?.contextTokens, 396);
  assert.equal(second?.generatedTokens, 109);
  // 18:15:51.2224670 - 18:15:46.6805900 = 4.5418770 s
  assert.equal(third?.offsetMs, 4541.877);
});

test('trace spans match the published spans', async () => {
  const conv = await loadTrace(CONV);
  const code = await loadTrace(CODE);
  // 19:14:08.40 - 18:15:46.68 and 19:14:19.93 - 18:17:03.98, to 0.1 s.
  assert.equal(Math.round((conv.rows.at(-1)?.offsetMs ?? 0) / 100) / 10, 3501.7);
  assert.equal(Math.round((code.rows.at(-1)?.offsetMs ?? 0) / 100) / 10, 3435.9);
});

test('parser accepts LF and a final newline', () => {
  const text = 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.0000000,10,2\n2023-11-16 18:00:01.5,20,3\n';
  const trace = parseTrace(text);
  assert.equal(trace.rows.length, 2);
  assert.equal(trace.rows[1]?.offsetMs, 1500);
});

test('parser crosses midnight', () => {
  const text = 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 23:59:59.9000000,1,1\r\n2023-11-17 00:00:00.1000000,1,1';
  assert.equal(parseTrace(text).rows[1]?.offsetMs, 200);
});

test('parser rejects a wrong header', () => {
  assert.throws(() => parseTrace('time,in,out\r\n2023-11-16 18:00:00.0,1,1', 'x.csv'), /x\.csv: line 1: expected header TIMESTAMP,ContextTokens,GeneratedTokens/);
});

test('parser rejects a bad timestamp', () => {
  const text = 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:00:00.0,1,1\r\n2023-11-16T18:00:01,1,1';
  assert.throws(() => parseTrace(text, 'x.csv'), /x\.csv: line 3: invalid TIMESTAMP "2023-11-16T18:00:01"/);
});

test('parser rejects a bad token count', () => {
  const text = 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:00:00.0,-4,1';
  assert.throws(() => parseTrace(text, 'x.csv'), /x\.csv: line 2: invalid ContextTokens "-4"/);
});

test('parser rejects unsorted rows', () => {
  const text = 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:00:01.0,1,1\r\n2023-11-16 18:00:00.0,1,1';
  assert.throws(() => parseTrace(text, 'x.csv'), /line 3: TIMESTAMP 2023-11-16 18:00:00\.0 is earlier than the previous row/);
});

test('parser rejects a missing field', () => {
  const text = 'TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:00:00.0,1';
  assert.throws(() => parseTrace(text, 'x.csv'), /line 2: expected 3 comma-separated fields, got 2/);
});

test('parser rejects a header without rows', () => {
  assert.throws(() => parseTrace('TIMESTAMP,ContextTokens,GeneratedTokens\r\n', 'x.csv'), /x\.csv: no data rows/);
});

test('loadTrace names a missing file', async () => {
  await assert.rejects(loadTrace('/nonexistent/trace.csv'), /cannot read trace file \/nonexistent\/trace\.csv/);
});

const row = (offsetMs: number): TraceRow => ({ offsetMs, contextTokens: 1, generatedTokens: 1 });

test('window includes start and excludes end', () => {
  const rows = [row(0), row(59_999), row(60_000), row(119_999.9), row(120_000)];
  const selected = selectWindow(rows, { startMinute: 1, minutes: 1 });
  assert.deepEqual(
    selected.map((entry) => entry.offsetMs),
    [60_000, 119_999.9],
  );
});

test('window of the first 10 minutes of conv', async () => {
  const trace = await loadTrace(CONV);
  const selected = selectWindow(trace.rows, { startMinute: 0, minutes: 10 });
  assert.ok(selected.length > 0);
  assert.ok(selected.every((entry) => entry.offsetMs < 600_000));
  assert.ok((trace.rows[selected.length]?.offsetMs ?? Infinity) >= 600_000);
});

test('window rejects a non-positive length', () => {
  assert.throws(() => selectWindow([row(0)], { startMinute: 0, minutes: 0 }), /window length must be > 0 minutes, got 0/);
});

test('schedule divides gaps by the speed', () => {
  const scheduled = scheduleRows([row(60_000), row(61_000), row(80_000)], 20);
  assert.deepEqual(
    scheduled.map((entry) => entry.sendAtMs),
    [0, 50, 1000],
  );
});

test('schedule rejects a zero speed', () => {
  assert.throws(() => scheduleRows([row(0)], 0), /speed must be a finite number > 0, got 0/);
});
