import {
  ClickHouseLogLevel,
  createClient,
  type ClickHouseClient,
  type ClickHouseSettings,
  type Logger as ClientLogger,
} from '@clickhouse/client';
import { ClickHouseAuditError, ClickHouseRequestError, SqlLiteralError } from './errors.js';
import { dbIdent, ident, SqlFragment, sql, toSql } from './literal.js';

/** pino-shaped: object first, message second. */
export interface ClickHouseLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const DEFAULT_DATABASE = 'mcp_audit';

/** Tables `insert` accepts unless the caller passes its own allowlist. */
export const DEFAULT_INSERT_TABLES: readonly string[] = ['events'];

export interface ClickHouseOptions {
  url: string;
  username: string;
  password: string;
  /**
   * Default database of the connection, and the one `insert` writes to (mcp_audit if unset).
   * Leave it unset for the migration runner: the database may not exist yet.
   */
  database?: string;
  requestTimeoutMs?: number;
  logger?: ClickHouseLogger;
  /** Allowlist of table names `insert` accepts (default: DEFAULT_INSERT_TABLES). */
  insertTables?: Iterable<string>;
  maxOpenConnections?: number;
  /** Sent as the HTTP client name, visible in system.query_log. */
  application?: string;
}

export interface QueryOptions {
  /**
   * Per-request settings. NOTE: a readonly=1 user (the analyst) is refused any setting at all,
   * so never pass settings on the analyst's queries.
   */
  settings?: ClickHouseSettings;
  queryId?: string;
  signal?: AbortSignal;
}

