import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  array,
  bool,
  dateTime,
  dbIdent,
  float,
  ident,
  int,
  join,
  literal,
  sql,
  SqlFragment,
  SqlLiteralError,
  str,
  toSql,
  tuple,
  type SqlValue,
} from '../src/index.js';

const enc = (v: SqlValue) => toSql(literal(v));
const refused = (fn: () => unknown, re?: RegExp) =>
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SqlLiteralError, `expected SqlLiteralError, got ${String(err)}`);
    assert.equal(err.code, 'AUDIT_ERR_SQL_LITERAL');
    assert.equal(err.retryable, false);
    if (re) assert.match(err.message, re);
    return true;
  });

test('strings: printable ASCII kept, quote and backslash escaped', () => {
  assert.equal(enc(''), "''");
  assert.equal(enc('abc XYZ 0-9 {}[]()"`;%_'), "'abc XYZ 0-9 {}[]()\"`;%_'");
  assert.equal(enc("'"), "'\\''");
  assert.equal(enc('\\'), "'\\\\'");
  assert.equal(enc("\\'"), "'\\\\\\''");
  assert.equal(enc("'; DROP TABLE x; --"), "'\\'; DROP TABLE x; --'");
  assert.equal(enc('{x:String}'), "'{x:String}'");
});

test('strings: control bytes, NUL, newlines and DEL become \\xHH', () => {
  assert.equal(enc('\0'), "'\\x00'");
  assert.equal(enc('a\nb\r\tc'), "'a\\x0Ab\\x0D\\x09c'");
  assert.equal(enc('\x7f\x1b'), "'\\x7F\\x1B'");
});

test('strings: unicode and emoji are sent as their UTF-8 bytes', () => {
  assert.equal(enc('é'), "'\\xC3\\xA9'");
  assert.equal(enc('😀'), "'\\xF0\\x9F\\x98\\x80'");
  assert.equal(enc('\u2028'), "'\\xE2\\x80\\xA8'");
  // A lone surrogate has no UTF-8 form: like every UTF-8 encoder, it becomes U+FFFD.
  assert.equal(enc('\ud800'), "'\\xEF\\xBF\\xBD'");
});

test('bytes: Buffers and Uint8Arrays go byte for byte, invalid UTF-8 included', () => {
  assert.equal(enc(Buffer.from([0xff, 0xfe, 0x00, 0x27, 0x5c, 0x41])), "'\\xFF\\xFE\\x00\\'\\\\A'");
  assert.equal(enc(new Uint8Array([0xc0, 0x80])), "'\\xC0\\x80'");
  assert.equal(toSql(str(new Uint8Array(0))), "''");
});

