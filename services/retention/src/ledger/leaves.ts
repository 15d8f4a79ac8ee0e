import { hash } from 'node:crypto';
import { dbIdent, ident, join, sql, type SqlFragment } from '@mcp-audit/clickhouse';
import { CANONICAL_COLUMNS, CANONICAL_COLUMN_NAMES } from './canonical.js';
import type { LedgerDb } from './hours.js';
import { RowBinaryReader, StreamQueryError } from './stream.js';

/**
 * Leaves computed in Node from the stored bytes. ClickHouse only reads and sorts: it sends each
 * copy's columns (numbers already as decimal text, strings and arrays as stored) in RowBinary,
 * sorted by hour and event id text; Node writes the canonical row (LEDGER.md §2) byte by byte,
 * hashes it, and keeps one copy per event_id (the highest (ver, leaf, ingested_at)).
 * NOTE: the same canonicalisation in SQL (canonical.ts) cost ~20 µs a row on 18.16 (34 replaceAll
 * passes, the control-byte regex, SHA256 on two cores shared with everything else); it stays for
 * the row-level diff and the export, and test/canonical.test.ts keeps the two in agreement.
 */
type Kind = 'raw' | 'quoted' | 'string' | 'array';
const COLS = new Set(CANONICAL_COLUMN_NAMES);
// NOTE: aliases differ from the column names: 18.16 substitutes an alias named like a column into
// that column's other uses.
const ALIASES = new Set(CANONICAL_COLUMN_NAMES.map((n) => `c_${n}`));
const alias = (n: string) => ident(`c_${n}`, ALIASES);
const KINDS: Kind[] = CANONICAL_COLUMNS.map((c) =>
  c.type === 'uuid' ? 'quoted' : c.type === 'string' ? 'string' : c.type === 'string_array' ? 'array' : 'raw',
);

function columnsSql(): SqlFragment {
  return join(
    CANONICAL_COLUMNS.map(({ name, type }) => {
      const x = ident(name, COLS);
      const e = (() => {
        switch (type) {
          case 'uuid':
          case 'uint':
          case 'uint64':
            return sql`toString(${x})`;
          case 'datetime':
            return sql`toString(toUInt32(${x}))`;
          case 'nullable_int':
            return sql`ifNull(toString(${x}), 'null')`;
          case 'string':
          case 'string_array':
            return x;
        }
      })();
      return sql`${e} AS ${alias(name)}`;
    }),
  );
}

function sentinelSql(): SqlFragment {
  return join(
    CANONICAL_COLUMNS.map(({ name, type }) =>
      type === 'string_array' ? sql`emptyArrayString() AS ${alias(name)}` : sql`'' AS ${alias(name)}`,
    ),
  );
}

const SENTINEL = 0xffffffff;
// JSON.stringify's escapes for bytes below 0x20 and for `"` and `\` (LEDGER.md §2).
const ESC: Array<Buffer | undefined> = Array.from({ length: 256 }, (_, b) => {
  if (b === 0x22) return Buffer.from('\\"');
  if (b === 0x5c) return Buffer.from('\\\\');
  if (b >= 0x20) return undefined;
  const short: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
  return Buffer.from(short[b] ?? `\\u${b.toString(16).padStart(4, '0')}`);
});

/** Canonical-row writer over a growing scratch buffer (byte 0 is the leaf's 0x00 prefix). */
class RowWriter {
  buf = Buffer.alloc(1 << 16);
  pos = 1;
  reset() {
    this.pos = 1;
  }
  private room(n: number) {
    if (this.pos + n > this.buf.length) {
      const b = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
      this.buf.copy(b, 0, 0, this.pos);
      this.buf = b;
    }
  }
  byte(b: number) {
    this.room(1);
    this.buf[this.pos++] = b;
  }
  raw(s: Buffer) {
    this.room(s.length);
    s.copy(this.buf, this.pos);
    this.pos += s.length;
  }
  escaped(s: Buffer) {
    this.room(s.length * 6 + 2);
    const d = this.buf;
    let p = this.pos;
    d[p++] = 0x22;
    for (let i = 0; i < s.length; i++) {
      const b = s[i]!;
      const e = b < 0x20 || b === 0x22 || b === 0x5c ? ESC[b] : undefined;
      if (e === undefined) d[p++] = b;
      else {
        e.copy(d, p);
        p += e.length;
      }
    }
    d[p++] = 0x22;
    this.pos = p;
  }
}

export interface CurrentLeaf {
  /** Hour, epoch seconds. */
  h: number;
  id: string;
  /** Ingestion second of the winning copy. */
  ia: number;
  leaf: Buffer;
  /** With `rows`: the canonical row's bytes and the UInt64 columns' exact digits. */
  canonical?: Buffer;
  u64?: { request_bytes: string; response_bytes: string };
}

export interface LeavesOptions {
  /** An extra condition on the stored copies (the export's filters). */
  where?: SqlFragment;
  /** Also hand out each row's canonical bytes (exports). */
  rows?: boolean;
}

