// Azure LLM inference trace CSV reader and its conversion into k6 `ramping-arrival-rate`
// stages. Plain ES module without k6 imports, so Node tests can load it as well.
//
// File format: header `TIMESTAMP,ContextTokens,GeneratedTokens`, CRLF line ends, no final
// newline, timestamps `YYYY-MM-DD HH:MM:SS.fffffff` (7 fractional digits, no time zone).
// Only differences between timestamps matter, so they are read as UTC.
//
// k6 has no CSV reader that runs in its init context without a remote import, and the
// format is three integer-like columns, so the parser is written here.

const EXPECTED_HEADER = 'TIMESTAMP,ContextTokens,GeneratedTokens';
const TIMESTAMP_PATTERN = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/;
const COUNT_PATTERN = /^\d+$/;
const MS_PER_MINUTE = 60000;

/**
 * One request of the trace.
 * @typedef {object} TraceRow
 * @property {number} offsetMs Arrival time in milliseconds after the first row of the file.
 * @property {number} contextTokens Prompt length in tokens.
 * @property {number} generatedTokens Output length in tokens.
 */

/**
 * Part of the trace to replay, in minutes of trace time after the first row.
 * @typedef {object} TraceWindow
 * @property {number} startMinute Window start; 0 starts at the first row.
 * @property {number} minutes Window length.
 */

/**
 * One k6 stage: `target` iterations per `timeUnit`, reached at the end of `duration`.
 * @typedef {object} ArrivalStage
 * @property {string} duration
 * @property {number} target
 */

/**
 * Settings of a k6 `ramping-arrival-rate` scenario that replays per-bucket counts.
 * @typedef {object} ArrivalPlan
 * @property {number} startRate Iterations per `timeUnit` at the start (the first bucket's count).
 * @property {string} timeUnit Real duration of one bucket after the speed-up.
 * @property {ArrivalStage[]} stages
 * @property {number} totalRequests Sum of the bucket counts: the iterations k6 starts.
 * @property {number} peakPerSecond Highest bucket count converted to requests per real second.
 * @property {number} durationMs Real duration of all stages in milliseconds.
 */

/**
 * Parses the text of a trace file. Accepts CRLF and LF line ends and a missing or present
 * final newline. Rows must be sorted by TIMESTAMP, as the published files are.
 * Throws an Error naming the source, the line number and the bad value.
 * @param {string} text
 * @param {string} [source] File name used in error messages.
 * @returns {TraceRow[]}
 */
export function parseTrace(text, source = 'trace') {
  const lines = text.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') {
    lines.pop();
  }

  const header = lines[0] ?? '';
  if (header.trim() !== EXPECTED_HEADER) {
    throw new Error(`${source}: line 1: expected the header ${EXPECTED_HEADER}, got ${JSON.stringify(header)}`);
  }

  /** @type {TraceRow[]} */
  const rows = [];
  let firstWholeMs = 0;
  let firstTicks = 0;
  let previousOffsetMs = -Infinity;
  for (let index = 1; index < lines.length; index++) {
    const lineNumber = index + 1;
    const line = lines[index] ?? '';
    const cells = line.split(',');
    if (cells.length !== 3) {
      throw new Error(
        `${source}: line ${lineNumber}: expected 3 comma-separated fields, got ${cells.length} in ${JSON.stringify(line)}`,
      );
    }

    const [wholeMs, ticks] = parseTimestamp((cells[0] ?? '').trim(), source, lineNumber);
    if (rows.length === 0) {
      firstWholeMs = wholeMs;
      firstTicks = ticks;
    }
    // Differences are taken in integers first so 100 ns steps survive the conversion to a
    // double, which epoch milliseconds with a fraction would not.
    const offsetMs = wholeMs - firstWholeMs + (ticks - firstTicks) / 10000;
    if (offsetMs < previousOffsetMs) {
      throw new Error(`${source}: line ${lineNumber}: TIMESTAMP ${cells[0]} is earlier than the previous row; sort the file by TIMESTAMP`);
    }
    previousOffsetMs = offsetMs;

    rows.push({
      offsetMs,
      contextTokens: parseCount((cells[1] ?? '').trim(), 'ContextTokens', source, lineNumber),
      generatedTokens: parseCount((cells[2] ?? '').trim(), 'GeneratedTokens', source, lineNumber),
    });
  }

  if (rows.length === 0) {
    throw new Error(`${source}: no data rows after the header`);
  }
  return rows;
}

/**
 * Returns the rows that arrive in [startMinute, startMinute + minutes) of trace time,
 * with offsets made relative to the window start.
 * @param {readonly TraceRow[]} rows
 * @param {TraceWindow} window
 * @returns {TraceRow[]}
 */
export function selectWindow(rows, window) {
  if (!(window.startMinute >= 0) || !Number.isFinite(window.startMinute)) {
    throw new RangeError(`trace window start must be a finite number of minutes >= 0, got ${window.startMinute}`);
  }
  if (!(window.minutes > 0) || !Number.isFinite(window.minutes)) {
    throw new RangeError(`trace window length must be a finite number of minutes > 0, got ${window.minutes}`);
  }

  const startMs = window.startMinute * MS_PER_MINUTE;
  const endMs = startMs + window.minutes * MS_PER_MINUTE;
  /** @type {TraceRow[]} */
  const selected = [];
  for (const row of rows) {
    if (row.offsetMs >= startMs && row.offsetMs < endMs) {
      selected.push({ ...row, offsetMs: row.offsetMs - startMs });
    }
  }
  return selected;
}

