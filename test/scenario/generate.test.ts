import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseDetectorConfig, resolveClientConfig } from '@mcp-audit/detector';
import {
  DETECTOR_KINDS,
  addressPrefix,
  definitionHash,
  generateScenario,
  validateScenario,
  type Scenario,
  type ScenarioEvent,
} from './generate.js';
import { scenarioDetectorConfig } from './config.js';
import { DAY, HOUR, localParts } from './tz.js';

// A fixed end so the test does not depend on today's date: the period 2026-10-11 .. 2026-11-01
// holds the EU DST change (2026-10-25) and the US one is just outside it.
const END = Date.UTC(2026, 10, 1);
const NOW = END + 3 * HOUR;
const opts = { prefix: 'scnunit01', seed: 7, clients: 20, days: 21, end: END };
const s: Scenario = generateScenario(opts);
const C = (e: ScenarioEvent) => e.client as { id: string; ip?: string; session_id?: string; user?: string };
const digest = (x: Scenario) =>
  createHash('sha256')
    .update(JSON.stringify([x.events, x.labels]))
    .digest('hex');

test('the same options give the same events and labels; another prefix gives other ids', () => {
  assert.equal(digest(generateScenario(opts)), digest(s));
  const other = generateScenario({ ...opts, prefix: 'scnunit02' });
  const ids = new Set(s.events.map((e) => e.event_id));
  assert.equal(other.events.filter((e) => ids.has(e.event_id)).length, 0);
});

test('every generated event passes the event schema, ids are unique and ts ascending', () => {
  validateScenario(s, NOW);
  assert.equal(new Set(s.events.map((e) => e.event_id)).size, s.events.length);
  for (let i = 1; i < s.events.length; i++) assert.ok(s.events[i - 1]!.ts <= s.events[i]!.ts);
  assert.ok(s.events.length > 50_000, `a realistic volume (${s.events.length})`);
});

test('every detector kind has at least two labels, cold-start ones included, all in the evaluation week', () => {
  const evalStart = Date.parse(s.manifest.evalStart);
  for (const d of DETECTOR_KINDS) {
    assert.ok(s.labels.filter((l) => l.detector === d).length >= 2, `labels for ${d}`);
  }
  const cold = new Set(s.labels.filter((l) => l.cold_start).map((l) => l.detector));
  for (const d of ['auth_burst', 'session_misuse', 'off_hours', 'auth_fail_then_success'])
    assert.ok(cold.has(d as never), `a cold-start ${d}`);
  const byId = new Map(s.events.map((e) => [e.event_id, e]));
  for (const l of s.labels) {
    assert.ok(
      Date.parse(l.start) >= evalStart && Date.parse(l.end) <= END,
      `${l.id} inside the evaluation week`,
    );
    assert.ok(Date.parse(l.start) < Date.parse(l.end));
    if (l.detector === 'silent_source') {
      assert.equal(l.first_event_id, null);
      continue;
    }
    const first = byId.get(l.first_event_id!);
    assert.ok(first, `${l.id}: first event exists`);
    assert.equal(first.ts, l.start, `${l.id}: starts at its first event`);
  }
});

test('everything the scenario names carries its prefix, addresses its /64', () => {
  const ap = addressPrefix(opts.prefix);
  for (const e of s.events) {
    const c = C(e);
    assert.ok(c.id.startsWith('scnunit01-'), c.id);
    assert.ok((e.source as { id: string }).id.startsWith('scnunit01-'));
    assert.ok((e.server as { name: string }).name.startsWith('scnunit01-'));
    assert.ok(c.session_id!.startsWith('scnunit01-'));
    assert.ok(c.ip!.startsWith(ap), c.ip);
  }
});

test('office habits follow local time across the DST change, and the holiday is quiet', () => {
  const dst = s.manifest.dstZone;
  assert.ok(dst, 'a zone with a DST change inside the period');
  const c = s.manifest.clients.find((x) => x.tz === dst.tz && x.archetype === 'office')!;
  const calls = (from: number, to: number) =>
    s.events
      .filter(
        (e) =>
          C(e).id === c.id && e.kind === 'tool_call' && Date.parse(e.ts) >= from && Date.parse(e.ts) < to,
      )
      .map((e) => Date.parse(e.ts));
  const at = Date.parse(dst.at);
  const before = calls(at - 10 * DAY, at);
  const after = calls(at, at + 10 * DAY);
  // In local time the working day starts at 08:00 on both sides of the change …
  assert.equal(Math.min(...before.map((t) => localParts(c.tz, t).hour)), 8);
  assert.equal(Math.min(...after.map((t) => localParts(c.tz, t).hour)), 8);
  // … which is a different UTC hour.
  const utcMin = (ts: number[]) => Math.min(...ts.map((t) => new Date(t).getUTCHours()));
  assert.notEqual(utcMin(before), utcMin(after));
  const office = new Set(s.manifest.clients.filter((x) => x.archetype === 'office').map((x) => x.id));
  const tzOf = new Map(s.manifest.clients.map((x) => [x.id, x.tz]));
  const onHoliday = s.events.filter(
    (e) =>
      office.has(C(e).id) &&
      localParts(tzOf.get(C(e).id)!, Date.parse(e.ts)).date === s.manifest.holiday.date &&
      !s.labels.some((l) => l.clients.includes(C(e).id) && e.ts >= l.start && e.ts <= l.end),
  );
  assert.deepEqual(onHoliday, []);
});

