import { createHash } from 'node:crypto';
import { ident, join, sql, str, type SqlFragment } from '@mcp-audit/clickhouse';

/**
 * The canonical row of ledger version 1 (LEDGER.md): the stored columns of mcp_audit.events in
 * migration order, minus the ingestion bookkeeping (ver, ingested_at, kafka_partition,
 * kafka_offset). The list is frozen for v=1: a new events column needs a v=2 ledger.
 */
export type ColumnType = 'uuid' | 'datetime' | 'uint' | 'uint64' | 'string' | 'nullable_int' | 'string_array';

const c = (name: string, type: ColumnType) => ({ name, type }) as const;

export const CANONICAL_COLUMNS: ReadonlyArray<{ readonly name: string; readonly type: ColumnType }> = [
  c('event_id', 'uuid'),
  c('ts', 'datetime'),
  c('ts_ms', 'uint'),
  c('schema_version', 'uint'),
  c('kind', 'string'),
  c('source_type', 'string'),
  c('source_id', 'string'),
  c('source_version', 'string'),
  c('client_id', 'string'),
  c('client_name', 'string'),
  c('client_user', 'string'),
  c('client_agent', 'string'),
  c('client_ip', 'string'),
  c('client_user_agent', 'string'),
  c('session_id', 'string'),
  c('server_name', 'string'),
  c('server_version', 'string'),
  c('server_transport', 'string'),
  c('method', 'string'),
  c('tool_name', 'string'),
  c('tool_definition_hash', 'string'),
  c('outcome', 'string'),
  c('http_status', 'nullable_int'),
  c('rpc_error_code', 'nullable_int'),
  c('tool_is_error', 'nullable_int'),
  c('trace_id', 'string'),
  c('auth_method', 'string'),
  c('auth_result', 'string'),
  c('auth_reason', 'string'),
  c('error_code', 'string'),
  c('error_message', 'string'),
  c('duration_ms', 'uint'),
  c('request_bytes', 'uint64'),
  c('response_bytes', 'uint64'),
  c('args', 'string'),
  c('response_digest', 'string'),
  c('label_keys', 'string_array'),
  c('label_values', 'string_array'),
  c('raw', 'string'),
];

export const CANONICAL_COLUMN_NAMES: readonly string[] = CANONICAL_COLUMNS.map((x) => x.name);
/** Every events column a ledger query may name (the canonical ones plus the bookkeeping it reads). */
export const EVENTS_COLUMNS: ReadonlySet<string> = new Set([...CANONICAL_COLUMN_NAMES, 'ver', 'ingested_at']);

/** A canonical row's values, keyed by column: what the NDJSON export writes and verify-bundle reads. */
export type CanonicalValues = Record<string, unknown>;

const DIGITS = /^-?(0|[1-9][0-9]*)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function intText(v: unknown, col: string): string {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string' && DIGITS.test(v)) return v;
  throw new TypeError(`canonical row: ${col} is not an integer`);
}

/**
 * The canonical row as text (the reference implementation; the ClickHouse expression below must
 * produce the same bytes). Strings are escaped exactly as ECMAScript's JSON.stringify does for
 * well-formed strings: `"` `\` and U+0000–U+001F only (\b \t \n \f \r, else \u00xx lowercase).
 */
export function canonicalRow(v: CanonicalValues): string {
  const parts: string[] = [];
  for (const { name, type } of CANONICAL_COLUMNS) {
    const x = v[name];
    switch (type) {
      case 'uuid':
        if (typeof x !== 'string' || !UUID.test(x))
          throw new TypeError(`canonical row: ${name} is not a UUID`);
        parts.push(`"${x}"`);
        break;
      case 'datetime':
      case 'uint':
      case 'uint64':
        parts.push(intText(x, name));
        break;
      case 'nullable_int':
        parts.push(x === null ? 'null' : intText(x, name));
        break;
      case 'string':
        if (typeof x !== 'string') throw new TypeError(`canonical row: ${name} is not a string`);
        parts.push(JSON.stringify(x));
        break;
      case 'string_array':
        if (!Array.isArray(x) || x.some((e) => typeof e !== 'string'))
          throw new TypeError(`canonical row: ${name} is not an array of strings`);
        parts.push(JSON.stringify(x));
        break;
    }
  }
  return `[${parts.join(',')}]`;
}

