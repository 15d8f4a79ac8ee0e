import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDetectorConfig } from '../src/config.js';
import { binomialTail, fellBack, judgeBurst } from '../src/error-burst.detector.js';
import type { DetectorEvent } from '../src/stream.engine.js';
import { localTime } from '../src/time.js';
import { baselinesFor, byTs, ev, H, harness, MIN, rng, type Habit } from './engine.fixtures.js';

const cfg = parseDetectorConfig({});
const AS_OF = Date.parse('2026-03-30T00:00:00Z');
const DAY = 24 * H;

const HABITS: Habit[] = [
  // ~67 calls an hour around the clock, 2% of them failing: the example client.
  {
    id: 'agent-67',
    tz: 'UTC',
    calls: (_lt, r) => 60 + Math.floor(r() * 15),
    tools: ['query'],
    servers: ['pg'],
  },
  // A noisy client: volume varies 10-100 an hour, 6% failing, at random.
  {
    id: 'noisy',
    tz: 'UTC',
    calls: (_lt, r) => 10 + Math.floor(r() * 90),
    tools: ['a', 'b'],
    servers: ['gh'],
    errorShare: 0.06,
  },
  // A quiet office-hours client: 8-14 calls an hour on weekdays, 3% failing.
  {
    id: 'quiet',
    tz: 'UTC',
    calls: (lt, r) => (lt.isoDow <= 5 && lt.hour >= 9 && lt.hour < 17 ? 8 + Math.floor(r() * 7) : 0),
    tools: ['x'],
    servers: ['fs'],
    errorShare: 0.03,
  },
];
const all = baselinesFor(HABITS, AS_OF, cfg);

/** Random arrival times within each hour and independent failures at the habit's rate. */
function traffic(h: Habit, from: number, to: number, seed: number): DetectorEvent[] {
  const r = rng(seed);
  const out: DetectorEvent[] = [];
  for (let t = from; t < to; t += H) {
    const n = h.calls(localTime(t, h.tz), r);
    for (let i = 0; i < n; i++)
      out.push(
        ev(h.id, t + Math.floor(r() * H), {
          tool: h.tools[i % h.tools.length]!,
          server: h.servers[0]!,
          isError: r() < (h.errorShare ?? 0.02),
        }),
      );
  }
  return out.sort(byTs);
}

test('binomial tail matches the direct sum and stays a probability', () => {
  const direct = (k: number, n: number, p: number) => {
    let s = 0;
    for (let i = k; i <= n; i++) {
      let c = 1;
      for (let j = 0; j < i; j++) c = (c * (n - j)) / (j + 1);
      s += c * p ** i * (1 - p) ** (n - i);
    }
    return s;
  };
  for (const [k, n, p] of [
    [0, 10, 0.1],
    [3, 10, 0.1],
    [11, 33, 0.02],
    [7, 33, 0.02],
    [20, 40, 0.5],
    [40, 40, 0.5],
  ] as const) {
    const got = binomialTail(k, n, p);
    const want = direct(k, n, p);
    assert.ok(
      Math.abs(got - want) <= 1e-9 * Math.max(want, 1e-300) + 1e-15,
      `${k}/${n}@${p}: ${got} vs ${want}`,
    );
  }
  assert.equal(binomialTail(5, 4, 0.3), 0);
  assert.ok(binomialTail(5_000, 10_000, 0.5) > 0.49 && binomialTail(5_000, 10_000, 0.5) < 0.51);
});

