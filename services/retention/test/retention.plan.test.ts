import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dbIdent, sql } from '@mcp-audit/clickhouse';
import { retentionPolicySchema } from '../src/config.js';
import { createLegalHolds } from '../src/holds.js';
import { createSigningKey, loadPublicKeys, loadSigningKey } from '../src/ledger/keys.js';
import { HOUR_MS } from '../src/ledger/record.js';
import { DEFAULT_SEALER, sealOnce } from '../src/ledger/sealer.js';
import { planRetention, runRetention } from '../src/retention.job.js';
import { makeRow, stackAvailable, tempDir, testDb, type TestDb } from './helpers.js';

const D = (day: number, hour = 0) => Date.UTC(2026, 0, day, hour);

/**
 * `retention plan` on the real ClickHouse: a sealed day past the policy goes, a day under a legal hold
 * stays, a day with rows no record covers stays, and with no ledger at all nothing goes.
 */
describe('retention plan', { skip: !stackAvailable }, () => {
  let db: TestDb;
  let bare: TestDb;
  const dir = tempDir();
  const pubDir = join(dir, 'keys');
  const policy = retentionPolicySchema.parse({ events: 1 });
  const vopts = { sealGraceMs: 30 * 60_000, addendumWindowMs: HOUR_MS };
  const later = () => D(60);

  before(async () => {
    db = await testDb();
    bare = await testDb();
    let i = 0;
    for (const day of [5, 6]) {
      const rows = Array.from({ length: 10 }, () => makeRow(D(day) + (i % 50) * 60_000, i++));
      await db.ch.insert('events', rows);
      await bare.ch.insert('events', rows);
    }
    createSigningKey(join(dir, 'signing.key'), pubDir);
    await sealOnce(
      { db, key: loadSigningKey(join(dir, 'signing.key')), dir: join(dir, 'ledger'), now: () => D(7) },
      DEFAULT_SEALER,
    );
    // Day 7's rows arrive after every seal and are never sealed.
    await db.ch.insert(
      'events',
      Array.from({ length: 5 }, () => makeRow(D(7, 2) + i * 1000, i++)),
    );
  });
  after(async () => {
    await db?.drop();
    await bare?.drop();
  });

  const plan = (t: TestDb) =>
    planRetention(
      {
        ch: t.ch,
        database: t.database,
        stream: t.stream,
        holds: createLegalHolds({ ch: t.ch, database: t.database }),
        publicKeys: loadPublicKeys(pubDir),
        verify: vopts,
        now: later,
      },
      policy,
    );

  it('removes a verified day, keeps a held one and one that is not sealed', async () => {
    await createLegalHolds({ ch: db.ch, database: db.database }).create({
      case_id: 'IR-7',
      reason: 'litigation',
      from: new Date(D(6, 3)).toISOString(),
      to: new Date(D(6, 4)).toISOString(),
      clients: [],
      actor: 'compliance-officer',
    });
    const events = (await plan(db)).filter((p) => p.table === 'events');
    assert.deepEqual(
      events.map((p) => [p.partition, p.action]),
      [
        ['20260105', 'remove'],
        ['20260106', 'keep'],
        ['20260107', 'keep'],
      ],
    );
    assert.match(events[1]!.why, /legal hold: IR-7/);
    assert.match(events[2]!.why, /does not verify/);
  });

  it('run drops the copy events_by_time and the ids index event_ids with their events day and never on their own', async () => {
    // event_ids as the ingester fills it (and as migration 009 backfills it).
    const D_ = dbIdent(db.database);
    await db.ch.command(
      sql`INSERT INTO ${D_}.event_ids SELECT event_id, '' AS digest, ts, client_id, ingested_at, ver FROM ${D_}.events`,
    );
    const days = async () =>
      (
        await db.ch.query<{ table: string; partition: string }>(sql`
          SELECT DISTINCT table, partition FROM system.parts
          WHERE database = ${db.database} AND active AND table IN ('events', 'events_by_time', 'event_ids')
          ORDER BY table, partition`)
      ).map((r) => `${r.table} ${r.partition}`);
    const copyDays = ['events_by_time 20260105', 'events_by_time 20260106', 'events_by_time 20260107'];
    const idDays = ['event_ids 20260105', 'event_ids 20260106', 'event_ids 20260107'];
    assert.deepEqual(await days(), [
      ...idDays,
      'events 20260105',
      'events 20260106',
      'events 20260107',
      ...copyDays,
    ]);
    assert.ok(!(await plan(db)).some((p) => p.table === 'events_by_time'), 'no policy of its own');
    assert.ok(!(await plan(db)).some((p) => p.table === 'event_ids'), 'no policy of its own');
    const run = await runRetention(
      {
        ch: db.ch,
        database: db.database,
        stream: db.stream,
        holds: createLegalHolds({ ch: db.ch, database: db.database }),
        publicKeys: loadPublicKeys(pubDir),
        verify: vopts,
        now: later,
        key: loadSigningKey(join(dir, 'signing.key')),
        receiptsDir: join(dir, 'receipts'),
        raiseAlerts: async () => {},
      },
      policy,
    );
    assert.deepEqual(
      run.removed.map((p) => `${p.table} ${p.partition}`),
      ['events 20260105'],
    );
    // the held day and the unsealed day stay in both tables
    assert.deepEqual(await days(), [
      ...idDays.slice(1),
      'events 20260106',
      'events 20260107',
      ...copyDays.slice(1),
    ]);
  });

  it('with no ledger at all, no events day verifies, so none goes', async () => {
    const events = (await plan(bare)).filter((p) => p.table === 'events');
    assert.equal(events.length, 2);
    for (const p of events) {
      assert.equal(p.action, 'keep');
      assert.match(p.why, /missing_record/);
    }
  });
});
