// CLI of the simulated GPU replica: `node loadtest/replica/main.ts [flags]`.
// Prints one JSON line with "msg":"listening", the URL and the port once it listens;
// spawnReplica() and the demo wait for that line. SIGTERM and SIGINT drain and exit 0, and so
// does the end of the IPC channel of a parent that started it with one.
import { createLogger, InvalidLogLevelError } from '../../shared/src/logger.ts';
import { ConfigError, parseReplicaArgs } from './config.ts';
import { startReplicaServer } from './server.ts';
import { replicaUsage } from './usage.ts';

const EXIT_USAGE = 2;
const EXIT_FAULT = 1;
/** Explanations of a failed listen for the user, by error code. */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'the port is already in use; stop the other process or pass another --port',
  EADDRNOTAVAIL: 'the address is not an address of this machine; pass --host with one of its addresses, such as 127.0.0.1',
  EACCES: 'permission denied; pass a --port above 1023',
};
/** How long a replica whose parent exited lets in-flight requests finish before it exits anyway. */
const ORPHAN_DRAIN_MS = 5_000;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(replicaUsage());
    return;
  }
  let config;
  try {
    config = parseReplicaArgs(argv);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`replica: ${error.message}\nRun with --help for the flags, their units and defaults.\n`);
      process.exit(EXIT_USAGE);
    }
    throw error;
  }

  let logger;
  try {
    logger = createLogger({ service: 'replica' });
  } catch (error) {
    if (!(error instanceof InvalidLogLevelError)) throw error;
    process.stderr.write(`replica: ${error.message}\n`);
    process.exit(EXIT_USAGE);
  }
  let server;
  try {
    server = await startReplicaServer({
      ...config,
      logger,
      onExitFault: () => process.exit(EXIT_FAULT),
    });
  } catch (error) {
    const reason = LISTEN_ERRORS[(error as NodeJS.ErrnoException).code ?? ''];
    if (reason === undefined) throw error;
    process.stderr.write(`replica: cannot listen on ${config.host} port ${config.port} (--host, --port): ${reason}\n`);
    process.exit(EXIT_FAULT);
  }
  // Written at info level even when LOG_LEVEL is higher, because callers parse it.
  logger.child({}, { level: 'info' }).info(
    { url: server.url, port: server.port, protocol: config.protocol, models: config.models },
    'listening',
  );

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals | 'disconnect'): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing in-flight requests');
    server.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(EXIT_FAULT);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // spawnReplica() opens an IPC channel, which closes when its process exits, even by SIGKILL.
  // Without this, the replicas of a killed demo, test or benchmark would keep running.
  if (process.channel !== undefined) {
    process.channel.unref();
    process.once('disconnect', () => {
      logger.warn('the process that started this replica exited; stopping');
      setTimeout(() => process.exit(0), ORPHAN_DRAIN_MS).unref();
      shutdown('disconnect');
    });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`replica: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(EXIT_FAULT);
});
