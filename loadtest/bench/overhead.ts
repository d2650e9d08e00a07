// Gateway overhead: the same zero-latency replica called directly and through the gateway.
// Latency is measured open-loop at a fixed rate in rounds that alternate which target goes
// first (so drift on a shared machine hits both alike), and maximum throughput closed-loop
// at a fixed concurrency, again alternating. The tables report medians over rounds.
import type { Dispatcher } from 'undici';
import type { Clock } from '../../shared/src/clock.ts';
import { spawnReplica } from '../replica/spawn.ts';
import { writeGatewayConfig, waitForReadyReplicas } from './gateway-setup.ts';
import { createLoadAgent, type RequestSpec } from './http-client.ts';
import { runClosedLoop, runFixedRate } from './load.ts';
import { chatRequest } from './payloads.ts';
import { sampleProcess, startGatewayProcess, trackChild } from './processes.ts';
import { formatMs, formatPercent, formatRatio, formatTable, verdict } from './report.ts';
import { median } from './stats.ts';

function formatMicros(value: number): string {
  return Number.isFinite(value) ? value.toFixed(0) : 'n/a';
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
  failures: number;
}

/** CPU time per successful request of each process in the closed-loop rounds of one target, in microseconds. */
interface CpuPerRequest {
  replica: number[];
  gateway: number[];
  generator: number[];
}

const MODEL = 'bench-chat';
// Targets for the gateway's cost, checked and printed with the results.
const TARGET_ADDED_P50_MS = 0.5;
const TARGET_ADDED_P99_MS = 2;
const TARGET_THROUGHPUT_RATIO = 0.5;

interface LatencyRound {
  target: 'direct' | 'gateway';
  p50: number;
  p99: number;
  goodput: number;
  succeeded: number;
  /** Requests that were sent and did not succeed. */
  failures: number;
  /** Requests not sent because the in-flight bound was reached. */
  skipped: number;
}

