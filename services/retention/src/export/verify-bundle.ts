import { createHash, hash, verify } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { MerkleBuilder } from '../ledger/merkle.js';
import {
  canonicalJson,
  floorHour,
  GENESIS_PREV,
  isoSecond,
  parseRecord,
  recordHash,
  verifyRecordSignature,
  type LedgerRecord,
  type PublicKeys,
} from '../ledger/record.js';
import {
  CSV_HEADER,
  CsvParser,
  decodeCsv,
  decodeNdjson,
  decodeOcsf,
  FORMATS,
  type ExportFormat,
  type ExportRow,
} from './formats.js';
import type { Manifest } from './bundle.js';
import { toOcsf } from './ocsf.js';

export type BundleProblemKind =
  | 'manifest_unreadable'
  | 'bad_signature'
  | 'unknown_key'
  | 'file_missing'
  | 'unexpected_file'
  | 'file_checksum'
  | 'file_size'
  | 'file_rows'
  | 'file_unreadable'
  | 'row_unreadable'
  | 'row_out_of_order'
  | 'record_bad_signature'
  | 'record_unknown_key'
  | 'record_invalid'
  | 'record_chain'
  | 'hour_rows'
  | 'hour_root'
  | 'hour_late_rows';

export interface BundleProblem {
  kind: BundleProblemKind;
  detail: string;
  file?: string;
  hour?: string;
  seq?: number;
}

export interface BundleReport {
  ok: boolean;
  rows: number;
  files: number;
  /** Complete hours whose rows rebuilt every signed root. */
  hoursVerified: number;
  problems: BundleProblem[];
}

const ZERO = Buffer.from([0]);

/**
 * Checks a bundle offline with the trusted public keys alone: the manifest's signature, each data
 * file against the manifest (bytes, SHA-256, rows), each ledger record's signature and links, and
 * that the rows of every complete hour rebuild their records' roots. Streams the files.
 */
export async function verifyBundle(dir: string, keys: PublicKeys): Promise<BundleReport> {
  const problems: BundleProblem[] = [];
  const report = (): BundleReport => ({
    ok: problems.length === 0,
    rows,
    files: manifest?.files.length ?? 0,
    hoursVerified,
    problems,
  });
  let rows = 0;
  let hoursVerified = 0;
  let manifest: Manifest | undefined;
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(dir, 'manifest.json'));
    manifest = JSON.parse(bytes.toString('utf8')) as Manifest;
    if (manifest.bundle_version !== 1 || !FORMATS.includes(manifest.format) || !Array.isArray(manifest.files))
      throw new Error('unknown bundle version or format');
  } catch (err) {
    problems.push({ kind: 'manifest_unreadable', detail: `manifest.json: ${(err as Error).message}` });
    return report();
  }
  try {
    const s = JSON.parse(readFileSync(join(dir, 'manifest.sig'), 'utf8')) as {
      key_id?: string;
      sig?: string;
    };
    const pk = keys.get(String(s.key_id));
    if (!pk)
      problems.push({ kind: 'unknown_key', detail: `manifest signed by ${s.key_id}, not a trusted key` });
    else if (!verify(null, bytes, pk, Buffer.from(String(s.sig), 'hex')))
      problems.push({ kind: 'bad_signature', detail: 'manifest.sig does not verify over manifest.json' });
  } catch (err) {
    problems.push({ kind: 'bad_signature', detail: `manifest.sig: ${(err as Error).message}` });
  }

  // Ledger records: signatures and links between consecutive seqs.
  const recs: LedgerRecord[] = [];
  for (const s of manifest.ledger ?? []) {
    const r = parseRecord(s.record);
    if (typeof r === 'string') {
      problems.push({ kind: 'record_invalid', detail: `a ledger record: ${r}` });
      continue;
    }
    const v = verifyRecordSignature(keys, { record: r, sig: s.sig });
    if (v !== 'ok') {
      problems.push({
        kind: v === 'unknown_key' ? 'record_unknown_key' : 'record_bad_signature',
        seq: r.seq,
        detail: `ledger record ${r.seq}: ${v}`,
      });
      continue;
    }
    recs.push(r);
  }
  const bySeq = new Map(recs.map((r) => [r.seq, r]));
  for (const r of recs) {
    const p = bySeq.get(r.seq - 1);
    if ((r.seq === 0 && r.prev !== GENESIS_PREV) || (p && recordHash(p) !== r.prev))
      problems.push({
        kind: 'record_chain',
        seq: r.seq,
        detail: `record ${r.seq}'s prev does not match record ${r.seq - 1}`,
      });
  }
  const byHour = new Map<number, LedgerRecord[]>();
  for (const r of [...recs].sort((a, b) => a.seq - b.seq)) {
    const h = Date.parse(r.hour);
    byHour.set(h, [...(byHour.get(h) ?? []), r]);
  }
  const complete = new Set((manifest.complete_hours ?? []).map((h) => Date.parse(h)));
  const builders = new Map<number, { b: MerkleBuilder[]; late: number; lastId: string }>();
  for (const h of complete) {
    const rs = byHour.get(h) ?? [];
    builders.set(h, { b: rs.map(() => new MerkleBuilder()), late: 0, lastId: '' });
  }

  // Files.
  const listed = new Set(manifest.files.map((f) => f.name));
  for (const f of readdirSync(dir)) {
    if (f !== 'manifest.json' && f !== 'manifest.sig' && !listed.has(f))
      problems.push({ kind: 'unexpected_file', file: f, detail: `${f} is not in the manifest` });
  }
  const ctx = { productVersion: manifest.software?.version ?? '' };
  let lastKey = '';
  for (const f of manifest.files) {
    const path = join(dir, f.name);
    if (/[/\\]/.test(f.name) || !existsSync(path)) {
      problems.push({ kind: 'file_missing', file: f.name, detail: `${f.name} is missing` });
      continue;
    }
    const sha = createHash('sha256');
    let size = 0;
    let fileRows = 0;
    const onRow = (r: ExportRow) => {
      fileRows++;
      const h = floorHour(Number(r.values.ts) * 1000);
      const id = String(r.values.event_id);
      const key = `${String(h).padStart(16, '0')} ${id}`;
      if (key <= lastKey)
        problems.push({
          kind: 'row_out_of_order',
          file: f.name,
          detail: `event ${id} is out of order or repeated`,
        });
      lastKey = key;
      const st = builders.get(h);
      if (!st) return;
      const rs = byHour.get(h) ?? [];
      const seg = rs.findIndex((x) => r.ingestedAt <= Date.parse(x.cutoff) / 1000);
      if (seg < 0) st.late++;
      else st.b[seg]!.push(hash('sha256', Buffer.concat([ZERO, Buffer.from(r.canonical, 'utf8')]), 'buffer'));
    };
    try {
      await readRows(path, manifest.format, ctx, onRow, (c) => {
        sha.update(c);
        size += c.length;
      });
    } catch (err) {
      problems.push({
        kind: 'file_unreadable',
        file: f.name,
        detail: `${f.name}: ${(err as Error).message}`,
      });
    }
    rows += fileRows;
    if (size !== f.bytes)
      problems.push({
        kind: 'file_size',
        file: f.name,
        detail: `${f.name}: ${size} bytes, manifest says ${f.bytes}`,
      });
    if (sha.digest('hex') !== f.sha256)
      problems.push({
        kind: 'file_checksum',
        file: f.name,
        detail: `${f.name}: SHA-256 differs from the manifest`,
      });
    if (fileRows !== f.rows)
      problems.push({
        kind: 'file_rows',
        file: f.name,
        detail: `${f.name}: ${fileRows} rows, manifest says ${f.rows}`,
      });
  }

  for (const [h, st] of builders) {
    const hour = isoSecond(h);
    const rs = byHour.get(h) ?? [];
    if (rs.length === 0) {
      problems.push({
        kind: 'hour_root',
        hour,
        detail: `${hour} is listed complete but no valid record covers it`,
      });
      continue;
    }
    let good = true;
    rs.forEach((r, i) => {
      const b = st.b[i]!;
      if (b.count !== r.rows) {
        good = false;
        problems.push({
          kind: 'hour_rows',
          hour,
          seq: r.seq,
          detail: `${hour}: ${b.count} rows for record ${r.seq}, which signed ${r.rows}`,
        });
      } else if (b.root().toString('hex') !== r.root) {
        good = false;
        problems.push({
          kind: 'hour_root',
          hour,
          seq: r.seq,
          detail: `${hour}: the rows do not rebuild record ${r.seq}'s root (a row was altered)`,
        });
      }
    });
    if (st.late > 0) {
      good = false;
      problems.push({
        kind: 'hour_late_rows',
        hour,
        detail: `${hour}: ${st.late} rows after the hour's last record`,
      });
    }
    if (good) hoursVerified++;
  }
  return report();
}

