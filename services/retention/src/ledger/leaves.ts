import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { dbIdent, sql, type SqlFragment } from '@mcp-audit/clickhouse';
import type { LedgerDb } from './hours.js';
import { LEAF_WORKER, leafRecord, RECORD } from './leaf-worker.js';
import { ByteWriter, HEADER, rowColumnsSql, rowEnd, uuidText } from './rowbinary.js';
import { StreamQueryError } from './stream.js';

/**
 * Leaves computed in Node from the stored bytes. ClickHouse only reads: one query per day
 * partition, rows UNSORTED in RowBinary (its cheapest output; sorting a day's wide rows by event id
 * text was most of the former cost). Node writes each canonical row (LEDGER.md §2) byte by byte from
 * the RowBinary, hashes it, and spills a compact record per row (event id as 16 big-endian bytes —
 * bytewise the order of the lowercase text —, ver, ingested_at, leaf) to a file per hour; once the
 * day has streamed, each hour's records are sorted in Node and the one copy per event_id that
 * every query sees is kept: the highest (ver, leaf, ingested_at) — `ver` is ReplacingMergeTree's
 * (and so FINAL's) choice, the rest only breaks ties deterministically.
 * Memory: one hour's compact records (60 bytes a row) plus write buffers; with `rows`, the rows'
 * RowBinary bytes are spilled too and read back in event id order.
 */
export interface CurrentLeaf {
  /** Hour, epoch seconds. */
  h: number;
  /** Ingestion second of the winning copy. */
  ia: number;
  leaf: Buffer;
  /** The event id as 16 big-endian bytes (uuidText gives the text). */
  key: Buffer;
  /** With `rows`: the row's RowBinary bytes from event_id on (rowbinary.ts writes the formats). */
  row?: Buffer;
}

export const leafId = (l: CurrentLeaf): string => uuidText(l.key, 0);

export interface LeavesOptions {
  /** An extra condition on the stored copies (the export's filters). */
  where?: SqlFragment;
  /** Also hand out each row's bytes (exports). */
  rows?: boolean;
  /** Worker threads for the canonical rows and their SHA-256 (0: on the calling thread). */
  workers?: number;
}

const DAY_MS = 86_400_000;
// Index record: key 16, ver 4, ia 4, leaf 32, then with rows: data offset 8 (double), length 4.
const KEY = 0,
  VER = 16,
  IA = 20,
  LEAF = 24,
  OFF = 56,
  LEN = 64;
const FLUSH = 1 << 18;
/** An hour's spilled rows up to this size are read back whole, larger ones row by row. */
const READ_WHOLE = 256 << 20;

class HourSpill {
  readonly idx: number;
  readonly data: number | undefined;
  readonly iw = new ByteWriter(FLUSH + 4096);
  readonly dw: ByteWriter | undefined;
  n = 0;
  dataOff = 0;
  constructor(
    dir: string,
    readonly h: number,
    rows: boolean,
  ) {
    this.idx = openSync(join(dir, `${h}.idx`), 'w+');
    this.data = rows ? openSync(join(dir, `${h}.rows`), 'w+') : undefined;
    this.dw = rows ? new ByteWriter(FLUSH + 65536) : undefined;
  }
  flush(): void {
    if (this.iw.pos > 0) writeAll(this.idx, this.iw);
    if (this.dw && this.dw.pos > 0) writeAll(this.data!, this.dw);
  }
  close(): void {
    closeSync(this.idx);
    if (this.data !== undefined) closeSync(this.data);
  }
}

function writeAll(fd: number, w: ByteWriter): void {
  let o = 0;
  while (o < w.pos) o += writeSync(fd, w.buf, o, w.pos - o);
  w.pos = 0;
}

function readAll(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  while (o < size) {
    const n = readSync(fd, b, o, size - o, o);
    if (n === 0) throw new StreamQueryError('spill file shorter than written');
    o += n;
  }
  return b;
}

