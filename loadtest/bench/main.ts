// `npm run bench -- [overhead|batching|soak|all] [flags]`: starts simulated replicas and the
// gateway on loopback, drives them, and prints tables with the machine, command and date.
// With no subcommand it runs overhead and batching. Exit status: 0 when every run finished
// (targets missed are reported, not fatal: figures from a shared machine are reports), 1 when
// a run failed, 2 for bad arguments, 130 after SIGINT or SIGTERM.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../../shared/src/clock.ts';
import { runBatchingBenchmark } from './batching.ts';
import { joinNegativeValues, valueFlagsOf } from '../../shared/src/cli-args.ts';
import { parseNumberFlag, runEntryPoint, UsageError } from './cli-support.ts';
import { runOverheadBenchmark } from './overhead.ts';
import { stopTrackedChildren } from './processes.ts';
import { runHeader } from './report.ts';
import { runSoakBenchmark } from './soak.ts';

const SUBCOMMANDS = ['overhead', 'batching', 'soak', 'all'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

// Defaults of every flag, in one place. Together overhead and batching take about five minutes.
const DEFAULTS = {
  rate: 1000,
  rounds: 5,
  roundSeconds: 5,
  warmupSeconds: 3,
  concurrency: 64,
  throughputRounds: 3,
  throughputSeconds: 5,
  replicas: 1,
  maxBatchSize: 32,
  execBaseMs: 20,
  execPerItemMs: 0.5,
  p99BoundMs: 250,
  probeSeconds: 5,
  maxProbes: 8,
  minutes: 3,
  soakRate: 40,
  sampleSeconds: 5,
  abortFraction: 0.1,
  resetRate: 0.02,
  idleSeconds: 10,
} as const;

/** Default chart file: in the directory npm was run from, named after the start time, so no run overwrites a committed chart. */
function defaultChartName(wallMs: number): string {
  return `soak-${new Date(wallMs).toISOString().slice(0, 19).replace(/:/g, '-')}Z.svg`;
}

type Benchmark = 'overhead' | 'batching' | 'soak';

const OPTIONS = {
  rate: { type: 'string' },
  rounds: { type: 'string' },
  'round-seconds': { type: 'string' },
  'warmup-seconds': { type: 'string' },
  concurrency: { type: 'string' },
  'throughput-rounds': { type: 'string' },
  'throughput-seconds': { type: 'string' },
  replicas: { type: 'string' },
  'max-batch-size': { type: 'string' },
  'exec-base-ms': { type: 'string' },
  'exec-per-item-ms': { type: 'string' },
  'p99-bound-ms': { type: 'string' },
  'probe-seconds': { type: 'string' },
  'max-probes': { type: 'string' },
  minutes: { type: 'string' },
  'soak-rate': { type: 'string' },
  'sample-seconds': { type: 'string' },
  'abort-fraction': { type: 'string' },
  'reset-rate': { type: 'string' },
  'warmup-minutes': { type: 'string' },
  'idle-seconds': { type: 'string' },
  chart: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

// The benchmark each flag configures; a flag given for a benchmark that does not run is
// rejected, since it would be ignored silently.
const FLAG_OWNER: Record<Exclude<keyof typeof OPTIONS, 'help'>, Benchmark> = {
  rate: 'overhead',
  rounds: 'overhead',
  'round-seconds': 'overhead',
  'warmup-seconds': 'overhead',
  concurrency: 'overhead',
  'throughput-rounds': 'overhead',
  'throughput-seconds': 'overhead',
  replicas: 'batching',
  'max-batch-size': 'batching',
  'exec-base-ms': 'batching',
  'exec-per-item-ms': 'batching',
  'p99-bound-ms': 'batching',
  'probe-seconds': 'batching',
  'max-probes': 'batching',
  minutes: 'soak',
  'soak-rate': 'soak',
  'sample-seconds': 'soak',
  'abort-fraction': 'soak',
  'reset-rate': 'soak',
  'warmup-minutes': 'soak',
  'idle-seconds': 'soak',
  chart: 'soak',
};

const USAGE = `Usage: npm run bench -- [overhead|batching|soak|all] [flags]

Without a subcommand, runs overhead and batching. Every target is a process this command
starts on 127.0.0.1; every load loop is bounded in time and in count.

overhead: the same zero-latency replica, direct, through the gateway and through a
          minimal fastify + undici proxy (the reference)
  --rate N                open-loop rate, requests/s (default ${DEFAULTS.rate})
  --rounds N              latency rounds per target, rotating order (default ${DEFAULTS.rounds})
  --round-seconds N       seconds per latency round (default ${DEFAULTS.roundSeconds})
  --warmup-seconds N      warm-up per target before the rounds (default ${DEFAULTS.warmupSeconds})
  --concurrency N         closed-loop concurrency for max throughput (default ${DEFAULTS.concurrency})
  --throughput-rounds N   throughput rounds per target (default ${DEFAULTS.throughputRounds})
  --throughput-seconds N  seconds per throughput round (default ${DEFAULTS.throughputSeconds})

batching: V2 model with execution time base + per row, batching on and off
  --replicas N            simulated replicas (default ${DEFAULTS.replicas})
  --max-batch-size N      gateway maxBatchSize when batching is on (default ${DEFAULTS.maxBatchSize})
  --exec-base-ms N        replica execution base time (default ${DEFAULTS.execBaseMs})
  --exec-per-item-ms N    replica execution time per row (default ${DEFAULTS.execPerItemMs})
  --p99-bound-ms N        p99 latency bound of the rate search (default ${DEFAULTS.p99BoundMs})
  --probe-seconds N       seconds of load per search probe (default ${DEFAULTS.probeSeconds})
  --max-probes N          most probes per configuration (default ${DEFAULTS.maxProbes})

soak: the gateway demo under mixed traffic, sampled every few seconds
  --minutes N             minutes of load (default ${DEFAULTS.minutes})
  --soak-rate N           requests/s, all kinds together (default ${DEFAULTS.soakRate})
  --sample-seconds N      seconds between samples (default ${DEFAULTS.sampleSeconds})
  --abort-fraction F      share of requests the client aborts (default ${DEFAULTS.abortFraction})
  --reset-rate F          share of requests one chat replica resets (default ${DEFAULTS.resetRate})
  --warmup-minutes N      minutes left out of the memory-growth fit (default: a fifth of --minutes, at most 2)
  --idle-seconds N        idle time before the final descriptor count (default ${DEFAULTS.idleSeconds})
  --chart FILE            SVG chart path, relative to the directory npm was run from
                          (default soak-<UTC start time>.svg there)

  --help                  print this text
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(process.argv.slice(2), valueFlagsOf(OPTIONS)),
    options: OPTIONS,
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one subcommand, got ${positionals.join(' ')}`);
  const subcommand = positionals[0] ?? 'default';
  if (subcommand !== 'default' && !SUBCOMMANDS.includes(subcommand as Subcommand)) {
    throw new UsageError(`unknown subcommand ${JSON.stringify(subcommand)}; expected one of ${SUBCOMMANDS.join(', ')}`);
  }
  const runs = {
    overhead: subcommand === 'default' || subcommand === 'overhead' || subcommand === 'all',
    batching: subcommand === 'default' || subcommand === 'batching' || subcommand === 'all',
    soak: subcommand === 'soak' || subcommand === 'all',
  };
  const chosen = subcommand === 'default' ? 'overhead and batching (the default)' : subcommand;
  for (const [flag, owner] of Object.entries(FLAG_OWNER)) {
    if (values[flag as keyof typeof FLAG_OWNER] !== undefined && !runs[owner]) {
      throw new UsageError(`--${flag}: belongs to the ${owner} benchmark and does not apply to ${chosen}; run npm run bench -- ${owner} --${flag} ... or drop the flag`);
    }
  }

  const int = (flag: string, value: string | undefined, fallback: number, max: number): number =>
    parseNumberFlag(value, flag, fallback, { min: 1, max, integer: true });
  const num = (flag: string, value: string | undefined, fallback: number, min: number, max: number): number =>
    parseNumberFlag(value, flag, fallback, { min, max });
  const overhead = {
    rate: num('--rate', values.rate, DEFAULTS.rate, 1, 100_000),
    rounds: int('--rounds', values.rounds, DEFAULTS.rounds, 1000),
    roundSeconds: num('--round-seconds', values['round-seconds'], DEFAULTS.roundSeconds, 0.5, 3600),
    warmupSeconds: num('--warmup-seconds', values['warmup-seconds'], DEFAULTS.warmupSeconds, 0.5, 3600),
    concurrency: int('--concurrency', values.concurrency, DEFAULTS.concurrency, 10_000),
    throughputRounds: int('--throughput-rounds', values['throughput-rounds'], DEFAULTS.throughputRounds, 1000),
    throughputSeconds: num('--throughput-seconds', values['throughput-seconds'], DEFAULTS.throughputSeconds, 0.5, 3600),
  };
  const batching = {
    replicas: int('--replicas', values.replicas, DEFAULTS.replicas, 64),
    maxBatchSize: int('--max-batch-size', values['max-batch-size'], DEFAULTS.maxBatchSize, 100_000),
    execBaseMs: num('--exec-base-ms', values['exec-base-ms'], DEFAULTS.execBaseMs, 0, 60_000),
    execPerItemMs: num('--exec-per-item-ms', values['exec-per-item-ms'], DEFAULTS.execPerItemMs, 0, 60_000),
    p99BoundMs: num('--p99-bound-ms', values['p99-bound-ms'], DEFAULTS.p99BoundMs, 1, 600_000),
    probeSeconds: num('--probe-seconds', values['probe-seconds'], DEFAULTS.probeSeconds, 0.5, 3600),
    maxProbes: int('--max-probes', values['max-probes'], DEFAULTS.maxProbes, 100),
  };
  if (batching.execBaseMs + batching.execPerItemMs === 0) throw new UsageError('--exec-base-ms and --exec-per-item-ms: both are 0, so the theoretical capacity is infinite; set at least one above 0');
  const minutes = num('--minutes', values.minutes, DEFAULTS.minutes, 0.1, 24 * 60);
  const soak = {
    minutes,
    rate: num('--soak-rate', values['soak-rate'], DEFAULTS.soakRate, 0.1, 10_000),
    sampleSeconds: num('--sample-seconds', values['sample-seconds'], DEFAULTS.sampleSeconds, 0.5, 3600),
    abortFraction: num('--abort-fraction', values['abort-fraction'], DEFAULTS.abortFraction, 0, 0.7),
    resetRate: num('--reset-rate', values['reset-rate'], DEFAULTS.resetRate, 0, 1),
    warmupMinutes: num('--warmup-minutes', values['warmup-minutes'], Math.min(2, minutes / 5), 0, minutes),
    idleSeconds: num('--idle-seconds', values['idle-seconds'], DEFAULTS.idleSeconds, 0, 3600),
    chartPath: path.resolve(process.env.INIT_CWD ?? process.cwd(), values.chart ?? defaultChartName(systemClock.wallNow())),
  };

  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd();
  const header = runHeader(command);
  process.stdout.write(`${header}\n`);
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'infergate-bench-'));
  activeWorkDir = workDir;
  let failed = false;
  try {
    if (runs.overhead) {
      const result = await runOverheadBenchmark({ clock: systemClock, workDir, log, ...overhead });
      process.stdout.write(`\n== (a) gateway overhead ==\n${result.table}\n`);
    }
    if (runs.batching) {
      const result = await runBatchingBenchmark({ clock: systemClock, workDir, log, ...batching });
      process.stdout.write(`\n== (b) batching goodput ==\n${result.table}\n`);
    }
    if (runs.soak) {
      const subtitle = header
        .split('\n')
        .filter((line) => line.startsWith('machine') || line.startsWith('date'))
        .map((line) => line.replace(/\s+/g, ' '))
        .join(' | ');
      const result = await runSoakBenchmark({ clock: systemClock, workDir, log, subtitle, ...soak });
      process.stdout.write(`\n== (c) soak ==\n${result.table}\n`);
    }
  } catch (error) {
    failed = true;
    // After Ctrl-C the signal handler stops the children and removes the folder, so a
    // benchmark that failed because its children went away is not a failure to report.
    if (!stopping) process.stderr.write(`bench: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\nprocess logs are kept in ${workDir}\n`);
  }
  if (!failed) {
    await rm(workDir, { recursive: true, force: true });
    activeWorkDir = undefined;
  }
  return failed ? 1 : 0;
}

