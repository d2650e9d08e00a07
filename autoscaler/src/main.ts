// Entry point of the autoscaler process (npm run autoscaler).
import { createLogger } from '../../shared/src/logger.ts';
import { loadKubeConfig } from '../../shared/src/kube.ts';
import { ConfigError } from './config/load.ts';
import { parseCommandLine, USAGE, UsageError } from './cli.ts';
import { startAutoscaler, type AutoscalerDeps } from './app.ts';

const logger = createLogger({ service: 'autoscaler' });

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
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
    const loaded = loadKubeConfig();
    logger.info({ source: loaded.source, server: loaded.server }, 'Kubernetes client configured');
    deps.kubeConfig = loaded.kubeConfig;
  }
  const running = await startAutoscaler(config, deps);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  logger.fatal({ err: error }, 'autoscaler failed to start');
  process.exitCode = 1;
});
