import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { exportBundle, type Manifest } from '../src/export/bundle.js';
import { exportFiltersSchema } from '../src/export/filters.js';
import { CsvParser, decodeCsv, type ExportFormat } from '../src/export/formats.js';
import { verifyBundle, type BundleReport } from '../src/export/verify-bundle.js';
import { createSigningKey, loadPublicKeys, loadSigningKey } from '../src/ledger/keys.js';
import { DEFAULT_SEALER, sealOnce } from '../src/ledger/sealer.js';
import { makeRow, stackAvailable, tempDir, testDb, type TestDb } from './helpers.js';

const H = (hour: number, min = 0) => Date.UTC(2026, 0, 5, hour, min);
const kinds = (r: BundleReport) => [...new Set(r.problems.map((p) => p.kind))].sort();

describe('export bundles', { skip: !stackAvailable }, () => {
  let db: TestDb;
  const dir = tempDir('retention-export-');
  const pubDir = join(dir, 'keys');
  const keyFile = join(dir, 'signing.key');
  const bundles = new Map<ExportFormat, string>();
  const manifests = new Map<ExportFormat, Manifest>();

  before(async () => {
    db = await testDb('retention_export');
    let i = 0;
    const rows = [H(1), H(2)].flatMap((h) =>
      Array.from({ length: 30 }, () => makeRow(h + i * 61_000 + i, i++)),
    );
    // CSV injection candidates and a late row (after the seal: an addendum covers it).
    rows.push(
      makeRow(H(1, 30), 100, {
        client_user: "=cmd|' /C calc'!A0",
        tool_name: '+1',
        error_message: '@SUM(1)',
        auth_reason: "'quoted",
        session_id: '-2',
      }),
    );
    await db.ch.insert('events', rows);
    createSigningKey(keyFile, pubDir);
    const key = loadSigningKey(keyFile);
    await sealOnce({ db, key, dir: join(dir, 'ledger'), now: () => H(3, 30) }, DEFAULT_SEALER);
    await db.ch.insert('events', [makeRow(H(2, 10), 200, {}, Math.floor(H(3, 40) / 1000))]);
    await sealOnce({ db, key, dir: join(dir, 'ledger'), now: () => H(4, 0) }, DEFAULT_SEALER);
    for (const format of ['ndjson', 'csv', 'ocsf'] as const) {
      const out = join(dir, `bundle-${format}`);
      manifests.set(
        format,
        await exportBundle(
          { db, key, productVersion: '0.1.0', now: () => H(5) },
          {
            fromMs: H(0),
            toMs: H(3),
            format,
            filters: exportFiltersSchema.parse({}),
            actor: 'test',
            rowsPerFile: 25,
          },
          out,
        ),
      );
      bundles.set(format, out);
    }
  });
  after(async () => db?.drop());

  it('exports every row once, marks sealed hours complete, and each format verifies offline', async () => {
    for (const [format, out] of bundles) {
      const m = manifests.get(format)!;
      assert.equal(m.rows, 62, format);
      assert.equal(m.files.length, 3, format);
      assert.deepEqual(m.complete_hours, ['2026-01-05T01:00:00Z', '2026-01-05T02:00:00Z'], format);
      assert.equal(m.ledger.length, 3, format);
      const r = await verifyBundle(out, loadPublicKeys(pubDir));
      assert.deepEqual(r.problems, [], format);
      assert.equal(r.ok, true);
      assert.equal(r.rows, 62);
      assert.equal(r.hoursVerified, 2);
    }
  });

  it('CSV cells that a spreadsheet would run are neutralised, and read back exactly', () => {
    const out = bundles.get('csv')!;
    const m = manifests.get('csv')!;
    const text = m.files.map((f) => gunzipSync(readFileSync(join(out, f.name))).toString('utf8')).join('');
    assert.ok(text.includes(`"'=cmd|' /C calc'!A0"`));
    assert.ok(text.includes(`"'+1"`) && text.includes(`"'@SUM(1)"`) && text.includes(`"''quoted"`));
    const p = new CsvParser();
    p.push(text);
    const back = p.records.filter((r) => r[0]!.text !== 'event_id').map(decodeCsv);
    const evil = back.find((r) => r.values.tool_name === '+1')!;
    assert.equal(evil.values.client_user, "=cmd|' /C calc'!A0");
    assert.equal(evil.values.auth_reason, "'quoted");
    assert.equal(evil.values.response_bytes, '18446744073709551615');
  });

  const copy = (format: ExportFormat, name: string) => {
    const to = join(dir, name);
    cpSync(bundles.get(format)!, to, { recursive: true });
    return to;
  };
  const rewrite = (b: string, file: string, edit: (lines: string[]) => string[]) => {
    const lines = gunzipSync(readFileSync(join(b, file)))
      .toString('utf8')
      .split('\n');
    writeFileSync(join(b, file), gzipSync(edit(lines).join('\n')));
  };

  it('names each tampering: a byte of a data file, a row, the manifest, a dropped row', async () => {
    const keys = loadPublicKeys(pubDir);
    const m = manifests.get('ndjson')!;
    const f = m.files[0]!.name;

    const byte = copy('ndjson', 't-byte');
    const buf = readFileSync(join(byte, f));
    buf[Math.floor(buf.length / 2)]! ^= 0x01;
    writeFileSync(join(byte, f), buf);
    const r1 = await verifyBundle(byte, keys);
    assert.equal(r1.ok, false);
    assert.ok(kinds(r1).includes('file_checksum'), JSON.stringify(kinds(r1)));

    const row = copy('ndjson', 't-row');
    rewrite(row, f, (ls) => {
      ls[3] = ls[3]!.replace('alice@example.com', 'mallory@example.com');
      return ls;
    });
    const r2 = await verifyBundle(row, keys);
    assert.deepEqual(kinds(r2), ['file_checksum', 'file_size', 'hour_root']);

    const man = copy('ndjson', 't-manifest');
    const text = readFileSync(join(man, 'manifest.json'), 'utf8');
    writeFileSync(join(man, 'manifest.json'), text.replace('"exported_by": "test"', '"exported_by": "tset"'));
    assert.deepEqual(kinds(await verifyBundle(man, keys)), ['bad_signature']);

    const drop = copy('ndjson', 't-drop');
    rewrite(drop, f, (ls) => ls.filter((_, i) => i !== 2));
    assert.deepEqual(kinds(await verifyBundle(drop, keys)), [
      'file_checksum',
      'file_rows',
      'file_size',
      'hour_rows',
    ]);

    const ocsf = copy('ocsf', 't-ocsf');
    const of = manifests.get('ocsf')!.files[0]!.name;
    rewrite(ocsf, of, (ls) => {
      const o = JSON.parse(ls[1]!) as { actor: { user: { name: string } } };
      o.actor.user.name = 'someone-else';
      ls[1] = JSON.stringify(o);
      return ls;
    });
    const r5 = await verifyBundle(ocsf, keys);
    assert.ok(kinds(r5).includes('file_unreadable'), JSON.stringify(r5.problems));
    assert.match(
      r5.problems.find((p) => p.kind === 'file_unreadable')!.detail,
      /not the mapping of its raw_data/,
    );

    assert.deepEqual(kinds(await verifyBundle(bundles.get('ndjson')!, new Map())), [
      'hour_root',
      'record_unknown_key',
      'unknown_key',
    ]);
  });

  it('a filtered export verifies its files and signature but claims no complete hour', async () => {
    const key = loadSigningKey(keyFile);
    const out = join(dir, 'filtered');
    const m = await exportBundle(
      { db, key, productVersion: '0.1.0' },
      {
        fromMs: H(0),
        toMs: H(3),
        format: 'ndjson',
        filters: exportFiltersSchema.parse({ outcome: ['error'], label: ['env=prod'] }),
        actor: 'test',
      },
      out,
    );
    assert.ok(m.rows > 0 && m.rows < 62);
    assert.deepEqual(m.complete_hours, []);
    const r = await verifyBundle(out, loadPublicKeys(pubDir));
    assert.equal(r.ok, true);
    assert.equal(r.hoursVerified, 0);
  });
});
