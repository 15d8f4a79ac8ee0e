import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dbIdent, sql } from '@mcp-audit/clickhouse';
import { createSigningKey, loadPublicKeys, loadSigningKey } from '../src/ledger/keys.js';
import { canonicalJson, HOUR_MS } from '../src/ledger/record.js';
import { DEFAULT_SEALER, sealOnce } from '../src/ledger/sealer.js';
import { verifyRange, type VerifyReport } from '../src/ledger/verify.js';
import {
  makeRow,
  stackAvailable,
  tempDir,
  testDb,
  waitMutations,
  type EventRow,
  type TestDb,
} from './helpers.js';

const H = (day: number, hour: number, min = 0) => Date.UTC(2026, 0, day, hour, min);
const sec = (ms: number) => Math.floor(ms / 1000);

/**
 * What an attacker holding the writer's or the admin's ClickHouse credentials would do, each on an
 * hour of its own, against the real ClickHouse in a database of the test's own.
 */
describe('ledger: tampering is detected and named', { skip: !stackAvailable }, () => {
  let db: TestDb;
  const dir = tempDir();
  const ledgerDir = join(dir, 'ledger');
  const pubDir = join(dir, 'keys');
  const keyFile = join(dir, 'signing.key');
  const rows = new Map<number, EventRow[]>();
  const now2 = H(6, 3);
  const vopts = { sealGraceMs: 30 * 60_000, addendumWindowMs: HOUR_MS };
  const verify = (from: number, to: number, withDir = true): Promise<VerifyReport> =>
    verifyRange(
      {
        db,
        publicKeys: loadPublicKeys(pubDir),
        dir: withDir ? ledgerDir : undefined,
        now: () => now2 + 60_000,
      },
      from,
      to,
      vopts,
    );
  const failing = (r: VerifyReport, h: number) =>
    r.failing.find((f) => f.hour === new Date(h).toISOString().replace('.000Z', 'Z'));
  const kinds = (r: VerifyReport, h: number) => (failing(r, h)?.problems ?? []).map((p) => p.kind).sort();
  const problem = (r: VerifyReport, h: number, kind: string) =>
    failing(r, h)?.problems.find((p) => p.kind === kind);
  const events = () => sql`${dbIdent(db.database)}.events`;
  const ledgerTable = () => sql`${dbIdent(db.database)}.integrity_ledger`;

  before(async () => {
    db = await testDb();
    const hours = [H(5, 0), H(5, 1), H(5, 2), H(5, 3), H(5, 4), H(5, 5), H(6, 0), H(6, 1)];
    let i = 0;
    for (const h of hours) {
      const rs = Array.from({ length: 25 }, () => makeRow(h + (i % 60) * 59_000 + (i++ % 1000), i));
      rows.set(h, rs);
      await db.ch.insert('events', rs);
    }
    // First run signed with key 1 at 03:30: seals 00:00, 01:00 and 02:00.
    createSigningKey(keyFile, pubDir);
    const key1 = loadSigningKey(keyFile);
    const run1 = await sealOnce(
      { db, key: key1, dir: ledgerDir, now: () => H(5, 3, 30) },
      { ...DEFAULT_SEALER, hoursPerQuery: 2 },
    );
    assert.deepEqual(
      run1.records.map((r) => [r.hour, r.kind, r.rows]),
      [
        ['2026-01-05T00:00:00Z', 'seal', 25],
        ['2026-01-05T01:00:00Z', 'seal', 25],
        ['2026-01-05T02:00:00Z', 'seal', 25],
      ],
    );
    // A late row of 00:00 arrives after the first cutoff; the key is rotated.
    const late = makeRow(H(5, 0, 30), 999, {}, sec(H(5, 4)));
    rows.get(H(5, 0))!.push(late);
    await db.ch.insert('events', [late]);
    const { key: key2, replaced } = createSigningKey(keyFile, pubDir, { rotate: true });
    assert.equal(replaced, key1.keyId);
    const run2 = await sealOnce({ db, key: key2, dir: ledgerDir, now: () => now2 }, DEFAULT_SEALER);
    assert.equal(run2.records[0]!.kind, 'addendum');
    assert.equal(run2.records[0]!.hour, '2026-01-05T00:00:00Z');
    assert.equal(run2.records[0]!.rows, 1);
    assert.equal(run2.records.at(-1)!.hour, '2026-01-06T01:00:00Z');
    assert.ok(run2.records.every((r) => r.key_id === key2.keyId));
    // A second run at the same instant has nothing to do.
    assert.equal(
      (await sealOnce({ db, key: key2, dir: ledgerDir, now: () => now2 }, DEFAULT_SEALER)).records.length,
      0,
    );
  });
  after(async () => db?.drop());

  it('verifies an untouched range, across a key rotation and an addendum', async () => {
    const r = await verify(H(5, 0), H(6, 2));
    assert.deepEqual(r.failing, []);
    assert.deepEqual(r.chain, []);
    assert.equal(r.ok, true);
    assert.equal(r.rowsChecked, 8 * 25 + 1);
  });

  it('detects and names every row-level tampering', async () => {
    // 00:00 — ALTER … UPDATE of one field of one row (admin).
    const victim = rows.get(H(5, 0))![3]!;
    await db.ch.command(
      sql`ALTER TABLE ${events()} UPDATE client_user = 'mallory' WHERE event_id = toUUID(${String(victim.event_id)})`,
    );
    // 01:00 — ALTER … DELETE of one row.
    const deleted = rows.get(H(5, 1))![7]!;
    await db.ch.command(
      sql`ALTER TABLE ${events()} DELETE WHERE event_id = toUUID(${String(deleted.event_id)})`,
    );
    await waitMutations(db.ch, db.database, 'events');
    // 02:00 — forged rows with fresh ids (writer): one back-dated under the seal's cutoff, one not.
    const forgedOld = makeRow(H(5, 2, 10), 5000);
    const forgedNew = makeRow(H(5, 2, 20), 5001, {}, sec(now2));
    await db.ch.insert('events', [forgedOld, forgedNew]);
    // 03:00 — a forged copy reusing an event id, with a higher ver so it wins every FINAL query.
    const orig = rows.get(H(5, 3))![11]!;
    const reused = { ...orig, client_user: 'mallory', ver: orig.ver + 1 };
    await db.ch.insert('events', [reused]);
    // 2026-01-06 — the whole day partition dropped.
    await db.ch.command(sql`ALTER TABLE ${events()} DROP PARTITION ${20260106}`);

    const r = await verify(H(5, 0), H(6, 2));
    assert.equal(r.ok, false);
    // ALTER, DELETE and DROP PARTITION on events leave its search copy (events_by_time) as it was:
    // that is named too. Inserts go to both (the materialized view), so the copy agrees there.
    assert.deepEqual(kinds(r, H(5, 0)), ['copy_differs', 'rows_changed']);
    assert.deepEqual(problem(r, H(5, 0), 'rows_changed')!.sample, [victim.event_id]);
    assert.deepEqual(problem(r, H(5, 0), 'copy_differs')!.sample, [victim.event_id]);
    assert.deepEqual(kinds(r, H(5, 1)), ['copy_differs', 'rows_removed']);
    assert.deepEqual(problem(r, H(5, 1), 'rows_removed')!.sample, [deleted.event_id]);
    assert.match(problem(r, H(5, 1), 'copy_differs')!.detail, /24 events in events, 25 in events_by_time/);
    assert.deepEqual(kinds(r, H(5, 2)), ['rows_added', 'unsealed_rows']);
    assert.deepEqual(problem(r, H(5, 2), 'rows_added')!.sample, [forgedOld.event_id]);
    assert.deepEqual(problem(r, H(5, 2), 'unsealed_rows')!.sample, [forgedNew.event_id]);
    assert.deepEqual(kinds(r, H(5, 3)), ['rows_changed']);
    assert.deepEqual(problem(r, H(5, 3), 'rows_changed')!.sample, [orig.event_id]);
    for (const h of [H(6, 0), H(6, 1)]) {
      assert.deepEqual(kinds(r, h), ['copy_differs', 'rows_removed']);
      assert.equal(problem(r, h, 'rows_removed')!.count, 25);
      assert.equal(problem(r, h, 'copy_differs')!.count, 25);
    }
    assert.equal(failing(r, H(5, 4)), undefined);
    assert.equal(r.failing.length, 6);
    // An untouched range still verifies.
    const clean = await verify(H(5, 4), H(6, 0));
    assert.equal(clean.ok, true, JSON.stringify(clean.failing));
  });

  it('detects events_by_time (the search copy) changed or deleted on its own', async () => {
    const copy = sql`${dbIdent(db.database)}.events_by_time`;
    const [hidden, altered] = [rows.get(H(5, 5))![4]!, rows.get(H(5, 5))![9]!];
    const before = await verify(H(5, 4), H(5, 6));
    assert.equal(before.ok, true, JSON.stringify(before.failing));
    await db.ch.command(sql`ALTER TABLE ${copy} DELETE WHERE event_id = toUUID(${String(hidden.event_id)})`);
    await db.ch.command(
      sql`ALTER TABLE ${copy} UPDATE client_user = 'mallory' WHERE event_id = toUUID(${String(altered.event_id)})`,
    );
    await waitMutations(db.ch, db.database, 'events_by_time');

    const r = await verify(H(5, 4), H(5, 6));
    assert.equal(r.ok, false);
    assert.deepEqual(
      kinds(r, H(5, 5)),
      ['copy_differs'],
      'the ledger itself still verifies: events is intact',
    );
    const p = problem(r, H(5, 5), 'copy_differs')!;
    assert.equal(p.count, 2);
    assert.deepEqual(p.sample, [hidden.event_id, altered.event_id].sort());
    assert.match(
      p.detail,
      /^events_by_time differs from events: 25 events in events, 24 in events_by_time; 1 missing from the copy, 0 only in the copy, 1 changed/,
    );
    assert.equal(failing(r, H(5, 4)), undefined, 'the untouched hour beside it verifies');
  });

  it('detects a replaced ledger record and a truncated ledger tail', async () => {
    const recs = await db.ch.query<{ seq: string; record: string }>(
      sql`SELECT seq, record FROM ${ledgerTable()} ORDER BY seq`,
    );
    const last = recs.length - 1;
    // Replace the seal of 04:00 by one whose root matches a rewritten hour (signature kept).
    const target = recs.find((x) => JSON.parse(x.record).hour === '2026-01-05T04:00:00Z')!;
    const forged = canonicalJson({ ...JSON.parse(target.record), root: 'ab'.repeat(32) });
    await db.ch.command(
      sql`ALTER TABLE ${ledgerTable()} UPDATE record = ${forged} WHERE seq = ${Number(target.seq)}`,
    );
    // Truncate the tail: the last two records.
    await db.ch.command(sql`ALTER TABLE ${ledgerTable()} DELETE WHERE seq >= ${last - 1}`);
    await waitMutations(db.ch, db.database, 'integrity_ledger');

    const withFiles = await verify(H(5, 4), H(5, 6));
    const chainKinds = withFiles.chain.map((p) => `${p.kind}:${p.seq}`).sort();
    assert.ok(chainKinds.includes(`bad_signature:${target.seq}`), chainKinds.join());
    assert.ok(chainKinds.includes(`record_replaced:${target.seq}`), chainKinds.join());
    assert.ok(chainKinds.includes(`ledger_truncated:${last}`), chainKinds.join());
    assert.ok(chainKinds.includes(`ledger_truncated:${last - 1}`), chainKinds.join());
    assert.equal(withFiles.ok, false);
    assert.ok(kinds(withFiles, H(5, 4)).includes('bad_signature'));

    // Without the record files (the API's view): the forged record is unusable, the tail hours unsealed.
    const tableOnly = await verify(H(5, 0), H(6, 2), false);
    assert.ok(kinds(tableOnly, H(5, 4)).includes('bad_signature'));
    assert.ok(kinds(tableOnly, H(5, 4)).includes('missing_record'));
    const tailHours = [H(6, 0), H(6, 1)];
    for (const h of tailHours)
      assert.ok(kinds(tableOnly, h).includes('missing_record'), JSON.stringify(kinds(tableOnly, h)));
  });
});