/** Streams a data file: raw bytes to `onBytes`, decoded rows to `onRow`. */
async function readRows(
  path: string,
  format: ExportFormat,
  ctx: { productVersion: string },
  onRow: (r: ExportRow) => void,
  onBytes: (c: Buffer) => void,
): Promise<void> {
  const input = createReadStream(path);
  input.on('data', (c) => onBytes(c as Buffer));
  const gunzip = input.pipe(createGunzip());
  let rest = '';
  let first = true;
  const csv = format === 'csv' ? new CsvParser() : undefined;
  const line = (l: string) => {
    if (format === 'ndjson') onRow(decodeNdjson(l));
    else {
      const r = decodeOcsf(l, ctx);
      if (canonicalJson(toOcsf(r.values, r.canonical, r.ingestedAt, ctx)) !== canonicalJson(r.object))
        throw new Error(`the OCSF object of ${String(r.values.event_id)} is not the mapping of its raw_data`);
      onRow(r);
    }
  };
  const dec = new StringDecoder('utf8');
  for await (const chunk of gunzip) {
    const text = dec.write(chunk as Buffer);
    if (csv) {
      csv.push(text);
      for (const rec of csv.records.splice(0)) {
        if (first) {
          first = false;
          if (rec.map((c) => c.text).join(',') !== CSV_HEADER.join(','))
            throw new Error('unexpected CSV header');
          continue;
        }
        onRow(decodeCsv(rec));
      }
      continue;
    }
    rest += text;
    let start = 0;
    let i;
    while ((i = rest.indexOf('\n', start)) >= 0) {
      line(rest.slice(start, i));
      start = i + 1;
    }
    rest = rest.slice(start);
  }
  const tail = dec.end();
  if (csv) {
    csv.push(tail);
    for (const rec of csv.records.splice(0)) onRow(decodeCsv(rec));
  } else rest += tail;
  if (rest !== '' || (csv && !csv.idle)) throw new Error('the file ends in the middle of a row');
}
