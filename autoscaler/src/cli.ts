// Command-line parsing of the autoscaler: a config file for clusters, or --gateway URLs
// for local mode without a cluster.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { joinNegativeValues } from '../../shared/src/cli-args.ts';
import { buildLocalConfig, loadConfigFile, type AutoscalerConfig } from './config/load.ts';
import { DEFAULTS } from './config/defaults.ts';
import { checkGatewayUrl, describeGatewayUrlProblem } from './config/gateway-url.ts';

export const USAGE = `Usage:
  npm run autoscaler -- --config FILE          run against a cluster (or set INFERGATE_CONFIG=FILE)
  npm run autoscaler -- --gateway URL [...]    local mode: no cluster, scale actions only logged

Local mode options:
  --gateway URL        gateway admin origin (no path), such as http://127.0.0.1:9090; repeat for several
  --insecure-http      serve the metrics API over plain HTTP instead of TLS with a generated certificate
  --port N             metrics API port, 0 for any free port (default ${DEFAULTS.metricsApi.port})
  --admin-port N       port of /healthz, /readyz and /metrics, 0 for any free port (default ${DEFAULTS.adminPort})
  --host ADDRESS       listen IP address, or localhost (default 127.0.0.1)
  --client-ca FILE     require client certificates signed by this CA (PEM)
  --allowed-name CN    accept only this client certificate common name; repeat for several
  --gpu-budget N       total GPUs all models may use, 0 or more (default: no budget)
  --poll-interval-ms N milliseconds between polls, 1 to ${DEFAULTS.staleAfterMs} (default ${DEFAULTS.pollIntervalMs})
  --help               print this text
`;

export class UsageError extends Error {
  readonly code = 'INFERGATE_AUTOSCALER_USAGE';
  /** `message` is one line that names the flag and the value; --help prints the usage. */
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type CliResult = { help: true } | { help: false; config: AutoscalerConfig; source: string };

/** Options that take a number, so a negative value such as `--port -1` is a value and not a flag. */
const NUMERIC_OPTIONS = new Set(['--port', '--admin-port', '--gpu-budget', '--poll-interval-ms']);

const OPTIONS = {
  config: { type: 'string' },
  gateway: { type: 'string', multiple: true },
  'insecure-http': { type: 'boolean' },
  port: { type: 'string' },
  'admin-port': { type: 'string' },
  host: { type: 'string' },
  'client-ca': { type: 'string' },
  'allowed-name': { type: 'string', multiple: true },
  'gpu-budget': { type: 'string' },
  'poll-interval-ms': { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** Parses argv (without node and script) and the environment into a validated config. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): CliResult {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv, NUMERIC_OPTIONS), options: OPTIONS, strict: true, allowPositionals: false, tokens: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; --help lists the options`);
  }
  const { values, tokens } = parsed;
  if (values.help) return { help: true };
  rejectRepeatedOptions(tokens);

  const configFile = values.config ?? (env.INFERGATE_CONFIG || undefined);
  const gateways = values.gateway ?? [];
  if (configFile && gateways.length > 0) {
    throw new UsageError(`--gateway starts local mode and cannot be combined with a config file (${configFile}); put the gateways in the file's gateways.static instead`);
  }
  if (configFile) {
    const localOnly = ['insecure-http', 'port', 'admin-port', 'host', 'client-ca', 'allowed-name', 'gpu-budget', 'poll-interval-ms'].filter((k) => values[k as keyof typeof values] !== undefined);
    if (localOnly.length > 0) throw new UsageError(`--${localOnly[0]} applies to local mode only; with a config file set the matching key in the file`);
    return { help: false, config: loadConfigFile(configFile), source: configFile };
  }
  if (gateways.length === 0) throw new UsageError('no config: pass --config FILE, set INFERGATE_CONFIG, or pass --gateway URL for local mode');
  for (const url of gateways) {
    const problem = checkGatewayUrl(url);
    if (problem) throw new UsageError(describeGatewayUrlProblem('--gateway', problem));
  }

  if (values.host !== undefined && isIP(values.host) === 0 && values.host !== 'localhost') {
    throw new UsageError(`--host: expected an IP address such as 127.0.0.1, 0.0.0.0 or ::, or localhost, got ${JSON.stringify(values.host)}`);
  }
  if (values['client-ca'] !== undefined) checkPemFile('--client-ca', values['client-ca']);

