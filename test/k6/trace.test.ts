// Tests of the trace reader and arrival plan that trace-replay.js uses, on the real Azure
// trace files and on small inputs that exercise the format's edge cases.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { TRACES_DIR, durationMs, loadLibrary } from './k6-init-context.ts';

interface TraceRow {
  offsetMs: number;
  contextTokens: number;
  generatedTokens: number;
}

interface ArrivalPlan {
  startRate: number;
  timeUnit: string;
  stages: { duration: string; target: number }[];
  totalRequests: number;
  peakPerSecond: number;
  durationMs: number;
}

interface TraceLibrary {
  parseTrace(text: string, source?: string): TraceRow[];
  selectWindow(rows: readonly TraceRow[], window: { startMinute: number; minutes: number }): TraceRow[];
  countPerBucket(rows: readonly TraceRow[], bucketMs: number): number[];
  buildArrivalPlan(counts: readonly number[], timing: { bucketMs: number; speed: number }): ArrivalPlan;
  formatDuration(ms: number): string;
}

const trace = await loadLibrary<TraceLibrary>('trace.js');

const TRACE_FILES = ['AzureLLMInferenceTrace_conv.csv', 'AzureLLMInferenceTrace_code.csv'];
const tracesMissing = TRACE_FILES.some((name) => !existsSync(`${TRACES_DIR}${name}`));
const skipReason = tracesMissing ? `Azure trace files not found in ${TRACES_DIR}` : false;

const HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';

/** Splits a trace file into data lines without the parser under test: CRLF, no final newline. */
function dataLines(text: string): string[] {
  return text.split('\r\n').slice(1);
}

/**
 * Rebuilds per-bucket counts from a plan by walking its stages the way k6 does: a
 * constant stage of n time units at target t starts n * t iterations; 0-duration stages
 * only change the rate.
 */
function countsFromPlan(plan: ArrivalPlan): number[] {
  const unitMs = durationMs(plan.timeUnit);
  const counts: number[] = [];
  let rate = plan.startRate;
  for (const stage of plan.stages) {
    const stageMs = durationMs(stage.duration);
    if (stageMs === 0) {
      rate = stage.target;
      continue;
    }
    assert.equal(stage.target, rate, `stage ${JSON.stringify(stage)} ramps instead of holding ${rate}`);
    const buckets = Math.round(stageMs / unitMs);
    for (let index = 0; index < buckets; index++) counts.push(rate);
  }
  return counts;
}

