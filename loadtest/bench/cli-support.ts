// Command-line support shared by the replay and bench entry points: loopback-only targets,
// numeric flags with ranges, trace paths that resolve from where the user ran npm, and the
// mapping of the run's outcome to an exit status.
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, two levels above this file. */
export const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A command-line mistake: the entry points print its message and exit with status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A failure outside the user's control that is fully described by its message, such as a
 * server that cannot be reached: the entry points print the message without a stack trace and
 * exit with status 1.
 */
export class RunFailure extends Error {
  override name = 'RunFailure';
}

/**
 * Parses a target URL and rejects any host outside loopback (127.0.0.0/8, ::1, localhost).
 * The drivers generate heavy load, so they may only aim at servers on this machine; use the
 * k6 scripts for remote deployments.
 */
export function parseLoopbackUrl(value: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag}: invalid URL ${JSON.stringify(value)}; expected for example http://127.0.0.1:8080`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`${flag}: unsupported scheme in ${value}; only http:// is supported`);
  if (!isLoopbackHost(url.hostname)) {
    throw new UsageError(`${flag}: ${url.hostname} is not a loopback address; the load drivers only target 127.0.0.0/8, ::1 or localhost`);
  }
  return url;
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.split('.')[0] === '127';
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** Parses a numeric flag and checks that it lies in [min, max]; integer flags reject fractions. */
export function parseNumberFlag(value: string | undefined, flag: string, fallback: number, range: { min: number; max: number; integer?: boolean }): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  const kind = range.integer === true ? 'an integer' : 'a number';
  if (value.trim() === '' || !Number.isFinite(parsed) || (range.integer === true && !Number.isInteger(parsed))) {
    throw new UsageError(`${flag}: invalid value ${JSON.stringify(value)}; expected ${kind} from ${range.min} to ${range.max}`);
  }
  if (parsed < range.min || parsed > range.max) {
    throw new UsageError(`${flag}: ${parsed} is out of range; expected ${kind} from ${range.min} to ${range.max}`);
  }
  return parsed;
}

/**
 * Resolves a path given on the command line. npm runs scripts in the repository root and
 * records the user's directory in INIT_CWD. A relative path is therefore tried against
 * INIT_CWD, then the current directory, then the repository root, and the first that exists wins.
 */
export function resolveInputPath(value: string, flag: string): string {
  if (path.isAbsolute(value)) {
    if (!existsSync(value)) throw new UsageError(`${flag}: file not found: ${value}`);
    return value;
  }
  const bases = [process.env.INIT_CWD, process.cwd(), REPOSITORY_ROOT].filter((base): base is string => base !== undefined && base !== '');
  const candidates = [...new Set(bases.map((base) => path.resolve(base, value)))];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new UsageError(`${flag}: file not found: ${value} (tried ${candidates.join(', ')})`);
  return found;
}

/**
 * Runs an entry point's main function and sets the exit status: main's result, 2 for a
 * command-line mistake (a UsageError or a node:util parseArgs error, with a pointer to
 * --help), 1 for any other failure. `program` is both the message prefix and the npm script.
 */
export function runEntryPoint(program: string, main: () => Promise<number>): Promise<void> {
  // The shared system clock unrefs its timers. While the scheduler waits for the next send
  // with no request outstanding, nothing else would keep the process alive, so this interval
  // does until main settles.
  const keepAlive = setInterval(() => {}, 60_000);
  return main()
    .finally(() => clearInterval(keepAlive))
    .then(
      (code) => {
        process.exitCode = code;
      },
      (error: unknown) => {
        const parseError = typeof error === 'object' && error !== null && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
        if (error instanceof UsageError || parseError) {
          process.stderr.write(`${program}: ${(error as Error).message}\n\nRun npm run ${program} -- --help for the options.\n`);
          process.exitCode = 2;
          return;
        }
        if (error instanceof RunFailure) {
          process.stderr.write(`${program}: ${error.message}\n`);
          process.exitCode = 1;
          return;
        }
        process.stderr.write(`${program}: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
        process.exitCode = 1;
      },
    );
}
