// Gateway overhead: the same zero-latency replica called directly, through the gateway and
// through a reference proxy (reference-proxy.ts, the minimal proxy on fastify and undici).
// Latency is measured open-loop at a fixed rate and maximum throughput closed-loop at a fixed
// concurrency, in rounds that rotate which target goes first, so drift on a shared machine
// hits every target alike. The tables report medians over rounds. The targets apply to the
// gateway; the reference shows how much of its cost any proxy on this machine pays.
import type { Dispatcher } from 'undici';
import type { Clock } from '../../shared/src/clock.ts';
import { spawnReplica } from '../replica/spawn.ts';
import { writeGatewayConfig, waitForReadyReplicas } from './gateway-setup.ts';
import { createLoadAgent, type RequestSpec } from './http-client.ts';
import { runClosedLoop, runFixedRate } from './load.ts';
import { chatRequest } from './payloads.ts';
import { sampleProcess, startGatewayProcess, startReferenceProxy, trackChild, type GatewayProcess, type ReferenceProxyProcess } from './processes.ts';
import { formatMs, formatPercent, formatRatio, formatTable, verdict } from './report.ts';
import { median } from './stats.ts';

function formatMicros(value: number): string {
  return Number.isFinite(value) ? value.toFixed(0) : 'n/a';
}

function roundCount(count: number): string {
  return count === 1 ? '1 round' : `${count} rounds`;
}

function formatCount(value: number): string {
  return Number.isFinite(value) ? value.toFixed(0) : 'n/a';
}

export interface OverheadOptions {
  clock: Clock;
  workDir: string;
  /** Open-loop rate in requests per second. */
  rate: number;
  rounds: number;
  roundSeconds: number;
  warmupSeconds: number;
  /** Closed-loop concurrency for the throughput comparison. */
  concurrency: number;
  throughputRounds: number;
  throughputSeconds: number;
  log(line: string): void;
}

export interface OverheadResult {
  table: string;
  addedP50Ms: number;
  addedP99Ms: number;
  throughputRatio: number;
  referenceAddedP99Ms: number;
  referenceThroughputRatio: number;
  failures: number;
}

type Target = 'direct' | 'gateway' | 'reference';
type ProxyTarget = Exclude<Target, 'direct'>;
const TARGETS: readonly Target[] = ['direct', 'gateway', 'reference'];

/** CPU time per successful request of each process in the closed-loop rounds of one target, in microseconds. */
interface CpuPerRequest {
  replica: number[];
  /** The gateway or the reference proxy; empty for the direct target. */
  proxy: number[];
  generator: number[];
}

const MODEL = 'bench-chat';
// Targets for the gateway's cost, checked and printed with the results.
const TARGET_ADDED_P50_MS = 0.5;
const TARGET_ADDED_P99_MS = 2;
const TARGET_THROUGHPUT_RATIO = 0.5;

interface LatencyRound {
  target: Target;
  p50: number;
  p99: number;
  goodput: number;
  succeeded: number;
  /** Requests that were sent and did not succeed. */
  failures: number;
  /** Requests not sent because the in-flight bound was reached. */
  skipped: number;
}

interface ThroughputResults {
  throughputs: Record<Target, number[]>;
  /** Per round, the proxy's throughput over the direct throughput of the same round. */
  ratios: Record<ProxyTarget, number[]>;
  cpu: Record<Target, CpuPerRequest>;
  failures: Record<Target, number>;
}

/** Returns the targets in the order round `round` runs them, so each one goes first in turn. */
function roundOrder(round: number): Target[] {
  const shift = round % TARGETS.length;
  return [...TARGETS.slice(shift), ...TARGETS.slice(0, shift)];
}

