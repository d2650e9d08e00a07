// Reader for Azure LLM inference trace CSV files (columns TIMESTAMP, ContextTokens,
// GeneratedTokens). The files end lines with CRLF, have no final newline and carry
// timestamps with 7 fractional digits and no time zone. The parser accepts CRLF and LF and
// reads timestamps as UTC, because only differences matter. It keeps 100 ns resolution by
// reading the fraction as an integer count of 100 ns ticks.
import { readFile } from 'node:fs/promises';

export interface TraceRow {
  /** Arrival time in milliseconds after the first row of the file. */
  offsetMs: number;
  /** Prompt length in tokens. */
  contextTokens: number;
  /** Output length in tokens. */
  generatedTokens: number;
}

export interface Trace {
  /** Wall-clock TIMESTAMP of the first row, exactly as written in the file. */
  firstTimestamp: string;
  rows: TraceRow[];
}

export interface TraceWindow {
  /** Trace time where the window starts, in minutes after the first row. */
  startMinute: number;
  /** Window length in minutes of trace time. */
  minutes: number;
}

export interface ScheduledRow extends TraceRow {
  /** Send time in milliseconds after the replay starts, already divided by the speed factor. */
  sendAtMs: number;
}

const EXPECTED_HEADER = ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'];
const TIMESTAMP_PATTERN = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/;
const NON_NEGATIVE_INTEGER = /^\d+$/;

/** Reads and parses a trace file. Errors name the file, the line number and the bad value. */
export async function loadTrace(path: string): Promise<Trace> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read trace file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseTrace(text, path);
}

/**
 * Parses trace CSV text. Rows must be sorted by TIMESTAMP (the published files are), because
 * the replayer sends them in file order.
 */
export function parseTrace(text: string, source = 'trace'): Trace {
  const lines = text.split(/\r?\n/);
  // A final newline, which the published files lack, leaves one empty string at the end.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();

  const header = (lines[0] ?? '').split(',').map((cell) => cell.trim());
  if (header.join(',') !== EXPECTED_HEADER.join(',')) {
    throw new Error(`${source}: line 1: expected header ${EXPECTED_HEADER.join(',')}, got ${JSON.stringify(lines[0] ?? '')}`);
  }

  const rows: TraceRow[] = [];
  let firstTimestamp = '';
  let firstWholeMs = 0;
  let firstTicks = 0;
  let previousOffsetMs = -Infinity;
  for (let index = 1; index < lines.length; index++) {
    const lineNumber = index + 1;
    const line = lines[index] ?? '';
    const cells = line.split(',');
    if (cells.length !== 3) {
      throw new Error(`${source}: line ${lineNumber}: expected 3 comma-separated fields, got ${cells.length} in ${JSON.stringify(line)}`);
    }
    const [timestamp = '', context = '', generated = ''] = cells.map((cell) => cell.trim());
    const [wholeMs, ticks] = parseTimestamp(timestamp, source, lineNumber);
    if (rows.length === 0) {
      firstTimestamp = timestamp;
      firstWholeMs = wholeMs;
      firstTicks = ticks;
    }
    // Offsets are taken from the first row in integers first, so 100 ns steps survive the
    // conversion to a double (epoch microseconds would not).
    const offsetMs = wholeMs - firstWholeMs + (ticks - firstTicks) / 10_000;
    if (offsetMs < previousOffsetMs) {
      throw new Error(`${source}: line ${lineNumber}: TIMESTAMP ${timestamp} is earlier than the previous row; rows must be sorted`);
    }
    previousOffsetMs = offsetMs;
    rows.push({
      offsetMs,
      contextTokens: parseCount(context, 'ContextTokens', source, lineNumber),
      generatedTokens: parseCount(generated, 'GeneratedTokens', source, lineNumber),
    });
  }
  if (rows.length === 0) throw new Error(`${source}: no data rows after the header`);
  return { firstTimestamp, rows };
}

/** Returns the rows whose arrival falls in [startMinute, startMinute + minutes) of trace time. */
export function selectWindow(rows: readonly TraceRow[], window: TraceWindow): TraceRow[] {
  if (!(window.startMinute >= 0)) throw new RangeError(`window start must be >= 0 minutes, got ${window.startMinute}`);
  if (!(window.minutes > 0)) throw new RangeError(`window length must be > 0 minutes, got ${window.minutes}`);
  const startMs = window.startMinute * 60_000;
  const endMs = startMs + window.minutes * 60_000;
  return rows.filter((row) => row.offsetMs >= startMs && row.offsetMs < endMs);
}

/**
 * Converts trace arrival times into send times: the first selected row is sent at 0 and the
 * gaps between rows are divided by speed (20 means twenty times faster than recorded).
 */
export function scheduleRows(rows: readonly TraceRow[], speed: number): ScheduledRow[] {
  if (!(speed > 0) || !Number.isFinite(speed)) throw new RangeError(`speed must be a finite number > 0, got ${speed}`);
  const origin = rows[0]?.offsetMs ?? 0;
  return rows.map((row) => ({ ...row, sendAtMs: (row.offsetMs - origin) / speed }));
}

/** Returns the timestamp as [whole epoch milliseconds, 100 ns ticks inside that second]. */
function parseTimestamp(value: string, source: string, lineNumber: number): [number, number] {
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

function parseCount(value: string, column: string, source: string, lineNumber: number): number {
  if (!NON_NEGATIVE_INTEGER.test(value)) {
    throw new Error(`${source}: line ${lineNumber}: invalid ${column} ${JSON.stringify(value)}, expected a non-negative integer`);
  }
  return Number(value);
}
