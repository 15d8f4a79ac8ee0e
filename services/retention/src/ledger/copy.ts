import { dbIdent, ident, join, sql, type SqlFragment } from '@mcp-audit/clickhouse';
import type { LedgerDb } from './hours.js';

/**
 * The ledger covers mcp_audit.events only; searches read its time-ordered copy events_by_time
 * (008_events_by_time.sql). Changing or deleting a row of the copy would hide it from searches while
 * the ledger still verifies, so verify also compares the copy with events, per hour, in ClickHouse:
 * the number of events and an order-independent digest (XOR of a cityHash64 per event) over the
 * columns both tables hold. Each table keeps every delivered copy until its own merges run, so both
 * sides first take one row per event_id, the copy with the highest `ver` (what every reader sees).
 */
export const COPY_TABLE = 'events_by_time';

/** The copy's columns (all of them: each is a column of events), in 008's order. */
export const COPY_COLUMNS = [
  'ts',
  'ts_ms',
  'ver',
  'kind',
  'outcome',
  'client_id',
  'client_user',
  'client_ip',
  'session_id',
  'source_id',
  'server_name',
  'tool_name',
  'method',
  'duration_ms',
  'error_message',
  'label_keys',
  'label_values',
] as const;

const TABLES = new Set(['events', COPY_TABLE]);
const COLS = new Set<string>(COPY_COLUMNS);
const DIFF_COLS = new Set(['de', 'dc', 'in_e', 'in_c']);

export interface CopyDigest {
  /** Events (one per event_id) whose winning copy lies in the hour. */
  rows: number;
  /** XOR of the per-event hashes, as decimal text (UInt64). */
  digest: string;
}

export interface CopyHour {
  hourMs: number;
  events: CopyDigest;
  copy: CopyDigest;
}

const sec = (ms: number) => Math.floor(ms / 1000);

/**
 * One row per event_id of [fromMs, toMs) of `table`: its hour (h) and its hash (d), both of the copy
 * with the highest `ver` (ties: the highest hash, so both tables pick the same copy).
 * NOTE: 18.16's cityHash64 takes no UUID, hence reinterpretAsString(event_id); the choice key is one
 * UInt64 (ver, then the hash's high half) because argMax over a tuple is several times slower there.
 */
function perEventSql(db: LedgerDb, table: string, fromMs: number, toMs: number): SqlFragment {
  const t = sql`${dbIdent(db.database)}.${ident(table, TABLES)}`;
  const cols = join(COPY_COLUMNS.map((c) => ident(c, COLS)));
  return sql`SELECT event_id, argMax(h0, k) AS h, argMax(d0, k) AS d FROM (
      SELECT event_id, toUInt32(toStartOfHour(ts)) AS h0, cityHash64(reinterpretAsString(event_id), ${cols}) AS d0,
        bitOr(bitShiftLeft(toUInt64(ver), 32), bitShiftRight(d0, 32)) AS k
      FROM ${t}
      WHERE ts >= toDateTime(${sec(fromMs)}, 'UTC') AND ts < toDateTime(${sec(toMs)}, 'UTC'))
    GROUP BY event_id`;
}

/** Count and digest per hour of [fromMs, toMs) of events and of the copy; hours where either has rows. */
export async function copyDigests(db: LedgerDb, fromMs: number, toMs: number): Promise<CopyHour[]> {
  const side = (table: string) =>
    sql`SELECT h, count() AS n, toString(groupBitXor(d)) AS x FROM (${perEventSql(db, table, fromMs, toMs)}) GROUP BY h`;
  // NOTE: one after the other: each holds a hash table of the day's event ids in ClickHouse's memory,
  // and both run beside verify's own stream of that day.
  const ev = await db.ch.query<{ h: number; n: string; x: string }>(side('events'));
  const cp = await db.ch.query<{ h: number; n: string; x: string }>(side(COPY_TABLE));
  const empty: CopyDigest = { rows: 0, digest: '0' };
  const hours = new Map<number, CopyHour>();
  const at = (h: number) => {
    let x = hours.get(h);
    if (!x) {
      x = { hourMs: h * 1000, events: empty, copy: empty };
      hours.set(h, x);
    }
    return x;
  };
  for (const r of ev) at(Number(r.h)).events = { rows: Number(r.n), digest: r.x };
  for (const r of cp) at(Number(r.h)).copy = { rows: Number(r.n), digest: r.x };
  return [...hours.values()].sort((a, b) => a.hourMs - b.hourMs);
}

export const copyDiffers = (c: CopyHour): boolean =>
  c.events.rows !== c.copy.rows || c.events.digest !== c.copy.digest;

export interface CopyDiff {
  /** In events, not in the copy. */
  missing: { count: number; sample: string[] };
  /** In the copy, not in events. */
  extra: { count: number; sample: string[] };
  /** In both, with different values. */
  changed: { count: number; sample: string[] };
}

/** Which event ids of one hour differ between events and the copy (run only for a differing hour). */
export async function diffCopyHour(db: LedgerDb, hourMs: number, sample = 10): Promise<CopyDiff> {
  const side = (table: string, d: string, flag: string) =>
    sql`SELECT toString(event_id) AS id, d AS ${ident(d, DIFF_COLS)}, toUInt8(1) AS ${ident(flag, DIFF_COLS)}
      FROM (${perEventSql(db, table, hourMs, hourMs + 3_600_000)})`;
  const rows = await db.ch.query<{ kind: string; n: string; ids: string[] }>(sql`
    SELECT kind, count() AS n, groupArray(${sample})(id) AS ids FROM (
      SELECT id, multiIf(in_c = 0, 'missing', in_e = 0, 'extra', 'changed') AS kind
      FROM (${side('events', 'de', 'in_e')}) ALL FULL OUTER JOIN (${side(COPY_TABLE, 'dc', 'in_c')}) USING id
      WHERE NOT (in_e = 1 AND in_c = 1 AND de = dc)
    ) GROUP BY kind`);
  const diff: CopyDiff = {
    missing: { count: 0, sample: [] },
    extra: { count: 0, sample: [] },
    changed: { count: 0, sample: [] },
  };
  for (const r of rows) {
    const k = r.kind as keyof CopyDiff;
    if (k in diff) diff[k] = { count: Number(r.n), sample: [...r.ids].sort() };
  }
  return diff;
}
