// Child processes for the benchmarks. The gateway runs in its own process, so its CPU time,
// resident memory and open file descriptors are read from /proc apart from the load
// generator's, and the two do not share one event loop.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { REPOSITORY_ROOT } from './cli-support.ts';

/** A server child process started by a benchmark. */
export interface ServerProcess {
  pid: number;
  /** File that receives the process's stdout and stderr. */
  logPath: string;
  /** Sends SIGTERM, waits up to graceMs for the exit, then sends SIGKILL. */
  stop(graceMs?: number): Promise<void>;
}

export interface GatewayProcess extends ServerProcess {
  trafficUrl: string;
  adminUrl: string;
}

export interface GatewayLaunch {
  /** Gateway config file; omit it to run the embedded demo. */
  configPath?: string;
  /** Directory for the log file. */
  workDir: string;
  /** Milliseconds to wait for /readyz to return 200. */
  readyTimeoutMs?: number;
}

export interface ProcessSample {
  /** Resident set size in bytes (VmRSS). */
  rssBytes: number;
  openFds: number;
  /** User plus system CPU time in seconds since the process started. */
  cpuSeconds: number;
}

const GATEWAY_ENTRY = path.join(REPOSITORY_ROOT, 'gateway', 'src', 'main.ts');
/**
 * Node flags the gateway runs with in its image and npm scripts, so the benchmarks measure
 * the same process users run. test/charts/dockerfile.test.ts checks that the three agree.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=32', '--max-semi-space-size=32'];
const REFERENCE_PROXY_ENTRY = path.join(REPOSITORY_ROOT, 'loadtest', 'bench', 'reference-proxy.ts');
// Every child a benchmark starts and has not seen exit, so that an interrupted run can stop
// them instead of leaving servers behind.
const liveChildren = new Set<ChildProcess>();
// USER_HZ on Linux: /proc/<pid>/stat reports CPU times in clock ticks of 1/100 s on every
// architecture the kernel supports.
const CLOCK_TICKS_PER_SECOND = 100;

/** Registers a child process to be stopped by stopTrackedChildren() until it exits. */
export function trackChild(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/**
 * Sends SIGTERM to every tracked child that is still running and waits up to graceMs for
 * them to exit, then sends SIGKILL to the rest. The gateway stops the demo replicas it started.
 */
export async function stopTrackedChildren(graceMs: number): Promise<void> {
  await Promise.all(
    [...liveChildren].map((child) => stopChild(child, new Promise<void>((resolve) => child.once('exit', () => resolve())), graceMs)),
  );
}

/** Returns a TCP port that was free on 127.0.0.1 a moment ago. */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('cannot read the port of a probe listener');
  return address.port;
}

/**
 * Starts gateway/src/main.ts on two free loopback ports with this Node binary and waits until
 * its admin /readyz returns 200. The process is killed if it does not get ready in time.
 */
export async function startGatewayProcess(launch: GatewayLaunch): Promise<GatewayProcess> {
  const port = await findFreePort();
  const adminPort = await findFreePort();
  const args = [...GATEWAY_NODE_FLAGS, GATEWAY_ENTRY, '--port', String(port), '--admin-port', String(adminPort)];
  if (launch.configPath !== undefined) args.push('--config', launch.configPath);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const child = await startServerProcess({
    name: 'gateway',
    args,
    logPath: path.join(launch.workDir, `gateway-${port}.log`),
    readyUrl: `${adminUrl}/readyz`,
    readyTimeoutMs: launch.readyTimeoutMs ?? 60_000,
  });
  return { ...child, trafficUrl: `http://127.0.0.1:${port}`, adminUrl };
}

export interface ReferenceProxyProcess extends ServerProcess {
  url: string;
}

/**
 * Starts loadtest/bench/reference-proxy.ts in front of upstreamUrl on a free loopback port,
 * with the gateway's Node flags, so the two proxies differ only in their code.
 */
export async function startReferenceProxy(upstreamUrl: string, workDir: string): Promise<ReferenceProxyProcess> {
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  const child = await startServerProcess({
    name: 'reference proxy',
    args: [...GATEWAY_NODE_FLAGS, REFERENCE_PROXY_ENTRY, '--upstream', upstreamUrl, '--port', String(port)],
    logPath: path.join(workDir, `reference-proxy-${port}.log`),
    readyUrl: `${url}/healthz`,
    readyTimeoutMs: 30_000,
  });
  return { ...child, url };
}

interface ServerLaunch {
  name: string;
  args: string[];
  logPath: string;
  readyUrl: string;
  readyTimeoutMs: number;
}

/**
 * Spawns a server with this Node binary, sends its output to logPath and waits until
 * readyUrl returns 200. The process is stopped if it does not get ready in time.
 */
async function startServerProcess(launch: ServerLaunch): Promise<ServerProcess> {
  const log = createWriteStream(launch.logPath);
  const child = spawn(process.execPath, launch.args, {
    cwd: REPOSITORY_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
  });
  trackChild(child);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => log.end());
  const server: ServerProcess = {
    pid: child.pid ?? -1,
    logPath: launch.logPath,
    stop: (graceMs = 15_000) => stopChild(child, exited, graceMs),
  };
  try {
    await waitForOk(launch.readyUrl, launch.readyTimeoutMs, child);
  } catch (error) {
    await server.stop(2_000);
    throw new Error(`${launch.name} did not get ready: ${(error as Error).message}; see its log in ${launch.logPath}`, { cause: error });
  }
  return server;
}

/**
 * Polls GET url until it returns 200, the child exits, or timeoutMs passes. Connection
 * errors while the server starts are expected and retried.
 */
export async function waitForOk(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`process exited with status ${child.exitCode} while waiting for ${url}`);
    try {
      const response = await request(url, { method: 'GET', headersTimeout: 2_000, bodyTimeout: 2_000 });
      await response.body.dump();
      if (response.statusCode === 200) return;
      last = `status ${response.statusCode}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`GET ${url} did not return 200 within ${timeoutMs} ms (last: ${last})`);
}

/** Reads the resident memory, open file descriptors and CPU time of a process from /proc. */
export async function sampleProcess(pid: number): Promise<ProcessSample> {
  const [status, fds, stat] = await Promise.all([
    readFile(`/proc/${pid}/status`, 'utf8'),
    readdir(`/proc/${pid}/fd`),
    readFile(`/proc/${pid}/stat`, 'utf8'),
  ]);
  const rssMatch = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (rssMatch === null) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  // Fields after the command name, which is in parentheses and may contain spaces:
  // utime and stime are fields 14 and 15 of the whole line, so 12 and 13 after ") ".
  const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(afterName[11]) + Number(afterName[12]);
  return { rssBytes: Number(rssMatch[1]) * 1024, openFds: fds.length, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
}

async function stopChild(child: ChildProcess, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const graceTimer = new AbortController();
  const timedOut = await Promise.race([
    exited.then(() => false),
    sleep(graceMs, undefined, { signal: graceTimer.signal }).then(
      () => true,
      () => false,
    ),
  ]);
  graceTimer.abort();
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}
