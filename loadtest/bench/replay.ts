// `npm run replay`: replays an Azure LLM inference trace against the gateway (or any
// OpenAI-compatible server on loopback) and prints the accounting and latency percentiles.
// Exit status 0: every request got exactly one response and, with --min-success-ratio, enough
// of them succeeded. 1: a request got no response, the ratio was missed, or the server could
// not be reached. 2: bad arguments or a file that is not a trace. 130: SIGINT or SIGTERM.
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { request } from 'undici';
import { systemClock } from '../../shared/src/clock.ts';
import { joinNegativeValues, valueFlagsOf } from '../../shared/src/cli-args.ts';
import { parseLoopbackUrl, parseNumberFlag, resolveInputPath, RunFailure, runEntryPoint, UsageError } from './cli-support.ts';
import { formatTable, formatTally, runHeader } from './report.ts';
import { runReplay, verdictLines, type ReplayProgress } from './replay-run.ts';
import { loadTrace, scheduleRows, selectWindow } from './trace.ts';

// Defaults of every flag, in one place.
const DEFAULTS = {
  url: 'http://127.0.0.1:8080',
  speed: 20,
  minutes: 10,
  startMinute: 0,
  // The busiest minute of either Azure trace at 20x speed offers about 200 requests/s, so
  // 4,096 outstanding requests allow 20 s of latency before the replayer skips any. The
  // bound exists to keep the replayer's own sockets and memory in check, not to pace the
  // server: a server that falls further behind should return 429 or 503, which is measured.
  maxInFlight: 4096,
  overflow: 'skip',
  // The conversation trace peaks at 14,050 prompt tokens. 6,144 keeps a prompt plus the
  // largest output (1,899 tokens in the code trace) near an 8,192-token context, the simulated
  // replica's default max model length, and bodies under about 40 KB.
  maxPromptTokens: 6144,
  timeoutMs: 120_000,
  drainSeconds: 120,
  // 0 turns the gate off: the run passes on the exactly-one accounting alone.
  minSuccessRatio: 0,
} as const;

