import { copyDiffers, copyDigests, diffCopyHour, type CopyHour } from './copy.js';
import { diffHour, segmentRoots, storedLeafRoots, type LedgerDb, type SegmentRoot } from './hours.js';
import { EMPTY_ROOT } from './merkle.js';
import {
  floorHour,
  GENESIS_PREV,
  HOUR_MS,
  isoSecond,
  recordHash,
  verifyRecordSignature,
  type LedgerRecord,
  type PublicKeys,
} from './record.js';
import { loadDirRecords, loadTableRecords, type LoadedRecord } from './store.js';

export type ProblemKind =
  | 'rows_added'
  | 'rows_removed'
  | 'rows_changed'
  | 'rows_moved'
  | 'unsealed_rows'
  | 'missing_record'
  | 'bad_signature'
  | 'unknown_key'
  | 'broken_chain'
  | 'bad_record'
  | 'record_replaced'
  | 'ledger_truncated'
  | 'leaves_tampered'
  | 'copy_differs';

export interface Problem {
  kind: ProblemKind;
  detail: string;
  count?: number;
  sample?: string[];
  seq?: number;
}

export interface HourReport {
  hour: string;
  /** ok; failed; pending (only rows awaiting their addendum); retired (dropped by retention with a receipt). */
  status: 'ok' | 'failed' | 'pending' | 'retired';
  rows: number;
  seqs: number[];
  problems: Problem[];
}

export interface VerifyReport {
  from: string;
  to: string;
  ok: boolean;
  hoursChecked: number;
  rowsChecked: number;
  /** Every hour that is not ok, in order. */
  failing: HourReport[];
  /** Problems of the chain itself (records, signatures, links), wherever their hours are. */
  chain: Problem[];
  ms: number;
  rowsPerSecond: number;
}

export interface VerifyDeps {
  db: LedgerDb;
  /** The trusted public keys (published `<key_id>.pub`), nothing else. */
  publicKeys: PublicKeys;
  /** The record files (WORM copy), when the verifier has them. */
  dir?: string | undefined;
  now?: () => number;
  /** Hours retired by retention (receipts verified by the caller). */
  retiredHours?: ReadonlySet<number>;
}

export interface VerifyOptions {
  /** The sealing delay plus the sealing job's period: hours older than this must have a seal. */
  sealGraceMs: number;
  /** Late rows of hours younger than this may still get an addendum (reported as pending). */
  addendumWindowMs: number;
  hoursPerQuery?: number;
  sample?: number;
}

interface ChainState {
  /** Usable records (signature and form checked), by seq. */
  good: Map<number, LedgerRecord>;
  problems: Problem[];
}

/**
 * Checks every record of the ledger: form, signature by a trusted key, the `prev` links, no gaps,
 * and (with the directory) that the table and the files hold the same records.
 */
export function checkChain(
  table: LoadedRecord[],
  dirRecords: LoadedRecord[] | undefined,
  keys: PublicKeys,
): ChainState {
  const problems: Problem[] = [];
  const good = new Map<number, LedgerRecord>();
  const check = (r: LoadedRecord): LedgerRecord | undefined => {
    if (!r.record) {
      problems.push({ kind: 'bad_record', seq: r.seq, detail: `${r.where} record ${r.seq}: ${r.error}` });
      return undefined;
    }
    const sig = verifyRecordSignature(keys, { record: r.record, sig: r.sig });
    if (sig !== 'ok') {
      problems.push({
        kind: sig,
        seq: r.seq,
        detail:
          sig === 'unknown_key'
            ? `${r.where} record ${r.seq} is signed by key ${r.record.key_id}, which is not a trusted public key`
            : `${r.where} record ${r.seq} (hour ${r.record.hour}): the signature does not match its content`,
      });
      return undefined;
    }
    return r.record;
  };
  const tableBySeq = new Map<number, LedgerRecord | undefined>();
  for (const r of table) tableBySeq.set(r.seq, check(r));
  const dirBySeq = new Map<number, LedgerRecord | undefined>();
  if (dirRecords) {
    for (const r of dirRecords) dirBySeq.set(r.seq, check(r));
    const tableText = new Map(table.map((r) => [r.seq, r.text]));
    for (const r of dirRecords) {
      const t = tableText.get(r.seq);
      if (t === undefined) {
        problems.push({
          kind: 'ledger_truncated',
          seq: r.seq,
          detail: `record ${r.seq} is in the record files but missing from the integrity_ledger table`,
        });
      } else if (t !== r.text) {
        problems.push({
          kind: 'record_replaced',
          seq: r.seq,
          detail: `record ${r.seq} differs between the integrity_ledger table and its file`,
        });
      }
    }
    const onDisk = new Set(dirRecords.map((r) => r.seq));
    for (const r of table) {
      if (!onDisk.has(r.seq))
        problems.push({
          kind: 'bad_record',
          seq: r.seq,
          detail: `record ${r.seq} is in the table but has no file`,
        });
    }
  }
  // The usable copy of each seq: the file's when valid (WORM), else the table's.
  const seqs = [...new Set([...tableBySeq.keys(), ...dirBySeq.keys()])].sort((a, b) => a - b);
  for (const s of seqs) {
    const r = dirBySeq.get(s) ?? tableBySeq.get(s);
    if (r) good.set(s, r);
  }
  // Links and gaps over the union.
  const max = seqs.length ? seqs[seqs.length - 1]! : -1;
  let prev: LedgerRecord | undefined;
  for (let s = 0; s <= max; s++) {
    const r = good.get(s);
    if (!r) {
      if (!seqs.includes(s))
        problems.push({ kind: 'broken_chain', seq: s, detail: `record ${s} is missing` });
      prev = undefined;
      continue;
    }
    const expected = s === 0 ? GENESIS_PREV : prev ? recordHash(prev) : undefined;
    if (expected !== undefined && r.prev !== expected) {
      problems.push({
        kind: 'broken_chain',
        seq: s,
        detail: `record ${s}'s prev does not match record ${s - 1}: a record was removed, replaced or reordered`,
      });
    }
    prev = r;
  }
  return { good, problems };
}