/** Runs the overhead benchmark and returns its printed table and headline figures. */
export async function runOverheadBenchmark(options: OverheadOptions): Promise<OverheadResult> {
  const replica = await spawnReplica([
    '--protocol', 'openai', '--model', MODEL, '--port', '0',
    '--prefill-base-ms', '0', '--prefill-per-token-ms', '0', '--itl-base-ms', '0', '--itl-per-running-ms', '0',
    '--max-concurrency', '100000', '--max-waiting', '100000',
  ]);
  trackChild(replica.child);
  let gateway: GatewayProcess | undefined;
  let reference: ReferenceProxyProcess | undefined;
  const agents: Dispatcher[] = [];
  try {
    const configPath = await writeGatewayConfig(options.workDir, 'overhead.yaml', [
      { name: MODEL, protocol: 'openai', replicaUrls: [replica.url], maxInflightPerReplica: 4096, maxBatchSize: 1, queueMaxSize: 100_000 },
    ]);
    gateway = await startGatewayProcess({ configPath, workDir: options.workDir });
    reference = await startReferenceProxy(replica.url, options.workDir);
    await waitForReadyReplicas(gateway.adminUrl, MODEL, 1);
    const urls: Record<Target, string> = { direct: replica.url, gateway: gateway.trafficUrl, reference: reference.url };
    const pids: Record<Target, number> = { direct: replica.pid, gateway: gateway.pid, reference: reference.pid };
    // One second's worth of requests may be outstanding, so only a stall of about a second
    // makes the open loop skip sends. Skips are counted and shown next to the failures.
    const maxInFlight = Math.max(256, Math.ceil(options.rate));
    const agentOf = {} as Record<Target, Dispatcher>;
    for (const target of TARGETS) {
      agentOf[target] = createLoadAgent({ connections: maxInFlight, timeoutMs: 30_000 });
      agents.push(agentOf[target]);
    }
    const makeRequest = (index: number): RequestSpec =>
      chatRequest({ model: MODEL, promptTokens: 16, maxTokens: 1, stream: false, seed: index, requestId: `overhead-${index}` });

    const fixedRate = async (target: Target, seconds: number): Promise<LatencyRound> => {
      const result = await runFixedRate({
        clock: options.clock,
        dispatcher: agentOf[target],
        baseUrl: urls[target],
        rate: options.rate,
        durationMs: seconds * 1000,
        makeRequest,
        maxInFlight,
        drainMs: 10_000,
      });
      return {
        target,
        p50: result.tally.total.p50,
        p99: result.tally.total.p99,
        goodput: result.goodput,
        succeeded: result.tally.succeeded,
        failures: result.tally.sent - result.tally.succeeded,
        skipped: result.schedule.skippedInFlight,
      };
    };

    options.log(`overhead: warm-up ${options.warmupSeconds} s per target at ${options.rate} requests/s`);
    for (const target of TARGETS) await fixedRate(target, options.warmupSeconds);

    const rounds: LatencyRound[] = [];
    let gatewayCpuSeconds = 0;
    let gatewayRequests = 0;
    for (let round = 0; round < options.rounds; round++) {
      for (const target of roundOrder(round)) {
        const before = target === 'gateway' ? await sampleProcess(gateway.pid) : undefined;
        const result = await fixedRate(target, options.roundSeconds);
        // Gateway CPU includes its health probes and metrics, a small constant next to 1,000 requests/s.
        if (before !== undefined) {
          gatewayCpuSeconds += (await sampleProcess(gateway.pid)).cpuSeconds - before.cpuSeconds;
          gatewayRequests += result.succeeded;
        }
        rounds.push(result);
        options.log(`overhead: round ${round + 1}/${options.rounds} ${target}: p50 ${formatMs(result.p50)} ms, p99 ${formatMs(result.p99)} ms, failures ${result.failures}, skipped ${result.skipped}`);
      }
    }
    const cpuMsPerRequest = gatewayRequests > 0 ? (gatewayCpuSeconds * 1000) / gatewayRequests : Number.NaN;

    const results: ThroughputResults = {
      throughputs: { direct: [], gateway: [], reference: [] },
      ratios: { gateway: [], reference: [] },
      cpu: {
        direct: { replica: [], proxy: [], generator: [] },
        gateway: { replica: [], proxy: [], generator: [] },
        reference: { replica: [], proxy: [], generator: [] },
      },
      failures: { direct: 0, gateway: 0, reference: 0 },
    };
    const generatorSeconds = (): number => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    };
    for (let round = 0; round < options.throughputRounds; round++) {
      const throughputOf: Partial<Record<Target, number>> = {};
      for (const target of roundOrder(round)) {
        const proxyPid = target === 'direct' ? undefined : pids[target];
        const sample = async (): Promise<Record<keyof CpuPerRequest, number>> => ({
          replica: (await sampleProcess(replica.pid)).cpuSeconds,
          proxy: proxyPid === undefined ? 0 : (await sampleProcess(proxyPid)).cpuSeconds,
          generator: generatorSeconds(),
        });
        const before = await sample();
        const result = await runClosedLoop({
          clock: options.clock,
          dispatcher: agentOf[target],
          baseUrl: urls[target],
          concurrency: options.concurrency,
          durationMs: options.throughputSeconds * 1000,
          maxRequests: options.throughputSeconds * 200_000,
          makeRequest,
        });
        const after = await sample();
        const perRequest = (key: keyof CpuPerRequest): number => ((after[key] - before[key]) * 1e6) / Math.max(1, result.tally.succeeded);
        for (const key of ['replica', 'proxy', 'generator'] as const) {
          if (key !== 'proxy' || proxyPid !== undefined) results.cpu[target][key].push(perRequest(key));
        }
        results.failures[target] += result.tally.sent - result.tally.succeeded;
        throughputOf[target] = result.throughput;
        results.throughputs[target].push(result.throughput);
        options.log(`overhead: throughput round ${round + 1}/${options.throughputRounds} ${target}: ${result.throughput.toFixed(0)} requests/s`);
      }
      const direct = throughputOf.direct ?? Number.NaN;
      results.ratios.gateway.push((throughputOf.gateway ?? Number.NaN) / direct);
      results.ratios.reference.push((throughputOf.reference ?? Number.NaN) / direct);
    }

    return summarize(options, rounds, results, cpuMsPerRequest);
  } finally {
    await Promise.all(agents.map((agent) => agent.close()));
    await gateway?.stop();
    await reference?.stop();
    await replica.stop('SIGTERM');
  }
}