test('a 30-minute burst (16% of 67 calls in its hour) is caught mid-hour; error_rate stays quiet; it resolves', async (t) => {
  const h = await harness(all, cfg);
  const tue = AS_OF + DAY;
  const start = tue + 10 * H + 20 * MIN;
  const events = traffic(HABITS[0]!, tue, tue + 14 * H, 7).map((e) => ({ ...e, isError: false }));
  // 11 of the calls in [10:20, 10:50) fail (one in three), the rest of the hour is clean.
  const inBurst = events.filter((e) => e.ts >= start && e.ts < start + 30 * MIN);
  const hour = events.filter((e) => e.ts >= tue + 10 * H && e.ts < tue + 11 * H);
  assert.ok(inBurst.length >= 30, `calls in the burst: ${inBurst.length}`);
  for (let i = 0; i < 11; i++) inBurst[Math.floor((i * inBurst.length) / 11)]!.isError = true;
  const firstError = inBurst.find((e) => e.isError)!.ts;
  assert.ok(11 / hour.length < 0.2, `hourly share ${11 / hour.length}`);

  await h.feed(events);
  h.engine.closeAll(tue + 14 * H);
  await h.lifecycle.flush();
  const alerts = h.alerts();
  assert.deepEqual(
    alerts.map((a) => a.detector),
    ['error_burst'],
    'error_rate does not see it (hourly share under its band)',
  );
  const [a] = alerts;
  assert.equal(a!.dedup_key, 'error_burst:agent-67:30m');
  const detected = Date.parse(a!.created_at);
  assert.ok(detected > firstError && detected < start + 30 * MIN, 'raised inside the burst');
  const end = Date.parse(a!.window.end);
  assert.equal(end - Date.parse(a!.window.start), 30 * MIN);
  assert.ok(end - firstError <= 30 * MIN, `delay ${(end - firstError) / MIN} min`);
  t.diagnostic(`delay from the first failure to the alert window's end: ${(end - firstError) / MIN} min`);
  assert.ok(a!.sample_event_ids.length >= 6);
  assert.match(a!.summary, /of \d+ calls failed/);
  // Resolves once the window has slid past most of the burst (a minute boundary, event time).
  const [r] = h.resolved().filter((m) => m.dedup_key === a!.dedup_key && m.status === 'resolved');
  assert.ok(r, 'resolved');
  const at = Date.parse(r!.changed_at);
  assert.equal(at % MIN, 0);
  assert.ok(at > start + 30 * MIN && at <= start + 60 * MIN, `resolved at ${r!.changed_at}`);

  // The next burst, hours later, is a new alert.
  const h2 = await harness(all, cfg);
  const again = events.map((e) => ({ ...e }));
  for (const e of again)
    if (e.ts >= tue + 13 * H && e.ts < tue + 13 * H + 20 * MIN && e.ts % 2 === 0) e.isError = true;
  for (let i = 0; i < 11; i++)
    again.filter((e) => e.ts >= start && e.ts < start + 30 * MIN)[
      Math.floor((i * inBurst.length) / 11)
    ]!.isError = true;
  await h2.feed(again);
  h2.engine.closeAll(tue + 14 * H);
  await h2.lifecycle.flush();
  const ids = h2.alerts().filter((x) => x.detector === 'error_burst');
  assert.equal(ids.length, 2);
  assert.notEqual(ids[0]!.alert_id, ids[1]!.alert_id);
});

test('a week of ordinary traffic (steady, noisy, quiet office) raises no error_burst', async () => {
  const h = await harness(all, cfg);
  const events = HABITS.flatMap((x, i) => traffic(x, AS_OF, AS_OF + 7 * DAY, 300 + i)).sort(byTs);
  assert.ok(events.length > 15_000);
  await h.feed(events);
  h.engine.closeAll(AS_OF + 7 * DAY);
  await h.lifecycle.flush();
  assert.deepEqual(
    h
      .alerts()
      .filter((a) => a.detector === 'error_burst')
      .map((a) => a.summary),
    [],
  );
});

test('the noisy client needs a real burst: 30 minutes at its double rate stays quiet, a retry storm does not', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + DAY;
  const events = traffic(HABITS[1]!, tue, tue + 6 * H, 11);
  const r = rng(5);
  for (const e of events) if (e.ts >= tue + 2 * H && e.ts < tue + 2.5 * H) e.isError = r() < 0.12;
  await h.feed(events);
  h.engine.closeAll(tue + 6 * H);
  await h.lifecycle.flush();
  assert.equal(h.alerts().filter((a) => a.detector === 'error_burst').length, 0, 'double its usual rate');

  const storm = await harness(all, cfg);
  const again = traffic(HABITS[1]!, tue, tue + 6 * H, 11);
  for (const e of again) if (e.ts >= tue + 2 * H && e.ts < tue + 2.5 * H) e.isError = r() < 0.5;
  await storm.feed(again);
  storm.engine.closeAll(tue + 6 * H);
  await storm.lifecycle.flush();
  assert.equal(storm.alerts().filter((a) => a.detector === 'error_burst').length, 1);
});

