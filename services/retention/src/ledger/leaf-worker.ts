import { hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { ByteWriter, HEADER, rowEnd, uuidBytes, writeJson } from './rowbinary.js';

/**
 * Worker thread of leaves.ts: gets whole RowBinary rows, answers one record per row, in order:
 * hour u32, key 16 (event id big-endian), ver u32, ingested_at u32, leaf 32, row length u32 (from
 * event_id on). Building the canonical row and its SHA-256 is most of verify's CPU time.
 */
export const RECORD = 64;

export function leafRecords(b: Buffer): Buffer {
  let n = 0;
  for (let p = 0; p < b.length; n++) p = rowEnd(b, p, b.length);
  const out = Buffer.from(new ArrayBuffer(n * RECORD));
  const w = new ByteWriter();
  for (let p = 0, o = 0; p < b.length; o += RECORD) p = leafRecord(b, p, rowEnd(b, p, b.length), w, out, o);
  return out;
}

/**
 * The record of the whole row b[p, e) (e from rowEnd) at out[o], its canonical row built in `w`;
 * returns e. NOTE: one SHA-256 call per row (crypto.hash, one-shot): on this path the call's fixed
 * cost (~1 µs), not the bytes, is what hashing costs.
 */
export function leafRecord(b: Buffer, p: number, e: number, w: ByteWriter, out: Buffer, o: number): number {
  w.pos = 0;
  w.byte(0);
  writeJson(w, b, p + HEADER, 'canonical', 0, e);
  out.writeUInt32LE(b.readUInt32LE(p + 1), o);
  uuidBytes(b, p + HEADER, out, o + 4);
  out.writeUInt32LE(b.readUInt32LE(p + 9), o + 20);
  out.writeUInt32LE(b.readUInt32LE(p + 5), o + 24);
  hash('sha256', w.buf.subarray(0, w.pos), 'buffer').copy(out, o + 28);
  out.writeUInt32LE(e - p - HEADER, o + 60);
  return e;
}

/** Set by leaves.ts's pool: only its workers answer messages (this module is imported elsewhere too). */
export const LEAF_WORKER = 'mcp-audit-leaf-worker';

if ((workerData as { role?: string } | null)?.role === LEAF_WORKER)
  parentPort?.on('message', (m: { id: number; rows: Uint8Array }) => {
    try {
      const out = leafRecords(Buffer.from(m.rows.buffer, m.rows.byteOffset, m.rows.byteLength));
      // The rows go back too (exports spill them).
      parentPort!.postMessage({ id: m.id, out, rows: m.rows }, [
        out.buffer as ArrayBuffer,
        m.rows.buffer as ArrayBuffer,
      ]);
    } catch (err) {
      parentPort!.postMessage({ id: m.id, error: (err as Error).message });
    }
  });
