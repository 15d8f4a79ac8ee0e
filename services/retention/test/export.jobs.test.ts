import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportFiltersSchema } from '../src/export/filters.js';
import { createExportJobs, type ExportJob } from '../src/export/jobs.js';
import { createSigningKey, loadSigningKey } from '../src/ledger/keys.js';
import { makeRow, stackAvailable, tempDir, testDb, waitFor, type TestDb } from './helpers.js';

const H = Date.UTC(2026, 0, 5, 3);

describe('export jobs survive a restart', { skip: !stackAvailable }, () => {
  let db: TestDb;
  const dir = tempDir('retention-jobs-');
  before(async () => {
    db = await testDb('retention_jobs');
    await db.ch.insert(
      'events',
      Array.from({ length: 20 }, (_, i) => makeRow(H + i * 60_000, i)),
    );
    createSigningKey(join(dir, 'signing.key'), join(dir, 'keys'));
  });
  after(async () => db?.drop());

  it('lists a finished job after a restart and reports an interrupted one as failed, not unknown', async () => {
    const deps = { db, key: loadSigningKey(join(dir, 'signing.key')), productVersion: '0.1.0' };
    const out = join(dir, 'exports');
    const first = createExportJobs(deps, out);
    const spec = {
      fromMs: H,
      toMs: H + 3_600_000,
      format: 'ndjson' as const,
      filters: exportFiltersSchema.parse({}),
      actor: 'key-1',
    };
    const done = first.start(spec);
    await waitFor(async () => first.get(done.job_id)?.status === 'done', 'the export job');
    await first.stop();

    // What a process killed mid-export leaves: the job's last persisted status, `running`, and a partial bundle.
    const lostId = randomUUID();
    const lost: ExportJob = {
      ...done,
      job_id: lostId,
      status: 'running',
      created_at: new Date().toISOString(),
    };
    delete lost.finished_at;
    writeFileSync(join(out, 'jobs', `${lostId}.json`), JSON.stringify(lost));
    mkdirSync(join(out, lostId));
    writeFileSync(join(out, lostId, 'events-00001.ndjson.gz'), 'partial');

    const second = createExportJobs(deps, out);
    try {
      const d = second.get(done.job_id);
      assert.equal(d?.status, 'done');
      assert.equal(d?.rows, 20);
      assert.equal(second.dirOf(done.job_id), join(out, done.job_id));
      const l = second.get(lostId);
      assert.equal(l?.status, 'failed');
      assert.match(l?.error ?? '', /lost/);
      assert.equal(second.dirOf(lostId), undefined);
      assert.equal(existsSync(join(out, lostId)), false, 'the partial bundle is removed');
      const persisted = JSON.parse(readFileSync(join(out, 'jobs', `${lostId}.json`), 'utf8')) as ExportJob;
      assert.equal(persisted.status, 'failed');
      assert.deepEqual(
        second
          .list()
          .map((j) => j.job_id)
          .sort(),
        [done.job_id, lostId].sort(),
      );
    } finally {
      await second.stop();
    }
  });
});
