import { z } from 'zod';
import { dbIdent, join, sql, tuple, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import { reconstructEvent } from '@mcp-audit/schema';
import {
  decodeCursor,
  encodeCursor,
  list,
  UUID_RE,
  type EventFilterInput,
  type Range,
} from './query.params.js';

/**
 * Event queries. Every one is bounded in time (partition pruning on the day partitions). The table is
 * ReplacingMergeTree(ver) and one row per event_id matters everywhere here: an event is its copy with
 * the highest ver (the first ingested) among its copies in the queried range, whatever that copy's ts
 * or client_id (a forged copy can differ in both, so FINAL, which collapses per sort key, is not
 * enough). Searches and facets get that without `FINAL` over whole days (BENCHMARKS.md, "Analyst
 * API"). Columns are fixed lists; every value goes through the literal encoder.
 */

// Filter parameter → column: the only identifiers a filter can reach.
const FILTER_COLUMNS = {
  client: sql`client_id`,
  user: sql`client_user`,
  ip: sql`client_ip`,
  session: sql`session_id`,
  source: sql`source_id`,
  server: sql`server_name`,
  tool: sql`tool_name`,
  method: sql`method`,
  kind: sql`kind`,
  outcome: sql`outcome`,
} as const;

const SUMMARY_COLUMNS = sql`event_id, toUInt32(ts) AS ts_s, ts_ms, kind, outcome,
  client_id, client_user, client_ip, session_id, source_id, server_name, tool_name, method, duration_ms,
  error_message, label_keys, label_values`;

/** The columns of a full event; `raw` is only what they do not hold (reconstructEvent merges it). */
export const FULL_COLUMNS = sql`${SUMMARY_COLUMNS}, schema_version, source_type, source_version, client_name, client_agent,
  client_user_agent, server_version, server_transport, tool_definition_hash, http_status, rpc_error_code,
  tool_is_error, trace_id, auth_method, auth_result, auth_reason, error_code, request_bytes, response_bytes,
  args, response_digest, tool_annotations, raw, toUInt32(ingested_at) AS ingested_s`;

export interface SummaryRow {
  event_id: string;
  ts_s: number;
  ts_ms: number;
  kind: string;
  outcome: string;
  client_id: string;
  client_user: string;
  client_ip: string;
  session_id: string;
  source_id: string;
  server_name: string;
  tool_name: string;
  method: string;
  duration_ms: number;
  error_message: string;
  label_keys: string[];
  label_values: string[];
}

export interface FullRow extends SummaryRow {
  schema_version: number;
  source_type: string;
  source_version: string;
  client_name: string;
  client_agent: string;
  client_user_agent: string;
  server_version: string;
  server_transport: string;
  tool_definition_hash: string;
  http_status: number | null;
  rpc_error_code: number | null;
  tool_is_error: number | null;
  trace_id: string;
  auth_method: string;
  auth_result: string;
  auth_reason: string;
  error_code: string;
  request_bytes: string;
  response_bytes: string;
  args: string;
  response_digest: string;
  tool_annotations: string;
  raw: string;
  ingested_s: number;
}

export const tsIso = (s: number, ms: number) => new Date(Number(s) * 1000 + Number(ms)).toISOString();

export function toSummary(r: SummaryRow) {
  const labels: Record<string, string> = {};
  r.label_keys.forEach((k, i) => (labels[k] = r.label_values[i] ?? ''));
  return {
    event_id: r.event_id,
    ts: tsIso(r.ts_s, r.ts_ms),
    kind: r.kind,
    outcome: r.outcome,
    client_id: r.client_id,
    client_user: r.client_user,
    client_ip: r.client_ip,
    session_id: r.session_id,
    source_id: r.source_id,
    server_name: r.server_name,
    tool_name: r.tool_name,
    method: r.method,
    duration_ms: Number(r.duration_ms),
    error_message: r.error_message,
    labels,
  };
}
export type EventSummary = ReturnType<typeof toSummary>;

const parseJson = (s: string): unknown => {
  if (s === '') return null;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return s;
  }
};