/**
 * Recomputes each hour of [fromMs, toMs) from ClickHouse and compares it with the ledger, using
 * only the public keys. Every failing hour is reported with what failed and how.
 */
export async function verifyRange(
  deps: VerifyDeps,
  fromMs: number,
  toMs: number,
  opts: VerifyOptions,
): Promise<VerifyReport> {
  const t0 = Date.now();
  const now = (deps.now ?? Date.now)();
  const from = floorHour(fromMs);
  const to = Math.ceil(toMs / HOUR_MS) * HOUR_MS;
  const table = await loadTableRecords(deps.db);
  const dirRecords = deps.dir ? loadDirRecords(deps.dir) : undefined;
  const chain = checkChain(table, dirRecords, deps.publicKeys);

  const byHour = new Map<number, LedgerRecord[]>();
  for (const r of [...chain.good.values()].sort((a, b) => a.seq - b.seq)) {
    const h = Date.parse(r.hour);
    byHour.set(h, [...(byHour.get(h) ?? []), r]);
  }
  const firstHour = byHour.size ? Math.min(...byHour.keys()) : undefined;
  const reports = new Map<number, HourReport>();
  const report = (h: number): HourReport => {
    let r = reports.get(h);
    if (!r) {
      r = {
        hour: isoSecond(h),
        status: 'ok',
        rows: 0,
        seqs: (byHour.get(h) ?? []).map((x) => x.seq),
        problems: [],
      };
      reports.set(h, r);
    }
    return r;
  };
  // Chain problems land on their record's hour when it is known.
  const allBySeq = new Map<number, LedgerRecord>();
  for (const r of [...table, ...(dirRecords ?? [])]) if (r.record) allBySeq.set(r.seq, r.record);
  for (const p of chain.problems) {
    const rec = p.seq === undefined ? undefined : allBySeq.get(p.seq);
    const h = rec ? Date.parse(rec.hour) : undefined;
    if (h !== undefined && h >= from && h < to) report(h).problems.push(p);
  }

  let rowsChecked = 0;
  const step = (opts.hoursPerQuery ?? 24) * HOUR_MS;
  // Chunks aligned to `step` (a day by default: one day partition per query).
  for (let a = from, b = 0; a < to; a = b) {
    b = Math.min(to, Math.floor(a / step) * step + step);
    const cutoffs = new Map<number, number[]>();
    for (let h = a; h < b; h += HOUR_MS) {
      const recs = byHour.get(h);
      if (recs)
        cutoffs.set(
          h,
          recs.map((r) => Date.parse(r.cutoff)),
        );
    }
    // events_by_time against events (copy.ts): ClickHouse's work, run beside the Node-bound leaves.
    const copies = copyDigests(deps.db, a, b);
    copies.catch(() => undefined);
    const segs = await segmentRoots(deps.db, a, b, cutoffs);
    const byH = new Map<number, SegmentRoot[]>();
    for (const s of segs) byH.set(s.hourMs, [...(byH.get(s.hourMs) ?? []), s]);
    const copyByH = new Map((await copies).map((c) => [c.hourMs, c]));
    for (let h = a; h < b; h += HOUR_MS) {
      const recs = byHour.get(h) ?? [];
      const cur = byH.get(h) ?? [];
      const copy = copyByH.get(h);
      if (copy && copyDiffers(copy)) await explainCopy(deps, copy, report(h), opts.sample ?? 10);
      const rows = cur.reduce((n, s) => n + s.rows, 0);
      rowsChecked += rows;
      if (recs.length === 0) {
        const due = firstHour !== undefined && h >= firstHour && h + HOUR_MS + opts.sealGraceMs <= now;
        // Rows no record covers never verify: before the ledger's first hour, or with no ledger at all
        // (an empty or wiped ledger must not let retention drop what was never sealed).
        if (due || (rows > 0 && (firstHour === undefined || h < firstHour))) {
          const r = report(h);
          r.rows = rows;
          r.problems.push({
            kind: 'missing_record',
            count: rows,
            detail: `no ledger record for this hour (it should have been sealed); ${rows} rows unprotected`,
          });
        }
        continue;
      }
      if (deps.retiredHours?.has(h) && rows === 0) {
        const r = report(h);
        r.status = 'retired';
        continue;
      }
      let mismatch = false;
      recs.forEach((rec, i) => {
        const s = cur.find((x) => x.segment === i);
        const got = s ?? { rows: 0, root: EMPTY_ROOT.toString('hex') };
        if (got.rows !== rec.rows || got.root !== rec.root) mismatch = true;
      });
      const late = cur.find((x) => x.segment === recs.length);
      if (!mismatch && !late) {
        if (reports.has(h)) reports.get(h)!.rows = rows;
        continue;
      }
      const r = report(h);
      r.rows = rows;
      await explain(deps, h, recs, r, opts.sample ?? 10);
      if (late && !mismatch && h + HOUR_MS >= now - opts.addendumWindowMs && r.problems.length === 1) {
        r.status = 'pending';
      }
    }
  }
  const failing = [...reports.values()]
    .map((r) => {
      if (r.status === 'ok' && r.problems.length > 0) r.status = 'failed';
      return r;
    })
    .filter((r) => r.status !== 'ok' && r.status !== 'retired')
    .sort((x, y) => (x.hour < y.hour ? -1 : 1));
  const ms = Date.now() - t0;
  return {
    from: isoSecond(from),
    to: isoSecond(to),
    ok: failing.length === 0 && chain.problems.length === 0,
    hoursChecked: (to - from) / HOUR_MS,
    rowsChecked,
    failing,
    chain: chain.problems,
    ms,
    rowsPerSecond: ms > 0 ? Math.round((rowsChecked * 1000) / ms) : rowsChecked,
  };
}

