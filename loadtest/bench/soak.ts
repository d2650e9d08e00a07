// Soak benchmark. It runs the gateway's embedded demo in a child process and drives it for N
// minutes with mixed traffic: chat with and without streaming, embeddings and V2 infer. The
// client aborts a share of the requests, and one replica resets connections now and then.
// The gateway's memory, file descriptors and event-loop delay are sampled, memory growth,
// descriptor leaks and lost requests are checked, and the samples are drawn as an SVG chart.
import { writeFile } from 'node:fs/promises';
import { request } from 'undici';
import type { Clock } from '../../shared/src/clock.ts';
import { isLoopbackHost } from './cli-support.ts';
import { fetchGatewayState } from './gateway-setup.ts';
import { createLoadAgent, timedRequest, type RequestSpec } from './http-client.ts';
import { chatRequest, embeddingsRequest, v2InferRequest } from './payloads.ts';
import { startGatewayProcess, type GatewayProcess } from './processes.ts';
import { formatMs, formatTable, verdict } from './report.ts';
import { runOpenLoop } from './scheduler.ts';
import { EVENT_LOOP_P99_METRIC, SoakSampler, type SoakSample } from './soak-sampler.ts';
import { linearSlope } from './stats.ts';
import { renderLineChart } from './svg-chart.ts';
import { OutcomeTally, type TallySnapshot } from './tally.ts';

export interface SoakOptions {
  clock: Clock;
  workDir: string;
  minutes: number;
  /** Offered load in requests per second, all kinds together. */
  rate: number;
  sampleSeconds: number;
  /** Fraction of requests the client aborts at a random moment. */
  abortFraction: number;
  /** Fraction of its requests for which the faulty replica resets the connection. */
  resetRate: number;
  /** Minutes at the start whose samples the memory-growth fit leaves out. */
  warmupMinutes: number;
  /** Seconds of idle after the load, before the final file-descriptor count. */
  idleSeconds: number;
  /** Path of the SVG chart to write. */
  chartPath: string;
  /** Run header (machine, command, date) shown under the chart title. */
  subtitle: string;
  log(line: string): void;
}

export interface SoakResult {
  table: string;
  rssGrowthMiBPerMinute: number;
  fdBaseline: number;
  fdFinal: number;
  lost: number;
}

interface DemoModels {
  chat: string;
  embeddings: string;
  v2: string;
  /** Replica of the chat model that gets the reset fault, as host:port. */
  faultyReplica: string | undefined;
}

type TrafficKind = 'chat' | 'chat-stream' | 'embeddings' | 'v2';
// Mix of request kinds, repeated every 20 requests: 35% chat, 35% streaming chat,
// 15% embeddings, 15% V2 infer.
const MIX: readonly TrafficKind[] = [
  ...Array<TrafficKind>(7).fill('chat'),
  ...Array<TrafficKind>(7).fill('chat-stream'),
  ...Array<TrafficKind>(3).fill('embeddings'),
  ...Array<TrafficKind>(3).fill('v2'),
];
const TARGET_RSS_GROWTH_MIB_PER_MINUTE = 1;
// A least-squares slope over a shorter span after the warm-up mostly measures V8 growing its
// heap to its working size and garbage-collection timing, not a leak, so it is not judged.
export const MIN_GROWTH_SPAN_MINUTES = 5;
// The printed sample table keeps at most about this many rows.
const MAX_TABLE_ROWS = 30;
// Descriptors that may differ from the baseline after the idle period: listeners and
// probe connections open and close on their own schedule.
const FD_TOLERANCE = 2;
const CHAT_MAX_TOKENS = 32;
// Client aborts hit chat requests, at a uniformly random moment in this range of
// milliseconds after sending. A chat request of CHAT_MAX_TOKENS takes about 340 ms on the
// demo replicas (20 ms to the first token, then 10 ms per token). Nearly every abort
// therefore lands while the request is queued, waits for its first token or is mid-stream.
// Embeddings and V2 requests finish in a few milliseconds and are not aborted.
const ABORT_AFTER_MS = [5, 300] as const;
const CHAT_SHARE = MIX.filter((kind) => kind === 'chat' || kind === 'chat-stream').length / MIX.length;

