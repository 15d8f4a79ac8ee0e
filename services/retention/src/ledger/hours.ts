import { dbIdent, sql, tuple, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import type { Partitions } from '../partitions.js';
import { hasControlSql, leafSql } from './canonical.js';
import { currentLeaves, leafId } from './leaves.js';
import { MerkleBuilder } from './merkle.js';
import { ByteWriter } from './rowbinary.js';
import { HOUR_MS } from './record.js';
import { RowBinaryReader, StreamQueryError, type RowStream } from './stream.js';

/**
 * The ledger's queries over mcp_audit.events. With a streaming connection (every service and the
 * CLI), leaves come from leaves.ts (canonical rows built in Node from RowBinary, sorted per hour in
 * Node); without one, ClickHouse canonicalises and hashes (canonical.ts's SQL, also the row-level
 * diff). Node builds the RFC 6962 trees as the sorted leaves arrive (MerkleBuilder, O(log n)).
 */
export interface LedgerDb {
  ch: ClickHouse;
  /** Database of events and of the ledger tables (mcp_audit). */
  database: string;
  /** Streaming reads (createRowStream); without it the leaves are read in one buffered query. */
  stream?: RowStream | undefined;
  /** Where mutations run: every shard's local table on a cluster (partitions.ts); this server without it. */
  partitions?: Partitions | undefined;
}

const sec = (ms: number) => Math.floor(ms / 1000);

/**
 * One row per event_id per hour of [fromMs, toMs): h (hour, epoch s), id (event id text), leaf_w
 * (leaf hash) and ia_w (ingested_at, epoch s) of the winning copy, which is the one with the
 * highest `ver` (ReplacingMergeTree's choice, so the copy every FINAL query sees); ties are broken
 * by the leaf and then ingested_at, so the choice never depends on part order.
 */
export function currentLeavesSql(db: LedgerDb, fromMs: number, toMs: number): SqlFragment {
  const events = sql`${dbIdent(db.database)}.events`;
  const range = sql`ts >= toDateTime(${sec(fromMs)}, 'UTC') AND ts < toDateTime(${sec(toMs)}, 'UTC')`;
  const ctl = hasControlSql();
  const side = (controls: boolean) =>
    sql`SELECT ts, event_id, ver, toUInt32(ingested_at) AS ia, ${leafSql(controls)} AS leaf FROM ${events} WHERE ${range} AND ${controls ? sql`${ctl}` : sql`NOT ${ctl}`}`;
  return sql`SELECT toUInt32(toStartOfHour(ts)) AS h, toString(event_id) AS id,
      argMax(leaf, (ver, leaf, ia)) AS leaf_w, argMax(ia, (ver, leaf, ia)) AS ia_w
    FROM (${side(false)} UNION ALL ${side(true)})
    GROUP BY h, id`;
}

/**
 * Segment of a row: how many of its hour's cutoffs lie before its ingestion second. Segment i is
 * covered by the hour's i-th record; segment = number of cutoffs means "after the last cutoff".
 */
function segmentSql(cutoffs: ReadonlyMap<number, readonly number[]>): SqlFragment {
  const hours = [...cutoffs.keys()];
  if (hours.length === 0) return sql`toUInt32(0)`;
  const hs = hours.map((h) => sec(h));
  const cs = hours.map((h) => [...(cutoffs.get(h) ?? [])].map(sec));
  // NOTE: no lambda: 18.16 does not see identifiers inside a lambda when it prunes a subquery's
  // columns ("Unknown identifier"). The cutoffs are ascending, so the number of cutoffs below ia_w
  // is the first position of ia_w in the sorted list with ia_w added; the leading 0 keeps every
  // inner array typed (and is always below ia_w); an hour absent from the list is segment 0.
  const lists = cs.map((l) => [0, ...l]);
  return sql`toUInt32(greatest(toInt64(indexOf(arraySort(arrayPushBack(arrayElement(${lists}, indexOf(${hs}, h)), ia_w)), ia_w)) - 2, 0))`;
}

export interface SegmentRoot {
  hourMs: number;
  segment: number;
  rows: number;
  root: string;
}

/**
 * Roots and row counts of the current rows of every hour of [fromMs, toMs), split into segments by
 * the hours' cutoffs (hours absent from `cutoffs` are one segment 0). Hours without rows are absent.
 */
export async function segmentRoots(
  db: LedgerDb,
  fromMs: number,
  toMs: number,
  cutoffs: ReadonlyMap<number, readonly number[]>,
): Promise<SegmentRoot[]> {
  if (db.stream) return segmentRootsInNode(db, fromMs, toMs, cutoffs);
  const q = sql`SELECT h AS a, seg AS b, id AS k, leaf_w AS leaf
    FROM (SELECT h, id, leaf_w, ia_w, ${segmentSql(cutoffs)} AS seg FROM (${currentLeavesSql(db, fromMs, toMs)}))`;
  const got = await streamRoots(db, q);
  return got.map((r) => ({ hourMs: r.a * 1000, segment: r.b, rows: r.rows, root: r.root }));
}

/** segmentRoots from leaves computed in Node (leaves.ts): the path used whenever `stream` is set. */
async function segmentRootsInNode(
  db: LedgerDb,
  fromMs: number,
  toMs: number,
  cutoffs: ReadonlyMap<number, readonly number[]>,
): Promise<SegmentRoot[]> {
  const out: SegmentRoot[] = [];
  let hour = -1;
  let cs: number[] = [];
  let builders: MerkleBuilder[] = [];
  const flush = () => {
    builders.forEach((b, segment) => {
      if (b.count > 0)
        out.push({ hourMs: hour * 1000, segment, rows: b.count, root: b.root().toString('hex') });
    });
  };
  for await (const batch of currentLeaves(db, fromMs, toMs)) {
    for (const l of batch) {
      if (l.h !== hour) {
        flush();
        hour = l.h;
        cs = (cutoffs.get(hour * 1000) ?? []).map((c) => Math.floor(c / 1000));
        builders = Array.from({ length: cs.length + 1 }, () => new MerkleBuilder());
      }
      let seg = 0;
      while (seg < cs.length && cs[seg]! < l.ia) seg++;
      builders[seg]!.push(l.leaf);
    }
  }
  flush();
  return out;
}

const SENTINEL = 0xffffffff;

/**
 * Roots of `q`'s leaves grouped by (a, b), each group's leaves in `k` order (event id text,
 * bytewise). `q` selects a UInt32, b UInt32, k String, leaf FixedString(32).
 */
export async function streamRoots(
  db: LedgerDb,
  q: SqlFragment,
): Promise<Array<{ a: number; b: number; rows: number; root: string }>> {
  const out: Array<{ a: number; b: number; rows: number; root: string }> = [];
  let cur: { a: number; b: number; m: MerkleBuilder } | undefined;
  const flush = () => {
    if (cur) out.push({ a: cur.a, b: cur.b, rows: cur.m.count, root: cur.m.root().toString('hex') });
  };
  const add = (a: number, b: number, leaf: Buffer) => {
    if (!cur || cur.a !== a || cur.b !== b) {
      flush();
      cur = { a, b, m: new MerkleBuilder() };
    }
    cur.m.push(leaf);
  };
  if (!db.stream) {
    const rows = await db.ch.query<{ a: number; b: number; leaf: string }>(
      sql`SELECT a, b, lower(hex(leaf)) AS leaf FROM (${q}) ORDER BY a, b, k`,
    );
    for (const r of rows) add(Number(r.a), Number(r.b), Buffer.from(r.leaf, 'hex'));
    flush();
    return out;
  }
  const sentinel = sql`SELECT toUInt32(${SENTINEL}) AS a, toUInt32(0) AS b, '' AS k, SHA256('') AS leaf`;
  const r = new RowBinaryReader();
  let done = false;
  for await (const chunk of db.stream(
    sql`SELECT a, b, leaf FROM (${q} UNION ALL ${sentinel}) ORDER BY a, b, k FORMAT RowBinary`,
  )) {
    if (done) throw new StreamQueryError('bytes after the end of the leaf stream');
    r.push(chunk);
    while (r.remaining >= 40) {
      const a = r.u32()!;
      const b = r.u32()!;
      const leaf = r.bytes(32)!;
      if (a === SENTINEL) {
        done = true;
        break;
      }
      add(a, b, leaf);
    }
    if (done && r.remaining > 0) throw new StreamQueryError('bytes after the end of the leaf stream');
  }
  if (!done) throw new StreamQueryError('the leaf stream ended early (query failed mid-way?)');
  flush();
  return out;
}

export interface NewRecordSpan {
  seq: number;
  hourMs: number;
  /** Rows ingested after this second (the hour's previous cutoff; 0 for a seal)… */
  afterMs: number;
  /** …and at or before this one. */
  cutoffMs: number;
}

/**
 * Writes the (event_id, leaf) list of each new record to integrity_leaves, then computes each
 * record's root from what was written, so a record and its leaf list always agree.
 */
export async function writeLeavesAndRoots(
  db: LedgerDb,
  spans: readonly NewRecordSpan[],
): Promise<Map<number, { rows: number; root: string }>> {
  if (db.stream?.insert) return writeLeavesInNode(db, spans);
  const out = new Map<number, { rows: number; root: string }>();
  if (spans.length === 0) return out;
  const fromMs = Math.min(...spans.map((s) => s.hourMs));
  const toMs = Math.max(...spans.map((s) => s.hourMs)) + HOUR_MS;
  const hs = spans.map((s) => sec(s.hourMs));
  const seqs = spans.map((s) => s.seq);
  const after = spans.map((s) => sec(s.afterMs));
  const upto = spans.map((s) => sec(s.cutoffMs));
  const leavesTable = sql`${dbIdent(db.database)}.integrity_leaves`;
  await db.ch.command(sql`
    INSERT INTO ${leavesTable} (seq, hour, event_id, leaf)
    SELECT seq, toDateTime(h, 'UTC'), id, leaf_w FROM (
      SELECT h, id, leaf_w, indexOf(${hs}, h) AS k,
        arrayElement(${seqs}, k) AS seq
      FROM (${currentLeavesSql(db, fromMs, toMs)})
      WHERE k > 0 AND ia_w > arrayElement(${after}, k) AND ia_w <= arrayElement(${upto}, k)
    )`);
  return storedLeafRoots(db, seqs);
}

/**
 * The same in Node: leaves from currentLeaves, each record's root built as its leaves go by, and
 * the (seq, hour, event_id, leaf) list inserted as RowBinary in batches; the record and its leaf
 * list come from the same bytes.
 */
async function writeLeavesInNode(
  db: LedgerDb,
  spans: readonly NewRecordSpan[],
): Promise<Map<number, { rows: number; root: string }>> {
  const out = new Map<number, { rows: number; root: string }>();
  if (spans.length === 0) return out;
  const fromMs = Math.min(...spans.map((s) => s.hourMs));
  const toMs = Math.max(...spans.map((s) => s.hourMs)) + HOUR_MS;
  const byHour = new Map<number, Array<NewRecordSpan & { b: MerkleBuilder }>>();
  for (const s of spans) {
    const h = sec(s.hourMs);
    byHour.set(h, [...(byHour.get(h) ?? []), { ...s, b: new MerkleBuilder() }]);
  }
  const insert = sql`INSERT INTO ${dbIdent(db.database)}.integrity_leaves (seq, hour, event_id, leaf) FORMAT RowBinary`;
  const w = new ByteWriter(9 << 20);
  const send = async () => {
    if (w.pos === 0) return;
    await db.stream!.insert!(insert, w.take());
  };
  for await (const batch of currentLeaves(db, fromMs, toMs)) {
    for (const l of batch) {
      const span = byHour.get(l.h)?.find((s) => l.ia > sec(s.afterMs) && l.ia <= sec(s.cutoffMs));
      if (!span) continue;
      span.b.push(l.leaf);
      // RowBinary: seq UInt64, hour DateTime (UInt32), event_id String (36 bytes), leaf FixedString(32).
      w.room(8 + 4 + 1 + 36 + 32);
      w.buf.writeUInt32LE(span.seq, w.pos);
      w.buf.writeUInt32LE(0, w.pos + 4);
      w.buf.writeUInt32LE(l.h, w.pos + 8);
      w.buf[w.pos + 12] = 36;
      w.pos += 13;
      w.ascii(leafId(l));
      w.bytes(l.leaf);
    }
    if (w.pos >= 8 << 20) await send();
  }
  await send();
  for (const list of byHour.values())
    for (const s of list) out.set(s.seq, { rows: s.b.count, root: s.b.root().toString('hex') });
  return out;
}

/** `(1, 2, 3)` for `seq IN …`; callers never pass an empty list (ClickHouse has no `IN ()`). */
export const seqTuple = (seqs: readonly number[]): SqlFragment => tuple(seqs);

/** Roots recomputed from the stored leaf lists of the given records (to authenticate them). */
export async function storedLeafRoots(
  db: LedgerDb,
  seqs: readonly number[],
): Promise<Map<number, { rows: number; root: string }>> {
  const out = new Map<number, { rows: number; root: string }>();
  if (seqs.length === 0) return out;
  const got = await streamRoots(
    db,
    // NOTE: `seq * 0`, not a constant: through a Distributed table (cluster layout) 18.16 refuses a
    // constant column that meets streamRoots' UNION ALL (code 171, "non constant in source stream").
    sql`SELECT toUInt32(seq) AS a, toUInt32(seq * 0) AS b, event_id AS k, leaf
      FROM ${dbIdent(db.database)}.integrity_leaves WHERE seq IN ${seqTuple(seqs)}`,
  );
  for (const r of got) out.set(r.a, { rows: r.rows, root: r.root });
  return out;
}

export interface HourDiff {
  added: { count: number; sample: string[] };
  removed: { count: number; sample: string[] };
  changed: { count: number; sample: string[] };
  /** Same row, other segment: its ingested_at was changed after sealing. */
  moved: { count: number; sample: string[] };
  /** Not in any record, ingested after the hour's last cutoff. */
  unsealed: { count: number; sample: string[] };
}

/**
 * Current rows of one hour against the stored leaves of its records (`seqs`, in segment order):
 * which event ids were added, removed, changed or moved between the seal and its addenda.
 */
export async function diffHour(
  db: LedgerDb,
  hourMs: number,
  seqs: readonly number[],
  cutoffMs: readonly number[],
  sample = 10,
): Promise<HourDiff> {
  const cur = sql`SELECT id, leaf_w AS cl, ia_w, ${segmentSql(new Map([[hourMs, cutoffMs]]))} AS cs, toUInt8(1) AS in_cur
    FROM (${currentLeavesSql(db, hourMs, hourMs + HOUR_MS)})`;
  const st = sql`SELECT event_id AS id, leaf AS sl, toUInt32(indexOf(${seqs}, seq) - 1) AS ss, toUInt8(1) AS in_st
    FROM ${dbIdent(db.database)}.integrity_leaves
    WHERE hour = toDateTime(${sec(hourMs)}, 'UTC') AND seq IN ${seqTuple(seqs)}`;
  const rows = await db.ch.query<{ kind: string; n: string; ids: string[] }>(sql`
    SELECT kind, count() AS n, groupArray(${sample})(id) AS ids FROM (
      SELECT id, multiIf(in_st = 0 AND cs = ${cutoffMs.length}, 'unsealed', in_st = 0, 'added', in_cur = 0, 'removed', cl != sl, 'changed', 'moved') AS kind
      FROM (${cur}) ALL FULL OUTER JOIN (${st}) USING id
      WHERE NOT (in_cur = 1 AND in_st = 1 AND cl = sl AND cs = ss)
    ) GROUP BY kind`);
  const empty = () => ({ count: 0, sample: [] as string[] });
  const diff: HourDiff = {
    added: empty(),
    removed: empty(),
    changed: empty(),
    moved: empty(),
    unsealed: empty(),
  };
  for (const r of rows) {
    const k = r.kind as keyof HourDiff;
    if (k in diff) diff[k] = { count: Number(r.n), sample: [...r.ids].sort() };
  }
  return diff;
}

/** Rows per hour of [fromMs, toMs) (one per event_id), for hours with at least one row. */
export async function hourCounts(db: LedgerDb, fromMs: number, toMs: number): Promise<Map<number, number>> {
  const rows = await db.ch.query<{ h: number; n: string }>(sql`
    SELECT toUInt32(toStartOfHour(ts)) AS h, uniqExact(event_id) AS n FROM ${dbIdent(db.database)}.events
    WHERE ts >= toDateTime(${sec(fromMs)}, 'UTC') AND ts < toDateTime(${sec(toMs)}, 'UTC')
    GROUP BY h`);
  return new Map(rows.map((r) => [Number(r.h) * 1000, Number(r.n)]));
}