export function toEvent(r: FullRow) {
  return {
    ...toSummary(r),
    source_type: r.source_type,
    source_version: r.source_version,
    client_name: r.client_name,
    client_agent: r.client_agent,
    client_user_agent: r.client_user_agent,
    server_version: r.server_version,
    server_transport: r.server_transport,
    tool_definition_hash: r.tool_definition_hash,
    http_status: r.http_status,
    rpc_error_code: r.rpc_error_code,
    tool_is_error: r.tool_is_error === null ? null : r.tool_is_error === 1,
    trace_id: r.trace_id,
    auth: { method: r.auth_method, result: r.auth_result, reason: r.auth_reason },
    error_code: r.error_code,
    request_bytes: Number(r.request_bytes),
    response_bytes: Number(r.response_bytes),
    args: parseJson(r.args),
    response_digest: r.response_digest,
    // The event as stored (redacted), unknown fields included: typed columns plus the remainder.
    raw: reconstructEvent({ ...r, ts: r.ts_s }),
    ingested_at: new Date(Number(r.ingested_s) * 1000).toISOString(),
  };
}

const sec = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

/**
 * The WHERE clause of an event search: the time range (ts is whole seconds plus ts_ms, so the bounds
 * are split the same way), then each filter (values of one parameter OR-ed, parameters AND-ed).
 */
export function eventWhere(f: EventFilterInput, range: Range): EventWhere {
  const parts: SqlFragment[] = [timeBounds(range)];
  for (const [param, column] of Object.entries(FILTER_COLUMNS)) {
    const values = list(f[param as keyof typeof FILTER_COLUMNS]);
    if (values.length > 0) parts.push(sql`${column} IN ${tuple(values)}`);
  }
  const byKey = new Map<string, string[]>();
  for (const l of list(f.label)) {
    const i = l.indexOf('=');
    const k = l.slice(0, i);
    byKey.set(k, [...(byKey.get(k) ?? []), l.slice(i + 1)]);
  }
  for (const [k, vs] of byKey) {
    parts.push(sql`arrayExists((k, v) -> k = ${k} AND v IN ${tuple(vs)}, label_keys, label_values)`);
  }
  if (f.q !== undefined) {
    parts.push(sql`(positionCaseInsensitiveUTF8(tool_name, ${f.q}) > 0
      OR positionCaseInsensitiveUTF8(error_message, ${f.q}) > 0
      OR positionCaseInsensitiveUTF8(args, ${f.q}) > 0)`);
  }
  // The range travels with the condition: the searches look up every copy of an event in it.
  return Object.assign(join(parts, sql` AND `), {
    range,
    readsArgs: f.q !== undefined,
    byClient: list(f.client).length > 0,
  });
}

/**
 * An event search's condition (range and filters), with its time range, whether it reads args and
 * whether it filters by client.
 */
export type EventWhere = SqlFragment & { range: Range; readsArgs: boolean; byClient: boolean };
const metaOf = (w: SqlFragment): Partial<EventWhere> => w as Partial<EventWhere>;

/**
 * The table a search reads (008_events_by_time.sql): `events_by_time` holds every copy's summary and
 * filter columns ordered by time, so the newest matches across clients sit in a few small granules;
 * `events` (ordered by client_id, ts) when the search filters by client (its primary key finds the
 * client's rows) or reads args (only events has it). Both hold every copy, so the highest ver per
 * event_id is the same event in either.
 */
function searchTable(db: SqlFragment, where: SqlFragment): SqlFragment {
  const m = metaOf(where);
  return m.readsArgs === false && m.byClient === false ? sql`${db}.events_by_time` : sql`${db}.events`;
}

function timeBounds(r: Range): SqlFragment {
  const fromS = sec(r.from);
  const toS = sec(r.to);
  const fromMs = r.from % 1000;
  const toMs = r.to % 1000;
  return sql`ts >= ${fromS} AND ts <= ${toS}
    AND (ts > ${fromS} OR ts_ms >= ${fromMs}) AND (ts < ${toS} OR ts_ms < ${toMs})`;
}

const eventCursor = z.tuple([
  z.number().int().nonnegative(),
  z.number().int().min(0).max(999),
  z.string().regex(UUID_RE),
]);