describe('trace reader on the Azure traces', { skip: skipReason }, () => {
  for (const name of TRACE_FILES) {
    test(`${name} parses every data line`, () => {
      const text = readFileSync(`${TRACES_DIR}${name}`, 'utf8');
      const lines = dataLines(text);
      const rows = trace.parseTrace(text, name);

      assert.equal(text.endsWith('\n'), false);
      assert.equal(rows.length, lines.length);
      assert.equal(rows[0]?.offsetMs, 0);

      const [, lastContext, lastGenerated] = (lines.at(-1) ?? '').split(',');
      assert.equal(rows.at(-1)?.contextTokens, Number(lastContext));
      assert.equal(rows.at(-1)?.generatedTokens, Number(lastGenerated));
      assert.ok(rows.every((row, index) => index === 0 || row.offsetMs >= (rows[index - 1]?.offsetMs ?? 0)));
    });
  }

  test('conv trace spans 3501.7 s with its first rows intact', () => {
    const rows = trace.parseTrace(readFileSync(`${TRACES_DIR}AzureLLMInferenceTrace_conv.csv`, 'utf8'));

    assert.equal(rows.length, 19366);
    assert.equal(Math.round((rows.at(-1)?.offsetMs ?? 0) / 100) / 10, 3501.7);
    assert.deepEqual(rows[0], { offsetMs: 0, contextTokens: 374, generatedTokens: 44 });
    // 18:15:50.9951690 - 18:15:46.6805900 = 4314.579 ms, kept to 100 ns.
    assert.equal(rows[1]?.offsetMs, 4314.579);
  });

  test('first 10 minutes match a string comparison of timestamps', () => {
    const text = readFileSync(`${TRACES_DIR}AzureLLMInferenceTrace_conv.csv`, 'utf8');
    // The first row is 2023-11-16 18:15:46.6805900; timestamps are fixed-width, so
    // comparing strings compares times.
    const end = '2023-11-16 18:25:46.6805900';
    const expected = dataLines(text).filter((line) => line.slice(0, 27) < end).length;

    const window = trace.selectWindow(trace.parseTrace(text), { startMinute: 0, minutes: 10 });

    assert.equal(window.length, expected);
    assert.ok((window.at(-1)?.offsetMs ?? Infinity) < 600_000);
  });

  for (const name of TRACE_FILES) {
    test(`${name} plan at speed 20 reproduces per-second counts`, () => {
      const rows = trace.parseTrace(readFileSync(`${TRACES_DIR}${name}`, 'utf8'));
      const window = trace.selectWindow(rows, { startMinute: 0, minutes: 10 });
      const counts = trace.countPerBucket(window, 1000);

      const plan = trace.buildArrivalPlan(counts, { bucketMs: 1000, speed: 20 });

      assert.equal(counts.reduce((sum, count) => sum + count, 0), window.length);
      assert.equal(plan.totalRequests, window.length);
      assert.equal(plan.timeUnit, '50ms');
      assert.equal(plan.startRate, counts[0]);
      assert.deepEqual(countsFromPlan(plan), [...counts, 0]);
      assert.equal(plan.durationMs, (counts.length + 1) * 50);
      assert.equal(plan.peakPerSecond, Math.max(...counts) * 20);
    });
  }

  test('code trace plan merges idle seconds into one stage', () => {
    const rows = trace.parseTrace(readFileSync(`${TRACES_DIR}AzureLLMInferenceTrace_code.csv`, 'utf8'));
    const counts = trace.countPerBucket(trace.selectWindow(rows, { startMinute: 0, minutes: 60 }), 1000);
    let runs = 0;
    [...counts, 0].forEach((count, index, all) => {
      if (index === 0 || all[index - 1] !== count) runs += 1;
    });

    const plan = trace.buildArrivalPlan(counts, { bucketMs: 1000, speed: 1 });

    assert.equal(plan.stages.length, 2 * runs - 1);
    assert.ok(plan.stages.length < 2 * counts.length, 'runs of equal counts were not merged');
    assert.equal(plan.totalRequests, 8819);
  });

  test('window later in the trace is relative to its start', () => {
    const rows = trace.parseTrace(readFileSync(`${TRACES_DIR}AzureLLMInferenceTrace_conv.csv`, 'utf8'));

    const window = trace.selectWindow(rows, { startMinute: 30, minutes: 1 });
    const expected = rows.filter((row) => row.offsetMs >= 1_800_000 && row.offsetMs < 1_860_000);

    assert.equal(window.length, expected.length);
    assert.equal(window[0]?.offsetMs, (expected[0]?.offsetMs ?? 0) - 1_800_000);
    assert.equal(window[0]?.contextTokens, expected[0]?.contextTokens);
  });
});

