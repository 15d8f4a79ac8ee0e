import { createHash, sign } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { TransformOptions } from 'node:stream';
import { createGzip, type Gzip, type ZlibOptions } from 'node:zlib';
import type { LedgerDb } from '../ledger/hours.js';
import { MerkleBuilder } from '../ledger/merkle.js';
import {
  canonicalJson,
  floorHour,
  HOUR_MS,
  isoSecond,
  type LedgerRecord,
  type SigningKey,
} from '../ledger/record.js';
import { currentLeaves } from '../ledger/leaves.js';
import { ByteWriter } from '../ledger/rowbinary.js';
import { loadTableRecords } from '../ledger/store.js';
import { filtersSql, hasFilters, type ExportFilters } from './filters.js';
import { csvHeaderLine, FILE_SUFFIX, writeRow, type ExportFormat } from './formats.js';
import { OCSF_VERSION } from './ocsf.js';

/** Bundle format version 1 (the manifest's `bundle_version`); the layout is in README.md. */
export const BUNDLE_VERSION = 1;
/** metadata.product.version and the manifest's software version. */
export const PRODUCT_VERSION = '0.1.0';

export interface ExportSpec {
  fromMs: number;
  toMs: number;
  format: ExportFormat;
  filters: ExportFilters;
  /** Who asked (an API key id or an operator name). */
  actor: string;
  /** A new data file after this many rows (default 1,000,000). */
  rowsPerFile?: number;
}

export interface ExportProgress {
  rows: number;
  bytes: number;
  hoursDone: number;
  hoursTotal: number;
}

export interface ExportDeps {
  /** Must have `stream`. */
  db: LedgerDb;
  /** Signs manifest.json (its public key published as `<key_id>.pub` with the ledger's). */
  key: SigningKey;
  productVersion: string;
  now?: () => number;
  onProgress?: (p: ExportProgress) => void;
  signal?: AbortSignal;
}

export interface ManifestFile {
  name: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  bundle_version: 1;
  table: 'events';
  format: ExportFormat;
  ocsf_version?: string;
  range: { from: string; to: string };
  filters: ExportFilters;
  exported_by: string;
  exported_at: string;
  software: { name: 'mcp-audit'; version: string };
  rows: number;
  files: ManifestFile[];
  /** Ledger records (signed, as stored) of every hour the range touches. */
  ledger: Array<{ record: LedgerRecord; sig: string }>;
  /** Hours whose every row is in the bundle and rebuilds its records' roots (checked at export). */
  complete_hours: string[];
  /** Hours with rows that cannot be checked against the ledger, and why. */
  partial_hours: Array<{ hour: string; why: string }>;
}

const DAY_MS = 24 * HOUR_MS;

interface HourState {
  h: number;
  recs: LedgerRecord[];
  whole: boolean;
  check: boolean;
  cutoffs: number[];
  builders: MerkleBuilder[];
  late: number;
  rows: number;
}

export class ExportError extends Error {
  readonly code = 'AUDIT_ERR_EXPORT';
}

/**
 * gzip level of the data files. NOTE: measured on 100k rows of the bench's NDJSON (≈1 KB a row, CPU
 * time on the loaded 2-core box): level 1 ~700 MB/s, 3 ~570, the default 6 ~320, for a file ~20%
 * larger at 1 (ratio 16.3 against 19.7). Exports are throughput-bound and shipped to object storage:
 * speed wins. (zlib runs on libuv's pool, beside the thread writing the rows.)
 */
export const GZIP_LEVEL = 1;

/** Bytes of rows that may wait for gzip while the next rows are written (see DataFile). */
const GZIP_AHEAD = 8 << 20;

/** A gzip data file: bytes and SHA-256 of what lands on disk (hashed as it is written), rows written. */
class DataFile {
  readonly gz: Gzip;
  private readonly sha = createHash('sha256');
  /** Rows are written here (rowbinary.ts's writers), then handed to gzip in ~1 MiB chunks. */
  readonly w = new ByteWriter(1 << 21);
  bytes = 0;
  rows = 0;
  private readonly done: Promise<void>;