/** Keyset condition: rows strictly after the cursor in the given order. */
function afterCursor(c: z.infer<typeof eventCursor>, dir: 'desc' | 'asc'): SqlFragment {
  const [s, ms, id] = c;
  const t = new Date(s * 1000);
  return dir === 'desc'
    ? sql`(ts < ${t} OR (ts = ${t} AND (ts_ms < ${ms} OR (ts_ms = ${ms} AND event_id < toUUID(${id})))))`
    : sql`(ts > ${t} OR (ts = ${t} AND (ts_ms > ${ms} OR (ts_ms = ${ms} AND event_id > toUUID(${id})))))`;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

// The columns a condition built by eventWhere (and a cursor) can reference, under their own names;
// args (the largest) only when the condition reads it: these are read for every granule holding a key.
const conditionColumns = (args: boolean) =>
  sql`event_id, ts, ts_ms, kind, outcome, client_id, client_user, client_ip, session_id, source_id, server_name,
    tool_name, method, duration_ms, error_message, label_keys, label_values${args ? sql`, args` : sql``}`;

/**
 * The newest-first (or oldest-first) page of events matching `where`, in two steps instead of
 * `FINAL` over the whole range:
 * 1. keys: (event_id, ts, ts_ms) of the first limit + 1 distinct events with a matching copy — cheap
 *    columns, filters pushed to PREWHERE by ClickHouse, partitions pruned by the range (searchKeys);
 * 2. winners: every copy of those ids in the range, the highest ver per event_id (LIMIT 1 BY), with
 *    whether the winner itself matches.
 * When every winner matches and sits where step 1 saw it, the page is exact (an event outside the
 * keys has no matching copy ranked above the last key, so no winner above it either). Otherwise (a
 * later copy with another ts, client or values: a forgery or a corrupted redelivery) the page is
 * recomputed exactly by deduplicating the whole range first: slow, and only for such pages.
 */
type Key = { event_id: string; ts_s: number; ts_ms: number };

/**
 * The first `want` distinct event ids in order. A plain ORDER BY … LIMIT is a partial sort (top-k);
 * `LIMIT 1 BY event_id` would sort every matching row (2-3× slower on a day here), so a little more
 * is fetched and copies are dropped here; only when copies eat the slack is it asked exactly.
 *
 * The newest (or oldest) hour is asked first: both tables' primary keys hold ts (events after
 * client_id), so it reads a 24th of a day's filter columns. Every matching row outside that hour sorts
 * after every row inside it, so when the hour alone yields `want` ids they are the first `want` ids of
 * the whole range; otherwise the whole range is asked.
 */
async function searchKeys(
  ch: ClickHouse,
  table: SqlFragment,
  cond: SqlFragment,
  order: SqlFragment,
  want: number,
  window: SqlFragment | undefined,
): Promise<Key[]> {
  const slack = want + 16 + Math.ceil(want / 10);
  const ask = async (where: SqlFragment) => {
    const rows = await ch.query<Key>(sql`
      SELECT event_id, toUInt32(ts) AS ts_s, ts_ms FROM ${table}
      WHERE ${where}
      ORDER BY ${order}
      LIMIT ${slack}`);
    const seen = new Set<string>();
    return { rows, keys: rows.filter((r) => !seen.has(r.event_id) && seen.add(r.event_id)) };
  };
  if (window) {
    const first = await ask(sql`${cond} AND ${window}`);
    if (first.keys.length >= want) return first.keys.slice(0, want);
  }
  const { rows, keys } = await ask(cond);
  if (keys.length >= want || rows.length < slack) return keys.slice(0, want);
  return ch.query<Key>(sql`
    SELECT event_id, toUInt32(ts) AS ts_s, ts_ms FROM ${table}
    WHERE ${cond}
    ORDER BY ${order}
    LIMIT 1 BY event_id
    LIMIT ${want}`);
}

const FIRST_WINDOW_S = 3600;

/** The hour at the start of a search's order (after its cursor), or none when that is the whole range. */
function firstWindow(
  range: Range,
  dir: 'desc' | 'asc',
  cursorS: number | undefined,
): SqlFragment | undefined {
  const fromS = Math.floor(range.from / 1000);
  const toS = Math.floor(range.to / 1000);
  if (dir === 'desc') {
    const edge = Math.min(toS, cursorS ?? toS) - FIRST_WINDOW_S;
    return edge > fromS ? sql`ts >= ${new Date(edge * 1000)}` : undefined;
  }
  const edge = Math.max(fromS, cursorS ?? fromS) + FIRST_WINDOW_S;
  return edge < toS ? sql`ts <= ${new Date(edge * 1000)}` : undefined;
}

export async function searchEvents(
  ch: ClickHouse,
  where: SqlFragment,
  opts: { limit: number; cursor?: string | undefined; dir?: 'desc' | 'asc' },
): Promise<Page<EventSummary>> {
  const db = dbIdent(ch.database);
  const table = searchTable(db, where);
  const dir = opts.dir ?? 'desc';
  const c = decodeCursor(opts.cursor, eventCursor);
  const cond = c ? sql`${where} AND ${afterCursor(c, dir)}` : where;
  const order = dir === 'desc' ? sql`ts DESC, ts_ms DESC, event_id DESC` : sql`ts, ts_ms, event_id`;
  const want = opts.limit + 1;
  const { range, readsArgs } = metaOf(where);
  const columns = conditionColumns(readsArgs !== false);
  let rows: SummaryRow[];
  if (!range) {
    rows = await ch.query<SummaryRow>(sql`
      SELECT ${SUMMARY_COLUMNS} FROM ${db}.events FINAL
      WHERE ${cond}
      ORDER BY ${order}
      LIMIT ${want}`);
  } else {
    const keys = await searchKeys(ch, table, cond, order, want, firstWindow(range, dir, c?.[0]));
    rows = [];
    if (keys.length > 0) {
      // PREWHERE: the event_id column over the range, then the other columns of the granules holding
      // a key (a few, on the time-ordered table).
      const winners = await ch.query<SummaryRow & { matched: number }>(sql`
        SELECT ${SUMMARY_COLUMNS}, toUInt8(${cond}) AS matched FROM (
          SELECT ${columns} FROM ${table}
          PREWHERE event_id IN ${tuple(keys.map((k) => sql`toUUID(${k.event_id})`))}
          WHERE ${timeBounds(range)}
          ORDER BY ver DESC
          LIMIT 1 BY event_id)`);
      const byId = new Map(winners.map((w) => [w.event_id, w]));
      for (const k of keys) {
        const w = byId.get(k.event_id);
        if (
          !w ||
          Number(w.matched) !== 1 ||
          Number(w.ts_s) !== Number(k.ts_s) ||
          Number(w.ts_ms) !== Number(k.ts_ms)
        ) {
          rows = await ch.query<SummaryRow>(sql`
            SELECT ${SUMMARY_COLUMNS} FROM (
              SELECT ${columns} FROM ${table}
              WHERE ${timeBounds(range)}
              ORDER BY ver DESC
              LIMIT 1 BY event_id)
            WHERE ${cond}
            ORDER BY ${order}
            LIMIT ${want}`);
          break;
        }
        rows.push(w);
      }
    }
  }
  const more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toSummary),
    next_cursor: more && last ? encodeCursor([Number(last.ts_s), Number(last.ts_ms), last.event_id]) : null,
  };
}

