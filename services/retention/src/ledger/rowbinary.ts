import { ident, join, sql, type SqlFragment } from '@mcp-audit/clickhouse';
import {
  CANONICAL_COLUMNS,
  CANONICAL_COLUMN_NAMES,
  type CanonicalValues,
  type ColumnType,
} from './canonical.js';

/**
 * The events rows as ClickHouse stores them, in RowBinary, and the bytes Node writes from them
 * without building JavaScript values: the canonical row (LEDGER.md §2), and the export formats.
 *
 * A row on the wire: 0x01 (a row marker), hour UInt32 (epoch s), ingested_at UInt32, ver UInt32,
 * then the 39 canonical columns in their native encoding: event_id UUID (16 bytes: two UInt64
 * halves, each little-endian), ts UInt32, the small unsigned columns as UInt32, request/response
 * bytes UInt64, the nullable ints as Nullable(Int64) (a null byte, then 8 bytes when not null),
 * strings (LEB128 length + the stored bytes) and arrays of strings (LEB128 count + strings).
 * NOTE: ClickHouse reports an error that happens after the first bytes by appending its message to
 * the body ("Code: …"); a row that does not start with the marker, or a body that ends inside a row,
 * is refused, never taken as a short result.
 */
export const ROW_MARKER = 0x01;

type Wire = 'uuid' | 'u32' | 'u64' | 'nint' | 'str' | 'arr';
const WIRE: Record<ColumnType, Wire> = {
  uuid: 'uuid',
  datetime: 'u32',
  uint: 'u32',
  uint64: 'u64',
  nullable_int: 'nint',
  string: 'str',
  string_array: 'arr',
};
const W: Wire[] = CANONICAL_COLUMNS.map((c) => WIRE[c.type]);
const UUID = 0,
  U32 = 1,
  U64 = 2,
  NINT = 3,
  STR = 4,
  ARR = 5;
const WCODE: Record<Wire, number> = { uuid: UUID, u32: U32, u64: U64, nint: NINT, str: STR, arr: ARR };
const CODES = Uint8Array.from(W.map((w) => WCODE[w]));
const NCOLS = CODES.length;

const COLS = new Set(CANONICAL_COLUMN_NAMES);
// NOTE: aliases differ from the column names: 18.16 substitutes an alias named like a column into
// that column's other uses (`toUInt32(ts) AS ts` would change `toStartOfHour(ts)`).
const ALIASES = new Set(CANONICAL_COLUMN_NAMES.map((n) => `c_${n}`));

/** The select list of a row: marker, hour, ingested_at, ver, then the canonical columns. */
export function rowColumnsSql(): SqlFragment {
  const cols = CANONICAL_COLUMNS.map(({ name, type }) => {
    const x = ident(name, COLS);
    const a = ident(`c_${name}`, ALIASES);
    switch (WIRE[type]) {
      case 'u32':
        return sql`toUInt32(${x}) AS ${a}`;
      case 'nint':
        return sql`CAST(${x} AS Nullable(Int64)) AS ${a}`;
      default:
        return sql`${x} AS ${a}`;
    }
  });
  return join([
    sql`toUInt8(${ROW_MARKER}) AS c_marker_`,
    sql`toUInt32(toStartOfHour(ts)) AS c_hour_`,
    sql`toUInt32(ingested_at) AS c_ia_`,
    sql`toUInt32(ver) AS c_ver_`,
    ...cols,
  ]);
}

/** Bytes of the row header (marker, hour, ingested_at, ver); event_id's 16 bytes follow it. */
export const HEADER = 13;

/** LEB128 at p: [value, next position], or undefined past `end`. */
function varint(b: Buffer, p: number, end: number): number {
  if (p < end && b[p]! < 0x80) {
    scanPos = p + 1;
    return b[p]!;
  }
  let v = 0;
  let shift = 0;
  for (;;) {
    if (p >= end) return -1;
    const x = b[p++]!;
    v += (x & 0x7f) * 2 ** shift;
    shift += 7;
    if ((x & 0x80) === 0) break;
  }
  scanPos = p;
  return v;
}
let scanPos = 0;

/**
 * End of the row starting at p (exclusive), or -1 when `b` ends inside it. Throws when the row does
 * not start with the marker (an error message ClickHouse appended, or a broken stream).
 */
