// Batching goodput: a V2 model whose execution takes base + per-item time, served through
// the gateway with batching on and with batching off (maxBatchSize 1). For each, a bounded
// search finds the highest offered open-loop rate whose p99 latency stays under a bound, and
// the goodput there is compared with the theoretical capacity
// replicas × maxBatchSize ÷ execution time at maxBatchSize.
import type { Clock } from '../../shared/src/clock.ts';
import { spawnReplica } from '../replica/spawn.ts';
import { writeGatewayConfig, waitForReadyReplicas } from './gateway-setup.ts';
import { createLoadAgent } from './http-client.ts';
import { runFixedRate, type FixedRateResult } from './load.ts';
import { v2InferRequest } from './payloads.ts';
import { startGatewayProcess, trackChild } from './processes.ts';
import { formatMs, formatPercent, formatRatio, formatTable, verdict } from './report.ts';

export interface BatchingOptions {
  clock: Clock;
  workDir: string;
  replicas: number;
  maxBatchSize: number;
  execBaseMs: number;
  execPerItemMs: number;
  /** p99 latency bound in milliseconds; a rate passes when p99 over all requests stays under it. */
  p99BoundMs: number;
  /** Seconds of load per probe of the search. */
  probeSeconds: number;
  /** Maximum number of probes per configuration. */
  maxProbes: number;
  log(line: string): void;
}

export interface ProbeResult {
  offeredRate: number;
  goodput: number;
  /** p99 over all sent requests, failures counted as slower than any success (Infinity when over 1% failed). */
  p99Ms: number;
  p50Ms: number;
  failures: number;
  passed: boolean;
  /** Mean rows per replica execution, from the replicas' /sim/stats. */
  meanRowsPerExecution: number;
}

export interface SearchResult {
  label: string;
  maxBatchSize: number;
  theoretical: number;
  best: ProbeResult | undefined;
  probes: ProbeResult[];
  endedBy: SearchEnd;
}

export interface BatchingResult {
  table: string;
  batched: SearchResult;
  unbatched: SearchResult;
}

const MODEL = 'bench-v2';
const ROW_WIDTH = 16;
const TARGET_OF_THEORETICAL = 0.9;
const TARGET_VERSUS_UNBATCHED = 5;
// The search stops once the gap between the best passing and the lowest failing rate is
// below this fraction of the passing rate.
const SEARCH_RESOLUTION = 0.05;

/** Runs the batched and unbatched searches against the same replicas. */
export async function runBatchingBenchmark(options: BatchingOptions): Promise<BatchingResult> {
  const replicas = await Promise.all(
    Array.from({ length: options.replicas }, () =>
      spawnReplica([
        '--protocol', 'v2', '--model', MODEL, '--port', '0',
        '--exec-base-ms', String(options.execBaseMs), '--exec-per-item-ms', String(options.execPerItemMs),
        '--max-batch', String(options.maxBatchSize), '--gpu-streams', '1',
        '--max-concurrency', '100000', '--max-waiting', '100000',
      ]),
    ),
  );
  for (const replica of replicas) trackChild(replica.child);
  try {
    const batched = await searchConfiguration(options, replicas, 'batching on', options.maxBatchSize);
    const unbatched = await searchConfiguration(options, replicas, 'batching off', 1);
    return { table: summarize(options, batched, unbatched), batched, unbatched };
  } finally {
    await Promise.all(replicas.map((replica) => replica.stop('SIGTERM')));
  }
}

/** Theoretical capacity in requests/s of one-row requests: replicas × batch ÷ execution time of a full batch. */
export function theoreticalCapacity(replicas: number, maxBatchSize: number, execBaseMs: number, execPerItemMs: number): number {
  return (replicas * maxBatchSize * 1000) / (execBaseMs + execPerItemMs * maxBatchSize);
}

/**
 * Finds the highest passing rate with at most maxProbes probes: doubling from half the
 * theoretical capacity until a probe fails, then bisecting between the best pass and the
 * lowest failure. Rates never exceed 1.25 × theoretical, which no configuration can sustain.
 */