/** Runs the soak and returns the printed report; the chart is written to options.chartPath. */
export async function runSoakBenchmark(options: SoakOptions): Promise<SoakResult> {
  const gateway = await startGatewayProcess({ workDir: options.workDir });
  try {
    const models = await waitForDemoModels(gateway, 60_000);
    options.log(`soak: demo models chat=${models.chat} embeddings=${models.embeddings} v2=${models.v2}, resets on ${models.faultyReplica ?? 'no replica'}`);
    if (models.faultyReplica !== undefined) await setResetFault(models.faultyReplica, options.resetRate);

    const sampler = new SoakSampler({ clock: options.clock, pid: gateway.pid, adminUrl: gateway.adminUrl, intervalMs: options.sampleSeconds * 1000 });
    await sampler.sampleNow();
    sampler.setPhase('load');
    sampler.start();
    const tally = await driveTraffic(options, gateway, models, sampler);
    await sampler.stop();
    // One more load sample closes the last latency window, so the idle sample covers idle time only.
    await sampler.sampleNow();
    sampler.setPhase('idle');
    if (models.faultyReplica !== undefined) await setResetFault(models.faultyReplica, 0);
    options.log(`soak: load done, idle ${options.idleSeconds} s before the final sample`);
    await new Promise((resolve) => options.clock.setTimer(options.idleSeconds * 1000, () => resolve(undefined)));
    await sampler.sampleNow();

    const result = summarize(options, sampler.samples, tally, sampler.failures);
    await writeFile(options.chartPath, renderChart(options, sampler.samples));
    return result;
  } finally {
    await gateway.stop();
  }
}

async function driveTraffic(options: SoakOptions, gateway: GatewayProcess, models: DemoModels, sampler: SoakSampler): Promise<TallySnapshot> {
  const { clock } = options;
  const durationMs = options.minutes * 60_000;
  const count = Math.floor((durationMs / 1000) * options.rate);
  const intervalMs = 1000 / options.rate;
  const agent = createLoadAgent({ connections: 1024, timeoutMs: 60_000 });
  const tally = new OutcomeTally();
  const endOfRun = new AbortController();
  // Chat is 70% of the traffic, so aborting chat requests with this probability aborts
  // abortFraction of all requests (for fractions up to 0.7).
  const chatAbortProbability = Math.min(1, options.abortFraction / CHAT_SHARE);
  const drainMs = 60_000;
  let random = 0x2545f491;
  const nextRandom = (): number => {
    random = (Math.imul(random, 1664525) + 1013904223) >>> 0;
    return random / 2 ** 32;
  };

  const run = runOpenLoop<number>({
    clock,
    items: Array.from({ length: count }, (_, index) => index),
    sendAtMs: (index) => index * intervalMs,
    maxInFlight: 1024,
    overflow: 'skip',
    stopSendingAtMs: durationMs + drainMs,
    send: async (index) => {
      const kind = MIX[index % MIX.length] as TrafficKind;
      const spec = buildRequest(kind, models, index);
      const clientAbort = new AbortController();
      let abortTimer: ReturnType<Clock['setTimer']> | undefined;
      const isChat = kind === 'chat' || kind === 'chat-stream';
      if (isChat && nextRandom() < chatAbortProbability) {
        const delay = ABORT_AFTER_MS[0] + nextRandom() * (ABORT_AFTER_MS[1] - ABORT_AFTER_MS[0]);
        abortTimer = clock.setTimer(delay, () => clientAbort.abort(new Error('soak client abort')));
      }
      tally.begin();
      try {
        const outcome = await timedRequest(agent, gateway.trafficUrl, spec, clock, AbortSignal.any([clientAbort.signal, endOfRun.signal]));
        if (outcome.kind === 'aborted' && endOfRun.signal.aborted && !clientAbort.signal.aborted) tally.recordLost();
        else tally.record(outcome);
        if (outcome.kind === 'response' && outcome.status !== undefined && outcome.status < 300 && outcome.code === undefined) {
          sampler.recordLatency(outcome.totalMs);
        }
      } finally {
        abortTimer?.cancel();
      }
    },
  });
  const capTimer = clock.setTimer(durationMs + drainMs, () => {
    run.stop();
    endOfRun.abort(new Error('soak passed its drain limit'));
  });
  let progressTimer: ReturnType<Clock['setTimer']> | undefined;
  const reportProgress = (): void => {
    options.log(`soak: ${tally.sent}/${count} sent, ${run.inFlight} in flight, ${tally.succeeded} succeeded`);
    progressTimer = clock.setTimer(60_000, reportProgress);
  };
  progressTimer = clock.setTimer(60_000, reportProgress);
  try {
    const schedule = await run.done;
    if (schedule.skippedInFlight > 0 || schedule.notSent > 0) {
      options.log(`soak: ${schedule.skippedInFlight} requests skipped at the in-flight bound, ${schedule.notSent} not sent`);
    }
    return tally.snapshot();
  } finally {
    capTimer.cancel();
    progressTimer?.cancel();
    // Closing the client's keep-alive connections lets the gateway's descriptor count return
    // to its baseline during the idle period.
    await agent.close();
  }
}

