import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Paths pino censors before a line is written. Values are redacted again by content in the
 * services (the redaction package); this list is the cheap structural guard.
 */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'password',
  'token',
  'secret',
  'apiKey',
  'api_key',
  '*.password',
  '*.token',
  '*.secret',
  '*.apiKey',
  '*.api_key',
  '*.authorization',
  '*.sasl',
  'config.clickhouse.password',
  'config.kafka.sasl',
];

export function createLogger(
  service: string,
  opts: { level?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const options: LoggerOptions = {
    name: service,
    level: opts.level ?? process.env.MCP_AUDIT_LOG_LEVEL ?? 'info',
    base: { service, pid: process.pid },
    redact: { paths: LOG_REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
