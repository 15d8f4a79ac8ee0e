/**
 * The literal encoder against the REAL ClickHouse: hostile strings and bytes must arrive
 * byte-for-byte (compared as hex, so no UTF-8 decoding gets in the way), and a query built with
 * them must keep its shape: one row per value, a fixed set of columns, filters that match exactly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  array,
  dateTime,
  dbIdent,
  float,
  int,
  join,
  sql,
  tuple,
  type ClickHouse,
  type SqlFragment,
} from '../src/index.js';
import { client, dropDatabase, testDatabase } from './helpers.js';

type Hostile = string | Uint8Array;

const BATCH = 500;
const RUNS = 21; // 21 × 500 = 10,500 generated values
// The SQL text of a batch is far above the default max_query_size (256 KiB).
const BIG = { settings: { max_query_size: '268435456' } };

// prettier-ignore
const SPECIAL = [
  "'", '\\', '"', '`', ';', '-', '/', '*', '#', '{', '}', ':', '?', '$', '%', '_', '(', ')', ',', 'x', '0',
  'N', ' ', '\0', '\n', '\r', '\t', '\b', '\x1a', '\x7f', '\u0085', '\u00a0', '\u2028', '\u202e', '\ufeff',
  '\ud800', '\udfff', '\u{1f600}', 'é', 'e\u0301',
];
// prettier-ignore
const HAND: Hostile[] = [
  "'", '\\', "\\'", "'; DROP TABLE x; --", '\\x00', '\0', '*/', '/*', '--', '#', '{x:String}', '{x: String}',
  "' OR '1'='1", "\\' OR 1=1 --", '\\N', 'NULL', '`', '"', '\ud800', '\udfff', 'a\udc00b\ud83d', '\u{1f600}',
  '\r\n', "''", "'''", '\\\\', '\\\\\\', "x'); DROP DATABASE mcp_audit; --", '$$', '?', '%s', '\u2028\u2029',
  '', ' ', 'a'.repeat(10_000), "'".repeat(10_000), '\\'.repeat(10_001),
  Buffer.from([0xff]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82]),
  Buffer.from([0x00, 0x27, 0x5c, 0x27]), Buffer.from([0xf4, 0x90, 0x80, 0x80]), randomBytes(4096),
];

const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)); // lone surrogates too
const hostile: fc.Arbitrary<Hostile> = fc.oneof(
  fc.string({ unit: fc.constantFrom(...SPECIAL), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: codeUnit, maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(...HAND),
);

const bytesOf = (v: Hostile) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v));
const hexOf = (v: Hostile) => bytesOf(v).toString('hex').toUpperCase();
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

let ch: ClickHouse;
let db: string;
let fuzz: SqlFragment;
let checked = 0;
let calls = 0;
let batchNo = 0;

before(async () => {
  ch = client('ADMIN');
  db = testDatabase('fuzz');
  await ch.command(sql`CREATE DATABASE ${dbIdent(db)}`);
  fuzz = sql`${dbIdent(db)}.fuzz`;
  await ch.command(
    sql`CREATE TABLE ${fuzz} (batch UInt32, i UInt32, s String) ENGINE = MergeTree() ORDER BY (batch, i)`,
  );
});

after(async () => {
  await dropDatabase(ch, db);
  await ch.close();
});

/** SELECT literal, length, hex per value (UNION ALL), INSERT … VALUES, then WHERE s = literal. */
async function roundTrip(values: readonly Hostile[]): Promise<void> {
  const batch = ++batchNo;
  const selects = values.map((s, i) => sql`SELECT ${i} AS i, ${s} AS v, length(${s}) AS n, hex(${s}) AS h`);
  calls++;
  const rows = await ch.query<{ i: number; v: string; n: string; h: string }>(
    join(selects, sql` UNION ALL `),
    BIG,
  );
  assert.equal(rows.length, values.length, 'one row per value');
  const seen = new Set<number>();
  for (const r of rows) {
    assert.deepEqual(Object.keys(r).sort(), ['h', 'i', 'n', 'v'], 'a fixed set of columns');
    const v = values[r.i]!;
    assert.ok(!seen.has(r.i), `row ${r.i} twice`);
    seen.add(r.i);
    assert.equal(
      r.h,
      hexOf(v),
      `bytes of value #${r.i}: ${JSON.stringify(typeof v === 'string' ? v : hexOf(v))}`,
    );
    assert.equal(Number(r.n), bytesOf(v).length);
    if (typeof v === 'string' && !LONE_SURROGATE.test(v)) assert.equal(r.v, v);
  }

  // INSERT … VALUES goes through the Values input format, a different parser from SELECT's.
  calls++;
  await ch.command(
    sql`INSERT INTO ${fuzz} (batch, i, s) VALUES ${join(values.map((s, i) => tuple([batch, i, s])))}`,
    BIG,
  );
  calls++;
  const stored = await ch.query<{ i: number; h: string }>(
    sql`SELECT i, hex(s) AS h FROM ${fuzz} WHERE batch = ${batch} ORDER BY i`,
  );
  assert.deepEqual(
    stored.map((r) => [r.i, r.h]),
    values.map((v, i) => [i, hexOf(v)]),
  );

  // Each value as a filter matches exactly the rows holding the same bytes: never more.
  const filters = values.map(
    (s, k) =>
      sql`SELECT ${k} AS k, arraySort(groupArray(i)) AS ids FROM ${fuzz} WHERE batch = ${batch} AND s = ${s}`,
  );
  calls++;
  const matches = await ch.query<{ k: number; ids: number[] }>(join(filters, sql` UNION ALL `), BIG);
  assert.equal(matches.length, values.length);
  const hexes = values.map(hexOf);
  for (const m of matches) {
    const expected = hexes.flatMap((h, i) => (h === hexes[m.k] ? [i] : []));
    assert.deepEqual(m.ids, expected, `filter #${m.k}`);
  }
  calls++;
  const [all] = await ch.query<{ n: string }>(
    sql`SELECT count() AS n FROM ${fuzz} WHERE batch = ${batch} AND s IN ${tuple(values as Hostile[])}`,
    BIG,
  );
  assert.equal(Number(all?.n), values.length);
  checked += values.length;
}

