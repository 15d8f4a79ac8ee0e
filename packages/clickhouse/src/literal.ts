/**
 * THE literal encoder: every value that enters SQL in mcp-audit goes through this module.
 *
 * ClickHouse 18.16 has no server-side query parameters, so values are spliced into the SQL text.
 * That is only safe if one small, audited, fuzz-tested piece of code does it:
 *
 *   sql`SELECT count() FROM mcp_audit.events WHERE client_id = ${clientId} AND ts >= ${since}`
 *
 * - `sql` returns an opaque SqlFragment; fragments nest; the client accepts nothing else.
 * - Strings are encoded byte by byte (printable ASCII kept, quote and backslash escaped, every
 *   other byte as \xHH), so NUL, newlines and invalid UTF-8 arrive byte-for-byte.
 * - Identifiers come only from caller-supplied allowlists (`ident`).
 *
 * All other code must build SQL through this module (eslint forbids a template literal passed
 * directly to `.query(`); never concatenate strings into SQL.
 */
import { SqlLiteralError } from './errors.js';
import { lex, type LexState } from './sql-lexer.js';

/** What a fragment holds, so arrays can be checked for homogeneity. */
type Kind =
  | { t: 'string' | 'int' | 'float' | 'bool' | 'date' | 'null' | 'ident' | 'expr' }
  | { t: 'array'; of: Kind | undefined };

const TOKEN = Symbol('SqlFragment');

/** A piece of SQL whose every value went through this module. Build with `sql` or an encoder. */
export class SqlFragment {
  readonly #text: string;
  readonly #kind: Kind;

  /** @internal use `sql` or an encoder */
  constructor(token: symbol, text: string, kind: Kind) {
    if (token !== TOKEN) throw new SqlLiteralError('SqlFragment cannot be constructed directly; use sql`…`');
    this.#text = text;
    this.#kind = kind;
  }

  static isFragment(v: unknown): v is SqlFragment {
    return typeof v === 'object' && v !== null && #text in v;
  }

  /** @internal */
  static textOf(f: SqlFragment): string {
    return f.#text;
  }

  /** @internal */
  static kindOf(f: SqlFragment): Kind {
    return f.#kind;
  }

  /** Never the SQL: values may be sensitive, and a string is not a fragment. Use `toSql`. */
  toString(): string {
    return '[SqlFragment]';
  }

  toJSON(): string {
    return '[SqlFragment]';
  }
}

const frag = (text: string, kind: Kind): SqlFragment => new SqlFragment(TOKEN, text, kind);

/** Anything `sql` accepts in a placeholder. */
export type SqlValue =
  SqlFragment | string | Uint8Array | number | bigint | boolean | Date | null | readonly SqlValue[];

/** The SQL text of a fragment (for the client, and for tests). */
export function toSql(fragment: SqlFragment): string {
  if (!SqlFragment.isFragment(fragment)) throw new SqlLiteralError('toSql expects a SqlFragment');
  return SqlFragment.textOf(fragment);
}

// ---------------------------------------------------------------------------------------------
// Template tag

/**
 * Tagged template: the text is trusted (it is in the source), every `${value}` is encoded with
 * `literal`. Placeholders must sit in code, not inside a quoted string, identifier or comment
 * (`'%${v}%'` is a bug: encode the whole pattern as one value instead).
 */
