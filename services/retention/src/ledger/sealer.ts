import { dbIdent, sql } from '@mcp-audit/clickhouse';
import { singleServerPartitions } from '../partitions.js';
import { segmentRoots, writeLeavesAndRoots, type LedgerDb, type NewRecordSpan } from './hours.js';
import { EMPTY_ROOT } from './merkle.js';
import {
  floorHour,
  GENESIS_PREV,
  HOUR_MS,
  isoSecond,
  recordHash,
  signRecord,
  type LedgerRecord,
  type SignedRecord,
  type SigningKey,
} from './record.js';
import { appendRecords, insertRecords, loadDirRecords, loadTableRecords, writeRecordFile } from './store.js';

export interface SealerConfig {
  /** An hour is sealed once now > its end + this (≥ the detector's allowed lateness). */
  sealingDelayMs: number;
  /**
   * The cutoff is this far behind now: a row stamped ingested_at = t may land in ClickHouse a
   * little later (the ingester's batching and retries), and must not appear under a cutoff ≥ t.
   */
  ingestMarginMs: number;
  /** Late rows of an hour that ended longer ago than this get no addendum: verify reports them. */
  addendumWindowMs: number;
  /** First hour to seal when the ledger is empty (default: the hour of the oldest event). */
  startMs?: number | undefined;
  /** Hours sealed per run at most (a backlog is worked off over several runs). */
  maxHoursPerRun: number;
  /** Hours per ClickHouse query (memory: one row per event of these hours is grouped at once). */
  hoursPerQuery: number;
}

export const DEFAULT_SEALER: SealerConfig = {
  sealingDelayMs: 10 * 60_000,
  ingestMarginMs: 5 * 60_000,
  addendumWindowMs: 7 * 24 * HOUR_MS,
  maxHoursPerRun: 24 * 31,
  // A day per query: events are ordered by (client_id, ts, …), so any ts range reads its whole day.
  hoursPerQuery: 24,
};

export interface SealerDeps {
  db: LedgerDb;
  key: SigningKey;
  dir?: string | undefined;
  now?: () => number;
  log?: { info(o: object, m?: string): void; warn(o: object, m?: string): void };
  /**
   * Whether this instance still holds the leader lease (packages/kafka lease.ts), checked right
   * before the append: a sealer that lost it leaves the chain to the new leader.
   */
  holdsLease?: () => boolean;
}

export interface SealResult {
  records: LedgerRecord[];
  rows: number;
  ms: number;
}

export class LedgerStateError extends Error {
  readonly code = 'AUDIT_ERR_LEDGER_STATE';
}

/**
 * Brings the table and the directory level (a crash between the file and the row leaves one
 * ahead), then returns the chain's last record. Refuses to extend a chain it cannot read.
 */
async function chainHead(deps: SealerDeps): Promise<LedgerRecord | undefined> {
  const table = await loadTableRecords(deps.db);
  for (const r of table) {
    if (r.error)
      throw new LedgerStateError(`ledger record ${r.seq} in the table is unusable (${r.error}); run verify`);
  }
  table.forEach((r, i) => {
    if (r.seq !== i) throw new LedgerStateError(`ledger table has a gap at seq ${i}; run verify`);
  });
  if (deps.dir) {
    const files = loadDirRecords(deps.dir);
    const inTable = new Set(table.map((r) => r.seq));
    const missingRows = files.filter((f) => !inTable.has(f.seq) && f.record && f.seq === table.length);
    if (missingRows.length > 0) {
      // The file was written, the row was not: finish the append.
      await insertRecords(
        deps.db,
        missingRows.map((f) => ({ record: f.record!, sig: f.sig })),
      );
      table.push(...missingRows);
    }
    const onDisk = new Set(files.map((f) => f.seq));
    for (const r of table)
      if (!onDisk.has(r.seq)) writeRecordFile(deps.dir, { record: r.record!, sig: r.sig });
  }
  return table.at(-1)?.record;
}