// The temporary folder of the run in progress, for the signal handler to remove.
let activeWorkDir: string | undefined;

// Ctrl-C or SIGTERM in the middle of a run stops the gateway, replicas and reference proxy it
// started first, then removes the run's temporary folder: an interrupted run's logs are not
// kept. A closed output pipe (as in `npm run bench | head`) ends the run the same way,
// because nothing could read its results.
let stopping = false;
function stopRun(reason: string, exitCode: number): void {
  if (stopping) return;
  stopping = true;
  writeQuietly(`bench: ${reason}, stopping the processes it started\n`);
  stopTrackedChildren(5_000)
    .then(async () => {
      if (activeWorkDir !== undefined) await rm(activeWorkDir, { recursive: true, force: true });
    })
    .catch((error: unknown) => {
      writeQuietly(`bench: cleanup after ${reason} failed: ${(error as Error).message}\n`);
    })
    .finally(() => process.exit(exitCode));
}

/** Writes to stderr unless it is already closed, because a failed write must not end the cleanup. */
function writeQuietly(text: string): void {
  if (!process.stderr.destroyed && process.stderr.writable) process.stderr.write(text);
}

process.once('SIGINT', () => stopRun('SIGINT received', 130));
process.once('SIGTERM', () => stopRun('SIGTERM received', 130));
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    stopRun(error.code === 'EPIPE' ? 'output closed' : `output failed (${error.message})`, 1);
  });
}
void runEntryPoint('bench', main);
