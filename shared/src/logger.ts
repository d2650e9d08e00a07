// One pino setup for every infergate process, so log lines share field names.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export interface LoggerSettings {
  /** Service name written as the `service` field of every line. */
  service: string;
  /** pino level name. The LOG_LEVEL environment variable overrides it, and tests pass 'silent'. */
  level?: string;
}

export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: process.env.LOG_LEVEL ?? settings.level ?? 'info',
    base: { service: settings.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Credentials must never reach the log, even when a whole request object is logged.
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'headers.authorization', 'headers["x-api-key"]'],
      censor: '[redacted]',
    },
  };
  return pino(options);
}