/** Seals every sealable hour and writes addenda for late rows; one run, idempotent. */
export async function sealOnce(deps: SealerDeps, cfg: SealerConfig): Promise<SealResult> {
  const t0 = Date.now();
  const now = (deps.now ?? Date.now)();
  const { db } = deps;
  const head = await chainHead(deps);
  const all = head ? await loadTableRecords(db) : [];
  const records = all.map((r) => r.record!);
  const cutoffMs = Math.floor((now - cfg.ingestMarginMs) / 1000) * 1000;
  const lastSealable = floorHour(now - cfg.sealingDelayMs) - HOUR_MS;

  // Hours already sealed and their cutoffs, in chain order.
  const cutoffs = new Map<number, number[]>();
  for (const r of records) {
    const h = Date.parse(r.hour);
    cutoffs.set(h, [...(cutoffs.get(h) ?? []), Date.parse(r.cutoff)]);
  }

  let start: number | undefined;
  if (cutoffs.size > 0) start = Math.max(...cutoffs.keys()) + HOUR_MS;
  else if (cfg.startMs !== undefined) start = floorHour(cfg.startMs);
  else start = await oldestEventHour(db);

  const spans: Array<NewRecordSpan & { kind: 'seal' | 'addendum' }> = [];
  let seq = records.length;

  // Addenda: rows of sealed, recent hours whose winning copy arrived after the hour's last cutoff.
  const recent = [...cutoffs.keys()]
    .filter((h) => h + HOUR_MS >= now - cfg.addendumWindowMs)
    .sort((a, b) => a - b);
  for (const h of await hoursWithLateRows(db, recent, cutoffs)) {
    const prior = cutoffs.get(h)!;
    const last = prior[prior.length - 1]!;
    if (cutoffMs <= last) continue;
    const segs = await segmentRoots(db, h, h + HOUR_MS, new Map([[h, [...prior, cutoffMs]]]));
    const fresh = segs.find((s) => s.segment === prior.length);
    if (fresh && fresh.rows > 0)
      spans.push({ kind: 'addendum', seq: seq++, hourMs: h, afterMs: last, cutoffMs });
  }

  // Seals, oldest first.
  if (start !== undefined) {
    for (let h = start, n = 0; h <= lastSealable && n < cfg.maxHoursPerRun; h += HOUR_MS, n++) {
      spans.push({ kind: 'seal', seq: seq++, hourMs: h, afterMs: 0, cutoffMs });
    }
  }
  if (spans.length === 0) return { records: [], rows: 0, ms: Date.now() - t0 };

  await clearLeftoverLeaves(db, records.length);
  let prev = head ? recordHash(head) : GENESIS_PREV;
  const out: SignedRecord[] = [];
  let rows = 0;
  for (let i = 0; i < spans.length; i += cfg.hoursPerQuery) {
    const chunk = spans.slice(i, i + cfg.hoursPerQuery);
    const roots = await writeLeavesAndRoots(db, chunk);
    for (const s of chunk) {
      const got = roots.get(s.seq) ?? { rows: 0, root: EMPTY_ROOT.toString('hex') };
      const record: LedgerRecord = {
        v: 1,
        table: 'events',
        hour: isoSecond(s.hourMs),
        kind: s.kind,
        seq: s.seq,
        rows: got.rows,
        root: got.root,
        cutoff: isoSecond(s.cutoffMs),
        prev,
        key_id: deps.key.keyId,
      };
      const signed = signRecord(deps.key, record);
      prev = recordHash(record);
      out.push(signed);
      rows += got.rows;
    }
  }
  if (deps.holdsLease && !deps.holdsLease())
    throw new LedgerStateError('the leader lease ended during sealing; the new leader seals these hours');
  await appendRecords(db, deps.dir, out);
  const ms = Date.now() - t0;
  deps.log?.info({ records: out.length, rows, ms }, 'ledger sealed');
  return { records: out.map((s) => s.record), rows, ms };
}

async function oldestEventHour(db: LedgerDb): Promise<number | undefined> {
  const r = await db.ch.query<{ n: string; t: number }>(
    sql`SELECT count() AS n, toUInt32(min(ts)) AS t FROM ${dbIdent(db.database)}.events`,
  );
  if (!r[0] || Number(r[0].n) === 0) return undefined;
  return floorHour(Number(r[0].t) * 1000);
}

/** Cheap pre-filter (two columns read): hours with any copy ingested after their last cutoff. */
async function hoursWithLateRows(
  db: LedgerDb,
  hours: readonly number[],
  cutoffs: ReadonlyMap<number, readonly number[]>,
): Promise<number[]> {
  if (hours.length === 0) return [];
  const hs = hours.map((h) => h / 1000);
  const last = hours.map((h) => Math.floor(cutoffs.get(h)!.at(-1)! / 1000));
  const r = await db.ch.query<{ h: number }>(sql`
    SELECT DISTINCT toUInt32(toStartOfHour(ts)) AS h FROM ${dbIdent(db.database)}.events
    WHERE ts >= toDateTime(${Math.min(...hs)}, 'UTC') AND ts < toDateTime(${Math.max(...hs) + 3600}, 'UTC')
      AND indexOf(${hs}, h) > 0 AND toUInt32(ingested_at) > arrayElement(${last}, indexOf(${hs}, h))`);
  return r.map((x) => Number(x.h) * 1000).sort((a, b) => a - b);
}

/** Leaves written by a run that crashed before its records were appended would mix into the next. */
async function clearLeftoverLeaves(db: LedgerDb, fromSeq: number): Promise<void> {
  const leaves = sql`${dbIdent(db.database)}.integrity_leaves`;
  const r = await db.ch.query<{ n: string }>(sql`SELECT count() AS n FROM ${leaves} WHERE seq >= ${fromSeq}`);
  if (Number(r[0]?.n ?? 0) === 0) return;
  await (db.partitions ?? singleServerPartitions(db.ch, db.database)).deleteWhere(
    'integrity_leaves',
    sql`seq >= ${fromSeq}`,
  );
  for (let i = 0; i < 600; i++) {
    const left = await db.ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM ${leaves} WHERE seq >= ${fromSeq}`,
    );
    if (Number(left[0]?.n ?? 0) === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new LedgerStateError('leftover leaves of an interrupted sealing run could not be removed');
}