const OPTIONS = {
  trace: { type: 'string' },
  url: { type: 'string' },
  model: { type: 'string' },
  speed: { type: 'string' },
  minutes: { type: 'string' },
  'start-minute': { type: 'string' },
  stream: { type: 'boolean', default: false },
  'max-in-flight': { type: 'string' },
  overflow: { type: 'string' },
  'max-prompt-tokens': { type: 'string' },
  'timeout-ms': { type: 'string' },
  'drain-seconds': { type: 'string' },
  'min-success-ratio': { type: 'string' },
  'no-progress': { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;


const USAGE = `Usage: npm run replay -- --trace FILE [options]

Replays an Azure LLM inference trace (CSV: TIMESTAMP, ContextTokens, GeneratedTokens) as an
open-loop stream of chat completion requests against a server on this machine.

  --trace FILE            trace CSV; relative paths resolve from the directory npm was run in,
                          then the current directory, then the repository root
  --url URL               base URL, loopback only (default ${DEFAULTS.url})
  --model NAME            model name (default: the first chat model listed by GET /v1/models)
  --speed N               replay N times faster than recorded (default ${DEFAULTS.speed})
  --minutes N             minutes of trace time to replay (default ${DEFAULTS.minutes})
  --start-minute N        trace minute where the window starts (default ${DEFAULTS.startMinute})
  --stream                send stream: true and read the SSE stream to its end
  --max-in-flight N       most requests outstanding at once (default ${DEFAULTS.maxInFlight})
  --overflow skip|wait    a request due while N are outstanding is skipped, or waits for a slot
                          (default ${DEFAULTS.overflow}); both are counted in the report
  --max-prompt-tokens N   longer prompts are cut to N tokens (default ${DEFAULTS.maxPromptTokens})
  --timeout-ms N          per-request limit for headers and between body chunks (default ${DEFAULTS.timeoutMs})
  --drain-seconds N       after the last planned send, wait at most N seconds for answers;
                          the hard wall-clock cap is window / speed + N (default ${DEFAULTS.drainSeconds})
  --min-success-ratio R   exit 1 when fewer than R (0 to 1) of the sent requests succeeded
                          (2xx, complete, own x-request-id); default ${DEFAULTS.minSuccessRatio}, no gate
  --no-progress           no progress bar even when stderr is a terminal
  --help                  print this text
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: joinNegativeValues(process.argv.slice(2), valueFlagsOf(OPTIONS)),
    options: OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.trace === undefined) throw new UsageError('--trace: missing; give the path of a trace CSV file');
  const tracePath = resolveInputPath(values.trace, '--trace');
  const baseUrl = parseLoopbackUrl(values.url ?? DEFAULTS.url, '--url').toString();
  const speed = parseNumberFlag(values.speed, '--speed', DEFAULTS.speed, { min: 0.01, max: 10_000 });
  const minutes = parseNumberFlag(values.minutes, '--minutes', DEFAULTS.minutes, { min: 0.01, max: 24 * 60 });
  const startMinute = parseNumberFlag(values['start-minute'], '--start-minute', DEFAULTS.startMinute, { min: 0, max: 24 * 60 });
  const maxInFlight = parseNumberFlag(values['max-in-flight'], '--max-in-flight', DEFAULTS.maxInFlight, { min: 1, max: 100_000, integer: true });
  const maxPromptTokens = parseNumberFlag(values['max-prompt-tokens'], '--max-prompt-tokens', DEFAULTS.maxPromptTokens, { min: 1, max: 1_000_000, integer: true });
  const timeoutMs = parseNumberFlag(values['timeout-ms'], '--timeout-ms', DEFAULTS.timeoutMs, { min: 1, max: 3_600_000, integer: true });
  const drainSeconds = parseNumberFlag(values['drain-seconds'], '--drain-seconds', DEFAULTS.drainSeconds, { min: 0, max: 3_600 });
  const overflow = values.overflow ?? DEFAULTS.overflow;
  if (overflow !== 'skip' && overflow !== 'wait') throw new UsageError(`--overflow: invalid value ${JSON.stringify(overflow)}; expected skip or wait`);
  const minSuccessRatio = parseNumberFlag(values['min-success-ratio'], '--min-success-ratio', DEFAULTS.minSuccessRatio, { min: 0, max: 1 });

  let trace: Awaited<ReturnType<typeof loadTrace>>;
  try {
    trace = await loadTrace(tracePath);
  } catch (error) {
    // A file that is not a trace is a bad argument; the parser's message names the line and value.
    throw new UsageError(`--trace: ${(error as Error).message}`, { cause: error });
  }
  const rows = scheduleRows(selectWindow(trace.rows, { startMinute, minutes }), speed);
  if (rows.length === 0) throw new UsageError(`--start-minute/--minutes: the window from minute ${startMinute} for ${minutes} min contains no rows of ${tracePath}; choose an earlier start`);
  const model = values.model ?? (await discoverChatModel(baseUrl));
  const plannedMs = rows[rows.length - 1]?.sendAtMs ?? 0;
  const maxWallMs = Math.ceil(minutes * 60_000 / speed + drainSeconds * 1000);

  const command = `npm run replay -- ${process.argv.slice(2).join(' ')}`;
  process.stdout.write(`${runHeader(command)}\n`);
  process.stdout.write(
    `trace:   ${tracePath}, ${rows.length} rows from minute ${startMinute} for ${minutes} min (first row ${trace.firstTimestamp}), speed ${speed}x, ` +
      `planned send span ${(plannedMs / 1000).toFixed(1)} s, wall-clock cap ${(maxWallMs / 1000).toFixed(0)} s\n`,
  );
  process.stdout.write(`target:  ${baseUrl} model ${model}, ${values.stream ? 'streaming' : 'non-streaming'}, max in flight ${maxInFlight} (${overflow})\n\n`);

  const bar = process.stderr.isTTY && !values['no-progress'] ? createBar(rows.length) : undefined;
  // The first SIGINT or SIGTERM stops the run and keeps the report of what was sent. The
  // handlers are removed afterwards, so a second signal during the report ends the process.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\nreplay: ${signal} received, aborting the outstanding requests and printing the partial report\n`);
    interrupt.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const result = await runReplay({
    baseUrl,
    model,
    rows,
    stream: values.stream,
    maxPromptTokens,
    maxInFlight,
    overflow,
    requestTimeoutMs: timeoutMs,
    maxWallMs,
    clock: systemClock,
    interrupt: interrupt.signal,
    onProgress: bar === undefined ? undefined : (progress) => updateBar(bar, progress),
  }).finally(() => {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });

  const { schedule, tally } = result;
  const sending = formatTable(
    ['sending', 'count'],
    [
      ['planned (trace rows in window)', String(schedule.planned)],
      ['sent', String(schedule.sent)],
      ['skipped: in-flight limit reached', String(schedule.skippedInFlight)],
      ['delayed: waited for an in-flight slot', String(schedule.delayedInFlight)],
      ['not sent: wall-clock cap reached', String(schedule.notSent)],
      ['sent over 10 ms late (timer or event-loop lag)', String(schedule.late)],
      ['prompts cut to --max-prompt-tokens', String(result.promptsCapped)],
    ],
  );
  process.stdout.write(`${sending}\nmax send lag ${schedule.maxSendLagMs.toFixed(1)} ms, max in flight ${schedule.maxInFlightSeen}, wall time ${(result.wallMs / 1000).toFixed(1)} s${result.hitWallCap ? ' (stopped by the wall-clock cap)' : ''}\n\n`);
  process.stdout.write(`${formatTally(tally)}\n`);
  if (result.interrupted) {
    process.stdout.write(`\nINTERRUPTED: partial report; ${tally.clientAborted} outstanding requests were aborted, ${schedule.notSent} planned requests were not sent\n`);
    return 130;
  }
  return verdictLines(tally, schedule, minSuccessRatio).reduce((code, line) => {
    process.stdout.write(`${line.text}\n`);
    return Math.max(code, line.exitCode);
  }, 0);
}

/** Picks the first model from GET /v1/models whose name does not mark it as an embeddings model. */
async function discoverChatModel(baseUrl: string): Promise<string> {
  let listed: string[];
  try {
    const response = await request(new URL('/v1/models', baseUrl), { method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
    const body = (await response.body.json()) as { data?: Array<{ id?: unknown }> };
    listed = (body.data ?? []).map((entry) => entry.id).filter((id): id is string => typeof id === 'string');
  } catch (error) {
    // The flag is fine; the server is not there: a transport failure, not a usage mistake.
    throw new RunFailure(`GET ${baseUrl}v1/models failed (${(error as Error).message}); start the gateway, or pass --url with the address of a running one`, { cause: error });
  }
  const chat = listed.find((id) => !/embed/i.test(id)) ?? listed[0];
  if (chat === undefined) throw new UsageError(`--model: not given, and GET ${baseUrl}v1/models listed no models; pass --model`);
  return chat;
}

function createBar(total: number): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'replay |{bar}| {percentage}% | {value}/{total} sent | {inFlight} in flight | {succeeded} ok | {duration_formatted}',
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { inFlight: 0, succeeded: 0 });
  return bar;
}

function updateBar(bar: cliProgress.SingleBar, progress: ReplayProgress): void {
  bar.update(progress.sent, { inFlight: progress.inFlight, succeeded: progress.succeeded });
}

void runEntryPoint('replay', main);
