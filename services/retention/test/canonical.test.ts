import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { canonicalRow, leafHash } from '../src/ledger/canonical.js';
import { segmentRoots } from '../src/ledger/hours.js';
import { currentLeaves, leafId } from '../src/ledger/leaves.js';
import { merkleRoot } from '../src/ledger/merkle.js';
import { HOUR_MS } from '../src/ledger/record.js';
import { ByteWriter } from '../src/ledger/rowbinary.js';
import { encodeRow, FORMATS, writeRow } from '../src/export/formats.js';
import { canonicalOf, makeRow, stackAvailable, testDb, type EventRow, type TestDb } from './helpers.js';

describe(
  'canonical rows: ClickHouse agrees with the reference implementation',
  { skip: !stackAvailable },
  () => {
    let db: TestDb;
    const hour = Date.UTC(2026, 0, 5, 10);
    let rows: EventRow[];
    before(async () => {
      db = await testDb();
      rows = Array.from({ length: 37 }, (_, i) => makeRow(hour + i * 60_000 + i, i));
      // Every control byte, quotes, backslashes, non-ASCII, an astral character, a slash.
      rows[3]!.error_message =
        Array.from({ length: 32 }, (_, b) => String.fromCharCode(b)).join('') + '\u007f';
      rows[4]!.args = '{"a":"\\u0000 \\" \\\\"}';
      rows[5]!.client_name = '𝄞 ünïcødé / \u2028';
      rows[6]!.label_keys = ['k\n', 'k"2'];
      rows[6]!.label_values = ['\t', ''];
      // CSV formula triggers and a negative number.
      rows[7]!.client_user = '=cmd|calc';
      rows[8]!.tool_name = "'quoted";
      rows[9]!.rpc_error_code = -2147483648;
      await db.ch.insert('events', rows);
    });
    after(async () => db?.drop());

    it('computes the same root for an hour with awkward strings, in Node and in SQL', async () => {
      const got = await segmentRoots(db, hour, hour + HOUR_MS, new Map());
      const sorted = [...rows].sort((a, b) => (String(a.event_id) < String(b.event_id) ? -1 : 1));
      const expected = merkleRoot(sorted.map((r) => leafHash(canonicalRow(canonicalOf(r)))));
      assert.equal(got.length, 1);
      assert.equal(got[0]!.rows, 37);
      assert.equal(got[0]!.root, expected.toString('hex'));
      // The SQL canonicalisation (the row-level diff uses it) gives the same root.
      const inSql = await segmentRoots({ ch: db.ch, database: db.database }, hour, hour + HOUR_MS, new Map());
      assert.deepEqual(inSql, got);
    });

    it('writes each export format from the stored bytes exactly as the reference encoder does, with and without worker threads', async () => {
      const byId = new Map(rows.map((r) => [String(r.event_id), r]));
      for (const workers of [0, 2]) {
        const seen: string[] = [];
        for await (const batch of currentLeaves(db, hour, hour + HOUR_MS, { rows: true, workers })) {
          for (const l of batch) {
            const id = leafId(l);
            seen.push(id);
            const r = byId.get(id)!;
            const canonical = canonicalRow(canonicalOf(r));
            assert.equal(l.leaf.toString('hex'), leafHash(canonical).toString('hex'));
            assert.equal(l.ia, r.ingested_at);
            for (const format of FORMATS) {
              const w = new ByteWriter();
              const ctx = { productVersion: '0.1.0' };
              writeRow(format, w, l.row!, l.ia, new ByteWriter(), ctx);
              const want = encodeRow(
                format,
                { values: canonicalOf(r), canonical, ingestedAt: r.ingested_at },
                ctx,
              );
              assert.equal(w.buf.toString('utf8', 0, w.pos), want, `${format} of ${id}`);
            }
          }
        }
        assert.deepEqual(seen, [...byId.keys()].sort(), `workers=${workers}: every id once, in id order`);
      }
    });

    it('keeps one copy per event_id: the highest ver, whatever the insert order', async () => {
      const h = hour + 2 * HOUR_MS;
      const base = makeRow(h + 1000, 1);
      const older = { ...base, tool_name: 'older', ver: base.ver - 5 };
      const newer = { ...base, tool_name: 'newer', ver: base.ver + 5 };
      await db.ch.insert('events', [older]);
      await db.ch.insert('events', [newer]);
      await db.ch.insert('events', [base]);
      const got = await segmentRoots(db, h, h + HOUR_MS, new Map());
      assert.equal(got[0]!.rows, 1);
      assert.equal(got[0]!.root, leafHash(canonicalRow(canonicalOf(newer))).toString('hex'));
      const inSql = await segmentRoots({ ch: db.ch, database: db.database }, h, h + HOUR_MS, new Map());
      assert.deepEqual(inSql, got);
    });
  },
);