  constructor(
    readonly path: string,
    readonly name: string,
  ) {
    // NOTE: with zlib's default 16 KiB writable high-water mark every 1 MiB write returned false,
    // so the rows' thread waited for gzip to finish each piece before writing the next row: no
    // overlap of formatting and compression, and a thread-pool round trip per MiB, which grows
    // with the machine's load. Up to GZIP_AHEAD bytes may now wait for gzip; memory stays flat.
    // (zlib hands its options on to Transform, whose option this is; @types/node's ZlibOptions omits it.)
    const opts: ZlibOptions & TransformOptions = {
      level: GZIP_LEVEL,
      chunkSize: 1 << 18,
      writableHighWaterMark: GZIP_AHEAD,
    };
    this.gz = createGzip(opts);
    const out = createWriteStream(path, { flags: 'wx', mode: 0o644 });
    this.gz.on('data', (c: Buffer) => {
      this.sha.update(c);
      this.bytes += c.length;
    });
    this.gz.pipe(out);
    this.done = finished(out);
  }

  /** After each row: hands a full chunk to gzip, waiting while gzip is behind (backpressure). */
  async rowDone(): Promise<void> {
    this.rows++;
    if (this.w.pos >= 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.w.pos === 0) return;
    if (!this.gz.write(this.w.take())) await once(this.gz, 'drain');
  }

  async close(): Promise<ManifestFile> {
    await this.flush();
    this.gz.end();
    await this.done;
    return { name: this.name, rows: this.rows, bytes: this.bytes, sha256: this.sha.digest('hex') };
  }
}

/**
 * Writes a bundle into `outDir` (created; must be empty): gzip data files, manifest.json and
 * manifest.sig. Streams one hour at a time, so memory does not grow with the range.
 */
