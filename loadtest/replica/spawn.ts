// Starts simulated replicas as child processes for tests, benchmarks and the demo, and
// drives their /sim control routes. Also re-exports the in-process server for benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FaultSettings } from './faults.ts';
import type { SimStats } from './stats.ts';

export type { FaultSettings } from './faults.ts';
export type { SimStats } from './stats.ts';
export { startReplicaServer, type ReplicaServer, type ReplicaServerOptions } from './server.ts';

const MAIN_PATH = fileURLToPath(new URL('./main.ts', import.meta.url));
const DEFAULT_READY_TIMEOUT_MS = 15_000;
/** Lines of child output kept for error messages. */
const OUTPUT_TAIL_LINES = 20;
const CONTROL_TIMEOUT_MS = 10_000;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the listening line, in milliseconds. */
  readyTimeoutMs?: number;
}

export interface SpawnedReplica {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  stats(): Promise<SimStats>;
  resetStats(): Promise<void>;
  setFaults(faults: FaultSettings): Promise<void>;
  clearFaults(): Promise<void>;
  /** Sends the signal and resolves with the exit code (null when a signal ended it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Sends SIGKILL and resolves once the process is gone. */
  kill(): Promise<void>;
}

/** Starts `node loadtest/replica/main.ts ...args` and resolves once it listens. */
export async function spawnReplica(args: string[], options: SpawnOptions = {}): Promise<SpawnedReplica> {
  const child = spawn(process.execPath, [MAIN_PATH, ...args], {
    env: options.env ?? process.env,
    // The IPC channel carries no messages: the replica stops when it closes, so a parent
    // killed without a chance to stop its replicas does not leave them running.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const tail: string[] = [];
  const remember = (line: string): void => {
    tail.push(line);
    if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Both pipes are read until they close, so a replica that logs a lot does not block on a full pipe.
  createInterface({ input: child.stderr! }).on('line', remember);
  const stdout = createInterface({ input: child.stdout! });

  const listening = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    const timeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const fail = (reason: string): void => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`replica ${args.join(' ')} did not start: ${reason}\n${tail.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`no listening line within ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => fail(`exited with code ${code} signal ${signal}`);
    const onError = (error: Error): void => fail(`spawn failed: ${error.message}`);
    const onLine = (line: string): void => {
      remember(line);
      const entry = parseJsonLine(line);
      if (entry?.msg !== 'listening' || typeof entry.url !== 'string' || typeof entry.port !== 'number') return;
      cleanup();
      resolve({ url: entry.url, port: entry.port });
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
      stdout.off('line', onLine);
    };
    child.once('exit', onExit);
    child.once('error', onError);
    stdout.on('line', onLine);
  });
  stdout.on('line', remember);

  const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${listening.url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} on replica ${listening.url} failed with ${response.status}: ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    return exited;
  };

  return {
    url: listening.url,
    port: listening.port,
    pid: child.pid ?? -1,
    child,
    stats: async () => (await control('GET', '/sim/stats')) as SimStats,
    resetStats: async () => {
      await control('POST', '/sim/stats/reset');
    },
    setFaults: async (faults) => {
      await control('POST', '/sim/faults', faults);
    },
    clearFaults: async () => {
      await control('DELETE', '/sim/faults');
    },
    stop,
    kill: async () => {
      await stop('SIGKILL');
    },
  };
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