/**
 * Counts arrivals per bucket of `bucketMs` trace milliseconds, from offset 0 to the bucket
 * of the last row. Offsets must be relative to the window start (see selectWindow).
 * @param {readonly TraceRow[]} rows
 * @param {number} bucketMs
 * @returns {number[]}
 */
export function countPerBucket(rows, bucketMs) {
  if (!(bucketMs > 0) || !Number.isFinite(bucketMs)) {
    throw new RangeError(`trace bucket must be a finite number of milliseconds > 0, got ${bucketMs}`);
  }

  /** @type {number[]} */
  const counts = [];
  for (const row of rows) {
    if (row.offsetMs < 0) {
      throw new RangeError(`trace row offset must be >= 0 ms, got ${row.offsetMs}; pass rows from selectWindow`);
    }
    const bucket = Math.floor(row.offsetMs / bucketMs);
    while (counts.length <= bucket) {
      counts.push(0);
    }
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  return counts;
}

/**
 * Builds a `ramping-arrival-rate` plan that starts `counts[i]` iterations during bucket i,
 * each bucket lasting `bucketMs / speed` real milliseconds.
 *
 * The rate is a step function: runs of equal counts become one constant stage, and a
 * 0-duration stage jumps between runs (k6 adds no iterations during a 0-duration stage).
 * k6 starts the n-th iteration when the integral of the rate reaches n, so the last
 * iteration of a bucket falls on the bucket's end. One idle bucket is appended so the
 * final arrival lies inside the scenario instead of on its last instant.
 * Arrivals inside a bucket are evenly spaced, so detail finer than one bucket is lost.
 * @param {readonly number[]} counts Iterations per bucket.
 * @param {{bucketMs: number, speed: number}} timing
 * @returns {ArrivalPlan}
 */
export function buildArrivalPlan(counts, timing) {
  const { bucketMs, speed } = timing;
  if (!(speed > 0) || !Number.isFinite(speed)) {
    throw new RangeError(`trace speed must be a finite number > 0, got ${speed}`);
  }
  const realBucketMs = bucketMs / speed;
  if (!(realBucketMs >= 1) || !Number.isFinite(realBucketMs)) {
    throw new RangeError(
      `one trace bucket of ${bucketMs} ms at speed ${speed} lasts ${realBucketMs} ms; it must last at least 1 ms, so lower the speed or widen the bucket`,
    );
  }
  if (counts.length === 0) {
    throw new RangeError('trace window has no arrivals; choose a window that contains rows');
  }

  /** @type {{count: number, buckets: number}[]} */
  const runs = [];
  let totalRequests = 0;
  let peakCount = 0;
  for (const count of [...counts, 0]) {
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(`bucket counts must be integers >= 0, got ${count}`);
    }
    totalRequests += count;
    peakCount = Math.max(peakCount, count);
    const last = runs[runs.length - 1];
    if (last !== undefined && last.count === count) {
      last.buckets += 1;
    } else {
      runs.push({ count, buckets: 1 });
    }
  }

  /** @type {ArrivalStage[]} */
  const stages = [];
  for (const [index, run] of runs.entries()) {
    if (index > 0) {
      stages.push({ duration: '0s', target: run.count });
    }
    stages.push({ duration: formatDuration(run.buckets * realBucketMs), target: run.count });
  }

  return {
    startRate: counts[0] ?? 0,
    timeUnit: formatDuration(realBucketMs),
    stages,
    totalRequests,
    peakPerSecond: (peakCount * 1000) / realBucketMs,
    durationMs: (counts.length + 1) * realBucketMs,
  };
}

/**
 * Formats milliseconds as a duration string that k6 (Go's time.ParseDuration) accepts:
 * whole milliseconds when exact, else whole microseconds.
 * @param {number} ms
 * @returns {string}
 */
export function formatDuration(ms) {
  if (Number.isInteger(ms)) {
    return `${ms}ms`;
  }
  return `${Math.round(ms * 1000)}us`;
}

/**
 * Reads a TIMESTAMP as [whole epoch milliseconds, 100 ns ticks inside that second].
 * @param {string} value
 * @param {string} source
 * @param {number} lineNumber
 * @returns {[number, number]}
 */
function parseTimestamp(value, source, lineNumber) {
  const match = TIMESTAMP_PATTERN.exec(value);
  if (match === null) {
    throw new Error(`${source}: line ${lineNumber}: invalid TIMESTAMP ${JSON.stringify(value)}, expected YYYY-MM-DD HH:MM:SS.fffffff`);
  }

  const [, year, month, day, hour, minute, second, fraction = ''] = match;
  const wholeMs = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  if (Number.isNaN(wholeMs)) {
    throw new Error(`${source}: line ${lineNumber}: invalid TIMESTAMP ${JSON.stringify(value)}`);
  }
  return [wholeMs, Number(fraction.padEnd(7, '0'))];
}

/**
 * @param {string} value
 * @param {string} column
 * @param {string} source
 * @param {number} lineNumber
 * @returns {number}
 */
function parseCount(value, column, source, lineNumber) {
  if (!COUNT_PATTERN.test(value)) {
    throw new Error(`${source}: line ${lineNumber}: invalid ${column} ${JSON.stringify(value)}, expected an integer >= 0`);
  }
  return Number(value);
}
