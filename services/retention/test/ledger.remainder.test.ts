import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { fromEventRow, reconstructEvent, remainderOf } from '@mcp-audit/schema';
import { exportBundle, type Manifest } from '../src/export/bundle.js';
import { exportFiltersSchema } from '../src/export/filters.js';
import { verifyBundle } from '../src/export/verify-bundle.js';
import { createSigningKey, loadPublicKeys, loadSigningKey } from '../src/ledger/keys.js';
import { HOUR_MS } from '../src/ledger/record.js';
import { DEFAULT_SEALER, sealOnce } from '../src/ledger/sealer.js';
import { verifyRange } from '../src/ledger/verify.js';
import { makeRow, stackAvailable, tempDir, testDb, type EventRow, type TestDb } from './helpers.js';

const H = (hour: number, min = 0) => Date.UTC(2026, 0, 7, hour, min);

/**
 * Migration 013 changed what `raw` holds (the remainder of the event beyond the typed columns, '' when
 * nothing remains) without changing the ledger: the canonical row is the stored values, `raw` among
 * them. An hour mixing older rows (raw = the whole event) and newer ones seals and verifies, and an
 * NDJSON export still gives every full event (reconstructEvent of each line).
 */
describe(
  'ledger and export across older (full raw) and newer (remainder) rows',
  { skip: !stackAvailable },
  () => {
    let db: TestDb;
    const dir = tempDir('retention-remainder-');
    const pubDir = join(dir, 'keys');
    const keyFile = join(dir, 'signing.key');
    const expected = new Map<string, Record<string, unknown>>();
    let manifest: Manifest;
    const out = join(dir, 'bundle');

    before(async () => {
      db = await testDb('retention_remainder');
      const rows: EventRow[] = [];
      for (let i = 0; i < 40; i++) {
        const r = makeRow(H(1) + i * 61_000 + i, i);
        const base = fromEventRow(r);
        // a third with unknown fields, the rest only known ones
        const event = i % 3 === 0 ? { ...base, vendor: { seq: i, tags: ['a', null] } } : base;
        expected.set(String(r.event_id), event);
        // even rows as before migration 013, odd rows as the ingester writes them now
        rows.push({ ...r, raw: i % 2 === 0 ? JSON.stringify(event) : remainderOf(event, base) });
      }
      assert.ok(rows.some((r) => r.raw === ''));
      assert.ok(rows.some((r) => String(r.raw).startsWith('{"remainder":')));
      await db.ch.insert('events', rows);
      createSigningKey(keyFile, pubDir);
      const key = loadSigningKey(keyFile);
      const sealed = await sealOnce({ db, key, dir: join(dir, 'ledger'), now: () => H(3) }, DEFAULT_SEALER);
      assert.deepEqual(
        sealed.records.map((r) => [r.hour, r.kind, r.rows]),
        [['2026-01-07T01:00:00Z', 'seal', 40]],
      );
      manifest = await exportBundle(
        { db, key, productVersion: '0.1.0', now: () => H(4) },
        { fromMs: H(1), toMs: H(2), format: 'ndjson', filters: exportFiltersSchema.parse({}), actor: 'test' },
        out,
      );
    });
    after(async () => db?.drop());

    it('the hour verifies in ClickHouse and as an exported bundle', async () => {
      const r = await verifyRange(
        { db, publicKeys: loadPublicKeys(pubDir), dir: join(dir, 'ledger'), now: () => H(4) },
        H(1),
        H(2),
        { sealGraceMs: 30 * 60_000, addendumWindowMs: HOUR_MS },
      );
      assert.deepEqual(r.failing, []);
      assert.equal(r.rowsChecked, 40);
      const b = await verifyBundle(out, loadPublicKeys(pubDir));
      assert.deepEqual(b.problems, []);
      assert.equal(b.rows, 40);
    });

    it('every NDJSON line gives the full event back', () => {
      const lines = manifest.files
        .flatMap((f) =>
          gunzipSync(readFileSync(join(out, f.name)))
            .toString('utf8')
            .split('\n'),
        )
        .filter((l) => l !== '');
      assert.equal(lines.length, 40);
      for (const l of lines) {
        const row = JSON.parse(l) as Record<string, unknown>;
        assert.deepEqual(reconstructEvent(row), expected.get(String(row.event_id)));
      }
    });
  },
);