  if (values['allowed-name'] && !values['client-ca']) {
    throw new UsageError('--allowed-name needs --client-ca: names are checked on client certificates signed by that CA');
  }
  if (values['insecure-http'] && values['client-ca'] !== undefined) {
    throw new UsageError('--insecure-http and --client-ca exclude each other: client certificates need TLS');
  }
  const numbers = {
    ...optionalInteger('port', values.port, 0, 65535),
    ...optionalInteger('adminPort', values['admin-port'], 0, 65535, '--admin-port'),
    ...optionalInteger('gpuBudget', values['gpu-budget'], 0, Number.MAX_SAFE_INTEGER, '--gpu-budget'),
    ...optionalInteger('pollIntervalMs', values['poll-interval-ms'], 1, DEFAULTS.staleAfterMs, '--poll-interval-ms'),
  };
  // Checked here so that the message names the flags; buildLocalConfig would name config keys.
  const port = numbers.port ?? DEFAULTS.metricsApi.port;
  const adminPort = numbers.adminPort ?? DEFAULTS.adminPort;
  if (port === adminPort && port !== 0) {
    if (numbers.adminPort === undefined) throw new UsageError(`--port: must differ from the admin port (default ${adminPort}, set with --admin-port), got ${port}`);
    if (numbers.port === undefined) throw new UsageError(`--admin-port: must differ from the metrics API port (default ${port}, set with --port), got ${adminPort}`);
    throw new UsageError(`--admin-port: must differ from --port, both are ${port}`);
  }

  const config = buildLocalConfig({
    gateways,
    insecureHttp: values['insecure-http'] ?? false,
    ...numbers,
    ...(values.host !== undefined ? { listenHost: values.host } : {}),
    ...(values['client-ca'] ? { clientCAFile: values['client-ca'] } : {}),
    ...(values['allowed-name'] ? { allowedNames: values['allowed-name'] } : {}),
  });
  return { help: false, config, source: '(command line)' };
}

/** Rejects an option that takes one value when it is given more than once, naming the flag and both values. */
function rejectRepeatedOptions(tokens: readonly { kind: string; name?: string; value?: string }[]): void {
  const seen = new Map<string, string | undefined>();
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name === undefined) continue;
    const option = OPTIONS[token.name as keyof typeof OPTIONS];
    if (option.type !== 'string' || ('multiple' in option && option.multiple)) continue;
    if (seen.has(token.name)) {
      throw new UsageError(`--${token.name} was given more than once (${JSON.stringify(seen.get(token.name))} and ${JSON.stringify(token.value)}); pass it once`);
    }
    seen.set(token.name, token.value);
  }
}

/** Plain decimal digits with an optional minus, so that "", " 0", "0x10" and "1e3" are rejected. */
const DECIMAL_INTEGER = /^-?\d+$/;

function optionalInteger<K extends string>(key: K, text: string | undefined, min: number, max: number, flag = `--${key}`): Partial<Record<K, number>> {
  if (text === undefined) return {};
  // Number() alone would read "" and " " as 0, and "0x10" as 16.
  const value = DECIMAL_INTEGER.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of ${min} or more` : `from ${min} to ${max}`;
    throw new UsageError(`${flag}: expected a decimal integer ${range}, got ${JSON.stringify(text)}`);
  }
  return { [key]: value } as Partial<Record<K, number>>;
}

/** Rejects a CA file that cannot be read or holds no PEM block, naming the flag and the path. */
function checkPemFile(flag: string, path: string): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${JSON.stringify(path)}: ${describeFileError(error)}; pass the PEM file of the CA that signs the client certificates`);
  }
  if (!text.includes('-----BEGIN ')) {
    throw new UsageError(`${flag}: ${JSON.stringify(path)} contains no PEM block; pass the PEM file of the CA that signs the client certificates`);
  }
}

/** Turns a file system error into its reason and code, without repeating the path. */
export function describeFileError(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  // Node formats these messages as "ENOENT: no such file or directory, open '/path'".
  const reason = /^[A-Z]+: ([^,]+)/.exec(message)?.[1] ?? message;
  return code ? `${reason} (${code})` : reason;
}