test('a client without any baseline is judged against the prior, capped like a learning client', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + DAY;
  const events: DetectorEvent[] = [];
  for (let i = 0; i < 40; i++)
    events.push(ev('brand-new', tue + i * 30_000, { tool: 'q', server: 'pg', isError: i % 2 === 0 }));
  events.push(ev('brand-new', tue + 3 * H, { tool: 'q', server: 'pg' }));
  await h.feed(events);
  const [a] = h.alerts().filter((x) => x.detector === 'error_burst');
  assert.ok(a);
  assert.equal(a.severity, 'low');
  const off = await harness(all, parseDetectorConfig({ detectors: { error_burst: { enabled: false } } }));
  await off.feed(events);
  assert.equal(off.alerts().filter((x) => x.detector === 'error_burst').length, 0);
});

test('a burst failing at a steady pace (8 in 30 minutes on a quiet client, as the scenario injects) stays one alert', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + DAY;
  const start = tue + 11 * H + 10 * MIN;
  const events = traffic(HABITS[2]!, tue + 9 * H, tue + 17 * H, 21).map((e) => ({ ...e, isError: false }));
  for (let i = 0; i < 8; i++)
    events.push(ev('quiet', start + i * 225_000 + 17_000, { tool: 'x', server: 'fs', isError: true }));
  await h.feed(events.sort(byTs));
  h.engine.closeAll(tue + 17 * H);
  await h.lifecycle.flush();
  const raised = h.alerts().filter((a) => a.detector === 'error_burst');
  assert.equal(raised.length, 1, raised.map((a) => a.window.end).join(', '));
  const [r] = h.resolved().filter((m) => m.alert_id === raised[0]!.alert_id && m.status === 'resolved');
  assert.ok(r && Date.parse(r.changed_at) >= start + 30 * MIN, 'resolved after the burst, not inside it');
});

test('hysteresis: a raised window falls back at half of minErrors or half-way to the threshold, not at the raise rule', () => {
  const st = cfg.detectors.error_burst;
  // 5 failures of 14 calls no longer raise (minErrors 6) but are still a burst: stays open.
  const still = judgeBurst(st, undefined, 14, 5);
  assert.equal(still.significant, false);
  assert.equal(fellBack(still, st), false);
  assert.equal(fellBack(judgeBurst(st, undefined, 14, 2), st), true, 'under half of minErrors');
  assert.equal(fellBack(judgeBurst(st, undefined, 40, 3), st), true, '7.5%: under half-way (9.5%)');
});

test('across a restart mid-burst: the reloaded alert is not raised again, it resolves, and the next burst is new', async () => {
  const tue = AS_OF + DAY;
  const start = tue + 10 * H + 20 * MIN;
  const events = traffic(HABITS[0]!, tue, tue + 14 * H, 7).map((e) => ({ ...e, isError: false }));
  const inBurst = events.filter((e) => e.ts >= start && e.ts < start + 30 * MIN);
  for (let i = 0; i < 11; i++) inBurst[Math.floor((i * inBurst.length) / 11)]!.isError = true;
  const cut = start + 22 * MIN;

  const before = await harness(all, cfg);
  await before.feed(events.filter((e) => e.ts < cut));
  await before.lifecycle.flush();
  const [raised] = before.alerts().filter((a) => a.detector === 'error_burst');
  assert.ok(raised, 'raised before the restart');
  const open = before.lifecycle.openAlerts();
  assert.ok(open.some((a) => a.dedupKey === raised.dedup_key));

  // The restarted detector reloads the open set (loadOpenAlerts → restore) and goes on from the cut.
  const after = await harness(all, cfg);
  after.lifecycle.restore(open);
  const rest = events.filter((e) => e.ts >= cut).map((e) => ({ ...e }));
  for (const e of rest)
    if (e.ts >= tue + 13 * H && e.ts < tue + 13 * H + 25 * MIN && e.ts % 2 === 0) e.isError = true;
  await after.feed(rest);
  after.engine.closeAll(tue + 14 * H);
  await after.lifecycle.flush();
  const ends = after.resolved().filter((m) => m.dedup_key === raised.dedup_key && m.status === 'resolved');
  assert.ok(
    ends.some((m) => m.alert_id === raised.alert_id),
    'the reloaded alert resolves after the restart',
  );
  const bursts = after.alerts().filter((a) => a.detector === 'error_burst');
  assert.equal(bursts.length, 1, 'only the later burst raises, once');
  assert.notEqual(bursts[0]!.alert_id, raised.alert_id, 'the later burst is a new alert');
  assert.ok(Date.parse(bursts[0]!.window.end) > tue + 13 * H);
});