/**
 * Streams the current row of every event_id of [fromMs, toMs) as (hour, key, ingestion second,
 * leaf), sorted by hour then event id, in batches.
 */
export async function* currentLeaves(
  db: LedgerDb,
  fromMs: number,
  toMs: number,
  opts: LeavesOptions = {},
): AsyncGenerator<CurrentLeaf[]> {
  if (!db.stream) throw new StreamQueryError('currentLeaves needs a streaming connection');
  const dir = mkdtempSync(join(tmpdir(), 'mcp-audit-leaves-'));
  try {
    // NOTE: one query per UTC day (a day partition): events are ordered by (client_id, ts, …), so a
    // ts range inside a day cannot skip granules.
    for (let day = Math.floor(fromMs / DAY_MS) * DAY_MS; day < toMs; day += DAY_MS) {
      const a = Math.max(day, fromMs);
      const b = Math.min(day + DAY_MS, toMs);
      if (a >= b) continue;
      const dayDir = mkdtempSync(join(dir, 'day-'));
      const spills = new Map<number, HourSpill>();
      try {
        await spillDay(db, dayDir, spills, a, b, opts);
        for (const s of [...spills.values()].sort((x, y) => x.h - y.h)) yield* sortedHour(s);
      } finally {
        for (const s of spills.values()) s.close();
        rmSync(dayDir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Worker threads building canonical rows and leaves (leaf-worker.ts), fed whole rows in batches. */
class LeafPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<
    number,
    { ok: (r: { out: Buffer; rows: Buffer }) => void; fail: (e: Error) => void }
  >();
  private seq = 0;
  private failed: Error | undefined;

  constructor(n: number) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL('./leaf-worker.js', import.meta.url), {
        workerData: { role: LEAF_WORKER },
      });
      w.on('message', (m: { id: number; out?: Uint8Array; rows?: Uint8Array; error?: string }) => {
        const p = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (!p) return;
        if (m.error !== undefined || !m.out || !m.rows)
          p.fail(new StreamQueryError(m.error ?? 'leaf worker failed'));
        else p.ok({ out: asBuffer(m.out), rows: asBuffer(m.rows) });
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new StreamQueryError(`leaf worker exited with ${code}`));
      });
      this.workers.push(w);
    }
  }

  private fail(err: Error) {
    this.failed ??= err;
    for (const p of this.waiting.values()) p.fail(err);
    this.waiting.clear();
  }

  /** `rows` (its own ArrayBuffer) is transferred to a worker and comes back with the records. */
  run(rows: Buffer): Promise<{ out: Buffer; rows: Buffer }> {
    if (this.failed) return Promise.reject(this.failed);
    const id = ++this.seq;
    const w = this.workers[id % this.workers.length]!;
    return new Promise((ok, fail) => {
      this.waiting.set(id, { ok, fail });
      w.postMessage({ id, rows }, [rows.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.failed ??= new StreamQueryError('leaf pool closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * Worker threads for leaves. NOTE: on the 2 shared cores of the bench machine they did not pay
 * (1M rows, alternating runs: 59k/79k rows/s on the calling thread against 45k/65k with two
 * workers: ClickHouse needs one of the two cores, and batches are copied to and from the workers),
 * so they are used only where there are more than two cores.
 */
export const DEFAULT_LEAF_WORKERS = leafWorkersFromEnv(process.env.MCP_AUDIT_LEDGER_WORKERS);

function leafWorkersFromEnv(v: string | undefined): number {
  if (v === undefined || v === '') return availableParallelism() > 2 ? 2 : 0;
  if (!/^[0-9]$/.test(v))
    throw new RangeError(`MCP_AUDIT_LEDGER_WORKERS must be 0-9 (worker threads), got ${JSON.stringify(v)}`);
  return Number(v);
}
const BATCH = 1 << 20;

/** Streams one day's copies unsorted and spills (key, ver, ia, leaf[, row]) per hour. */
async function spillDay(
  db: LedgerDb,
  dir: string,
  spills: Map<number, HourSpill>,
  fromMs: number,
  toMs: number,
  opts: LeavesOptions,
): Promise<void> {
  const events = sql`${dbIdent(db.database)}.events`;
  const q = sql`SELECT ${rowColumnsSql()} FROM ${events}
    WHERE ts >= toDateTime(${Math.floor(fromMs / 1000)}, 'UTC') AND ts < toDateTime(${Math.ceil(toMs / 1000)}, 'UTC')
      AND ${opts.where ?? sql`1`}
    FORMAT RowBinary`;
  const rows = opts.rows === true;
  const nWorkers = opts.workers ?? DEFAULT_LEAF_WORKERS;
  const pool = nWorkers > 0 ? new LeafPool(nWorkers) : undefined;
  const inFlight: Array<Promise<{ out: Buffer; rows: Buffer }>> = [];

  // One record (leaf-worker.ts's layout) into its hour's spill file; the row's bytes too for exports.
  const put = (out: Buffer, o: number, batch: Buffer, rowAt: number) => {
    const h = out.readUInt32LE(o);
    const len = out.readUInt32LE(o + 60);
    let s = spills.get(h);
    if (!s) {
      s = new HourSpill(dir, h, rows);
      spills.set(h, s);
    }
    const iw = s.iw;
    iw.room(68);
    const i = iw.pos;
    out.copy(iw.buf, i, o + 4, o + 60);
    if (s.dw) {
      iw.buf.writeDoubleLE(s.dataOff, i + OFF);
      iw.buf.writeUInt32LE(len, i + LEN);
      iw.pos = i + 68;
      s.dw.bytes(batch, rowAt + HEADER, rowAt + HEADER + len);
      s.dataOff += len;
    } else iw.pos = i + 56;
    s.n++;
    if (iw.pos >= FLUSH || (s.dw && s.dw.pos >= FLUSH)) s.flush();
    return rowAt + HEADER + len;
  };
  const apply = ({ out, rows: batch }: { out: Buffer; rows: Buffer }) => {
    for (let o = 0, p = 0; o < out.length; o += RECORD) p = put(out, o, batch, p);
  };

  try {
    // Chunks are appended to `acc`; whole rows are taken from its front, the partial tail moves to
    // its start. NOTE: on the calling thread (the default on two cores) each row is hashed where it
    // lies: one copy of the stream and one scan for row ends (the batch copies and the second scan
    // were a tenth of verify's time on 1M rows).
    const acc = new ByteWriter(BATCH + (1 << 16));
    const w = new ByteWriter();
    const rec = Buffer.allocUnsafe(RECORD);
    for await (const chunk of db.stream!(q)) {
      acc.bytes(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      const b = acc.buf;
      const end = acc.pos;
      let p = 0;
      if (!pool) {
        for (;;) {
          const e = p < end ? rowEnd(b, p, end) : -1;
          if (e < 0) break;
          leafRecord(b, p, e, w, rec, 0);
          put(rec, 0, b, p);
          p = e;
        }
        b.copy(b, 0, p, end);
        acc.pos = end - p;
        continue;
      }
      if (end < BATCH) continue;
      for (;;) {
        const e = p < end ? rowEnd(b, p, end) : -1;
        if (e < 0) break;
        p = e;
      }
      // A batch owns its ArrayBuffer (it is transferred to a worker).
      const batch = Buffer.from(new ArrayBuffer(p));
      b.copy(batch, 0, 0, p);
      b.copy(b, 0, p, end);
      acc.pos = end - p;
      inFlight.push(pool.run(batch));
      while (inFlight.length > 2 * nWorkers) apply(await inFlight.shift()!);
    }
    if (pool && acc.pos > 0) {
      const b = acc.buf;
      let p = 0;
      for (;;) {
        const e = p < acc.pos ? rowEnd(b, p, acc.pos) : -1;
        if (e < 0) break;
        p = e;
      }
      if (p > 0) {
        const batch = Buffer.from(new ArrayBuffer(p));
        b.copy(batch, 0, 0, p);
        b.copy(b, 0, p, acc.pos);
        acc.pos -= p;
        inFlight.push(pool.run(batch));
      }
    }
    if (acc.pos > 0) throw new StreamQueryError('the row stream ended inside a row (query failed mid-way?)');
    while (inFlight.length > 0) apply(await inFlight.shift()!);
  } finally {
    // Settle what is still running before the pool goes (its rejections are the error's echo).
    await Promise.allSettled(inFlight);
    await pool?.close();
  }
  for (const s of spills.values()) s.flush();
}

/** One hour's records sorted by event id, one per event id (the highest (ver, leaf, ia)), in batches. */
function* sortedHour(s: HourSpill): Generator<CurrentLeaf[]> {
  const R = s.data !== undefined ? 68 : 56;
  const idx = readAll(s.idx);
  const n = s.n;
  if (idx.length !== n * R) throw new StreamQueryError('spill file size does not match its rows');
  const k = new Uint32Array(n * 4);
  for (let i = 0, o = 0; i < n; i++, o += R) {
    k[4 * i] = idx.readUInt32BE(o);
    k[4 * i + 1] = idx.readUInt32BE(o + 4);
    k[4 * i + 2] = idx.readUInt32BE(o + 8);
    k[4 * i + 3] = idx.readUInt32BE(o + 12);
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort(
    (x, y) =>
      k[4 * x]! - k[4 * y]! ||
      k[4 * x + 1]! - k[4 * y + 1]! ||
      k[4 * x + 2]! - k[4 * y + 2]! ||
      k[4 * x + 3]! - k[4 * y + 3]!,
  );
  const sameKey = (x: number, y: number) =>
    k[4 * x] === k[4 * y] &&
    k[4 * x + 1] === k[4 * y + 1] &&
    k[4 * x + 2] === k[4 * y + 2] &&
    k[4 * x + 3] === k[4 * y + 3];
  // Copies of one event: the highest (ver, leaf, ingested_at) wins.
  const better = (x: number, y: number) => {
    const ox = x * R,
      oy = y * R;
    return (
      (idx.readUInt32LE(ox + VER) - idx.readUInt32LE(oy + VER) ||
        Buffer.compare(idx.subarray(ox + LEAF, ox + LEAF + 32), idx.subarray(oy + LEAF, oy + LEAF + 32)) ||
        idx.readUInt32LE(ox + IA) - idx.readUInt32LE(oy + IA)) > 0
    );
  };
  const whole = s.data !== undefined && s.dataOff <= READ_WHOLE ? readAll(s.data) : undefined;
  let out: CurrentLeaf[] = [];
  for (let i = 0; i < n;) {
    let win = order[i]!;
    let j = i + 1;
    for (; j < n && sameKey(order[j]!, win); j++) if (better(order[j]!, win)) win = order[j]!;
    i = j;
    const o = win * R;
    const l: CurrentLeaf = {
      h: s.h,
      ia: idx.readUInt32LE(o + IA),
      leaf: idx.subarray(o + LEAF, o + LEAF + 32),
      key: idx.subarray(o + KEY, o + KEY + 16),
    };
    if (s.data !== undefined) {
      const off = idx.readDoubleLE(o + OFF);
      const len = idx.readUInt32LE(o + LEN);
      if (whole) l.row = whole.subarray(off, off + len);
      else {
        const r = Buffer.allocUnsafe(len);
        if (readSync(s.data, r, 0, len, off) !== len)
          throw new StreamQueryError('spill file shorter than written');
        l.row = r;
      }
    }
    out.push(l);
    if (out.length >= 4096) {
      yield out;
      out = [];
    }
  }
  if (out.length) yield out;
}