test('every byte value has one encoding that never contains a bare quote', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const text = toSql(str(all));
  const inner = text.slice(1, -1);
  assert.equal(inner.replace(/\\\\|\\'/g, '').includes("'"), false);
  assert.equal(/[^\x20-\x7e]/.test(text), false, 'only printable ASCII in the SQL text');
});

test('integers: safe integers and 64-bit bigints; negatives parenthesised', () => {
  assert.equal(enc(0), '0');
  assert.equal(enc(-0), '0');
  assert.equal(enc(42), '42');
  assert.equal(enc(-7), '(-7)');
  assert.equal(enc(Number.MAX_SAFE_INTEGER), '9007199254740991');
  assert.equal(enc(-(2n ** 63n)), '(-9223372036854775808)');
  assert.equal(enc(2n ** 64n - 1n), '18446744073709551615');
  // `1 -${-5}` must not become a `--` comment.
  assert.equal(toSql(sql`SELECT 1 -${-5}`), 'SELECT 1 -(-5)');
});

test('integers: NaN, Infinity, fractions, unsafe and out-of-range values are refused', () => {
  refused(() => enc(NaN), /safe integer/);
  refused(() => enc(Infinity));
  refused(() => enc(-Infinity));
  refused(() => enc(1.5), /float\(\)/);
  refused(() => enc(2 ** 53));
  refused(() => enc(2n ** 64n));
  refused(() => enc(-(2n ** 63n) - 1n));
  refused(() => int('1' as unknown as number));
});

test('floats: explicit, always typed Float64, exact text', () => {
  assert.equal(toSql(float(1.5)), '1.5');
  assert.equal(toSql(float(2)), '2.0');
  assert.equal(toSql(float(-2.5)), '(-2.5)');
  assert.equal(toSql(float(-0)), '(-0.0)');
  assert.equal(toSql(float(1e21)), '1e+21');
  assert.equal(toSql(float(5e-7)), '5e-7');
  assert.equal(toSql(float(0.1 + 0.2)), '0.30000000000000004');
  assert.equal(toSql(float(NaN)), 'nan');
  assert.equal(toSql(float(Infinity)), 'inf');
  assert.equal(toSql(float(-Infinity)), '(-inf)');
  assert.equal(toSql(float(2.2250738585072014e-308)), '2.2250738585072014e-308');
  refused(() => float(5e-324), /subnormal/);
  refused(() => float(1n as unknown as number));
});

test('booleans, null and dates', () => {
  assert.equal(enc(true), '1');
  assert.equal(enc(false), '0');
  assert.equal(enc(null), 'NULL');
  assert.equal(enc(new Date('2024-01-02T03:04:05.999Z')), "toDateTime(1704164645, 'UTC')");
  assert.equal(toSql(bool(false)), '0');
  assert.equal(toSql(dateTime(new Date(0))), "toDateTime(0, 'UTC')");
  assert.equal(toSql(dateTime(new Date(0xffffffff * 1000))), "toDateTime(4294967295, 'UTC')");
  refused(() => dateTime(new Date('nope')), /invalid Date/);
  refused(() => dateTime(new Date(-1000)), /range/);
  refused(() => dateTime(new Date(0x100000000 * 1000)), /range/);
});

test('arrays: recursive, homogeneous, NULLs allowed', () => {
  assert.equal(enc([]), '[]');
  assert.equal(enc(['a', "b'c"]), "['a', 'b\\'c']");
  assert.equal(enc([1, -2, 3n]), '[1, (-2), 3]');
  assert.equal(enc([[1, 2], [], [3]]), '[[1, 2], [], [3]]');
  assert.equal(enc([[['x']], [[]]]), "[[['x']], [[]]]");
  assert.equal(enc(['a', null]), "['a', NULL]");
  assert.equal(enc([Buffer.from([0xff]), 'x']), "['\\xFF', 'x']");
  assert.equal(toSql(array([1.5, 2].map(float))), '[1.5, 2.0]');
  refused(() => enc([1, 'a']), /one kind/);
  refused(() => enc([[1], ['a']]), /one kind/);
  refused(() => enc([[1], 2]), /one kind/);
  refused(() => enc([true, 1]), /one kind/);
  refused(() => enc([1.5]), /safe integer/);
});

test('anything else is refused with a typed error', () => {
  for (const v of [undefined, {}, { a: 1 }, () => 1, Symbol('x'), new Map(), /re/, new ArrayBuffer(2)]) {
    refused(() => literal(v as unknown as SqlValue), /cannot encode/);
  }
  refused(() => sql`SELECT ${undefined as unknown as SqlValue}`);
  refused(() => str(42 as unknown as string));
  refused(() => bool(1 as unknown as boolean));
});

test('ident: only allowlisted names, backtick-quoted', () => {
  const cols = new Set(['client_id', 'ts']);
  assert.equal(toSql(ident('client_id', cols)), '`client_id`');
  assert.equal(toSql(ident('ts', ['ts'])), '`ts`');
  refused(() => ident('event_id', cols), /allowlist/);
  refused(() => ident('client_id`; DROP TABLE x; --', cols), /allowlist/);
  refused(() => ident('', ['']), /unsafe/);
  refused(() => ident('a b', ['a b']), /unsafe/);
  refused(() => ident('a`b', new Set(['a`b'])), /unsafe/);
  refused(() => ident('x'.repeat(65), ['x'.repeat(65)]), /unsafe/);
  refused(() => ident('__proto__', {} as unknown as string[]), /allowlist/);
  assert.equal(toSql(dbIdent('mcp_audit_test_1')), '`mcp_audit_test_1`');
  refused(() => dbIdent('mcp-audit'), /invalid database/);
  refused(() => dbIdent('a.b'), /invalid database/);
});

test('sql: fragments nest; tuple and join compose', () => {
  const where = sql`client_id = ${'c1'} AND ts >= ${new Date(1000)}`;
  const q = sql`SELECT count() FROM t WHERE ${where} AND kind IN ${tuple(['a', 'b'])} LIMIT ${10}`;
  assert.equal(
    toSql(q),
    "SELECT count() FROM t WHERE client_id = 'c1' AND ts >= toDateTime(1, 'UTC') AND kind IN ('a', 'b') LIMIT 10",
  );
  const cols = ['a', 'b'];
  assert.equal(
    toSql(
      sql`INSERT INTO t (${join(cols.map((c) => ident(c, cols)))}) VALUES ${join([tuple([1, 'x']), tuple([2, null])])}`,
    ),
    "INSERT INTO t (`a`, `b`) VALUES (1, 'x'), (2, NULL)",
  );
  assert.equal(toSql(join(['a', 'b'], sql` || `)), "'a' || 'b'");
  refused(() => tuple([]), /non-empty/);
});

test('sql: a placeholder inside quotes or comments, or touching a quote, is refused', () => {
  refused(() => sql`SELECT '${'x'}'`, /touches a quote|inside a string/);
  refused(() => sql`SELECT 'a ${'x'} b'`, /inside a string/);
  refused(() => sql`SELECT * FROM t WHERE s LIKE '%${'x'}%'`, /inside a string/);
  refused(() => sql`SELECT 1 -- ${'x'}`, /inside a line comment/);
  refused(() => sql`SELECT /* ${'x'} */ 1`, /inside a block comment/);
  refused(() => sql`SELECT \`${'x'}\``, /inside a backtick/);
  refused(() => sql`SELECT ''${'x'}`, /touches a quote/);
  refused(() => sql`SELECT ${'x'}''`, /touches a quote/);
  refused(() => sql`SELECT 'unterminated`, /ends inside a string/);
  // Quotes and comments in the template text itself are fine.
  assert.equal(toSql(sql`SELECT 'it''s', '-- no', ${1} -- ok`), "SELECT 'it''s', '-- no', 1 -- ok\n");
});

test('sql: a nested fragment ending in a line comment cannot swallow what follows', () => {
  const inner = sql`x = ${1} -- note`;
  assert.equal(toSql(sql`SELECT 1 WHERE ${inner} AND y = ${2}`), 'SELECT 1 WHERE x = 1 -- note\n AND y = 2');
});

test('SqlFragment is opaque: no direct construction, no string conversion, no raw strings', () => {
  assert.throws(() => new SqlFragment(Symbol('SqlFragment'), 'DROP TABLE x', { t: 'expr' }), SqlLiteralError);
  const f = sql`SELECT ${'secret'}`;
  assert.equal(String(f), '[SqlFragment]');
  assert.equal(`${f}`, '[SqlFragment]');
  assert.equal(JSON.stringify({ f }), '{"f":"[SqlFragment]"}');
  refused(() => toSql('SELECT 1' as unknown as SqlFragment), /expects a SqlFragment/);
  refused(() => sql(['SELECT 1'] as unknown as TemplateStringsArray), /tagged template/);
  const fake = Object.freeze(Object.assign(['SELECT ', ''], { raw: ['SELECT ', ''] }));
  // A hand-made frozen "template" still only gets encoded values.
  assert.equal(toSql(sql(fake as unknown as TemplateStringsArray, "'")), "SELECT '\\''");
});

test('a large string encodes quickly', () => {
  const big = Buffer.alloc(4 * 1024 * 1024, 0xff);
  const started = Date.now();
  const text = toSql(str(big));
  assert.equal(text.length, 4 * 4 * 1024 * 1024 + 2);
  assert.ok(Date.now() - started < 3_000);
});
