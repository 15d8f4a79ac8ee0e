import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDetectorConfig, profileTimeZone, resolveClientConfig } from '../src/config.js';

test('defaults: every field optional', () => {
  const c = parseDetectorConfig({});
  assert.equal(c.timeZone, 'UTC');
  assert.equal(c.detectors.volume.k, 6);
  assert.equal(c.baseline.learningActiveDays, 7);
  assert.equal(c.allowedLatenessMs, 120_000);
});

test('resolution: labels, then globs (short to long), then exact ids', () => {
  const c = parseDetectorConfig({
    detectors: { volume: { k: 6 } },
    labels: { 'team=finance': { timeZone: 'America/New_York', detectors: { volume: { k: 7 } } } },
    clients: {
      'office-*': { timeZone: 'Europe/Berlin', detectors: { volume: { k: 8 } } },
      'office-ber*': { detectors: { volume: { k: 9 } } },
      'office-berlin-1': { detectors: { volume: { minCalls: 99 } } },
    },
  });
  const r = resolveClientConfig(c, 'office-berlin-1', { team: 'finance' });
  assert.equal(r.timeZone, 'Europe/Berlin');
  assert.equal(r.detectors.volume.k, 9);
  assert.equal(r.detectors.volume.minCalls, 99);
  assert.equal(resolveClientConfig(c, 'ci', { team: 'finance' }).detectors.volume.k, 7);
  assert.equal(resolveClientConfig(c, 'ci', { team: 'finance' }).timeZone, 'America/New_York');
  // the profile's zone ignores labels (the hourly rollups carry none)
  assert.equal(profileTimeZone(c, 'ci'), 'UTC');
  assert.equal(profileTimeZone(c, 'office-x'), 'Europe/Berlin');
  // `*` is the only wildcard: a dot is literal
  assert.equal(
    resolveClientConfig(parseDetectorConfig({ clients: { 'a.*': { timeZone: 'Asia/Tokyo' } } }), 'abc')
      .timeZone,
    'UTC',
  );
});

test('bad input is refused with the path named', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ timeZone: 'Mars/Olympus' }, /timeZone: must be an IANA time zone/],
    [
      { clients: { x: { businessHours: { start: '25:00' } } } },
      /clients\.x\.businessHours\.start: must be HH:MM/,
    ],
    [{ clients: { x: { detectors: { volume: { k: -1 } } } } }, /clients\.x\.detectors\.volume\.k/],
    [{ clients: { x: { detectors: { volumne: { k: 1 } } } } }, /volumne: unknown detector/],
    [{ labels: { team: {} } }, /labels\.team: Invalid key/],
    [{ detectors: { off_hours: { businessHoursMode: 'sometimes' } } }, /businessHoursMode/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseDetectorConfig(input), re);
});

test('the periodic settings are validated with the rest of the file, at load', () => {
  assert.throws(
    () => parseDetectorConfig({ periodic: { authSpray: { minClients: 'three' } } }),
    /periodic\.authSpray\.minClients/,
  );
  const cfg = parseDetectorConfig({ periodic: { toolDrift: { enabled: false } } });
  assert.equal(cfg.periodic.toolDrift.enabled, false);
  assert.equal(cfg.periodic.authSpray.enabled, true, 'defaults filled in');
});

test('watchdog and expiry settings: defaults, and bad values refused with the path named', () => {
  const c = parseDetectorConfig({});
  assert.deepEqual(
    [
      c.watchdog.enabled,
      c.watchdog.windowMs,
      c.watchdog.periodMs,
      c.watchdog.stall.groupId,
      c.watchdog.stall.stallMs,
    ],
    [true, 600_000, 7 * 86_400_000, 'mcp-audit-ingester', 300_000],
  );
  assert.deepEqual(
    [c.periodic.toolDrift.expireMs, c.periodic.authFailThenSuccess.expireMs],
    [86_400_000, 86_400_000],
  );
  for (const [input, path] of [
    [{ watchdog: { windowMs: 5 } }, /watchdog\.windowMs/],
    [{ watchdog: { periodMs: 3_600_000, referenceSpanMs: 7_200_000 } }, /watchdog\.referenceSpanMs/],
    [{ watchdog: { stall: { groupId: '' } } }, /watchdog\.stall\.groupId/],
    [{ periodic: { toolDrift: { expireMs: 1000 } } }, /periodic\.toolDrift\.expireMs/],
  ] as const)
    assert.throws(() => parseDetectorConfig(input), path);
});
