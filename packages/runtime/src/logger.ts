import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured JSON logs on stdout: a constant message, data in fields, and a child logger per service,
 * stream, topic or partition. Errors go under `err` with their code, cause and context.
 */
export function createLogger(options: { service: string; level?: LoggerOptions['level'] }): Logger {
  return pino({
    level: options.level ?? 'info',
    base: { service: options.service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.errWithCause },
  });
}