/** An hour whose events_by_time rows differ from its events rows: counts, and which ids. */
async function explainCopy(deps: VerifyDeps, c: CopyHour, r: HourReport, sample: number) {
  const d = await diffCopyHour(deps.db, c.hourMs, sample);
  const n = d.missing.count + d.extra.count + d.changed.count;
  const ids = [...d.missing.sample, ...d.extra.sample, ...d.changed.sample].slice(0, sample);
  r.problems.push({
    kind: 'copy_differs',
    count: n,
    sample: ids,
    detail: `events_by_time differs from events: ${c.events.rows} events in events, ${c.copy.rows} in events_by_time; ${d.missing.count} missing from the copy, ${d.extra.count} only in the copy, ${d.changed.count} changed (searches read the copy)`,
  });
}

/** Names what differs in a failing hour, from the stored leaf lists (once they are authenticated). */
async function explain(deps: VerifyDeps, h: number, recs: LedgerRecord[], r: HourReport, sample: number) {
  const seqs = recs.map((x) => x.seq);
  const stored = await storedLeafRoots(deps.db, seqs);
  const authentic = recs.every((x) => {
    const s = stored.get(x.seq) ?? { rows: 0, root: EMPTY_ROOT.toString('hex') };
    return s.rows === x.rows && s.root === x.root;
  });
  if (!authentic) {
    r.problems.push({
      kind: 'leaves_tampered',
      detail: 'the stored leaf list no longer matches the signed root: the ids below are indicative only',
    });
  }
  const d = await diffHour(
    deps.db,
    h,
    seqs,
    recs.map((x) => Date.parse(x.cutoff)),
    sample,
  );
  const add = (kind: ProblemKind, x: { count: number; sample: string[] }, detail: string) => {
    if (x.count > 0) r.problems.push({ kind, count: x.count, sample: x.sample, detail });
  };
  add(
    'rows_added',
    d.added,
    'rows present now that no record of this hour covers (ingested before its last cutoff)',
  );
  add('rows_removed', d.removed, 'rows covered by a record that are gone');
  add('rows_changed', d.changed, 'rows whose canonical content differs from the sealed one');
  add('rows_moved', d.moved, "rows whose ingested_at moved them to another record's span");
  add(
    'unsealed_rows',
    d.unsealed,
    "rows ingested after the hour's last cutoff: late rows awaiting an addendum, or inserted after sealing",
  );
  if (r.problems.length === 0) {
    r.problems.push({
      kind: 'rows_changed',
      detail: 'the hour does not match its records (no row-level difference found)',
    });
  }
}
