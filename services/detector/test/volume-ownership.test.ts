/**
 * Detectors stop counting what another owns (issue 14 item 1): failed logins are the authentication
 * detectors' (auth_burst, auth_spray), not calls. A burst of failed logins raises auth_burst only,
 * never volume or off-hours as well, and the baseline's call profile leaves them out, so a client
 * that was sprayed last week does not get a wider volume band.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGrid, computeClientBaseline } from '../src/baseline.js';
import { parseDetectorConfig } from '../src/config.js';
import { baselinesFor, burst, H, harness, history, MIN, type Habit } from './engine.fixtures.js';

const cfg = parseDetectorConfig({});
const AS_OF = Date.parse('2026-03-30T00:00:00Z');
const OFFICE: Habit = {
  id: 'office-ben',
  tz: 'UTC',
  calls: (lt, r) => (lt.isoDow <= 5 && lt.hour >= 9 && lt.hour < 17 ? 30 + Math.floor(r() * 20) : 0),
  tools: ['read_file', 'write_file'],
  servers: ['filesystem'],
};
const all = baselinesFor([OFFICE], AS_OF, cfg);

test('a burst of 400 failed logins is auth_burst only: not volume, not off-hours', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  // 10:00 (in hours) and 03:00 (off hours): normal calls, then 400 failed logins from one address.
  for (const at of [tue + 10 * H, tue + 27 * H]) {
    await h.feed(burst(OFFICE.id, at, 400, { authFailed: true, ip: '203.0.113.66', bytes: 900 }, 30 * MIN));
  }
  const detectors = h.alerts().map((a) => a.detector);
  assert.ok(detectors.includes('auth_burst'), `auth_burst raised (got ${detectors.join(', ')})`);
  assert.deepEqual(
    detectors.filter((d) => d !== 'auth_burst'),
    [],
    'no volume / off_hours alert for failed logins',
  );
  // The same number of successful calls is volume.
  const h2 = await harness(all, cfg);
  await h2.feed(burst(OFFICE.id, tue + 10 * H, 400, { tool: 'read_file', server: 'filesystem' }, 30 * MIN));
  assert.deepEqual(
    h2.alerts().map((a) => a.detector),
    ['volume'],
  );
});

test('the call profile of the baseline leaves failed logins out', () => {
  const from = AS_OF - cfg.baseline.windowDays * 24 * H;
  const clean = history(OFFICE, from, AS_OF, 3);
  // The same history with 500 failed logins in every active hour (counted in events_hourly.calls).
  const sprayed = {
    ...clean,
    hours: clean.hours.map((x) => ({ ...x, calls: x.calls + 500, authFailures: 500 })),
  };
  const opts = {
    asOf: AS_OF,
    windowDays: cfg.baseline.windowDays,
    learningActiveDays: cfg.baseline.learningActiveDays,
  };
  const grid = buildGrid(from, cfg.baseline.windowDays, OFFICE.tz);
  const a = computeClientBaseline(clean, grid, opts);
  const b = computeClientBaseline(sprayed, grid, opts);
  assert.deepEqual(b.metrics.calls, a.metrics.calls);
  assert.notDeepEqual(b.metrics.auth_failures, a.metrics.auth_failures, 'they count as auth failures');
});
