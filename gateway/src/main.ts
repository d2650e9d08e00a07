// Command-line entry of the gateway: `--config FILE` (or INFERGATE_CONFIG) runs the
// configured gateway, no config runs the embedded demo; SIGTERM and SIGINT stop gracefully.
import { parseArgs } from 'node:util';
import { joinNegativeValues } from '../../shared/src/cli-args.ts';
import { createLogger, InvalidLogLevelError } from '../../shared/src/logger.ts';
import { ConfigError, loadConfigFile, samePortProblem, withPorts, type GatewayConfig } from './config/load.ts';
import { ListenError, startGateway, type RunningGateway } from './gateway.ts';
import { demoBanner, startDemo, type Demo } from './demo.ts';

const USAGE = `Usage: npm start -- [--config FILE] [--port N] [--admin-port N]

  --config FILE     gateway YAML configuration (default: env INFERGATE_CONFIG; neither runs the demo)
  --port N          traffic port, overrides server.port (0 picks a free port)
  --admin-port N    admin port, overrides server.adminPort (0 picks a free port)
  --help            print this text`;

/** Exit code for invalid flags or configuration. */
const EXIT_USAGE = 2;

function parsePort(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new ConfigError(`--${flag}`, [`--${flag}: ${JSON.stringify(value)} is invalid; expected a port number from 0 to 65535`]);
  }
  return Number(value);
}

async function main(): Promise<void> {
  let logger;
  try {
    logger = createLogger({ service: 'gateway' });
  } catch (error) {
    if (!(error instanceof InvalidLogLevelError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_USAGE);
  }
  let args;
  try {
    args = parseArgs({
      // Joined as --port=-1, a negative port reaches the range check, which names the flag.
      args: joinNegativeValues(process.argv.slice(2), new Set(['--port', '--admin-port'])),
      options: { config: { type: 'string' }, port: { type: 'string' }, 'admin-port': { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    process.exit(EXIT_USAGE);
  }
  if (args.values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  let demo: Demo | undefined;
  let gateway: RunningGateway | undefined;
  let config: GatewayConfig;

  // Signals are handled from here on, so one that arrives while the demo replicas start
  // stops them too, instead of ending the process and leaving them running.
  let starting = true;
  let pendingSignal: string | undefined;
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stop signal received');
    let exitCode = 0;
    try {
      await gateway?.close();
    } catch (error) {
      logger.error({ err: error }, 'graceful shutdown failed');
      exitCode = 1;
    } finally {
      await demo?.stop();
    }
    process.exit(exitCode);
  };
  const onSignal = (signal: string): void => {
    if (starting) {
      pendingSignal ??= signal;
      logger.info({ signal }, 'stop signal received during start-up, stopping once started');
      return;
    }
    void stop(signal);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  try {
    const port = parsePort('port', args.values.port);
    const adminPort = parsePort('admin-port', args.values['admin-port']);
    if (port !== undefined && adminPort !== undefined) {
      const problem = samePortProblem({ port, adminPort }, '--port and --admin-port');
      if (problem !== undefined) throw new ConfigError('--port and --admin-port', [problem]);
    }
    const path = args.values.config ?? process.env.INFERGATE_CONFIG;
    if (path !== undefined && path !== '') {
      config = withPorts(await loadConfigFile(path), { ...(port === undefined ? {} : { port }), ...(adminPort === undefined ? {} : { adminPort }) });
    } else {
      logger.info('no --config and no INFERGATE_CONFIG: starting the embedded demo');
      demo = await startDemo({ port: port ?? 8080, adminPort: adminPort ?? 9090 });
      config = demo.config;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(EXIT_USAGE);
    }
    throw error;
  }

  if (pendingSignal === undefined) {
    try {
      gateway = await startGateway(config, { logger });
    } catch (error) {
      // A listen failure is a plain operator error: one line naming the address, no stack.
      if (error instanceof ListenError) logger.error({ listener: error.listener, address: error.address, code: error.code }, error.message);
      else logger.error({ err: error }, 'gateway failed to start');
      await demo?.stop();
      process.exit(1);
    }
    if (demo !== undefined) process.stdout.write(demoBanner(gateway.trafficUrl, gateway.adminUrl));
  }
  starting = false;
  if (pendingSignal !== undefined) await stop(pendingSignal);
}

await main();
