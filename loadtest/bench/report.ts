// Plain-text tables and the run header (machine, command, date) that every benchmark prints,
// so a figure copied from the output carries the context needed to compare it.
import os from 'node:os';
import type { LatencySummary } from './stats.ts';
import type { TallySnapshot } from './tally.ts';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  /** One-minute load average when the run started, a hint of other work on the machine. */
  loadAverage: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: os.totalmem() / 1024 ** 3,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg()[0] ?? Number.NaN,
  };
}

/** Returns the lines that open every report: machine, Node version, command line and UTC date. */
export function runHeader(command: string, machine: MachineInfo = machineInfo(), date = new Date()): string {
  return [
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB, ${machine.platform}`,
    `node:    ${machine.node}`,
    `load:    ${machine.loadAverage.toFixed(2)} (1-minute load average at start)`,
    `command: ${command}`,
    `date:    ${date.toISOString()}`,
  ].join('\n');
}

/** Renders rows under a header as aligned columns; the first column is left-aligned, the rest right-aligned. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const renderRow = (row: readonly string[]): string =>
    widths
      .map((width, column) => {
        const cell = row[column] ?? '';
        return column === 0 ? cell.padEnd(width) : cell.padStart(width);
      })
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [renderRow(header), rule, ...rows.map(renderRow)].join('\n');
}

/** Formats milliseconds with a precision suited to the size, or `-` for NaN. */
export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (Math.abs(value) < 10) return value.toFixed(3);
  if (Math.abs(value) < 1000) return value.toFixed(1);
  return value.toFixed(0);
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : '-';
}

export function formatPercent(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : '-';
}

/** Returns `met` or `MISSED` for a target check, so misses stand out in the output. */
export function verdict(met: boolean): string {
  return met ? 'met' : 'MISSED';
}

export function latencyRow(label: string, summary: LatencySummary): string[] {
  return [label, String(summary.count), formatMs(summary.p50), formatMs(summary.p90), formatMs(summary.p99), formatMs(summary.max)];
}

/** Renders the accounting and latency sections of a finished run. */
export function formatTally(snapshot: TallySnapshot): string {
  const accounting = formatTable(
    ['requests', 'count'],
    [
      ['sent', String(snapshot.sent)],
      ['answered (any status)', String(snapshot.answered)],
      ['  of which succeeded (2xx, own x-request-id)', String(snapshot.succeeded)],
      ['transport errors', String(snapshot.transportErrors)],
      ['aborted by the client on purpose', String(snapshot.clientAborted)],
      ['lost (no answer)', String(snapshot.lost)],
      ['x-request-id mismatches', String(snapshot.requestIdMismatches)],
    ],
  );
  const balanced = snapshot.sent === snapshot.answered + snapshot.transportErrors + snapshot.clientAborted + snapshot.lost;
  const check = `check: sent ${snapshot.sent} = answered ${snapshot.answered} + transport errors ${snapshot.transportErrors} + client aborts ${snapshot.clientAborted} + lost ${snapshot.lost}: ${balanced ? 'balanced' : 'NOT balanced'}`;
  const sortKeys = (map: Map<string, number>): string[][] =>
    [...map.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => [key, String(count)]);
  const statuses = formatTable(['status', 'count'], sortKeys(snapshot.byStatus));
  const codes = formatTable(['status and error code', 'count'], sortKeys(snapshot.byCode));
  const latency = formatTable(
    ['latency of successes (ms)', 'count', 'p50', 'p90', 'p99', 'max'],
    [latencyRow('total time', snapshot.total), latencyRow('time to first byte', snapshot.ttfb)],
  );
  return [accounting, check, '', statuses, '', codes, '', latency].join('\n');
}