/** Leaf hash of a canonical row: SHA-256(0x00 ‖ UTF-8 row). */
export function leafHash(row: string | Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(typeof row === 'string' ? Buffer.from(row, 'utf8') : row)
    .digest();
}

// ---------------------------------------------------------------------------------------------
// The same row, built inside ClickHouse (works on 18.16 and 25.8: concat, replaceAll,
// arrayStringConcat, SHA256; no JSON functions).

const COLS = new Set(CANONICAL_COLUMN_NAMES);
const col = (name: string) => ident(name, COLS);

// JSON.stringify's escapes for the control characters.
const SHORT: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
const CONTROL_ESCAPES: Array<[Buffer, string]> = Array.from({ length: 32 }, (_, b) => [
  Buffer.from([b]),
  SHORT[b] ?? `\\u${b.toString(16).padStart(4, '0')}`,
]);

/**
 * `"` and `\` escaped; with `controls`, the 32 control bytes too. Rows whose strings hold no control
 * byte (nearly all: args and raw are JSON text already) take the light path, which is two
 * replaceAll passes instead of thirty-four.
 */
function escaped(e: SqlFragment, controls: boolean): SqlFragment {
  let out = sql`replaceAll(replaceAll(${e}, ${str('\\')}, ${str('\\\\')}), ${str('"')}, ${str('\\"')})`;
  if (controls) {
    for (const [byte, esc] of CONTROL_ESCAPES) out = sql`replaceAll(${out}, ${str(byte)}, ${str(esc)})`;
  }
  return out;
}

const quoted = (e: SqlFragment, controls: boolean) =>
  sql`concat(${str('"')}, ${escaped(e, controls)}, ${str('"')})`;

function columnSql(name: string, type: ColumnType, controls: boolean): SqlFragment {
  const x = col(name);
  switch (type) {
    case 'uuid':
      return sql`concat(${str('"')}, toString(${x}), ${str('"')})`;
    case 'datetime':
      return sql`toString(toUInt32(${x}))`;
    case 'uint':
    case 'uint64':
      return sql`toString(${x})`;
    case 'nullable_int':
      return sql`ifNull(toString(${x}), ${str('null')})`;
    case 'string':
      return quoted(x, controls);
    case 'string_array':
      // A lambda over its own argument only: captured columns would be replicated per element.
      return sql`concat(${str('[')}, arrayStringConcat(arrayMap(x -> ${quoted(sql`x`, controls)}, ${x}), ${str(',')}), ${str(']')})`;
  }
}

/** SQL expression of the canonical row (String) of a row of mcp_audit.events. */
export function canonicalRowSql(controls: boolean): SqlFragment {
  const parts: SqlFragment[] = [str('[')];
  CANONICAL_COLUMNS.forEach(({ name, type }, i) => {
    if (i > 0) parts.push(str(','));
    parts.push(columnSql(name, type, controls));
  });
  parts.push(str(']'));
  return sql`concat(${join(parts)})`;
}

/** UInt8: does any string of the row hold a control byte (so it needs the heavy escaping)? */
export function hasControlSql(): SqlFragment {
  const texts: SqlFragment[] = CANONICAL_COLUMNS.filter((x) => x.type === 'string').map((x) => col(x.name));
  for (const x of CANONICAL_COLUMNS.filter((x) => x.type === 'string_array'))
    texts.push(sql`arrayStringConcat(${col(x.name)})`);
  return sql`match(concat(${join(texts)}), ${str('[\\x00-\\x1f]')})`;
}

/** SQL expression of the leaf hash (FixedString(32)) of a row. */
export function leafSql(controls: boolean): SqlFragment {
  return sql`SHA256(concat(${str(Buffer.from([0]))}, ${canonicalRowSql(controls)}))`;
}
