// One pino setup for every infergate process, so log lines share field names.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export interface LoggerSettings {
  /** Service name written as the `service` field of every line. */
  service: string;
  /** pino level name. The LOG_LEVEL environment variable overrides it, and tests pass 'silent'. */
  level?: string;
}

/** Level names pino accepts, from most to least verbose. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Thrown when LOG_LEVEL names a level pino does not have, so a start-up typo fails with a plain message. */
export class InvalidLogLevelError extends Error {
  readonly code = 'INFERGATE_INVALID_LOG_LEVEL';
}

export function createLogger(settings: LoggerSettings): Logger {
  const level = process.env.LOG_LEVEL ?? settings.level ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new InvalidLogLevelError(`invalid LOG_LEVEL ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const options: LoggerOptions = {
    level,
    base: { service: settings.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Credentials must never reach the log, even when a whole request object is logged.
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'headers.authorization', 'headers["x-api-key"]'],
      censor: '[redacted]',
    },
  };
  // Synchronous writes to stdout. With pino's default asynchronous destination, a process
  // whose stdout reader had gone (a closed pipe) never exited: at exit pino flushes what is
  // left synchronously, and that flush retries a write failing with EPIPE every 100 ms
  // forever. A synchronous write meets EPIPE at once, after which pino drops further output.
  return pino(options, pino.destination({ dest: 1, sync: true }));
}