export function sql(strings: TemplateStringsArray, ...values: readonly SqlValue[]): SqlFragment {
  if (
    !Array.isArray(strings) ||
    !Array.isArray((strings as { raw?: unknown }).raw) ||
    !Object.isFrozen(strings)
  ) {
    throw new SqlLiteralError('sql must be used as a tagged template: sql`…`');
  }
  let out = '';
  let state: LexState = 'code';
  for (let i = 0; i < strings.length; i++) {
    const part = strings[i];
    if (part === undefined) throw new SqlLiteralError('invalid escape sequence in sql`…` template text');
    state = lex(part, state).end;
    out += part;
    if (i === values.length) break;
    if (state !== 'code') {
      throw new SqlLiteralError(
        `sql placeholder #${i + 1} is inside a ${state.replace('_', ' ')}, not in code`,
      );
    }
    if (/['"`\\]$/.test(part) || /^['"`]/.test(strings[i + 1] ?? '')) {
      throw new SqlLiteralError(`sql placeholder #${i + 1} touches a quote: encode the whole value instead`);
    }
    out += SqlFragment.textOf(literal(values[i] as SqlValue));
  }
  if (state === 'line_comment')
    out += '\n'; // so text appended after a nested fragment is not commented out
  else if (state !== 'code')
    throw new SqlLiteralError(`sql template ends inside a ${state.replace('_', ' ')}`);
  return frag(out, { t: 'expr' });
}

/** Encodes one value as a SQL literal (the rule `sql` applies to each placeholder). */
export function literal(value: SqlValue): SqlFragment {
  if (SqlFragment.isFragment(value)) return value;
  if (value === null) return frag('NULL', { t: 'null' });
  switch (typeof value) {
    case 'string':
      return str(value);
    case 'number':
    case 'bigint':
      return int(value);
    case 'boolean':
      return bool(value);
    case 'object':
      if (value instanceof Uint8Array) return str(value);
      if (value instanceof Date) return dateTime(value);
      if (Array.isArray(value)) return array(value);
      break;
  }
  throw new SqlLiteralError(`cannot encode a value of type ${describe(value)} as a SQL literal`);
}

// ---------------------------------------------------------------------------------------------
// Encoders

// Printable ASCII stays as is, except the quote and the backslash; every other byte is \xHH.
const BYTE: readonly string[] = Array.from({ length: 256 }, (_, b) => {
  if (b === 0x27) return "\\'";
  if (b === 0x5c) return '\\\\';
  if (b >= 0x20 && b <= 0x7e) return String.fromCharCode(b);
  return `\\x${b.toString(16).toUpperCase().padStart(2, '0')}`;
});
const PLAIN = /^[\x20-\x26\x28-\x5b\x5d-\x7e]*$/;

/**
 * A String literal. A JS string is encoded as UTF-8 (a lone surrogate becomes U+FFFD, as with any
 * UTF-8 encoder); pass a Buffer/Uint8Array to send exact bytes, invalid UTF-8 included.
 */
export function str(value: string | Uint8Array): SqlFragment {
  if (typeof value === 'string') {
    if (PLAIN.test(value)) return frag(`'${value}'`, { t: 'string' });
    value = Buffer.from(value, 'utf8');
  } else if (!(value instanceof Uint8Array)) {
    throw new SqlLiteralError(`str expects a string or bytes, got ${describe(value)}`);
  }
  const out: string[] = new Array<string>(value.length + 2);
  out[0] = "'";
  for (let i = 0; i < value.length; i++) out[i + 1] = BYTE[value[i]!]!;
  out[value.length + 1] = "'";
  return frag(out.join(''), { t: 'string' });
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * An integer literal: a safe integer or a bigint in [Int64 min, UInt64 max]. NaN, Infinity,
 * fractions and unsafe integers are refused (use `float` for floating point, bigint for 64-bit).
 */
export function int(value: number | bigint): SqlFragment {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new SqlLiteralError(`not a safe integer: ${String(value)} (use float() or a bigint)`);
    }
    text = String(value === 0 ? 0 : value); // -0 → 0
  } else if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > UINT64_MAX)
      throw new SqlLiteralError(`integer out of 64-bit range: ${value}`);
    text = value.toString();
  } else {
    throw new SqlLiteralError(`int expects a number or bigint, got ${describe(value)}`);
  }
  return frag(negative(text), { t: 'int' });
}

// Smallest normal double: 18.16's parser (strtod with a range check) refuses subnormal literals.
const MIN_NORMAL = 2.2250738585072014e-308;

/**
 * A Float64 literal; NaN and ±Infinity are allowed here (nan, inf). JS prints the shortest text
 * that round-trips, and ClickHouse parses float literals with strtod, so the value is exact.
 */
export function float(value: number): SqlFragment {
  if (typeof value !== 'number') throw new SqlLiteralError(`float expects a number, got ${describe(value)}`);
  let text: string;
  if (Number.isNaN(value)) text = 'nan';
  else if (value === Infinity) text = 'inf';
  else if (value === -Infinity) text = '-inf';
  else if (value !== 0 && Math.abs(value) < MIN_NORMAL) {
    throw new SqlLiteralError(`subnormal float ${value} cannot be written as a ClickHouse 18.16 literal`);
  } else {
    text = Object.is(value, -0) ? '-0' : String(value);
    // A dot or an exponent makes ClickHouse type the literal Float64 rather than an integer.
    if (!/[.e]/.test(text)) text += '.0';
  }
  return frag(negative(text), { t: 'float' });
}

/** Booleans are UInt8 1/0 (portable to 18.16, which has no Bool type). */
export function bool(value: boolean): SqlFragment {
  if (typeof value !== 'boolean') throw new SqlLiteralError(`bool expects a boolean, got ${describe(value)}`);
  return frag(value ? '1' : '0', { t: 'bool' });
}

/**
 * A DateTime in UTC, to the second (milliseconds are truncated: store them separately), written in
 * the epoch-seconds form `toDateTime(1704164645, 'UTC')`, which needs no date parsing on either
 * server version. DateTime is an unsigned 32-bit count of seconds.
 */