test('hand-picked hostile strings and bytes round-trip through ClickHouse', async () => {
  await roundTrip(HAND);
});

test(`${RUNS * BATCH} generated hostile strings round-trip byte-for-byte (fast-check)`, async () => {
  const started = Date.now();
  const before = checked;
  await fc.assert(
    fc.asyncProperty(fc.array(hostile, { minLength: BATCH, maxLength: BATCH }), (values) =>
      roundTrip(values),
    ),
    { numRuns: RUNS, endOnFailure: true },
  );
  assert.ok(checked - before >= 10_000, `checked ${checked - before} values`);
  console.log(
    `# fuzz: ${checked - before} values in ${Date.now() - started} ms, ${calls} ClickHouse calls so far`,
  );
});

test('very long values: 1 MiB of random bytes, 256 KiB of quotes and of backslashes', async () => {
  await roundTrip([
    randomBytes(1024 * 1024),
    "'".repeat(256 * 1024),
    '\\'.repeat(256 * 1024),
    '😀'.repeat(50_000),
  ]);
});

// NOTE: `[]` is Array(Nothing); functions like hex() need a typed array, hence minLength 1.
test('arrays of hostile strings keep every element', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(hostile, { minLength: 1, maxLength: 200 }), async (values) => {
      calls++;
      const [r] = await ch.query<{ n: string; h: string[] }>(
        sql`SELECT length(a) AS n, arrayMap(x -> hex(x), a) AS h FROM (SELECT ${array(values)} AS a)`,
        BIG,
      );
      assert.equal(Number(r?.n), values.length);
      assert.deepEqual(r?.h, values.map(hexOf));
    }),
    { numRuns: 10 },
  );
});

test('integers, floats and dates arrive exactly', async () => {
  const ints = fc.oneof(
    fc.integer(),
    fc.maxSafeInteger(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.constantFrom(0, -0, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(ints, { minLength: 200, maxLength: 200 }), async (values) => {
      calls++;
      const rows = await ch.query<{ i: number; s: string }>(
        join(
          values.map((v, i) => sql`SELECT ${i} AS i, toString(${int(v)}) AS s`),
          sql` UNION ALL `,
        ),
      );
      for (const r of rows) assert.equal(r.s, String(values[r.i])); // String(-0) is '0'
      assert.equal(rows.length, values.length);
    }),
    { numRuns: 5 },
  );

  const MIN_NORMAL = 2.2250738585072014e-308;
  const floats = fc.double().filter((x) => x === 0 || !Number.isFinite(x) || Math.abs(x) >= MIN_NORMAL);
  await fc.assert(
    fc.asyncProperty(fc.array(floats, { minLength: 200, maxLength: 200 }), async (values) => {
      calls++;
      const rows = await ch.query<{ i: number; h: string }>(
        join(
          values.map((v, i) => sql`SELECT ${i} AS i, hex(reinterpretAsString(${float(v)})) AS h`),
          sql` UNION ALL `,
        ),
      );
      assert.equal(rows.length, values.length);
      for (const r of rows) {
        const b = Buffer.alloc(8);
        b.writeDoubleLE(values[r.i]!);
        // reinterpretAsString drops trailing zero bytes (little-endian: the low bytes of 0, 1.0, …).
        assert.equal(
          r.h,
          b
            .toString('hex')
            .toUpperCase()
            .replace(/(00)+$/, ''),
          `float ${values[r.i]}`,
        );
      }
    }),
    { numRuns: 5 },
  );

  const dates = fc.date({ min: new Date(0), max: new Date(0xffffffff * 1000), noInvalidDate: true });
  await fc.assert(
    fc.asyncProperty(fc.array(dates, { minLength: 200, maxLength: 200 }), async (values) => {
      calls++;
      const rows = await ch.query<{ i: number; s: string }>(
        join(
          values.map((v, i) => sql`SELECT ${i} AS i, toUInt32(${dateTime(v)}) AS s`),
          sql` UNION ALL `,
        ),
      );
      assert.equal(rows.length, values.length);
      for (const r of rows) assert.equal(Number(r.s), Math.floor(values[r.i]!.getTime() / 1000));
    }),
    { numRuns: 3 },
  );
});

test('the fuzz stays within a few hundred ClickHouse calls', () => {
  assert.ok(calls < 300, `${calls} calls`);
});