/** Runs the overhead benchmark and returns its printed table and headline figures. */
export async function runOverheadBenchmark(options: OverheadOptions): Promise<OverheadResult> {
  const replica = await spawnReplica([
    '--protocol', 'openai', '--model', MODEL, '--port', '0',
    '--prefill-base-ms', '0', '--prefill-per-token-ms', '0', '--itl-base-ms', '0', '--itl-per-running-ms', '0',
    '--max-concurrency', '100000', '--max-waiting', '100000',
  ]);
  trackChild(replica.child);
  let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
  const agents: Dispatcher[] = [];
  try {
    const configPath = await writeGatewayConfig(options.workDir, 'overhead.yaml', [
      { name: MODEL, protocol: 'openai', replicaUrls: [replica.url], maxInflightPerReplica: 4096, maxBatchSize: 1, queueMaxSize: 100_000 },
    ]);
    gateway = await startGatewayProcess({ configPath, workDir: options.workDir });
    await waitForReadyReplicas(gateway.adminUrl, MODEL, 1);
    const targets = { direct: replica.url, gateway: gateway.trafficUrl };
    // One second's worth of requests may be outstanding, so only a stall of about a second
    // makes the open loop skip sends. Skips are counted and shown next to the failures.
    const maxInFlight = Math.max(256, Math.ceil(options.rate));
    const directAgent = createLoadAgent({ connections: maxInFlight, timeoutMs: 30_000 });
    const gatewayAgent = createLoadAgent({ connections: maxInFlight, timeoutMs: 30_000 });
    agents.push(directAgent, gatewayAgent);
    const agentOf = { direct: directAgent, gateway: gatewayAgent };
    const makeRequest = (index: number): RequestSpec =>
      chatRequest({ model: MODEL, promptTokens: 16, maxTokens: 1, stream: false, seed: index, requestId: `overhead-${index}` });

    const fixedRate = async (target: 'direct' | 'gateway', seconds: number): Promise<LatencyRound> => {
      const result = await runFixedRate({
        clock: options.clock,
        dispatcher: agentOf[target],
        baseUrl: targets[target],
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
    await fixedRate('direct', options.warmupSeconds);
    await fixedRate('gateway', options.warmupSeconds);

    const rounds: LatencyRound[] = [];
    const cpuBefore = await sampleProcess(gateway.pid);
    let gatewayRequests = 0;
    for (let round = 0; round < options.rounds; round++) {
      const order: Array<'direct' | 'gateway'> = round % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct'];
      for (const target of order) {
        const result = await fixedRate(target, options.roundSeconds);
        if (target === 'gateway') gatewayRequests += result.succeeded;
        rounds.push(result);
        options.log(`overhead: round ${round + 1}/${options.rounds} ${target}: p50 ${formatMs(result.p50)} ms, p99 ${formatMs(result.p99)} ms, failures ${result.failures}, skipped ${result.skipped}`);
      }
    }
    const cpuAfter = await sampleProcess(gateway.pid);
    // Gateway CPU includes its health probes and metrics, a small constant next to 1,000 requests/s.
    const cpuMsPerRequest = gatewayRequests > 0 ? ((cpuAfter.cpuSeconds - cpuBefore.cpuSeconds) * 1000) / gatewayRequests : Number.NaN;

    const ratios: number[] = [];
    const throughputs: Record<'direct' | 'gateway', number[]> = { direct: [], gateway: [] };
    const cpu: Record<'direct' | 'gateway', CpuPerRequest> = {
      direct: { replica: [], gateway: [], generator: [] },
      gateway: { replica: [], gateway: [], generator: [] },
    };
    const generatorSeconds = (): number => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    };
    const throughputFailures: Record<'direct' | 'gateway', number> = { direct: 0, gateway: 0 };
    for (let round = 0; round < options.throughputRounds; round++) {
      const order: Array<'direct' | 'gateway'> = round % 2 === 0 ? ['direct', 'gateway'] : ['gateway', 'direct'];
      const pair: Partial<Record<'direct' | 'gateway', number>> = {};
      for (const target of order) {
        const before = { replica: (await sampleProcess(replica.pid)).cpuSeconds, gateway: (await sampleProcess(gateway.pid)).cpuSeconds, generator: generatorSeconds() };
        const result = await runClosedLoop({
          clock: options.clock,
          dispatcher: agentOf[target],
          baseUrl: targets[target],
          concurrency: options.concurrency,
          durationMs: options.throughputSeconds * 1000,
          maxRequests: options.throughputSeconds * 200_000,
          makeRequest,
        });
        const after = { replica: (await sampleProcess(replica.pid)).cpuSeconds, gateway: (await sampleProcess(gateway.pid)).cpuSeconds, generator: generatorSeconds() };
        const perRequest = (key: keyof CpuPerRequest): number => ((after[key] - before[key]) * 1e6) / Math.max(1, result.tally.succeeded);
        for (const key of ['replica', 'gateway', 'generator'] as const) cpu[target][key].push(perRequest(key));
        throughputFailures[target] += result.tally.sent - result.tally.succeeded;
        pair[target] = result.throughput;
        throughputs[target].push(result.throughput);
        options.log(`overhead: throughput round ${round + 1}/${options.throughputRounds} ${target}: ${result.throughput.toFixed(0)} requests/s`);
      }
      ratios.push((pair.gateway ?? Number.NaN) / (pair.direct ?? Number.NaN));
    }

    return summarize(options, rounds, ratios, throughputs, cpuMsPerRequest, throughputFailures, cpu);
  } finally {
    await Promise.all(agents.map((agent) => agent.close()));
    await gateway?.stop();
    await replica.stop('SIGTERM');
  }
}

function summarize(
  options: OverheadOptions,
  rounds: LatencyRound[],
  ratios: number[],
  throughputs: Record<'direct' | 'gateway', number[]>,
  cpuMsPerRequest: number,
  throughputFailures: Record<'direct' | 'gateway', number>,
  cpu: Record<'direct' | 'gateway', CpuPerRequest>,
): OverheadResult {
  const direct = rounds.filter((round) => round.target === 'direct');
  const gateway = rounds.filter((round) => round.target === 'gateway');
  // Added latency per round pair, then the median over pairs: pairing keeps a busy spell on
  // the shared machine inside one difference instead of spreading it over both columns.
  const addedP50 = median(direct.map((round, index) => (gateway[index]?.p50 ?? Number.NaN) - round.p50));
  const addedP99 = median(direct.map((round, index) => (gateway[index]?.p99 ?? Number.NaN) - round.p99));
  const throughputRatio = median(ratios);
  const latencyFailures = rounds.reduce((sum, round) => sum + round.failures + round.skipped, 0);
  const failures = latencyFailures + throughputFailures.direct + throughputFailures.gateway;
  const failed = (target: LatencyRound[]): number => target.reduce((sum, round) => sum + round.failures, 0);
  const skipped = (target: LatencyRound[]): number => target.reduce((sum, round) => sum + round.skipped, 0);

  const latencyTable = formatTable(
    [`open loop at ${options.rate} requests/s, ${options.rounds} rounds of ${options.roundSeconds} s`, 'direct', 'gateway', 'added', 'target', 'verdict'],
    [
      ['p50 latency (ms, median over rounds)', formatMs(median(direct.map((r) => r.p50))), formatMs(median(gateway.map((r) => r.p50))), formatMs(addedP50), `< ${TARGET_ADDED_P50_MS}`, verdict(addedP50 < TARGET_ADDED_P50_MS)],
      ['p99 latency (ms, median over rounds)', formatMs(median(direct.map((r) => r.p99))), formatMs(median(gateway.map((r) => r.p99))), formatMs(addedP99), `< ${TARGET_ADDED_P99_MS}`, verdict(addedP99 < TARGET_ADDED_P99_MS)],
      ['goodput (requests/s, median)', median(direct.map((r) => r.goodput)).toFixed(0), median(gateway.map((r) => r.goodput)).toFixed(0), '', '', ''],
      ['failed requests (all rounds)', String(failed(direct)), String(failed(gateway)), '', '0', verdict(failed(direct) + failed(gateway) === 0)],
      ['skipped at the in-flight bound (all rounds)', String(skipped(direct)), String(skipped(gateway)), '', '0', verdict(skipped(direct) + skipped(gateway) === 0)],
    ],
  );
  const throughputTable = formatTable(
    [`closed loop, concurrency ${options.concurrency}, ${options.throughputRounds} rounds of ${options.throughputSeconds} s`, 'direct', 'gateway', 'ratio', 'target', 'verdict'],
    [
      [
        'max throughput (requests/s, median)',
        median(throughputs.direct).toFixed(0),
        median(throughputs.gateway).toFixed(0),
        formatRatio(throughputRatio),
        `>= ${TARGET_THROUGHPUT_RATIO}`,
        verdict(throughputRatio >= TARGET_THROUGHPUT_RATIO),
      ],
      ['per-round ratios', '', '', ratios.map(formatRatio).join(' '), '', ''],
      ['failed requests (all rounds)', String(throughputFailures.direct), String(throughputFailures.gateway), '', '0', verdict(throughputFailures.direct + throughputFailures.gateway === 0)],
      ['CPU per request, replica (us, median)', formatMicros(median(cpu.direct.replica)), formatMicros(median(cpu.gateway.replica)), '', '', ''],
      ['CPU per request, gateway (us, median)', '', formatMicros(median(cpu.gateway.gateway)), '', '', ''],
      ['CPU per request, load generator (us, median)', formatMicros(median(cpu.direct.generator)), formatMicros(median(cpu.gateway.generator)), '', '', ''],
    ],
  );
  // The three processes share the machine's cores, so the direct ratio above also charges the
  // gateway for the cores it takes from the replica and the generator. Requests per CPU-second
  // compare the two servers' own costs, as when each runs on cores of its own.
  const perCoreRatio = median(cpu.direct.replica) / median(cpu.gateway.gateway);
  const perCoreLine = `requests per CPU-second: gateway ${formatCount(1e6 / median(cpu.gateway.gateway))}, replica ${formatCount(1e6 / median(cpu.direct.replica))} (ratio ${formatRatio(perCoreRatio)}; a reference for separate cores, not the target)`;
  const cpuLine = `gateway CPU per request: ${formatMs(cpuMsPerRequest)} ms (user + system from /proc over the latency rounds, ${formatPercent((cpuMsPerRequest * options.rate) / 1000)} of one core at ${options.rate} requests/s)`;
  return { table: `${latencyTable}\n\n${throughputTable}\n${perCoreLine}\n${cpuLine}`, addedP50Ms: addedP50, addedP99Ms: addedP99, throughputRatio, failures };
}