export function dateTime(value: Date): SqlFragment {
  if (!(value instanceof Date)) throw new SqlLiteralError(`dateTime expects a Date, got ${describe(value)}`);
  const ms = value.getTime();
  if (!Number.isFinite(ms)) throw new SqlLiteralError('invalid Date');
  const s = Math.floor(ms / 1000);
  if (s < 0 || s > 0xffffffff)
    throw new SqlLiteralError(`Date out of the DateTime range: ${value.toISOString()}`);
  return frag(`toDateTime(${s}, 'UTC')`, { t: 'date' });
}

/**
 * An array literal, recursively; elements must be of one kind (NULLs allowed among them). Numbers
 * are integers; for Float64 elements pass `values.map(float)`.
 */
export function array(values: readonly SqlValue[]): SqlFragment {
  if (!Array.isArray(values)) throw new SqlLiteralError(`array expects an array, got ${describe(values)}`);
  let of: Kind | undefined;
  const parts: string[] = [];
  for (const v of values) {
    const f = literal(v);
    of = unify(of, SqlFragment.kindOf(f));
    parts.push(SqlFragment.textOf(f));
  }
  return frag(`[${parts.join(', ')}]`, { t: 'array', of });
}

/** A non-empty tuple `(a, b, c)`, e.g. for `x IN ${tuple(ids)}` (18.16 rejects `IN ()`). */
export function tuple(values: readonly SqlValue[]): SqlFragment {
  if (!Array.isArray(values) || values.length === 0) {
    throw new SqlLiteralError('tuple expects a non-empty array (ClickHouse has no empty IN list)');
  }
  return frag(`(${values.map((v) => SqlFragment.textOf(literal(v))).join(', ')})`, { t: 'expr' });
}

/** Values joined by a separator fragment (default `, `): column lists, VALUES rows. */
export function join(
  values: readonly SqlValue[],
  separator: SqlFragment = frag(', ', { t: 'expr' }),
): SqlFragment {
  if (!Array.isArray(values)) throw new SqlLiteralError(`join expects an array, got ${describe(values)}`);
  const sep = toSql(separator);
  return frag(values.map((v) => SqlFragment.textOf(literal(v))).join(sep), { t: 'expr' });
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * An identifier (column, table, database), accepted only if the caller's allowlist holds it, and
 * backtick-quoted. Compose qualified names: sql`${ident(db, dbs)}.${ident(t, tables)}`.
 */
export function ident(name: string, allowlist: ReadonlySet<string> | readonly string[]): SqlFragment {
  const allowed =
    allowlist instanceof Set ? allowlist.has(name) : Array.isArray(allowlist) && allowlist.includes(name);
  if (typeof name !== 'string' || !allowed) {
    throw new SqlLiteralError(
      `identifier not in the allowlist: ${JSON.stringify(String(name)).slice(0, 80)}`,
    );
  }
  if (!IDENT.test(name))
    throw new SqlLiteralError(`allowlisted identifier has unsafe characters: ${JSON.stringify(name)}`);
  return frag(`\`${name}\``, { t: 'ident' });
}

/**
 * A database name from configuration (not from a request), checked against the pattern the
 * services' config schemas use. Requests never choose a database.
 */
export function dbIdent(name: string): SqlFragment {
  if (typeof name !== 'string' || !IDENT.test(name)) {
    throw new SqlLiteralError(`invalid database name: ${JSON.stringify(String(name)).slice(0, 80)}`);
  }
  return frag(`\`${name}\``, { t: 'ident' });
}

/**
 * ESCAPE HATCH: trusts `text` as SQL. Package-internal (not exported from the index), for the
 * migration runner, which executes the checked-in files under schemas/clickhouse.
 */
export function unsafeRaw(text: string): SqlFragment {
  if (typeof text !== 'string') throw new SqlLiteralError('unsafeRaw expects a string');
  return frag(text, { t: 'expr' });
}

// ---------------------------------------------------------------------------------------------

// A negative number is parenthesised so that text ending in `-` cannot turn it into a `--` comment.
function negative(text: string): string {
  return text.startsWith('-') ? `(${text})` : text;
}

function unify(a: Kind | undefined, b: Kind): Kind | undefined {
  if (b.t === 'null') return a;
  if (a === undefined || a.t === 'expr') return b;
  if (b.t === 'expr') return a;
  if (a.t === 'array' && b.t === 'array') {
    return { t: 'array', of: b.of === undefined ? a.of : unify(a.of, b.of) };
  }
  if (a.t !== b.t) throw new SqlLiteralError(`array elements must be of one kind: ${a.t} and ${b.t}`);
  return a;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'number') return `number ${String(v)}`;
  return typeof v;
}