test('silences, drifts and new clients are what their labels say', () => {
  for (const l of s.labels.filter((x) => x.detector === 'silent_source')) {
    const inGap = s.events.filter(
      (e) => (e.source as { id: string }).id === l.client_id && e.ts >= l.start && e.ts < l.end,
    );
    assert.equal(inGap.length, 0, `${l.id}: nothing from the source in the gap`);
    const before = s.events.filter(
      (e) =>
        (e.source as { id: string }).id === l.client_id &&
        Date.parse(e.ts) >= Date.parse(l.start) - 24 * HOUR &&
        e.ts < l.start,
    );
    const hours = new Set(before.map((e) => e.ts.slice(0, 13)));
    assert.ok(
      hours.size >= 23,
      `${l.id}: the source reported in every hour of the day before (${hours.size})`,
    );
  }
  for (const l of s.labels.filter((x) => x.detector === 'tool_drift')) {
    const [server, tool] = [l.client_id, l.subjects[1]!.split('/').pop()!];
    const uses = s.events.filter(
      (e) =>
        (e.server as { name: string }).name === server &&
        (e.tool as { name?: string } | undefined)?.name === tool,
    );
    for (const e of uses) {
      const v = e.ts >= l.start ? 2 : 1;
      assert.equal((e.tool as { definition_hash: string }).definition_hash, definitionHash(server, tool, v));
    }
    assert.ok(
      uses.some((e) => e.ts < l.start) && uses.some((e) => e.ts > l.start),
      `${l.id}: used before and after`,
    );
  }
  for (const c of s.manifest.clients.filter((x) => x.archetype.startsWith('new_'))) {
    assert.ok(s.events.filter((e) => C(e).id === c.id).every((e) => Date.parse(e.ts) >= c.since - 60_000));
    assert.equal(c.since, END - 3 * DAY);
  }
});

test('normal auth failures are single typos followed by a success from the same address within seconds', () => {
  const labelled = new Set(s.labels.flatMap((l) => l.clients));
  const inLabel = (e: ScenarioEvent) =>
    s.labels.some(
      (l) =>
        (l.clients.includes(C(e).id) || l.subjects.includes(C(e).ip!)) && e.ts >= l.start && e.ts <= l.end,
    );
  const normalFailures = s.events.filter((e) => e.outcome === 'auth_failed' && !inLabel(e));
  assert.ok(normalFailures.length >= 10, `some normal typos (${normalFailures.length})`);
  for (const f of normalFailures) {
    const t = Date.parse(f.ts);
    const ok = s.events.find(
      (e) =>
        e.kind === 'auth' &&
        e.outcome === 'ok' &&
        C(e).id === C(f).id &&
        C(e).ip === C(f).ip &&
        C(e).session_id === C(f).session_id &&
        Date.parse(e.ts) > t &&
        Date.parse(e.ts) - t <= 30_000,
    );
    assert.ok(ok, `failure ${f.event_id} of ${C(f).id} is followed by a success`);
  }
  void labelled;
});

test('session misuse labels reuse a session that was first used normally from one address', () => {
  for (const l of s.labels.filter((x) => x.detector === 'session_misuse')) {
    const first = s.events.find((e) => e.event_id === l.first_event_id)!;
    const sid = C(first).session_id;
    const earlier = s.events.filter((e) => C(e).session_id === sid && e.ts < l.start);
    assert.ok(earlier.length > 0, `${l.id}: the session existed`);
    assert.equal(new Set(earlier.map((e) => C(e).ip)).size, 1);
    assert.notEqual(C(earlier[0]!).ip, C(first).ip);
  }
});

test('the scenario detector config is valid for the detector and resolves zones and business hours', () => {
  const cfg = parseDetectorConfig(scenarioDetectorConfig(s.manifest));
  for (const c of s.manifest.clients) {
    const r = resolveClientConfig(cfg, c.id);
    assert.equal(r.timeZone, c.tz);
    if (c.archetype === 'office') assert.deepEqual(r.businessHours?.holidays, [s.manifest.holiday.date]);
  }
});
