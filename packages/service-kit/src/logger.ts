import { pino, type Logger, type LoggerOptions } from 'pino';
import { createRedactor, pinoRedactPaths, type FingerprintKey } from '@mcp-audit/redaction';

export type { Logger };

/**
 * Paths pino censors before a line is written: the redaction package's credential fields and headers,
 * plus our own config objects. Content patterns are applied by the `logMethod` hook below.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  ...pinoRedactPaths,
  'config.clickhouse.password',
  'config.kafka.sasl',
];

type LogRedactor = ReturnType<typeof createRedactor>;

function redactError(r: LogRedactor, err: Error): Error {
  const copy = new Error(r.redactString(err.message).value);
  copy.name = err.name;
  copy.stack = err.stack === undefined ? undefined : r.redactString(err.stack).value;
  for (const [k, v] of Object.entries(err)) (copy as unknown as Record<string, unknown>)[k] = redactArg(r, v);
  if (err.cause !== undefined) copy.cause = redactArg(r, err.cause);
  return copy;
}

const isPlain = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null || Array.isArray(v);
};

/**
 * Strings, errors and plain objects are redacted; class instances (fastify's request and reply,
 * which pino's serializers reduce afterwards) pass untouched.
 */
function redactArg(r: LogRedactor, a: unknown): unknown {
  if (typeof a === 'string') return r.redactString(a).value;
  if (a instanceof Error) return redactError(r, a);
  if (a === null || typeof a !== 'object' || !isPlain(a)) return a;
  if (Array.isArray(a)) return r.redactValue(a).value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) {
    if (v instanceof Error) out[k] = redactError(r, v);
    else if (v !== null && typeof v === 'object' && !isPlain(v)) out[k] = v;
    // Wrapped in its key, so a credential key name (`password: …`) is redacted whatever its value.
    else out[k] = (r.redactValue({ [k]: v }).value as Record<string, unknown>)[k];
  }
  return out;
}

/**
 * The services' logger. Two layers keep secrets out of log lines: pino's `redact` paths censor
 * credential fields by name (cheap, structural), and a `logMethod` hook runs every message string and
 * every logged object (errors' messages and stacks included) through the redaction package's content
 * patterns, so a connection string inside a Kafka error or a token inside a rejected value is
 * replaced by its fingerprinted marker too. Logs are written per batch, so the cost stays small.
 */
export function createLogger(
  service: string,
  opts: { level?: string; destination?: pino.DestinationStream; fingerprintKey?: FingerprintKey } = {},
): Logger {
  const redactor = createRedactor({
    fingerprintKey: opts.fingerprintKey ?? process.env.MCP_AUDIT_REDACTION_KEY,
  });
  const options: LoggerOptions = {
    name: service,
    level: opts.level ?? process.env.MCP_AUDIT_LOG_LEVEL ?? 'info',
    base: { service, pid: process.pid },
    redact: { paths: [...LOG_REDACT_PATHS], censor: '[REDACTED]' },
    hooks: {
      logMethod(args, method) {
        const clean = args.map((a) => redactArg(redactor, a)) as Parameters<typeof method>;
        return method.apply(this, clean);
      },
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
