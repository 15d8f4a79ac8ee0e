import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from '@mcp-audit/clickhouse';
import { createRegistry, type Registry } from '@mcp-audit/service-kit';
import {
  bundleName,
  exportSchedulesSchema,
  scheduleRange,
  startExportSchedules,
  type ExportSchedule,
} from '../src/export/schedules.js';
import { verifyBundle } from '../src/export/verify-bundle.js';
import { createSigningKey, loadPublicKeys, loadSigningKey } from '../src/ledger/keys.js';
import { DEFAULT_SEALER, sealOnce } from '../src/ledger/sealer.js';
import { makeRow, stackAvailable, tempDir, testDb, waitFor, type TestDb } from './helpers.js';

const DAY = Date.UTC(2026, 0, 5);
const NOW = DAY + 86_400_000 + 90 * 60_000; // 01:30 the next day

describe('schedule config', () => {
  it('accepts a schedule and names what is wrong in a bad one', () => {
    const ok = exportSchedulesSchema.parse([
      { name: 'daily', cron: '30 1 * * *', format: 'ndjson', range: 'previous_day', dir: '/srv/exports' },
    ]);
    assert.deepEqual(ok[0]!.filters.client, []);
    const bad = exportSchedulesSchema.safeParse([
      { name: 'Daily!', cron: 'every day', format: 'xml', range: 'yesterday', dir: 'exports' },
    ]);
    assert.equal(bad.success, false);
    const paths = bad.error!.issues.map((i) => i.path.join('.')).sort();
    assert.deepEqual(paths, ['0.cron', '0.dir', '0.format', '0.name', '0.range']);
    const dup = exportSchedulesSchema.safeParse([
      { name: 'a', cron: '* * * * *', format: 'csv', range: 'previous_hour', dir: '/x' },
      { name: 'a', cron: '* * * * *', format: 'csv', range: 'previous_hour', dir: '/y' },
    ]);
    assert.match(dup.error!.issues[0]!.message, /unique/);
  });

  it('exports the UTC day or hour before the run', () => {
    assert.deepEqual(scheduleRange('previous_day', NOW), { fromMs: DAY, toMs: DAY + 86_400_000 });
    assert.deepEqual(scheduleRange('previous_hour', NOW), {
      fromMs: DAY + 86_400_000,
      toMs: DAY + 86_400_000 + 3_600_000,
    });
  });
});

describe('scheduled exports to a directory', { skip: !stackAvailable }, () => {
  let db: TestDb;
  const dir = tempDir('retention-schedule-');
  const pubDir = join(dir, 'keys');
  const target = join(dir, 'outbox');

  before(async () => {
    db = await testDb('retention_schedule');
    const rows = Array.from({ length: 48 }, (_, i) => makeRow(DAY + i * 1_800_000 + i, i));
    await db.ch.insert('events', rows);
    createSigningKey(join(dir, 'signing.key'), pubDir);
    await sealOnce(
      { db, key: loadSigningKey(join(dir, 'signing.key')), dir: join(dir, 'ledger'), now: () => NOW },
      DEFAULT_SEALER,
    );
  });
  after(async () => db?.drop());
  const start = (schedule: ExportSchedule, registry: Registry) =>
    startExportSchedules([schedule], {
      db,
      key: loadSigningKey(join(dir, 'signing.key')),
      productVersion: '0.1.0',
      accessLog: db.ch,
      registry,
      now: () => NOW,
    });

  it('runs on its cron, writes the bundle atomically, never overwrites, and records every run', async () => {
    const registry = createRegistry('retention-test', { defaultMetrics: false });
    const schedule: ExportSchedule = exportSchedulesSchema.parse([
      // Every second (node-cron's six-field form), so the test sees the cron job fire.
      { name: 'daily-test', cron: '* * * * * *', format: 'ndjson', range: 'previous_day', dir: target },
    ])[0]!;
    const sched = start(schedule, registry);
    const count = async (result: string) => {
      const m = await registry.getSingleMetric('mcp_audit_retention_export_runs_total')!.get();
      return m.values.find((v) => v.labels.result === result)?.value ?? 0;
    };
    try {
      // The first run writes the bundle, the next ones find it and leave it alone.
      await waitFor(async () => (await count('skipped')) >= 1, 'a second cron run', 20_000);
    } finally {
      sched.stop();
    }
    assert.equal(await count('ok'), 1);
    assert.equal(await count('failed'), 0);
    const name = bundleName(schedule, DAY, DAY + 86_400_000);
    assert.equal(name, 'daily-test-20260105T0000Z-20260106T0000Z');
    // Only the finished bundle: no temporary directory left behind.
    assert.deepEqual(readdirSync(target), [name]);
    const bundle = join(target, name);
    const before = statSync(join(bundle, 'manifest.json')).mtimeMs;

    const report = await verifyBundle(bundle, loadPublicKeys(pubDir));
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.rows, 48);
    assert.equal(report.hoursVerified, 24);
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as {
      exported_by: string;
    };
    assert.equal(manifest.exported_by, 'schedule:daily-test');

    // A run by hand of the same schedule: skipped, the bundle untouched.
    const again = await sched.run(schedule);
    assert.equal(again.result, 'skipped');
    assert.equal(statSync(join(bundle, 'manifest.json')).mtimeMs, before);

    // The access log holds every run.
    const logged = await db.ch.query<{ phase: string; status: number; rows: string; n: string }>(
      sql`SELECT phase, status, rows, count() AS n FROM access_log WHERE key_id = 'schedule:daily-test' GROUP BY phase, status, rows ORDER BY phase`,
    );
    assert.deepEqual(
      logged.map((r) => [r.phase, Number(r.status), Number(r.rows)]),
      [
        ['export_complete', 200, 48],
        ['export_skipped', 409, 0],
      ],
    );
  });

  it('records a failed run (metric, access log) and leaves nothing behind', async () => {
    const registry = createRegistry('retention-test', { defaultMetrics: false });
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const schedule = exportSchedulesSchema.parse([
      { name: 'broken', cron: '0 0 1 1 *', format: 'csv', range: 'previous_day', dir: join(blocker, 'sub') },
    ])[0]!;
    const sched = start(schedule, registry);
    try {
      const r = await sched.run(schedule);
      assert.equal(r.result, 'failed');
      assert.match(r.error ?? '', /ENOTDIR|not a directory/);
    } finally {
      sched.stop();
    }
    const m = await registry.getSingleMetric('mcp_audit_retention_export_runs_total')!.get();
    assert.equal(m.values.find((v) => v.labels.result === 'failed')?.value, 1);
    const logged = await db.ch.query<{ status: number }>(
      sql`SELECT status FROM access_log WHERE key_id = 'schedule:broken' AND phase = 'export_failed'`,
    );
    assert.equal(logged.length, 1);
    assert.equal(Number(logged[0]!.status), 500);
  });
});