export async function searchRate(
  theoretical: number,
  maxProbes: number,
  probe: (rate: number) => Promise<ProbeResult>,
): Promise<{ best: ProbeResult | undefined; probes: ProbeResult[]; endedBy: SearchEnd }> {
  const ceiling = theoretical * 1.25;
  const probes: ProbeResult[] = [];
  let best: ProbeResult | undefined;
  let lowestFail = Number.POSITIVE_INFINITY;
  let rate = theoretical * 0.5;
  let endedBy: SearchEnd | undefined;
  while (probes.length < maxProbes) {
    const result = await probe(rate);
    probes.push(result);
    if (result.passed && (best === undefined || rate > best.offeredRate)) best = result;
    if (!result.passed) lowestFail = Math.min(lowestFail, rate);
    const low = best?.offeredRate ?? 0;
    if (Number.isFinite(lowestFail)) {
      if (lowestFail - low <= SEARCH_RESOLUTION * Math.max(low, 1)) {
        endedBy = 'converged';
        break;
      }
      rate = (low + lowestFail) / 2;
    } else {
      if (rate >= ceiling) {
        endedBy = 'ceiling';
        break;
      }
      rate = Math.min(ceiling, rate * 2);
    }
  }
  endedBy ??= Number.isFinite(lowestFail) ? 'max-probes' : 'max-probes-before-failure';
  return { best, probes, endedBy };
}

/**
 * Why a rate search stopped: bracketed to the resolution, passed at the ceiling, or ran out of
 * probes, before or after a probe failed. Before a failure, the best rate is only a lower bound.
 */
export type SearchEnd = 'converged' | 'ceiling' | 'max-probes' | 'max-probes-before-failure';

const SEARCH_END_TEXT: Record<SearchEnd, string> = {
  converged: 'converged',
  ceiling: 'passed at 1.25x theoretical',
  'max-probes': '--max-probes reached before converging',
  'max-probes-before-failure': '--max-probes reached before any probe failed (best rate is a lower bound)',
};

/** p99 over all sent requests, placing failures above every success (Infinity when they exceed 1%). */
export function p99CountingFailures(result: FixedRateResult): number {
  const sent = result.tally.sent + result.schedule.skippedInFlight;
  const succeeded = result.tally.succeeded;
  const rank = 0.99 * sent;
  if (succeeded === 0 || rank > succeeded) return Number.POSITIVE_INFINITY;
  return result.totalHistogram.percentile(Math.min(100, (100 * rank) / succeeded));
}