export const FACET_FIELDS = [
  'client_id',
  'client_user',
  'server_name',
  'tool_name',
  'method',
  'kind',
  'outcome',
  'source_id',
] as const;

/**
 * Top 10 values of each facet field among the matching events, in one scan: the matching copies,
 * one per event_id (the highest ver among them: redelivered copies count once), unpivoted to
 * (field, value) pairs and counted. Before, one `FINAL` query per field: eight scans of the range.
 */
export async function facets(ch: ClickHouse, where: SqlFragment) {
  const db = dbIdent(ch.database);
  const rows = await ch.query<{ field: string; value: string; count: string }>(sql`
    SELECT tupleElement(p, 1) AS field, tupleElement(p, 2) AS value, count() AS count
    FROM (
      SELECT event_id, client_id, client_user, server_name, tool_name, method, kind, outcome, source_id
      FROM ${searchTable(db, where)}
      WHERE ${where}
      ORDER BY ver DESC
      LIMIT 1 BY event_id)
    ARRAY JOIN [('client_id', client_id), ('client_user', client_user), ('server_name', server_name),
      ('tool_name', tool_name), ('method', method), ('kind', kind), ('outcome', outcome),
      ('source_id', source_id)] AS p
    GROUP BY field, value
    ORDER BY field, count DESC, value
    LIMIT 10 BY field`);
  const out: Record<string, Array<{ value: string; count: number }>> = {};
  for (const f of FACET_FIELDS) out[f] = [];
  for (const r of rows) out[r.field]?.push({ value: r.value, count: Number(r.count) });
  return out;
}

