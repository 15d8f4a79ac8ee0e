import { CANONICAL_COLUMNS, canonicalRow, type CanonicalValues } from '../ledger/canonical.js';
import { ByteWriter, readValues, writeCsv, writeJson } from '../ledger/rowbinary.js';
import { toOcsf, type OcsfContext } from './ocsf.js';

export const FORMATS = ['ndjson', 'csv', 'ocsf'] as const;
export type ExportFormat = (typeof FORMATS)[number];
export const FILE_SUFFIX: Record<ExportFormat, string> = { ndjson: 'ndjson', csv: 'csv', ocsf: 'ocsf.json' };

/** One exported event: its canonical values (UInt64 columns as decimal strings) and ingestion second. */
export interface ExportRow {
  values: CanonicalValues;
  /** The canonical row text (LEDGER.md §2). */
  canonical: string;
  ingestedAt: number;
}

export const CSV_HEADER = [...CANONICAL_COLUMNS.map((c) => c.name), 'ingested_at'];

// NOTE: spreadsheets run a cell starting with one of these as a formula (CSV injection). Such a
// string gets a leading `'`; a string starting with `'` gets one too, so the rule is reversible.
const CSV_TRIGGER = /^[=+\-@\t\r']/;

function csvString(s: string): string {
  const v = CSV_TRIGGER.test(s) ? `'${s}` : s;
  return `"${v.replace(/"/g, '""')}"`;
}

export function encodeRow(format: ExportFormat, r: ExportRow, ctx: OcsfContext): string {
  switch (format) {
    case 'ndjson':
      return `${JSON.stringify({ ...r.values, ingested_at: r.ingestedAt })}\n`;
    case 'ocsf':
      return `${JSON.stringify(toOcsf(r.values, r.canonical, r.ingestedAt, ctx))}\n`;
    case 'csv': {
      const cells: string[] = [];
      for (const { name, type } of CANONICAL_COLUMNS) {
        const x = r.values[name];
        if (type === 'string' || type === 'uuid') cells.push(csvString(x as string));
        else if (type === 'string_array') cells.push(csvString(JSON.stringify(x)));
        else cells.push(x === null ? '' : String(x));
      }
      cells.push(String(r.ingestedAt));
      return `${cells.join(',')}\r\n`;
    }
  }
}

/**
 * Writes one exported row straight from its RowBinary bytes (leaves.ts's `row`): NDJSON and CSV
 * byte by byte (the same bytes encodeRow makes, without JSON.parse/JSON.stringify per row); OCSF
 * builds its object from the decoded values. `scratch` is reused between rows.
 */
export function writeRow(
  format: ExportFormat,
  w: ByteWriter,
  row: Buffer,
  ingestedAt: number,
  scratch: ByteWriter,
  ctx: OcsfContext,
): void {
  switch (format) {
    case 'ndjson':
      writeJson(w, row, 0, 'ndjson', ingestedAt);
      w.byte(0x0a);
      return;
    case 'csv':
      writeCsv(w, row, 0, ingestedAt, scratch);
      return;
    case 'ocsf': {
      scratch.pos = 0;
      writeJson(scratch, row, 0, 'canonical');
      const raw = scratch.buf.toString('utf8', 0, scratch.pos);
      w.utf8(`${JSON.stringify(toOcsf(readValues(row, 0, scratch), raw, ingestedAt, ctx))}\n`);
    }
  }
}

export const csvHeaderLine = () => `${CSV_HEADER.join(',')}\r\n`;

export class RowFormatError extends Error {
  readonly code = 'AUDIT_ERR_BUNDLE_ROW';
}

const INT = /^-?(0|[1-9][0-9]*)$/;

/** Canonical values from a parsed JSON object/array of the NDJSON shape (UInt64 kept as text). */
function valuesFromObject(o: Record<string, unknown>): CanonicalValues {
  const v: CanonicalValues = {};
  for (const { name } of CANONICAL_COLUMNS) {
    if (!(name in o)) throw new RowFormatError(`missing column ${name}`);
    v[name] = o[name];
  }
  return v;
}

/** Parses one NDJSON line back into an ExportRow (the canonical row rebuilt from the fields). */
export function decodeNdjson(line: string): ExportRow {
  const o = JSON.parse(line) as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => k !== 'ingested_at' && !CSV_HEADER.includes(k));
  if (extra.length) throw new RowFormatError(`unknown field ${extra[0]}`);
  const values = valuesFromObject(o);
  if (typeof o.ingested_at !== 'number') throw new RowFormatError('ingested_at is not a number');
  return { values, canonical: canonicalRow(values), ingestedAt: o.ingested_at };
}