function summarize(options: OverheadOptions, rounds: LatencyRound[], results: ThroughputResults, cpuMsPerRequest: number): OverheadResult {
  const of = (target: Target): LatencyRound[] => rounds.filter((round) => round.target === target);
  const direct = of('direct');
  // Added latency per round, then the median over rounds: comparing within a round keeps a
  // busy spell on the shared machine inside one difference instead of spreading it.
  const added = (target: ProxyTarget, key: 'p50' | 'p99'): number => {
    const proxied = of(target);
    return median(direct.map((round, index) => (proxied[index]?.[key] ?? Number.NaN) - round[key]));
  };
  const addedP50 = added('gateway', 'p50');
  const addedP99 = added('gateway', 'p99');
  const { throughputs, ratios, cpu } = results;
  const throughputRatio = median(ratios.gateway);
  const latencyFailures = rounds.reduce((sum, round) => sum + round.failures + round.skipped, 0);
  const failures = latencyFailures + TARGETS.reduce((sum, target) => sum + results.failures[target], 0);
  const failed = (target: Target): string => String(of(target).reduce((sum, round) => sum + round.failures, 0));
  const skipped = (target: Target): string => String(of(target).reduce((sum, round) => sum + round.skipped, 0));
  const medianOf = (target: Target, key: 'p50' | 'p99' | 'goodput'): number => median(of(target).map((round) => round[key]));
  const directAndGatewayVerdict = (key: 'failures' | 'skipped'): string => verdict(of('direct').concat(of('gateway')).every((round) => round[key] === 0));

  const latencyTable = formatTable(
    [`open loop at ${options.rate} requests/s, ${roundCount(options.rounds)} of ${options.roundSeconds} s`, 'direct', 'gateway', 'added', 'target', 'verdict', 'reference proxy', 'its added'],
    [
      ['p50 latency (ms, median over rounds)', formatMs(medianOf('direct', 'p50')), formatMs(medianOf('gateway', 'p50')), formatMs(addedP50), `< ${TARGET_ADDED_P50_MS}`, verdict(addedP50 < TARGET_ADDED_P50_MS), formatMs(medianOf('reference', 'p50')), formatMs(added('reference', 'p50'))],
      ['p99 latency (ms, median over rounds)', formatMs(medianOf('direct', 'p99')), formatMs(medianOf('gateway', 'p99')), formatMs(addedP99), `< ${TARGET_ADDED_P99_MS}`, verdict(addedP99 < TARGET_ADDED_P99_MS), formatMs(medianOf('reference', 'p99')), formatMs(added('reference', 'p99'))],
      ['goodput (requests/s, median)', medianOf('direct', 'goodput').toFixed(0), medianOf('gateway', 'goodput').toFixed(0), '', '', '', medianOf('reference', 'goodput').toFixed(0), ''],
      ['failed requests (all rounds)', failed('direct'), failed('gateway'), '', '0', directAndGatewayVerdict('failures'), failed('reference'), ''],
      ['skipped at the in-flight bound (all rounds)', skipped('direct'), skipped('gateway'), '', '0', directAndGatewayVerdict('skipped'), skipped('reference'), ''],
    ],
  );
  const micros = (target: Target, key: keyof CpuPerRequest): string => (cpu[target][key].length === 0 ? '' : formatMicros(median(cpu[target][key])));
  const throughputTable = formatTable(
    [`closed loop, concurrency ${options.concurrency}, ${roundCount(options.throughputRounds)} of ${options.throughputSeconds} s`, 'direct', 'gateway', 'ratio', 'target', 'verdict', 'reference proxy', 'its ratio'],
    [
      [
        'max throughput (requests/s, median)',
        median(throughputs.direct).toFixed(0),
        median(throughputs.gateway).toFixed(0),
        formatRatio(throughputRatio),
        `>= ${TARGET_THROUGHPUT_RATIO}`,
        verdict(throughputRatio >= TARGET_THROUGHPUT_RATIO),
        median(throughputs.reference).toFixed(0),
        formatRatio(median(ratios.reference)),
      ],
      ['per-round ratios', '', '', ratios.gateway.map(formatRatio).join(' '), '', '', '', ratios.reference.map(formatRatio).join(' ')],
      ['failed requests (all rounds)', String(results.failures.direct), String(results.failures.gateway), '', '0', verdict(results.failures.direct + results.failures.gateway === 0), String(results.failures.reference), ''],
      ['CPU per request, replica (us, median)', micros('direct', 'replica'), micros('gateway', 'replica'), '', '', '', micros('reference', 'replica'), ''],
      ['CPU per request, proxy (us, median)', '', micros('gateway', 'proxy'), '', '', '', micros('reference', 'proxy'), ''],
      ['CPU per request, load generator (us, median)', micros('direct', 'generator'), micros('gateway', 'generator'), '', '', '', micros('reference', 'generator'), ''],
    ],
  );
  // The three processes share the machine's cores, so the direct ratio above also charges the
  // gateway for the cores it takes from the replica and the generator. Requests per CPU-second
  // compare the two servers' own costs, as when each runs on cores of its own.
  const gatewayMicros = median(cpu.gateway.proxy);
  const replicaMicros = median(cpu.direct.replica);
  const perCoreLine = `requests per CPU-second: gateway ${formatCount(1e6 / gatewayMicros)}, replica ${formatCount(1e6 / replicaMicros)} (ratio ${formatRatio(replicaMicros / gatewayMicros)}; a reference for separate cores, not the target)`;
  const cpuLine = `gateway CPU per request: ${formatMs(cpuMsPerRequest)} ms (user + system from /proc over the latency rounds, ${formatPercent((cpuMsPerRequest * options.rate) / 1000)} of one core at ${options.rate} requests/s)`;
  return {
    table: `${latencyTable}\n\n${throughputTable}\n${perCoreLine}\n${cpuLine}`,
    addedP50Ms: addedP50,
    addedP99Ms: addedP99,
    throughputRatio,
    referenceAddedP99Ms: added('reference', 'p99'),
    referenceThroughputRatio: median(ratios.reference),
    failures,
  };
}