/** The time a UUIDv7 was minted (its first 48 bits), else undefined. */
export function uuidV7Time(id: string): number | undefined {
  if (id[14] !== '7') return undefined;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/**
 * One event by id. The table is ordered by (client_id, ts, event_id), so an id alone means a scan:
 * a UUIDv7 bounds it to ±1 day around its mint time; other ids are searched over `fallback`.
 */
export async function eventById(ch: ClickHouse, id: string, fallback: Range): Promise<FullRow | undefined> {
  const db = dbIdent(ch.database);
  const minted = uuidV7Time(id);
  const range =
    minted !== undefined && minted > 0 && minted < 0xffffffff * 1000
      ? { from: Math.max(0, minted - 86_400_000), to: minted + 86_400_000 }
      : fallback;
  // PREWHERE reads only event_id over the range, then the wide columns of the matching granules; the
  // copy with the highest ver is the one every query sees (as FINAL would keep, without merging days).
  const rows = await ch.query<FullRow>(sql`
    SELECT ${FULL_COLUMNS} FROM ${db}.events
    PREWHERE event_id = toUUID(${id})
    WHERE ts >= ${sec(range.from)} AND ts <= ${sec(range.to)}
    ORDER BY ver DESC
    LIMIT 1`);
  return rows[0];
}

/**
 * Up to `n` events of the session on each side of an event (same session, by time, within 7 days):
 * two keyset searches from the event's own key, so the event itself is never among them.
 */
export async function neighbours(ch: ClickHouse, e: FullRow, n: number) {
  if (e.session_id === '') return { before: [], after: [] };
  const span = 7 * 86_400_000;
  const at = Number(e.ts_s) * 1000;
  // The range's end is exclusive: one second past the span's last second.
  const where = eventWhere({ session: e.session_id }, { from: Math.max(0, at - span), to: at + span + 1000 });
  const cursor = encodeCursor([Number(e.ts_s), Number(e.ts_ms), e.event_id]);
  const [before, after] = await Promise.all([
    searchEvents(ch, where, { limit: n, cursor, dir: 'desc' }),
    searchEvents(ch, where, { limit: n, cursor, dir: 'asc' }),
  ]);
  return { before: before.items.reverse(), after: after.items };
}

/**
 * Every identity a session was used under, within the range. Events are counted once per event_id
 * (a redelivered copy has the same identity and time); no FINAL over the range. From the
 * time-ordered copy: a session's rows sit in a few granules of it.
 */
export async function sessionIdentities(ch: ClickHouse, sessionId: string, range: Range) {
  const db = dbIdent(ch.database);
  const rows = await ch.query<{
    client_id: string;
    client_user: string;
    client_ip: string;
    first_s: number;
    first_ms: number;
    last_s: number;
    last_ms: number;
    events: string;
  }>(sql`
    SELECT client_id, client_user, client_ip,
           toUInt32(min(ts)) AS first_s, argMin(ts_ms, (ts, ts_ms)) AS first_ms,
           toUInt32(max(ts)) AS last_s, argMax(ts_ms, (ts, ts_ms)) AS last_ms, uniqExact(event_id) AS events
    FROM ${db}.events_by_time
    WHERE session_id = ${sessionId} AND ${timeBounds(range)}
    GROUP BY client_id, client_user, client_ip
    ORDER BY first_s, first_ms
    LIMIT 1000`);
  return rows.map((r) => ({
    client_id: r.client_id,
    client_user: r.client_user,
    client_ip: r.client_ip,
    first_ts: tsIso(r.first_s, r.first_ms),
    last_ts: tsIso(r.last_s, r.last_ms),
    events: Number(r.events),
  }));
}

export { timeBounds };