describe('trace reader format handling', () => {
  const crlf = [HEADER, '2023-11-16 18:00:00.0000000,10,5', '2023-11-16 18:00:00.5000000,20,6', '2023-11-16 18:00:02.2500000,30,7'].join('\r\n');

  test('LF and a final newline give the same rows as CRLF', () => {
    const lf = `${crlf.replaceAll('\r\n', '\n')}\n`;

    assert.deepEqual(trace.parseTrace(lf), trace.parseTrace(crlf));
    assert.deepEqual(trace.parseTrace(`${crlf}\r\n`), trace.parseTrace(crlf));
  });

  test('offsets and token counts of each row', () => {
    assert.deepEqual(trace.parseTrace(crlf), [
      { offsetMs: 0, contextTokens: 10, generatedTokens: 5 },
      { offsetMs: 500, contextTokens: 20, generatedTokens: 6 },
      { offsetMs: 2250, contextTokens: 30, generatedTokens: 7 },
    ]);
  });

  test('wrong header is rejected with line 1', () => {
    assert.throws(() => trace.parseTrace('time,in,out\r\n2023-11-16 18:00:00.0,1,1', 'x.csv'), /x\.csv: line 1: expected the header/);
  });

  test('bad timestamp names the line and value', () => {
    assert.throws(() => trace.parseTrace(`${HEADER}\r\n2023-11-16T18:00:00,1,1`, 'x.csv'), /x\.csv: line 2: invalid TIMESTAMP "2023-11-16T18:00:00"/);
  });

  test('bad token count names the column', () => {
    assert.throws(() => trace.parseTrace(`${HEADER}\r\n2023-11-16 18:00:00.0,1,-4`), /line 2: invalid GeneratedTokens "-4"/);
  });

  test('blank line inside the file is rejected', () => {
    assert.throws(() => trace.parseTrace(`${HEADER}\r\n2023-11-16 18:00:00.0,1,1\r\n\r\n2023-11-16 18:00:01.0,1,1`), /line 3: expected 3 comma-separated fields/);
  });

  test('unsorted rows are rejected', () => {
    assert.throws(() => trace.parseTrace(`${HEADER}\r\n2023-11-16 18:00:01.0,1,1\r\n2023-11-16 18:00:00.0,1,1`), /line 3: .* earlier than the previous row/);
  });

  test('header without rows is rejected', () => {
    assert.throws(() => trace.parseTrace(`${HEADER}\r\n`), /no data rows/);
  });
});

describe('arrival plan', () => {
  test('counts per bucket include empty buckets', () => {
    const rows = [0, 100, 2500, 2600, 2700].map((offsetMs) => ({ offsetMs, contextTokens: 1, generatedTokens: 1 }));

    assert.deepEqual(trace.countPerBucket(rows, 1000), [2, 0, 3]);
  });

  test('stages jump between runs and end with an idle bucket', () => {
    const plan = trace.buildArrivalPlan([2, 2, 0, 3], { bucketMs: 1000, speed: 1 });

    assert.equal(plan.startRate, 2);
    assert.equal(plan.timeUnit, '1000ms');
    assert.deepEqual(plan.stages, [
      { duration: '2000ms', target: 2 },
      { duration: '0s', target: 0 },
      { duration: '1000ms', target: 0 },
      { duration: '0s', target: 3 },
      { duration: '1000ms', target: 3 },
      { duration: '0s', target: 0 },
      { duration: '1000ms', target: 0 },
    ]);
    assert.equal(plan.totalRequests, 7);
  });

  test('fractional bucket length is written in microseconds', () => {
    const plan = trace.buildArrivalPlan([1], { bucketMs: 1000, speed: 3 });

    assert.equal(plan.timeUnit, '333333us');
    assert.equal(trace.formatDuration(250), '250ms');
  });

  test('bucket shorter than 1 ms is rejected', () => {
    assert.throws(() => trace.buildArrivalPlan([1], { bucketMs: 10, speed: 20 }), /lasts 0\.5 ms; it must last at least 1 ms/);
  });

  test('empty window is rejected', () => {
    assert.throws(() => trace.buildArrivalPlan([], { bucketMs: 1000, speed: 1 }), /no arrivals/);
  });

  test('invalid window bounds are rejected', () => {
    assert.throws(() => trace.selectWindow([], { startMinute: -1, minutes: 1 }), /start must be .* >= 0, got -1/);
    assert.throws(() => trace.selectWindow([], { startMinute: 0, minutes: 0 }), /length must be .* > 0, got 0/);
  });
});