/** Parses an OCSF line: the canonical row is `raw_data`; the object must be exactly its mapping. */
export function decodeOcsf(line: string, ctx: OcsfContext): ExportRow & { object: Record<string, unknown> } {
  const o = JSON.parse(line) as Record<string, unknown>;
  const raw = o.raw_data;
  const un = o.unmapped as Record<string, unknown> | undefined;
  if (typeof raw !== 'string' || !un) throw new RowFormatError('raw_data or unmapped missing');
  const arr = JSON.parse(raw) as unknown[];
  if (!Array.isArray(arr) || arr.length !== CANONICAL_COLUMNS.length)
    throw new RowFormatError('raw_data is not a canonical row');
  const values: CanonicalValues = {};
  CANONICAL_COLUMNS.forEach(({ name }, i) => (values[name] = arr[i]));
  // The UInt64 columns exactly (JSON.parse would round them): the text must rebuild raw_data.
  values.request_bytes = un.request_bytes;
  values.response_bytes = un.response_bytes;
  if (canonicalRow(values) !== raw) throw new RowFormatError('raw_data does not rebuild from its values');
  if (typeof un.ingested_at !== 'number') throw new RowFormatError('unmapped.ingested_at is not a number');
  void ctx;
  return { values, canonical: raw, ingestedAt: un.ingested_at, object: o };
}

/** Splits CSV text into records (RFC 4180: quoted cells may hold CR/LF), incrementally. */
export class CsvParser {
  private cell = '';
  private row: string[] = [];
  private quoted = false;
  private inQuotes = false;
  private afterQuote = false;
  private pendingCr = false;
  readonly records: Array<Array<{ text: string; quoted: boolean }>> = [];
  private cells: Array<{ text: string; quoted: boolean }> = [];

  push(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (this.inQuotes) {
        if (ch === '"') {
          if (text[i + 1] === '"') {
            this.cell += '"';
            i++;
          } else if (i + 1 === text.length) {
            // A quote at the end of a chunk: decide on the next chunk.
            this.inQuotes = false;
            this.afterQuote = true;
          } else {
            this.inQuotes = false;
          }
        } else this.cell += ch;
        continue;
      }
      if (this.afterQuote) {
        this.afterQuote = false;
        if (ch === '"') {
          this.cell += '"';
          this.inQuotes = true;
          continue;
        }
      }
      if (this.pendingCr) {
        this.pendingCr = false;
        if (ch !== '\n') throw new RowFormatError('bare CR outside quotes');
        this.endRecord();
        continue;
      }
      if (ch === '"') {
        if (this.cell !== '' || this.quoted) throw new RowFormatError('quote inside an unquoted cell');
        this.quoted = true;
        this.inQuotes = true;
      } else if (ch === ',') this.endCell();
      else if (ch === '\r') this.pendingCr = true;
      else if (ch === '\n') this.endRecord();
      else this.cell += ch;
    }
  }

  private endCell() {
    this.cells.push({ text: this.cell, quoted: this.quoted });
    this.cell = '';
    this.quoted = false;
  }

  private endRecord() {
    this.endCell();
    this.records.push(this.cells);
    this.cells = [];
  }

  /** True when no record is half read. */
  get idle(): boolean {
    return this.cells.length === 0 && this.cell === '' && !this.quoted && !this.inQuotes && !this.pendingCr;
  }
}

/** One CSV record (cells) back into an ExportRow. */
export function decodeCsv(cells: Array<{ text: string; quoted: boolean }>): ExportRow {
  if (cells.length !== CSV_HEADER.length)
    throw new RowFormatError(`${cells.length} cells, expected ${CSV_HEADER.length}`);
  const values: CanonicalValues = {};
  CANONICAL_COLUMNS.forEach(({ name, type }, i) => {
    const c = cells[i]!;
    if (type === 'string' || type === 'uuid' || type === 'string_array') {
      if (!c.quoted) throw new RowFormatError(`${name} is not quoted`);
      const s = c.text.startsWith("'") && CSV_TRIGGER.test(c.text.slice(1)) ? c.text.slice(1) : c.text;
      if (CSV_TRIGGER.test(s) && s === c.text)
        throw new RowFormatError(`${name} starts with a formula character`);
      values[name] = type === 'string_array' ? (JSON.parse(s) as unknown) : s;
    } else if (c.text === '' && !c.quoted && type === 'nullable_int') values[name] = null;
    else {
      if (c.quoted || !INT.test(c.text)) throw new RowFormatError(`${name} is not an integer`);
      values[name] = type === 'uint64' ? c.text : Number(c.text);
    }
  });
  const ia = cells[CSV_HEADER.length - 1]!;
  if (!INT.test(ia.text)) throw new RowFormatError('ingested_at is not an integer');
  return { values, canonical: canonicalRow(values), ingestedAt: Number(ia.text) };
}