function buildRequest(kind: TrafficKind, models: DemoModels, index: number): RequestSpec {
  const requestId = `soak-${index}`;
  switch (kind) {
    case 'chat':
    case 'chat-stream':
      return chatRequest({ model: models.chat, promptTokens: 64 + (index % 200), maxTokens: CHAT_MAX_TOKENS, stream: kind === 'chat-stream', seed: index, requestId });
    case 'embeddings':
      return embeddingsRequest(models.embeddings, 1 + (index % 4), index, requestId);
    case 'v2':
      return v2InferRequest(models.v2, 1 + (index % 3), 16, index, requestId);
  }
}

/** Waits until every demo model has a ready replica and picks the chat, embeddings and V2 models. */
async function waitForDemoModels(gateway: GatewayProcess, timeoutMs: number): Promise<DemoModels> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no state yet';
  while (Date.now() < deadline) {
    try {
      const state = await fetchGatewayState(gateway.adminUrl);
      const ready = state.models.filter((model) => model.replicas.some((replica) => replica.state === 'ready'));
      const openai = ready.filter((model) => model.protocol === 'openai');
      const embeddings = openai.find((model) => /embed/i.test(model.name));
      const chat = openai.find((model) => model !== embeddings);
      const v2 = ready.find((model) => model.protocol === 'v2');
      if (chat !== undefined && embeddings !== undefined && v2 !== undefined) {
        const faulty = chat.replicas.find((replica) => isLoopbackHost(replica.id.replace(/^https?:\/\//, '').replace(/:\d+\/?$/, '')));
        return { chat: chat.name, embeddings: embeddings.name, v2: v2.name, faultyReplica: faulty?.id };
      }
      last = `ready models: ${ready.map((model) => `${model.name} (${model.protocol})`).join(', ') || 'none'}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the demo did not get a ready chat, embeddings and V2 model within ${timeoutMs} ms (last: ${last})`);
}

/** Sets the replica's connection-reset fault rate through its /sim/faults API. */
async function setResetFault(replicaId: string, resetRate: number): Promise<void> {
  const base = replicaId.startsWith('http') ? replicaId : `http://${replicaId}`;
  const response = await request(new URL('/sim/faults', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resetRate }),
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  });
  const text = await response.body.text();
  if (response.statusCode >= 300) throw new Error(`POST ${base}/sim/faults failed with status ${response.statusCode}: ${text.slice(0, 200)}`);
}

function summarize(options: SoakOptions, samples: readonly SoakSample[], tally: TallySnapshot, failures: { count: number; last: string }): SoakResult {
  const baseline = samples.find((sample) => sample.phase === 'baseline');
  const final = samples.at(-1);
  const steady = samples.filter((sample) => sample.phase === 'load' && sample.elapsedSeconds >= options.warmupMinutes * 60);
  const slopePerSecond = linearSlope(steady.map((sample) => [sample.elapsedSeconds, sample.rssMiB] as const));
  const rssGrowth = slopePerSecond * 60;
  const growthSpanMinutes = ((steady.at(-1)?.elapsedSeconds ?? 0) - (steady[0]?.elapsedSeconds ?? 0)) / 60;
  // The same fit over the second half of the load shows whether memory settles once V8's heap
  // has grown to its working size, or keeps climbing.
  const loadEnd = steady.at(-1)?.elapsedSeconds ?? 0;
  const secondHalf = steady.filter((sample) => sample.elapsedSeconds >= loadEnd / 2);
  const lateGrowth = linearSlope(secondHalf.map((sample) => [sample.elapsedSeconds, sample.rssMiB] as const)) * 60;
  const fdBaseline = baseline?.openFds ?? Number.NaN;
  const fdFinal = final?.openFds ?? Number.NaN;
  const loadSamples = samples.filter((sample) => sample.phase === 'load');
  const peakFds = Math.max(...loadSamples.map((sample) => sample.openFds));

  // At most about MAX_TABLE_ROWS rows: every k-th sample, plus the first and the last.
  const step = Math.max(1, Math.ceil(samples.length / MAX_TABLE_ROWS));
  const shown = samples.filter((_, index) => index % step === 0 || index === samples.length - 1);
  const shownNote = step === 1 ? `all ${samples.length} samples` : `showing every ${step}th of ${samples.length} samples, and the last`;
  const sampleTable = formatTable(
    ['t (s)', 'phase', 'RSS MiB', 'fds', 'loop p99 ms', 'loop max ms', 'ok/interval', 'p50 ms', 'p99 ms'],
    shown.map((sample) => [
      sample.elapsedSeconds.toFixed(0),
      sample.phase,
      sample.rssMiB.toFixed(1),
      String(sample.openFds),
      formatMs(sample.eventLoopP99Ms),
      formatMs(sample.eventLoopMaxMs),
      String(sample.succeeded),
      formatMs(sample.latencyP50Ms),
      formatMs(sample.latencyP99Ms),
    ]),
  );
  const checks = formatTable(
    ['check', 'measured', 'required', 'verdict'],
    [
      [
        `RSS growth after ${options.warmupMinutes} min warm-up (MiB/min, least squares)`,
        Number.isFinite(rssGrowth) ? rssGrowth.toFixed(3) : '-',
        `< ${TARGET_RSS_GROWTH_MIB_PER_MINUTE} over >= ${MIN_GROWTH_SPAN_MINUTES} min`,
        growthSpanMinutes < MIN_GROWTH_SPAN_MINUTES ? 'not judged (run too short)' : verdict(rssGrowth < TARGET_RSS_GROWTH_MIB_PER_MINUTE),
      ],
      ['RSS growth over the second half of the load (MiB/min)', Number.isFinite(lateGrowth) ? lateGrowth.toFixed(3) : '-', '', ''],
      [`open fds: baseline -> peak -> after ${options.idleSeconds} s idle`, `${fdBaseline} -> ${peakFds} -> ${fdFinal}`, `final <= baseline + ${FD_TOLERANCE}`, verdict(fdFinal <= fdBaseline + FD_TOLERANCE)],
      ['lost requests (no answer)', String(tally.lost), '0', verdict(tally.lost === 0)],
      ['transport errors seen by the client', String(tally.transportErrors), '', ''],
      ['client aborts on purpose', `${tally.clientAborted} (${tally.sent === 0 ? '-' : ((tally.clientAborted / tally.sent) * 100).toFixed(1)}% of sent)`, `about ${(options.abortFraction * 100).toFixed(0)}% of sent`, ''],
    ],
  );
  const eventLoopNote = samples.every((sample) => !Number.isFinite(sample.eventLoopP99Ms))
    ? `\nevent-loop delay: no sample had a value (the gateway's /metrics lacks ${EVENT_LOOP_P99_METRIC}, or its monitor recorded nothing), so it is not reported`
    : '';
  const samplerNote = failures.count > 0 ? `\nsamples that failed: ${failures.count} (last: ${failures.last})` : '';
  const codes = formatTable(['status and error code', 'count'], [...tally.byCode.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => [key, String(value)]));
  const setup =
    `soak: ${options.minutes} min at ${options.rate} requests/s (35% chat, 35% streaming chat, 15% embeddings, 15% V2), ` +
    `${(options.abortFraction * 100).toFixed(0)}% client aborts, reset rate ${options.resetRate} on one chat replica, samples every ${options.sampleSeconds} s (${shownNote})`;
  const table = [setup, sampleTable, '', checks, '', `requests sent ${tally.sent}, answered ${tally.answered}, succeeded ${tally.succeeded}`, codes].join('\n') + eventLoopNote + samplerNote + `\nchart: ${options.chartPath}`;
  return { table, rssGrowthMiBPerMinute: rssGrowth, fdBaseline, fdFinal, lost: tally.lost };
}

function renderChart(options: SoakOptions, samples: readonly SoakSample[]): string {
  const minutes = (sample: SoakSample): number => sample.elapsedSeconds / 60;
  return renderLineChart({
    title: `infergate soak: ${options.minutes} min at ${options.rate} requests/s`,
    subtitle: options.subtitle,
    xLabel: 'minutes since start',
    panels: [
      {
        title: 'gateway process memory and file descriptors',
        yLabel: 'RSS (MiB) / open fds',
        series: [
          { label: 'RSS MiB', color: '#1f77b4', points: samples.map((sample) => [minutes(sample), sample.rssMiB] as const) },
          { label: 'open fds', color: '#7f7f7f', dashed: true, points: samples.map((sample) => [minutes(sample), sample.openFds] as const) },
        ],
      },
      {
        title: 'latency of successful requests and event-loop delay',
        yLabel: 'milliseconds',
        series: [
          { label: 'request p50', color: '#2ca02c', points: samples.map((sample) => [minutes(sample), sample.latencyP50Ms] as const) },
          { label: 'request p99', color: '#d62728', points: samples.map((sample) => [minutes(sample), sample.latencyP99Ms] as const) },
          { label: 'event-loop p99', color: '#9467bd', dashed: true, points: samples.map((sample) => [minutes(sample), sample.eventLoopP99Ms] as const) },
        ],
      },
    ],
  });
}
