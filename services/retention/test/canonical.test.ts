import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { canonicalRow, leafHash } from '../src/ledger/canonical.js';
import { segmentRoots } from '../src/ledger/hours.js';
import { merkleRoot } from '../src/ledger/merkle.js';
import { HOUR_MS } from '../src/ledger/record.js';
import { canonicalOf, makeRow, stackAvailable, testDb, type TestDb } from './helpers.js';

describe(
  'canonical rows: ClickHouse agrees with the reference implementation',
  { skip: !stackAvailable },
  () => {
    let db: TestDb;
    before(async () => {
      db = await testDb();
    });
    after(async () => db?.drop());

    it('computes the same root for an hour with awkward strings, in Node and in SQL', async () => {
      const hour = Date.UTC(2026, 0, 5, 10);
      const rows = Array.from({ length: 37 }, (_, i) => makeRow(hour + i * 60_000 + i, i));
      // Every control byte, quotes, backslashes, non-ASCII, an astral character, a slash.
      rows[3]!.error_message =
        Array.from({ length: 32 }, (_, b) => String.fromCharCode(b)).join('') + '\u007f';
      rows[4]!.args = '{"a":"\\u0000 \\" \\\\"}';
      rows[5]!.client_name = '𝄞 ünïcødé / \u2028';
      rows[6]!.label_keys = ['k\n', 'k"2'];
      rows[6]!.label_values = ['\t', ''];
      await db.ch.insert('events', rows);
      const got = await segmentRoots(db, hour, hour + HOUR_MS, new Map());
      const sorted = [...rows].sort((a, b) => (String(a.event_id) < String(b.event_id) ? -1 : 1));
      const expected = merkleRoot(sorted.map((r) => leafHash(canonicalRow(canonicalOf(r)))));
      assert.equal(got.length, 1);
      assert.equal(got[0]!.rows, 37);
      assert.equal(got[0]!.root, expected.toString('hex'));
      // The SQL canonicalisation (the row-level diff and exports use it) gives the same root.
      const inSql = await segmentRoots({ ch: db.ch, database: db.database }, hour, hour + HOUR_MS, new Map());
      assert.deepEqual(inSql, got);
    });
  },
);