const REQ = CANONICAL_COLUMN_NAMES.indexOf('request_bytes');
const RESP = CANONICAL_COLUMN_NAMES.indexOf('response_bytes');

/**
 * Streams the current row of every event_id of [fromMs, toMs) as (hour, id, ingestion second,
 * leaf), sorted by hour then event id text. Memory: one row at a time.
 */
export async function* currentLeaves(
  db: LedgerDb,
  fromMs: number,
  toMs: number,
  opts: LeavesOptions = {},
): AsyncGenerator<CurrentLeaf[]> {
  if (!db.stream) throw new StreamQueryError('currentLeaves needs a streaming connection');
  const events = sql`${dbIdent(db.database)}.events`;
  const q = sql`SELECT h, ia, c_ver_, ${join(CANONICAL_COLUMN_NAMES.map(alias))} FROM (
      SELECT toUInt32(toStartOfHour(ts)) AS h, toUInt32(ingested_at) AS ia, toUInt32(ver) AS c_ver_, ${columnsSql()}
      FROM ${events}
      WHERE ts >= toDateTime(${Math.floor(fromMs / 1000)}, 'UTC') AND ts < toDateTime(${Math.ceil(toMs / 1000)}, 'UTC')
        AND ${opts.where ?? sql`1`}
      UNION ALL SELECT toUInt32(${SENTINEL}) AS h, toUInt32(0) AS ia, toUInt32(0) AS c_ver_, ${sentinelSql()}
    ) ORDER BY h, c_event_id FORMAT RowBinary`;
  const r = new RowBinaryReader();
  const w = new RowWriter();
  let ended = false;
  let best: (CurrentLeaf & { ver: number }) | undefined;
  const fields: Array<Buffer | Buffer[]> = new Array(KINDS.length);
  for await (const chunk of db.stream(q)) {
    if (ended) throw new StreamQueryError('bytes after the end of the row stream');
    r.push(chunk);
    const out: CurrentLeaf[] = [];
    for (;;) {
      const m = r.mark();
      const h = r.u32();
      const ia = r.u32();
      const ver = r.u32();
      if (h === undefined || ia === undefined || ver === undefined) {
        r.rewind(m);
        break;
      }
      let complete = true;
      for (let i = 0; i < KINDS.length && complete; i++) {
        if (KINDS[i] === 'array') {
          const n = r.varint();
          if (n === undefined) complete = false;
          else {
            const items: Buffer[] = [];
            for (let j = 0; j < n && complete; j++) {
              const s = r.string();
              if (s === undefined) complete = false;
              else items.push(s);
            }
            fields[i] = items;
          }
        } else {
          const s = r.string();
          if (s === undefined) complete = false;
          else fields[i] = s;
        }
      }
      if (!complete) {
        r.rewind(m);
        break;
      }
      if (h === SENTINEL) {
        ended = true;
        if (r.remaining > 0) throw new StreamQueryError('bytes after the end of the row stream');
        break;
      }
      w.reset();
      w.byte(0x5b);
      for (let i = 0; i < KINDS.length; i++) {
        if (i > 0) w.byte(0x2c);
        const f = fields[i]!;
        switch (KINDS[i]) {
          case 'raw':
            w.raw(f as Buffer);
            break;
          case 'quoted':
            w.byte(0x22);
            w.raw(f as Buffer);
            w.byte(0x22);
            break;
          case 'string':
            w.escaped(f as Buffer);
            break;
          case 'array': {
            w.byte(0x5b);
            (f as Buffer[]).forEach((s, j) => {
              if (j > 0) w.byte(0x2c);
              w.escaped(s);
            });
            w.byte(0x5d);
          }
        }
      }
      w.byte(0x5d);
      w.buf[0] = 0;
      const leaf = hash('sha256', w.buf.subarray(0, w.pos), 'buffer');
      const id = (fields[0] as Buffer).toString('latin1');
      const make = (): CurrentLeaf & { ver: number } =>
        opts.rows
          ? {
              h,
              id,
              ia,
              ver,
              leaf,
              canonical: Buffer.from(w.buf.subarray(1, w.pos)),
              u64: {
                request_bytes: (fields[REQ] as Buffer).toString('latin1'),
                response_bytes: (fields[RESP] as Buffer).toString('latin1'),
              },
            }
          : { h, id, ia, ver, leaf };
      if (best && best.h === h && best.id === id) {
        // Another copy of the same event: the highest (ver, leaf, ingested_at) wins.
        const c = ver - best.ver || Buffer.compare(leaf, best.leaf) || ia - best.ia;
        if (c > 0) best = make();
        continue;
      }
      if (best) out.push(best);
      best = make();
    }
    if (ended && best) {
      out.push(best);
      best = undefined;
    }
    if (out.length) yield out;
  }
  if (!ended) throw new StreamQueryError('the row stream ended early (query failed mid-way?)');
}
