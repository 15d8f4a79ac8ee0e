import { createRedactor, type Redactor } from '@mcp-audit/redaction';

/**
 * The logger the host application passes in: object first, then the message, like pino (a pino
 * logger fits as it is). Only `warn` and `error` are required; `info` and `debug` lines are dropped
 * when missing, and without `child` the bindings are merged into each line.
 */
export interface AuditLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
  child?(bindings: Record<string, unknown>): AuditLogger;
}

export type AuditLogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug';

/** What the SDK calls internally: every level present, `child` always possible. */
export interface SdkLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): SdkLog;
}

// pino's numbers, so the default logger's lines read like the services' lines.
const LEVELS = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
const METHODS = ['error', 'warn', 'info', 'debug'] as const;

/**
 * `logger` with `bindings`, every level callable. Lines below `minLevel` are dropped (kafkajs's own
 * chatter is held to `fatal` by default).
 */
export function sdkLog(
  logger: AuditLogger,
  bindings: Record<string, unknown> = {},
  minLevel?: AuditLogLevel,
): SdkLog {
  const base = logger.child ? logger.child(bindings) : logger;
  const merge = logger.child ? (o: object) => o : (o: object) => ({ ...bindings, ...o });
  const floor = minLevel === undefined ? 0 : LEVELS[minLevel];
  const log = {} as SdkLog;
  for (const m of METHODS) {
    const fn = base[m];
    log[m] = fn && LEVELS[m] >= floor ? (obj, msg) => fn.call(base, merge(obj), msg) : () => undefined;
  }
  log.child = (more) => sdkLog(base, logger.child ? more : { ...bindings, ...more }, minLevel);
  return log;
}

/**
 * The default when the host passes no logger: JSON lines on stderr, never stdout (a stdio MCP
 * server speaks JSON-RPC there), at `MCP_AUDIT_LOG_LEVEL` (default `warn`; `silent` for none).
 * Each line goes through `redactor` whole (key names and content patterns, errors' messages and
 * stacks included), as the services' pino logger does.
 */
export function stderrLogger(
  name: string,
  redactor: Pick<Redactor, 'redactValue'> = createRedactor({
    fingerprintKey: process.env.MCP_AUDIT_REDACTION_KEY,
  }),
  level = process.env.MCP_AUDIT_LOG_LEVEL ?? 'warn',
): AuditLogger {
  const floor =
    level in LEVELS ? LEVELS[level as AuditLogLevel] : level === 'silent' ? Infinity : LEVELS.warn;
  const line = (lvl: number) => (obj: object, msg: string) => {
    if (lvl < floor) return;
    const entry = JSON.parse(JSON.stringify({ ...obj, msg }, errors)) as object;
    const head = { level: lvl, time: new Date().toISOString(), name, pid: process.pid };
    process.stderr.write(
      `${JSON.stringify({ ...head, ...(redactor.redactValue(entry).value as object) })}\n`,
    );
  };
  return {
    debug: line(LEVELS.debug),
    info: line(LEVELS.info),
    warn: line(LEVELS.warn),
    error: line(LEVELS.error),
  };
}

/** Errors as pino's serializer writes them (JSON.stringify turns an Error into `{}`). */
function errors(_key: string, v: unknown): unknown {
  if (!(v instanceof Error)) return v;
  const code = (v as { code?: unknown }).code;
  return { type: v.name, message: v.message, stack: v.stack, ...(code === undefined ? {} : { code }) };
}
