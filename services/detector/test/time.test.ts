import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inBusinessHours, localTime, pooledCell, weekCell, windowLabel, windowStartOf } from '../src/time.js';
import { businessHoursSchema } from '../src/config.js';

const t = (iso: string) => Date.parse(iso);

test('localTime: Europe/Berlin across the March change (last Sunday, 2026-03-29)', () => {
  assert.deepEqual(localTime(t('2026-03-29T00:30:00Z'), 'Europe/Berlin'), {
    isoDow: 7,
    hour: 1,
    minute: 30,
    date: '2026-03-29',
  });
  // 01:00Z is 03:00 CEST: the local 02:00 hour does not exist that day
  assert.deepEqual(localTime(t('2026-03-29T01:30:00Z'), 'Europe/Berlin'), {
    isoDow: 7,
    hour: 3,
    minute: 30,
    date: '2026-03-29',
  });
  // office hours 09:00 local = 08:00Z before, 07:00Z after
  assert.equal(localTime(t('2026-03-27T08:00:00Z'), 'Europe/Berlin').hour, 9);
  assert.equal(localTime(t('2026-03-30T07:00:00Z'), 'Europe/Berlin').hour, 9);
});

test('localTime: Europe/Berlin across the October change (2026-10-25): 02:xx happens twice', () => {
  assert.equal(localTime(t('2026-10-25T00:30:00Z'), 'Europe/Berlin').hour, 2);
  assert.equal(localTime(t('2026-10-25T01:30:00Z'), 'Europe/Berlin').hour, 2);
  assert.equal(localTime(t('2026-10-25T02:30:00Z'), 'Europe/Berlin').hour, 3);
});

test('localTime: America/New_York spring forward (2026-03-08) and fall back (2026-11-01)', () => {
  assert.equal(localTime(t('2026-03-08T06:30:00Z'), 'America/New_York').hour, 1);
  assert.equal(localTime(t('2026-03-08T07:30:00Z'), 'America/New_York').hour, 3);
  assert.equal(localTime(t('2026-11-01T05:30:00Z'), 'America/New_York').hour, 1);
  assert.equal(localTime(t('2026-11-01T06:30:00Z'), 'America/New_York').hour, 1);
  // Saturday evening in New York is Sunday in UTC
  const lt = localTime(t('2026-11-01T01:00:00Z'), 'America/New_York');
  assert.equal(lt.isoDow, 6);
  assert.equal(lt.date, '2026-10-31');
});

test('cells: weekday/weekend pooled cells and hour-of-week cells', () => {
  const mon9 = localTime(t('2026-11-23T09:00:00Z'), 'UTC');
  assert.equal(pooledCell(mon9), 9);
  assert.equal(weekCell(mon9), 9);
  const sun23 = localTime(t('2026-11-22T23:00:00Z'), 'UTC');
  assert.equal(pooledCell(sun23), 24 + 23);
  assert.equal(weekCell(sun23), 6 * 24 + 23);
});

test('business hours: days, start inclusive, end exclusive, holidays', () => {
  const bh = businessHoursSchema.parse({ start: '08:30', end: '17:00', holidays: ['2026-12-25'] });
  const at = (iso: string) => localTime(t(iso), 'Europe/Berlin');
  assert.equal(inBusinessHours(at('2026-12-01T07:29:00Z'), bh), false); // 08:29 local
  assert.equal(inBusinessHours(at('2026-12-01T07:30:00Z'), bh), true); // 08:30
  assert.equal(inBusinessHours(at('2026-12-01T15:59:00Z'), bh), true); // 16:59
  assert.equal(inBusinessHours(at('2026-12-01T16:00:00Z'), bh), false); // 17:00
  assert.equal(inBusinessHours(at('2026-12-05T10:00:00Z'), bh), false); // Saturday
  assert.equal(inBusinessHours(at('2026-12-25T10:00:00Z'), bh), false); // holiday (Friday)
  // summer time: 08:30 CEST is 06:30Z
  assert.equal(inBusinessHours(at('2026-07-01T06:30:00Z'), bh), true);
});

test('windows: aligned starts and labels', () => {
  assert.equal(windowStartOf(t('2026-11-22T10:59:59.999Z'), 3_600_000), t('2026-11-22T10:00:00Z'));
  assert.equal(windowStartOf(t('2026-11-22T10:07:00Z'), 300_000), t('2026-11-22T10:05:00Z'));
  assert.equal(windowLabel(3_600_000), '1h');
  assert.equal(windowLabel(300_000), '5m');
  assert.equal(windowLabel(86_400_000), '1d');
});
