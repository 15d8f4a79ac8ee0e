import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ExportJob, ExportJobs, LegalHold, LegalHolds, VerifyReport } from '@mcp-audit/retention';
import type { ComplianceDeps } from '../src/compliance.routes.js';
import { bearer, KEYS, testApi } from './helpers.js';

function memoryHolds(): LegalHolds & { all: LegalHold[] } {
  const all: LegalHold[] = [];
  return {
    all,
    async create(s) {
      const h: LegalHold = {
        hold_id: `h${all.length + 1}`,
        case_id: s.case_id,
        reason: s.reason,
        from: s.from,
        to: s.to,
        clients: s.clients ?? [],
        created_by: s.actor,
        created_at: new Date(0).toISOString(),
        active: true,
      };
      all.push(h);
      return h;
    },
    async release(id, actor, note) {
      const h = all.find((x) => x.hold_id === id);
      if (!h) throw Object.assign(new Error('no hold'), { code: 'AUDIT_ERR_HOLD_NOT_FOUND' });
      Object.assign(h, { active: false, released_by: actor, release_note: note });
      return h;
    },
    async list(o) {
      return all.filter((h) => !o?.activeOnly || h.active);
    },
  };
}

function fakeJobs(dir: string): ExportJobs {
  const job: ExportJob = {
    job_id: '0190f3c4-3333-7abc-8def-0123456789ab',
    status: 'done',
    spec: { format: 'ndjson', filters: {} as never, actor: 'x', from: '', to: '' },
    created_at: '',
    progress: { rows: 2, bytes: 10, hoursDone: 1, hoursTotal: 1 },
    rows: 2,
  };
  return {
    start: () => job,
    get: (id) => (id === job.job_id ? job : undefined),
    dirOf: (id) => (id === job.job_id ? dir : undefined),
    list: () => [job],
    stop: async () => {},
  };
}

describe('compliance routes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'api-compliance-'));
  writeFileSync(join(dir, 'manifest.json'), '{"bundle_version":1}\n');
  writeFileSync(join(dir, 'manifest.sig'), '{"sig":"00"}\n');
  writeFileSync(join(dir, 'events-00001.ndjson.gz'), Buffer.alloc(1000, 7));
  const holds = memoryHolds();
  const verified: Array<[number, number]> = [];
  const compliance: ComplianceDeps = {
    holds,
    maxRangeDays: 31,
    exports: fakeJobs(dir),
    async verify(from, to) {
      verified.push([from, to]);
      return { ok: true, rowsChecked: 5, failing: [], chain: [] } as unknown as VerifyReport;
    },
  };

  it('holds: create, list, release; each call has its access-log row with the key', async () => {
    const { app, accessLog } = await testApi({ compliance });
    const c = await app.inject({
      method: 'POST',
      url: '/api/v1/legal-holds',
      headers: bearer(KEYS.compliance),
      payload: {
        case_id: 'C-1',
        reason: 'litigation',
        from: '2026-01-01T00:00:00Z',
        to: '2026-02-01T00:00:00Z',
      },
    });
    assert.equal(c.statusCode, 201, c.body);
    assert.equal(c.json().created_by, 'k-compliance');
    const l = await app.inject({
      method: 'GET',
      url: '/api/v1/legal-holds',
      headers: bearer(KEYS.compliance),
    });
    assert.equal(l.json().items.length, 1);
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/legal-holds/h1/release',
      headers: bearer(KEYS.compliance),
      payload: { note: 'settled' },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().released_by, 'k-compliance');
    const routes = accessLog.rows.map((x) => `${x.method} ${x.route} ${x.status} ${x.key_id}`);
    assert.deepEqual(routes, [
      'POST /api/v1/legal-holds 201 k-compliance',
      'GET /api/v1/legal-holds 200 k-compliance',
      'POST /api/v1/legal-holds/:hold_id/release 200 k-compliance',
    ]);
    const analyst = await app.inject({
      method: 'GET',
      url: '/api/v1/legal-holds',
      headers: bearer(KEYS.analyst),
    });
    assert.equal(analyst.statusCode, 403);
  });

  it('verify takes a bounded range; exports start, show progress, download as a tar', async () => {
    const { app, accessLog } = await testApi({ compliance });
    const v = await app.inject({
      method: 'GET',
      url: '/api/v1/verify?from=2026-01-05T00:00:00Z&to=2026-01-06T00:00:00Z',
      headers: bearer(KEYS.compliance),
    });
    assert.equal(v.statusCode, 200, v.body);
    assert.deepEqual(verified.at(-1), [Date.UTC(2026, 0, 5), Date.UTC(2026, 0, 6)]);
    const far = await app.inject({
      method: 'GET',
      url: '/api/v1/verify?from=2025-01-05T00:00:00Z&to=2026-01-06T00:00:00Z',
      headers: bearer(KEYS.compliance),
    });
    assert.equal(far.statusCode, 400);
    const s = await app.inject({
      method: 'POST',
      url: '/api/v1/exports',
      headers: bearer(KEYS.compliance),
      payload: {
        from: '2026-01-05T00:00:00Z',
        to: '2026-01-05T06:00:00Z',
        format: 'ocsf',
        filters: { outcome: ['error'] },
      },
    });
    assert.equal(s.statusCode, 202, s.body);
    const id = s.json().job_id as string;
    const g = await app.inject({
      method: 'GET',
      url: `/api/v1/exports/${id}`,
      headers: bearer(KEYS.compliance),
    });
    assert.equal(g.json().status, 'done');
    const d = await app.inject({
      method: 'GET',
      url: `/api/v1/exports/${id}/download`,
      headers: bearer(KEYS.compliance),
    });
    assert.equal(d.statusCode, 200);
    assert.equal(d.headers['content-type'], 'application/x-tar');
    const tar = join(dir, 'x.tar');
    writeFileSync(tar, d.rawPayload);
    const out = mkdtempSync(join(tmpdir(), 'api-untar-'));
    execFileSync('tar', ['-xf', tar, '-C', out]);
    const sub = join(out, `mcp-audit-export-${id}`);
    assert.deepEqual(readFileSync(join(sub, 'events-00001.ndjson.gz')), Buffer.alloc(1000, 7));
    assert.equal(readFileSync(join(sub, 'manifest.json'), 'utf8'), '{"bundle_version":1}\n');
    const logged = accessLog.rows.map((x) => `${x.method} ${x.route} ${x.status}`);
    assert.ok(logged.includes('GET /api/v1/exports/:job_id/download 200'), logged.join('\n'));
    assert.ok(logged.includes('POST /api/v1/exports 202'));
  });

  it('answers 503 when compliance is not configured', async () => {
    const { app } = await testApi();
    const r = await app.inject({
      method: 'GET',
      url: '/api/v1/legal-holds',
      headers: bearer(KEYS.compliance),
    });
    assert.equal(r.statusCode, 503);
  });
});
