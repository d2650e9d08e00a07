// Entry point of the autoscaler process (npm run autoscaler).
// Exit codes: 0 after a clean stop, 2 for bad input at start-up (flags, config, files,
// LOG_LEVEL, kubeconfig, listen address), reported as one plain line on stderr, and 1 for
// any other failure, logged at fatal level with its stack.
import { createLogger, InvalidLogLevelError, type Logger } from '../../shared/src/logger.ts';
import { loadKubeConfig } from '../../shared/src/kube.ts';
import { ConfigError } from './config/load.ts';
import { parseCommandLine, USAGE, UsageError } from './cli.ts';
import { startAutoscaler, ListenError, type AutoscalerDeps } from './app.ts';
import { TlsFileError } from './api/tls.ts';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** Writes one plain line for an operator and exits with EXIT_USAGE. */
function exitWithUsageError(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(EXIT_USAGE);
}

function isInputError(error: unknown): error is Error {
  return error instanceof UsageError || error instanceof ConfigError || error instanceof TlsFileError || error instanceof ListenError;
}

async function main(logger: Logger): Promise<void> {
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2), process.env);
  } catch (error) {
    if (isInputError(error)) exitWithUsageError(error.message);
    throw error;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return;
  }
  const { config, source } = parsed;
  logger.info({ config: source, mode: config.mode }, 'config loaded');

  const deps: AutoscalerDeps = { logger };
  if (config.mode === 'cluster') {
    let loaded;
    try {
      loaded = loadKubeConfig();
    } catch (error) {
      // The first line names the file and the position; a YAML code frame follows it.
      exitWithUsageError(`cannot configure the Kubernetes client: ${(error as Error).message.split('\n')[0]}`);
    }
    logger.info({ source: loaded.source, server: loaded.server }, 'Kubernetes client configured');
    deps.kubeConfig = loaded.kubeConfig;
  }
  let running;
  try {
    running = await startAutoscaler(config, deps);
  } catch (error) {
    if (isInputError(error)) exitWithUsageError(error.message);
    throw error;
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

let logger: Logger;
try {
  logger = createLogger({ service: 'autoscaler' });
} catch (error) {
  if (!(error instanceof InvalidLogLevelError)) throw error;
  exitWithUsageError(error.message);
}
main(logger).catch((error: unknown) => {
  logger.fatal({ err: error }, 'autoscaler failed to start');
  process.exitCode = EXIT_FAILURE;
});
