import { z } from 'zod';
import { dbIdent, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import { decodeCursor, encodeCursor, type Range } from './query.params.js';

/** One row of mcp_audit.access_log (schemas/clickhouse/006_api.sql). */
export interface AccessLogRow {
  at: string;
  at_ms: number;
  request_id: string;
  key_id: string;
  scopes: string[];
  auth: string;
  route: string;
  method: string;
  filters: string;
  from_ms: number;
  to_ms: number;
  rows: number;
  status: number;
  duration_ms: number;
  ip: string;
  user_agent: string;
  phase: string;
}

export interface AccessLogWriter {
  /** Resolves once the row is stored; rejects when it is not (the request then fails). */
  write(row: AccessLogRow): Promise<void>;
}

export const clickHouseAccessLog = (writer: ClickHouse): AccessLogWriter => ({
  write: (row) => writer.insert('access_log', [row]),
});

const cursorSchema = z.tuple([z.number().int(), z.string().max(64)]);

export async function readAccessLog(
  ch: ClickHouse,
  range: Range,
  opts: { limit: number; cursor?: string | undefined; keyId?: string[] | undefined },
) {
  const db = dbIdent(ch.database);
  const c = decodeCursor(opts.cursor, cursorSchema);
  const rows = await ch.query<{
    at_ms: string;
    request_id: string;
    key_id: string;
    scopes: string[];
    auth: string;
    route: string;
    method: string;
    filters: string;
    from_ms: string;
    to_ms: string;
    rows: string;
    status: number;
    duration_ms: number;
    ip: string;
    user_agent: string;
    phase: string;
  }>(sql`
    SELECT at_ms, request_id, key_id, scopes, auth, route, method, filters, from_ms, to_ms, rows, status,
           duration_ms, ip, user_agent, phase
    FROM ${db}.access_log
    WHERE at >= ${new Date(Math.floor(range.from / 1000) * 1000)} AND at_ms >= ${range.from} AND at_ms < ${range.to}
      ${opts.keyId?.length ? sql`AND key_id IN ${tuple(opts.keyId)}` : sql``}
      ${c ? sql`AND (at_ms < ${c[0]} OR (at_ms = ${c[0]} AND request_id < ${c[1]}))` : sql``}
    ORDER BY at_ms DESC, request_id DESC
    LIMIT ${opts.limit + 1}`);
  const more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  const iso = (ms: string) => (Number(ms) > 0 ? new Date(Number(ms)).toISOString() : null);
  return {
    items: page.map((r) => ({
      at: new Date(Number(r.at_ms)).toISOString(),
      request_id: r.request_id,
      key_id: r.key_id || null,
      scopes: r.scopes,
      auth: r.auth,
      route: r.route,
      method: r.method,
      filters: safeJson(r.filters),
      from: iso(r.from_ms),
      to: iso(r.to_ms),
      rows: Number(r.rows),
      status: r.status,
      duration_ms: r.duration_ms,
      ip: r.ip,
      user_agent: r.user_agent,
      phase: r.phase,
    })),
    next_cursor: more && last ? encodeCursor([Number(last.at_ms), last.request_id]) : null,
  };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return s;
  }
}
