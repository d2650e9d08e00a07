// Command-line parsing of the autoscaler: a config file for clusters, or --gateway URLs
// for local mode without a cluster.
import { parseArgs } from 'node:util';
import { buildLocalConfig, loadConfigFile, type AutoscalerConfig } from './config/load.ts';
import { DEFAULTS } from './config/defaults.ts';

export const USAGE = `Usage:
  npm run autoscaler -- --config FILE          run against a cluster (or set INFERGATE_CONFIG=FILE)
  npm run autoscaler -- --gateway URL [...]    local mode: no cluster, scale actions only logged

Local mode options:
  --gateway URL        gateway admin base URL, such as http://127.0.0.1:9090; repeat for several
  --insecure-http      serve the metrics API over plain HTTP instead of TLS with a generated certificate
  --port N             metrics API port, 0 for any free port (default ${DEFAULTS.metricsApi.port})
  --admin-port N       port of /healthz, /readyz and /metrics, 0 for any free port (default ${DEFAULTS.adminPort})
  --host ADDRESS       listen address (default 127.0.0.1)
  --client-ca FILE     require client certificates signed by this CA (PEM)
  --allowed-name CN    accept only this client certificate common name; repeat for several
  --gpu-budget N       total GPUs all models may use (default: no budget)
  --poll-interval-ms N milliseconds between polls (default ${DEFAULTS.pollIntervalMs})
  --help               print this text
`;

export class UsageError extends Error {
  readonly code = 'INFERGATE_AUTOSCALER_USAGE';
  constructor(message: string) {
    super(`${message}\n\n${USAGE}`);
    this.name = 'UsageError';
  }
}

export type CliResult = { help: true } | { help: false; config: AutoscalerConfig; source: string };

/** Parses argv (without node and script) and the environment into a validated config. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): CliResult {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
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
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return { help: true };

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

  const config = buildLocalConfig({
    gateways,
    insecureHttp: values['insecure-http'] ?? false,
    ...optionalInteger('port', values.port, 0, 65535),
    ...optionalInteger('adminPort', values['admin-port'], 0, 65535, '--admin-port'),
    ...(values.host ? { listenHost: values.host } : {}),
    ...(values['client-ca'] ? { clientCAFile: values['client-ca'] } : {}),
    ...(values['allowed-name'] ? { allowedNames: values['allowed-name'] } : {}),
    ...optionalInteger('gpuBudget', values['gpu-budget'], 0, Number.MAX_SAFE_INTEGER, '--gpu-budget'),
    ...optionalInteger('pollIntervalMs', values['poll-interval-ms'], 1, DEFAULTS.staleAfterMs, '--poll-interval-ms'),
  });
  if (values['allowed-name'] && !values['client-ca']) {
    throw new UsageError('--allowed-name needs --client-ca: names are checked on client certificates signed by that CA');
  }
  if (config.metricsApi.insecureHttp && config.metricsApi.clientCAFile) {
    throw new UsageError('--insecure-http and --client-ca exclude each other: client certificates need TLS');
  }
  return { help: false, config, source: '(command line)' };
}

function optionalInteger(key: string, text: string | undefined, min: number, max: number, flag = `--${key}`): Record<string, number> {
  if (text === undefined) return {};
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return { [key]: value };
}
