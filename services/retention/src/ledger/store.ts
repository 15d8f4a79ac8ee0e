import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dbIdent, sql } from '@mcp-audit/clickhouse';
import type { LedgerDb } from './hours.js';
import { canonicalJson, parseRecord, type LedgerRecord, type SignedRecord } from './record.js';

/**
 * Where records live: the append-only integrity_ledger table and, when configured, a directory
 * with one file per record (`<seq, 12 digits>.json`, content `{"record":…,"sig":"…"}` + newline,
 * the record in its exact canonical JSON) meant to be shipped to WORM storage.
 */
export interface RawRecord {
  seq: number;
  /** The record text as stored. */
  text: string;
  sig: string;
  where: 'table' | 'dir';
}

/** A stored record, parsed; `error` says why it is unusable (unparseable or not canonical). */
export interface LoadedRecord extends RawRecord {
  record?: LedgerRecord;
  error?: string;
}

export function parseRaw(raw: RawRecord): LoadedRecord {
  let v: unknown;
  try {
    v = JSON.parse(raw.text);
  } catch {
    return { ...raw, error: 'not JSON' };
  }
  const r = parseRecord(v);
  if (typeof r === 'string') return { ...raw, error: r };
  if (canonicalJson(r) !== raw.text) return { ...raw, error: 'not in canonical form' };
  if (r.seq !== raw.seq) return { ...raw, error: `stored as seq ${raw.seq} but says seq ${r.seq}` };
  return { ...raw, record: r };
}

export async function loadTableRecords(db: LedgerDb): Promise<LoadedRecord[]> {
  const rows = await db.ch.query<{ seq: string; record: string; sig: string }>(
    sql`SELECT seq, record, sig FROM ${dbIdent(db.database)}.integrity_ledger ORDER BY seq`,
  );
  return rows.map((r) => parseRaw({ seq: Number(r.seq), text: r.record, sig: r.sig, where: 'table' }));
}

const FILE = /^(\d{12})\.json$/;
export const recordFileName = (seq: number) => `${String(seq).padStart(12, '0')}.json`;

export function loadDirRecords(dir: string): LoadedRecord[] {
  if (!existsSync(dir)) return [];
  const out: LoadedRecord[] = [];
  for (const f of readdirSync(dir).sort()) {
    const m = FILE.exec(f);
    if (!m) continue;
    const seq = Number(m[1]);
    try {
      const env = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { record?: unknown; sig?: unknown };
      const text = canonicalJsonOrEmpty(env.record);
      out.push(parseRaw({ seq, text, sig: typeof env.sig === 'string' ? env.sig : '', where: 'dir' }));
    } catch {
      out.push({ seq, text: '', sig: '', where: 'dir', error: 'unreadable file' });
    }
  }
  return out;
}

function canonicalJsonOrEmpty(v: unknown): string {
  try {
    return canonicalJson(v);
  } catch {
    return '';
  }
}

export function writeRecordFile(dir: string, s: SignedRecord): void {
  mkdirSync(dir, { recursive: true });
  const text = `{"record":${canonicalJson(s.record)},"sig":${JSON.stringify(s.sig)}}\n`;
  // 'wx': a record file is never overwritten.
  writeFileSync(join(dir, recordFileName(s.record.seq)), text, { flag: 'wx', mode: 0o444 });
}

export async function insertRecords(db: LedgerDb, records: readonly SignedRecord[]): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  await db.ch.insert(
    'integrity_ledger',
    records.map(({ record: r, sig }) => ({
      seq: r.seq,
      table_name: r.table,
      hour: Math.floor(Date.parse(r.hour) / 1000),
      kind: r.kind,
      rows: r.rows,
      root: r.root,
      cutoff: Math.floor(Date.parse(r.cutoff) / 1000),
      prev: r.prev,
      key_id: r.key_id,
      record: canonicalJson(r),
      sig,
      written_at: now,
    })),
  );
}

/** Appends records: files first (the WORM copy), then the table. */
export async function appendRecords(db: LedgerDb, dir: string | undefined, records: readonly SignedRecord[]) {
  if (records.length === 0) return;
  if (dir) for (const r of records) writeRecordFile(dir, r);
  await insertRecords(db, records);
}