async function searchConfiguration(
  options: BatchingOptions,
  replicas: ReadonlyArray<Awaited<ReturnType<typeof spawnReplica>>>,
  label: string,
  maxBatchSize: number,
): Promise<SearchResult> {
  const configPath = await writeGatewayConfig(options.workDir, `batching-${maxBatchSize}.yaml`, [
    {
      name: MODEL,
      protocol: 'v2',
      replicaUrls: replicas.map((replica) => replica.url),
      // One call in flight per replica: the replica's own dynamic batcher would otherwise merge
      // concurrent calls, and the comparison would no longer isolate the gateway's batching.
      maxInflightPerReplica: 1,
      maxBatchSize,
      queueMaxSize: 100_000,
    },
  ]);
  const gateway = await startGatewayProcess({ configPath, workDir: options.workDir });
  const theoretical = theoreticalCapacity(replicas.length, maxBatchSize, options.execBaseMs, options.execPerItemMs);
  const agent = createLoadAgent({ connections: 2048, timeoutMs: 60_000 });
  try {
    await waitForReadyReplicas(gateway.adminUrl, MODEL, replicas.length);
    let sequence = 0;
    const probe = async (rate: number): Promise<ProbeResult> => {
      await Promise.all(replicas.map((replica) => replica.resetStats()));
      const runId = sequence++;
      const result = await runFixedRate({
        clock: options.clock,
        dispatcher: agent,
        baseUrl: gateway.trafficUrl,
        rate,
        durationMs: options.probeSeconds * 1000,
        makeRequest: (index) => v2InferRequest(MODEL, 1, ROW_WIDTH, index, `batching-${maxBatchSize}-${runId}-${index}`),
        maxInFlight: 2048,
        drainMs: 30_000,
      });
      const stats = await Promise.all(replicas.map((replica) => replica.stats()));
      const executions = stats.reduce((sum, entry) => sum + entry.executions, 0);
      const rows = stats.reduce((sum, entry) => sum + entry.executionItems.reduce((a, b) => a + b, 0), 0);
      const p99Ms = p99CountingFailures(result);
      const failures = result.tally.sent - result.tally.succeeded + result.schedule.skippedInFlight;
      const outcome: ProbeResult = {
        offeredRate: rate,
        goodput: result.goodput,
        p99Ms,
        p50Ms: result.tally.total.p50,
        failures,
        passed: p99Ms <= options.p99BoundMs,
        meanRowsPerExecution: executions > 0 ? rows / executions : Number.NaN,
      };
      options.log(
        `batching (${label}): offered ${rate.toFixed(0)}/s, goodput ${outcome.goodput.toFixed(0)}/s, p99 ${formatMs(p99Ms)} ms, ` +
          `failures ${failures}, rows/execution ${outcome.meanRowsPerExecution.toFixed(1)}: ${outcome.passed ? 'pass' : 'fail'}`,
      );
      return outcome;
    };
    const { best, probes, endedBy } = await searchRate(theoretical, options.maxProbes, probe);
    return { label, maxBatchSize, theoretical, best, probes, endedBy };
  } finally {
    await agent.close();
    await gateway.stop();
  }
}

function summarize(options: BatchingOptions, batched: SearchResult, unbatched: SearchResult): string {
  const goodputOf = (search: SearchResult): number => search.best?.goodput ?? 0;
  const ofTheoretical = goodputOf(batched) / batched.theoretical;
  const versusUnbatched = goodputOf(batched) / goodputOf(unbatched);
  const row = (search: SearchResult): string[] => [
    `${search.label} (maxBatchSize ${search.maxBatchSize})`,
    search.theoretical.toFixed(0),
    search.best === undefined ? 'none passed' : search.best.offeredRate.toFixed(0),
    goodputOf(search).toFixed(0),
    formatPercent(goodputOf(search) / search.theoretical),
    formatMs(search.best?.p50Ms ?? Number.NaN),
    formatMs(search.best?.p99Ms ?? Number.NaN),
    (search.best?.meanRowsPerExecution ?? Number.NaN).toFixed(1),
    String(search.probes.length),
    SEARCH_END_TEXT[search.endedBy],
  ];
  const table = formatTable(
    ['configuration', 'theoretical/s', 'best rate/s', 'goodput/s', 'of theor.', 'p50 ms', 'p99 ms', 'rows/exec', 'probes', 'search'],
    [row(batched), row(unbatched)],
  );
  const targets = formatTable(
    ['target', 'measured', 'required', 'verdict'],
    [
      ['batched goodput / theoretical', formatPercent(ofTheoretical), `>= ${formatPercent(TARGET_OF_THEORETICAL)}`, verdict(ofTheoretical >= TARGET_OF_THEORETICAL)],
      ['batched / unbatched goodput', formatRatio(versusUnbatched), `>= ${TARGET_VERSUS_UNBATCHED}`, verdict(versusUnbatched >= TARGET_VERSUS_UNBATCHED)],
    ],
  );
  const setup =
    `V2 model, ${options.replicas} replica(s), execution ${options.execBaseMs} ms + ${options.execPerItemMs} ms/row, one-row requests, ` +
    `p99 bound ${options.p99BoundMs} ms (failures count as over the bound), ${options.probeSeconds} s per probe`;
  return `${setup}\n${table}\n\n${targets}`;
}