export function rowEnd(b: Buffer, p: number, end: number): number {
  if (b[p] !== ROW_MARKER) throw new RowStreamError(b, p, end);
  p += HEADER;
  for (let i = 0; i < NCOLS; i++) {
    switch (CODES[i]) {
      case UUID:
        p += 16;
        break;
      case U32:
        p += 4;
        break;
      case U64:
        p += 8;
        break;
      case NINT:
        if (p >= end) return -1;
        p += b[p] === 0 ? 9 : 1;
        break;
      case STR: {
        const n = varint(b, p, end);
        if (n < 0) return -1;
        p = scanPos + n;
        break;
      }
      case ARR: {
        let k = varint(b, p, end);
        if (k < 0) return -1;
        p = scanPos;
        while (k-- > 0) {
          const n = varint(b, p, end);
          if (n < 0) return -1;
          p = scanPos + n;
        }
      }
    }
    if (p > end) return -1;
  }
  return p;
}

export class RowStreamError extends Error {
  readonly code = 'AUDIT_ERR_CLICKHOUSE_STREAM';
  constructor(b: Buffer, p: number, end: number) {
    const text = b.subarray(p, Math.min(end, p + 500)).toString('utf8');
    super(`ClickHouse row stream broken (query failed mid-way?): ${JSON.stringify(text)}`);
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const HEXB = Uint8Array.from(HEX.join(''), (c) => c.charCodeAt(0));
const UUID_ORDER = [7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8];

/** The 16 UUID bytes big-endian (the order of the lowercase text) from its RowBinary form at p. */
export function uuidBytes(b: Buffer, p: number, out: Buffer, o: number): void {
  for (let i = 0; i < 16; i++) out[o + i] = b[p + UUID_ORDER[i]!]!;
}

/** Lowercase 8-4-4-4-12 text of 16 big-endian UUID bytes. */
export function uuidText(b: Buffer, o: number): string {
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += HEX[b[o + i]!]!;
  }
  return s;
}

// JSON.stringify's escapes for bytes below 0x20 and for `"` and `\` (LEDGER.md §2).
const ESC: Array<Uint8Array | undefined> = Array.from({ length: 256 }, (_, c) => {
  if (c === 0x22) return Buffer.from('\\"');
  if (c === 0x5c) return Buffer.from('\\\\');
  if (c >= 0x20) return undefined;
  const short: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
  return Buffer.from(short[c] ?? `\\u${c.toString(16).padStart(4, '0')}`);
});
const NEEDS = Uint8Array.from({ length: 256 }, (_, c) => (c < 0x20 || c === 0x22 || c === 0x5c ? 1 : 0));

/** Bytes written into a growing buffer (rows, then files' chunks). */
export class ByteWriter {
  buf: Buffer;
  pos = 0;
  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafe(size);
  }
  room(n: number): void {
    if (this.pos + n > this.buf.length) {
      const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
      this.buf.copy(b, 0, 0, this.pos);
      this.buf = b;
    }
  }
  byte(c: number): void {
    if (this.pos >= this.buf.length) this.room(1);
    this.buf[this.pos++] = c;
  }
  bytes(src: Buffer, a = 0, z = src.length): void {
    const n = z - a;
    this.room(n);
    const d = this.buf;
    let p = this.pos;
    // NOTE: Buffer#copy, not set(subarray()): a subarray per row cost more than the copy itself.
    if (n < 64) for (let i = a; i < z; i++) d[p++] = src[i]!;
    else p += src.copy(d, p, a, z);
    this.pos = p;
  }
  /** Decimal digits of a safe integer. */
  int(v: number): void {
    this.room(21);
    this.pos = digits(this.buf, this.pos, v);
  }
  ascii(s: string): void {
    this.room(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }
  utf8(s: string): void {
    this.room(s.length * 3);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
  /** A JSON string of the stored bytes b[a, z) (LEDGER.md §2's escapes). */
  jsonString(b: Buffer, a: number, z: number): void {
    this.room((z - a) * 6 + 2);
    this.pos = jsonStr(this.buf, this.pos, b, a, z);
  }
  /** Takes the bytes written so far (a new buffer continues). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = 0;
    return out;
  }
}

/** UInt64 at b[p] as digits at d[o]; returns the new position. */
function u64(d: Buffer, o: number, b: Buffer, p: number): number {
  const hi = b.readUInt32LE(p + 4);
  if (hi < 0x200000) return digits(d, o, hi * 0x100000000 + b.readUInt32LE(p));
  return o + d.write(b.readBigUInt64LE(p).toString(), o, 'latin1');
}

/** Int64 at b[p] as digits at d[o]; returns the new position. */
function i64(d: Buffer, o: number, b: Buffer, p: number): number {
  const hi = b.readInt32LE(p + 4);
  if (hi >= -0x200000 && hi < 0x200000) return digits(d, o, hi * 0x100000000 + b.readUInt32LE(p));
  return o + d.write(b.readBigInt64LE(p).toString(), o, 'latin1');
}

function uuidQuoted(w: ByteWriter, b: Buffer, p: number): void {
  w.room(38);
  w.pos = uuidAt(w.buf, w.pos, b, p);
}

/** The quoted lowercase text of the RowBinary UUID at b[p], at d[o]; returns the new position. */
function uuidAt(d: Buffer, o: number, b: Buffer, p: number): number {
  d[o++] = 0x22;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) d[o++] = 0x2d;
    const x = b[p + UUID_ORDER[i]!]! * 2;
    d[o++] = HEXB[x]!;
    d[o++] = HEXB[x + 1]!;
  }
  d[o++] = 0x22;
  return o;
}

/** How a row is written: the canonical array, or the NDJSON object (keys, UInt64 as strings). */
export type JsonShape = 'canonical' | 'ndjson';
const KEYS = CANONICAL_COLUMN_NAMES.map((n, i) => Buffer.from(`${i === 0 ? '{' : ','}"${n}":`));
const IA_KEY = Buffer.from(',"ingested_at":');

/**
 * Writes the row at p (from the event_id on: p = row start + HEADER) as JSON and returns the row's
 * end. `canonical`: LEDGER.md §2's array; `ndjson`: the export's object (the same values under the
 * column names, request/response bytes as decimal strings, then ingested_at).
 * NOTE: one function with local positions (no per-value method calls): this loop runs once per row
 * and was the largest cost of verify after SHA-256.
 */
export function writeJson(
  w: ByteWriter,
  b: Buffer,
  p: number,
  shape: JsonShape,
  ia = 0,
  end = b.length,
): number {
  const nd = shape === 'ndjson';
  // Worst case: every byte escaped as \u00xx, plus keys, digits and punctuation.
  w.room((end - p) * 6 + 1024);
  const d = w.buf;
  let o = w.pos;
  if (!nd) d[o++] = 0x5b;
  for (let i = 0; i < NCOLS; i++) {
    if (nd) {
      const k = KEYS[i]!;
      for (let j = 0; j < k.length; j++) d[o++] = k[j]!;
    } else if (i > 0) d[o++] = 0x2c;
    switch (CODES[i]) {
      case UUID:
        o = uuidAt(d, o, b, p);
        p += 16;
        break;
      case U32:
        o = digits(d, o, b.readUInt32LE(p));
        p += 4;
        break;
      case U64: {
        if (nd) d[o++] = 0x22;
        o = u64(d, o, b, p);
        if (nd) d[o++] = 0x22;
        p += 8;
        break;
      }
      case NINT:
        if (b[p] === 0) {
          o = i64(d, o, b, p + 1);
          p += 9;
        } else {
          d[o++] = 0x6e;
          d[o++] = 0x75;
          d[o++] = 0x6c;
          d[o++] = 0x6c;
          p += 1;
        }
        break;
      case STR: {
        const n = varint(b, p, end);
        p = scanPos;
        o = jsonStr(d, o, b, p, p + n);
        p += n;
        break;
      }
      case ARR: {
        let k = varint(b, p, end);
        p = scanPos;
        d[o++] = 0x5b;
        for (let j = 0; k-- > 0; j++) {
          if (j > 0) d[o++] = 0x2c;
          const n = varint(b, p, end);
          p = scanPos;
          o = jsonStr(d, o, b, p, p + n);
          p += n;
        }
        d[o++] = 0x5d;
      }
    }
  }
  if (nd) {
    for (let j = 0; j < IA_KEY.length; j++) d[o++] = IA_KEY[j]!;
    o = digits(d, o, ia);
    d[o++] = 0x7d;
  } else d[o++] = 0x5d;
  w.pos = o;
  return p;
}

/** Decimal digits of a safe integer at d[o]; returns the new position. */
function digits(d: Buffer, o: number, v: number): number {
  if (v < 0) {
    d[o++] = 0x2d;
    v = -v;
  }
  if (v < 10) {
    d[o++] = 0x30 + v;
    return o;
  }
  let n = 0;
  for (let x = v; x >= 1; x = Math.floor(x / 10)) n++;
  let q = o + n;
  for (let x = v; x >= 1; x = Math.floor(x / 10)) d[--q] = 0x30 + (x % 10);
  return o + n;
}

/** A JSON string of b[a, z) at d[o] (LEDGER.md §2's escapes); returns the new position. */
function jsonStr(d: Buffer, o: number, b: Buffer, a: number, z: number): number {
  d[o++] = 0x22;
  for (let i = a; i < z; i++) {
    const c = b[i]!;
    if (NEEDS[c] === 0) d[o++] = c;
    else {
      const e = ESC[c]!;
      for (let j = 0; j < e.length; j++) d[o++] = e[j]!;
    }
  }
  d[o++] = 0x22;
  return o;
}

// NOTE: spreadsheets run a cell starting with one of these as a formula (CSV injection). Such a
// string gets a leading `'`; a string starting with `'` gets one too, so the rule is reversible.
const CSV_TRIGGER = new Set([0x3d, 0x2b, 0x2d, 0x40, 0x09, 0x0d, 0x27]);

function csvCell(w: ByteWriter, b: Buffer, a: number, z: number): void {
  w.room((z - a) * 2 + 3);
  const d = w.buf;
  let p = w.pos;
  d[p++] = 0x22;
  if (z > a && CSV_TRIGGER.has(b[a]!)) d[p++] = 0x27;
  for (let i = a; i < z; i++) {
    const c = b[i]!;
    d[p++] = c;
    if (c === 0x22) d[p++] = 0x22;
  }
  d[p++] = 0x22;
  w.pos = p;
}

/** Writes the row at p (from the event_id on) as one CSV record (formats.ts's layout); returns its end. */
export function writeCsv(w: ByteWriter, b: Buffer, p: number, ia: number, scratch: ByteWriter): number {
  for (let i = 0; i < NCOLS; i++) {
    if (i > 0) w.byte(0x2c);
    switch (CODES[i]) {
      case UUID: {
        uuidQuoted(w, b, p);
        p += 16;
        break;
      }
      case U32:
        w.int(b.readUInt32LE(p));
        p += 4;
        break;
      case U64:
        w.room(21);
        w.pos = u64(w.buf, w.pos, b, p);
        p += 8;
        break;
      case NINT:
        if (b[p] === 0) {
          w.room(21);
          w.pos = i64(w.buf, w.pos, b, p + 1);
          p += 9;
        } else p += 1;
        break;
      case STR: {
        const n = varint(b, p, b.length);
        p = scanPos;
        csvCell(w, b, p, p + n);
        p += n;
        break;
      }
      case ARR: {
        // The array's JSON text, as a CSV cell.
        let k = varint(b, p, b.length);
        p = scanPos;
        scratch.pos = 0;
        scratch.byte(0x5b);
        for (let j = 0; k-- > 0; j++) {
          if (j > 0) scratch.byte(0x2c);
          const n = varint(b, p, b.length);
          p = scanPos;
          scratch.jsonString(b, p, p + n);
          p += n;
        }
        scratch.byte(0x5d);
        csvCell(w, scratch.buf, 0, scratch.pos);
      }
    }
  }
  w.byte(0x2c);
  w.int(ia);
  w.byte(0x0d);
  w.byte(0x0a);
  return p;
}

/** The row at p (from the event_id on) as canonical values (UInt64 as decimal text), for OCSF. */
export function readValues(b: Buffer, p: number, scratch: ByteWriter): CanonicalValues {
  const v: CanonicalValues = {};
  for (let i = 0; i < NCOLS; i++) {
    const name = CANONICAL_COLUMN_NAMES[i]!;
    switch (CODES[i]) {
      case UUID:
        scratch.pos = 0;
        uuidQuoted(scratch, b, p);
        v[name] = scratch.buf.toString('latin1', 1, 37);
        p += 16;
        break;
      case U32:
        v[name] = b.readUInt32LE(p);
        p += 4;
        break;
      case U64:
        v[name] = b.readBigUInt64LE(p).toString();
        p += 8;
        break;
      case NINT:
        if (b[p] === 0) {
          v[name] = Number(b.readBigInt64LE(p + 1));
          p += 9;
        } else {
          v[name] = null;
          p += 1;
        }
        break;
      case STR: {
        const n = varint(b, p, b.length);
        p = scanPos;
        v[name] = b.toString('utf8', p, p + n);
        p += n;
        break;
      }
      case ARR: {
        let k = varint(b, p, b.length);
        p = scanPos;
        const items: string[] = [];
        while (k-- > 0) {
          const n = varint(b, p, b.length);
          p = scanPos;
          items.push(b.toString('utf8', p, p + n));
          p += n;
        }
        v[name] = items;
      }
    }
  }
  return v;
}