export interface ClickHouse {
  /** The database `insert` writes to. */
  readonly database: string;
  /** Runs a SELECT and returns its rows (JSONEachRow: 64-bit integers arrive as strings). */
  query<T = Record<string, unknown>>(q: SqlFragment, opts?: QueryOptions): Promise<T[]>;
  /** Runs a statement without a result (DDL, INSERT … SELECT). */
  command(q: SqlFragment, opts?: QueryOptions): Promise<void>;
  /** Inserts rows as JSONEachRow into an allowlisted table of `database`. */
  insert<T extends object>(table: string, rows: readonly T[], opts?: QueryOptions): Promise<void>;
  /** True when the server answers an authenticated `SELECT 1`. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * A thin wrapper over @clickhouse/client that accepts only SqlFragments, so no caller can bypass
 * the literal encoder, and turns failures into ClickHouseRequestError (stable code + retryable).
 */
export function createClickHouse(opts: ClickHouseOptions): ClickHouse {
  const database = opts.database ?? DEFAULT_DATABASE;
  const db = dbIdent(database);
  const tables = new Set(opts.insertTables ?? DEFAULT_INSERT_TABLES);
  const client: ClickHouseClient = createClient({
    url: opts.url,
    username: opts.username,
    password: opts.password,
    ...(opts.database === undefined ? {} : { database: opts.database }),
    request_timeout: opts.requestTimeoutMs ?? 30_000,
    max_open_connections: opts.maxOpenConnections ?? 10,
    ...(opts.application === undefined ? {} : { application: opts.application }),
    // NOTE: the client logs to the console by default; route it to our logger or silence it.
    log: opts.logger
      ? { LoggerClass: routedLogger(opts.logger), level: ClickHouseLogLevel.WARN }
      : { level: ClickHouseLogLevel.OFF },
  });
  const params = (o: QueryOptions | undefined) => ({
    ...(o?.settings ? { clickhouse_settings: o.settings } : {}),
    ...(o?.queryId ? { query_id: o.queryId } : {}),
    ...(o?.signal ? { abort_signal: o.signal } : {}),
  });

  return {
    database,
    async query<T>(q: SqlFragment, o?: QueryOptions): Promise<T[]> {
      const text = statement(q);
      for (let attempt = 1; ; attempt++) {
        try {
          const rs = await client.query({ query: text, format: 'JSONEachRow', ...params(o) });
          return await rs.json<T>();
        } catch (err) {
          // A read is idempotent: one more try on a fresh socket when the pooled one turned out to
          // be closed by the server (seen under load as "socket hang up"). Not with a query id (the
          // server may still run the first), nor once the caller gave up.
          if (attempt === 1 && isStaleSocket(err) && !o?.queryId && !o?.signal?.aborted) continue;
          throw toRequestError(err);
        }
      }
    },
    async command(q: SqlFragment, o?: QueryOptions): Promise<void> {
      const text = statement(q);
      try {
        await client.command({ query: text, ...params(o) });
      } catch (err) {
        throw toRequestError(err);
      }
    },
    async insert<T extends object>(table: string, rows: readonly T[], o?: QueryOptions): Promise<void> {
      const target = toSql(sql`${db}.${ident(table, tables)}`);
      if (rows.length === 0) return;
      try {
        await client.insert({ table: target, values: rows as T[], format: 'JSONEachRow', ...params(o) });
      } catch (err) {
        throw toRequestError(err);
      }
    },
    async ping(): Promise<boolean> {
      try {
        const rs = await client.query({ query: 'SELECT 1 AS ok', format: 'JSONEachRow' });
        await rs.json();
        return true;
      } catch {
        return false;
      }
    },
    close: () => client.close(),
  };
}

function statement(q: SqlFragment): string {
  if (!SqlFragment.isFragment(q)) {
    throw new SqlLiteralError('ClickHouse accepts only SqlFragments: build the statement with sql`…`');
  }
  return toSql(q);
}

// ClickHouse error codes after which the same request may succeed later: overload, timeouts,
// replicas, and configuration/availability (a missing table or grant is not the rows' fault, so a
// writer should wait for the operator rather than dead-letter good rows).
const RETRYABLE_SERVER_CODES = new Set([
  60, // UNKNOWN_TABLE
  81, // UNKNOWN_DATABASE
  159, // TIMEOUT_EXCEEDED
  164, // READONLY
  192, // UNKNOWN_USER
  193, // WRONG_PASSWORD
  194, // REQUIRED_PASSWORD
  195, // IP_ADDRESS_NOT_ALLOWED
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  236, // ABORTED
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  285, // TOO_FEW_LIVE_REPLICAS
  286, // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
  291, // DATABASE_ACCESS_DENIED
  319, // UNKNOWN_STATUS_OF_INSERT
  394, // QUERY_WAS_CANCELLED
  425, // SYSTEM_ERROR
  439, // CANNOT_SCHEDULE_TASK
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
  999, // KEEPER_EXCEPTION
]);

/** The numeric ClickHouse error code of a failure, if the server produced one. */
export function clickHouseErrorCode(err: unknown): number | undefined {
  if (err instanceof ClickHouseRequestError) return err.serverCode;
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  // Current servers: @clickhouse/client parses the code into ClickHouseError.code ('60').
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
  // 18.16: "Code: 60, e.displayText() = DB::Exception: …", which the client leaves unparsed.
  const m = /^\s*Code: (\d+)[,.]/.exec(err.message);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether retrying the same request can help. Server errors are judged by code; failures without
 * a server code are transport trouble (refused, reset, timeout, a proxy's error page) and are
 * retryable, except local programming errors (TypeError, RangeError, SyntaxError, bad literals).
 */
export function isRetryableClickHouseError(err: unknown): boolean {
  if (err instanceof ClickHouseAuditError) return err.retryable;
  const code = clickHouseErrorCode(err);
  if (code !== undefined) return RETRYABLE_SERVER_CODES.has(code);
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return false;
  return err instanceof Error;
}

/** The connection died under the request (a kept-alive socket the server had closed, or a reset). */
export function isStaleSocket(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && ['ECONNRESET', 'EPIPE'].includes(e.code)) return true;
  return typeof e?.message === 'string' && /socket hang up/i.test(e.message);
}

function toRequestError(err: unknown): ClickHouseRequestError {
  if (err instanceof ClickHouseRequestError) return err;
  const message = err instanceof Error ? err.message.trim() : String(err);
  return new ClickHouseRequestError(message || 'ClickHouse request failed', {
    serverCode: clickHouseErrorCode(err),
    retryable: isRetryableClickHouseError(err),
    cause: err,
  });
}

function routedLogger(log: ClickHouseLogger): new () => ClientLogger {
  type P = { module: string; message: string; args?: Record<string, unknown>; err?: Error };
  const obj = (p: P) => ({
    component: '@clickhouse/client',
    module: p.module,
    ...p.args,
    ...(p.err ? { err: p.err } : {}),
  });
  return class RoutedLogger implements ClientLogger {
    trace(p: P) {
      log.debug(obj(p), p.message);
    }
    debug(p: P) {
      log.debug(obj(p), p.message);
    }
    info(p: P) {
      log.info(obj(p), p.message);
    }
    warn(p: P) {
      log.warn(obj(p), p.message);
    }
    // NOTE: every failed request is also thrown to the caller, which decides how loud it is (the
    // migration lock expects "already exists"); the client's own error line is only for debugging.
    error(p: P) {
      log.debug(obj(p), p.message);
    }
  };
}