export async function exportBundle(deps: ExportDeps, spec: ExportSpec, outDir: string): Promise<Manifest> {
  const { db } = deps;
  if (!db.stream) throw new ExportError('export needs a streaming ClickHouse connection');
  if (!(spec.fromMs < spec.toMs)) throw new ExportError('from must be before to');
  mkdirSync(outDir, { recursive: true });
  if (readdirSync(outDir).length > 0) throw new ExportError(`${outDir} is not empty`);
  const now = (deps.now ?? Date.now)();
  const rowsPerFile = spec.rowsPerFile ?? 1_000_000;
  const filtered = hasFilters(spec.filters);

  const firstHour = floorHour(spec.fromMs);
  const endHour = Math.ceil(spec.toMs / HOUR_MS) * HOUR_MS;
  const ledger = (await loadTableRecords(db))
    .filter((r) => r.record && Date.parse(r.record.hour) >= firstHour && Date.parse(r.record.hour) < endHour)
    .map((r) => ({ record: r.record!, sig: r.sig }));
  const byHour = new Map<number, LedgerRecord[]>();
  for (const { record } of ledger) {
    const h = Date.parse(record.hour);
    byHour.set(h, [...(byHour.get(h) ?? []), record]);
  }

  const files: ManifestFile[] = [];
  let file: DataFile | undefined;
  let rows = 0;
  let bytesDone = 0;
  const complete: string[] = [];
  const partial: Array<{ hour: string; why: string }> = [];
  const hoursTotal = (endHour - firstHour) / HOUR_MS;
  const ctx = { productVersion: deps.productVersion };
  const scratch = new ByteWriter();

  const nextFile = async () => {
    if (file) {
      const f = await file.close();
      files.push(f);
      bytesDone += f.bytes;
    }
    const name = `events-${String(files.length + 1).padStart(5, '0')}.${FILE_SUFFIX[spec.format]}.gz`;
    file = new DataFile(join(outDir, name), name);
    if (spec.format === 'csv') file.w.ascii(csvHeaderLine());
  };
  await nextFile();

  // NOTE: one query per UTC day (a day partition): events are ordered by (client_id, ts, event_id),
  // so a ts range inside a day cannot skip granules and an hourly query would read the whole day.
  let done = 0;
  for (let day = Math.floor(firstHour / DAY_MS) * DAY_MS; day < endHour; day += DAY_MS) {
    if (deps.signal?.aborted) throw new ExportError('export cancelled');
    const a = Math.max(day, spec.fromMs);
    const b = Math.min(day + DAY_MS, spec.toMs);
    if (a >= b) continue;
    const hours = new Map<number, HourState>();
    for (let h = floorHour(a); h < b; h += HOUR_MS) {
      const recs = byHour.get(h) ?? [];
      const whole = Math.max(h, spec.fromMs) === h && Math.min(h + HOUR_MS, spec.toMs) === h + HOUR_MS;
      // A complete-hour candidate: no filter, the whole hour, sealed. Segment builders follow its records.
      const check = !filtered && whole && recs.length > 0;
      hours.set(h / 1000, {
        h,
        recs,
        whole,
        check,
        cutoffs: recs.map((r) => Math.floor(Date.parse(r.cutoff) / 1000)),
        builders: check ? recs.map(() => new MerkleBuilder()) : [],
        late: 0,
        rows: 0,
      });
    }
    for await (const batch of currentLeaves(db, a, b, { where: filtersSql(spec.filters), rows: true })) {
      for (const l of batch) {
        const st = hours.get(l.h)!;
        if (st.check) {
          const seg = st.cutoffs.findIndex((c) => l.ia <= c);
          if (seg < 0) st.late++;
          else st.builders[seg]!.push(l.leaf);
        }
        if (file!.rows >= rowsPerFile) await nextFile();
        writeRow(spec.format, file!.w, l.row!, l.ia, scratch, ctx);
        await file!.rowDone();
        rows++;
        st.rows++;
      }
      deps.onProgress?.({ rows, bytes: bytesDone + (file?.bytes ?? 0), hoursDone: done, hoursTotal });
    }
    for (const st of hours.values()) {
      const hour = isoSecond(st.h);
      if (st.check) {
        const bad = st.recs.findIndex(
          (r, i) => st.builders[i]!.count !== r.rows || st.builders[i]!.root().toString('hex') !== r.root,
        );
        if (bad >= 0)
          partial.push({ hour, why: `rows do not rebuild record ${st.recs[bad]!.seq}: run verify` });
        else if (st.late > 0)
          partial.push({ hour, why: `${st.late} rows arrived after the hour's last record` });
        else complete.push(hour);
      } else if (st.rows > 0 || st.recs.length > 0) {
        partial.push({
          hour,
          why: filtered
            ? 'filtered export'
            : !st.whole
              ? 'the range covers part of the hour'
              : 'hour not sealed',
        });
      }
      done++;
    }
    deps.onProgress?.({ rows, bytes: bytesDone + (file?.bytes ?? 0), hoursDone: done, hoursTotal });
  }
  files.push(await file!.close());

  const manifest: Manifest = {
    bundle_version: BUNDLE_VERSION,
    table: 'events',
    format: spec.format,
    ...(spec.format === 'ocsf' ? { ocsf_version: OCSF_VERSION } : {}),
    range: { from: new Date(spec.fromMs).toISOString(), to: new Date(spec.toMs).toISOString() },
    filters: spec.filters,
    exported_by: spec.actor,
    exported_at: new Date(now).toISOString(),
    software: { name: 'mcp-audit', version: deps.productVersion },
    rows,
    files,
    ledger,
    complete_hours: complete,
    partial_hours: partial,
  };
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
  writeFileSync(join(outDir, 'manifest.json'), bytes, { flag: 'wx' });
  const sig = {
    alg: 'Ed25519',
    key_id: deps.key.keyId,
    sig: sign(null, bytes, deps.key.privateKey).toString('hex'),
  };
  writeFileSync(join(outDir, 'manifest.sig'), `${canonicalJson(sig)}\n`, { flag: 'wx' });
  return manifest;
}
