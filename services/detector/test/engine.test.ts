import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDetectorConfig } from '../src/config.js';
import { comparable } from '../src/replay.js';
import type { DetectorEvent } from '../src/stream.engine.js';
import { localTime } from '../src/time.js';
import {
  baselinesFor,
  burst,
  byTs,
  ev,
  H,
  harness,
  history,
  MIN,
  rng,
  type Habit,
} from './engine.fixtures.js';

const cfg = parseDetectorConfig({ clients: { 'office-*': { timeZone: 'Europe/Berlin' } } });
// Monday 2026-03-30: the 28-day window covers the Berlin DST change of 2026-03-29.
const AS_OF = Date.parse('2026-03-30T00:00:00Z');
const weekday = (lt: { isoDow: number }) => lt.isoDow <= 5;

const HABITS: Habit[] = [
  {
    id: 'office-anna',
    tz: 'Europe/Berlin',
    calls: (lt, r) => (weekday(lt) && lt.hour >= 9 && lt.hour < 17 ? 30 + Math.floor(r() * 20) : 0),
    tools: ['read_file', 'write_file', 'search_files', 'list_directory'],
    servers: ['filesystem'],
  },
  {
    id: 'agent-247',
    tz: 'UTC',
    calls: (_lt, r) => 15 + Math.floor(r() * 10),
    tools: ['query', 'list_tables'],
    servers: ['postgres'],
    errorShare: 0.05,
  },
  {
    id: 'batch-nightly',
    tz: 'UTC',
    calls: (lt, r) => (lt.hour === 2 ? 280 + Math.floor(r() * 40) : 0),
    tools: ['export'],
    servers: ['warehouse'],
    bytesPerCall: 50_000,
  },
  {
    id: 'noisy-regular',
    tz: 'UTC',
    calls: (lt, r) => (weekday(lt) && lt.hour >= 8 && lt.hour <= 18 ? 20 + Math.floor(r() * 80) : 0),
    tools: ['a', 'b', 'c', 'd', 'e'],
    servers: ['github', 'jira'],
  },
  {
    id: 'weekend-only',
    tz: 'UTC',
    calls: (lt, r) => (lt.isoDow >= 6 && lt.hour >= 10 && lt.hour < 14 ? 10 + Math.floor(r() * 10) : 0),
    tools: ['play'],
    servers: ['games'],
  },
];
const habit = (id: string) => HABITS.find((h) => h.id === id)!;
const all = baselinesFor(HABITS, AS_OF, cfg);

/** Events of a habit for [from, to), the way its history was generated (same distribution). */
function normal(h: Habit, from: number, to: number, seed: number): DetectorEvent[] {
  const r = rng(seed);
  const out: DetectorEvent[] = [];
  for (let t = from; t < to; t += H) {
    const n = h.calls(localTime(t, h.tz), r);
    const nt = Math.min(h.tools.length, 2 + Math.floor(r() * (h.tools.length - 1)));
    out.push(
      ...burst(h.id, t, n, (i) => ({
        tool: h.tools[i % nt]!,
        server: h.servers[i % h.servers.length]!,
        isError: (i * (h.errorShare ?? 0.02)) % 1 > 1 - (h.errorShare ?? 0.02),
        bytes: h.bytesPerCall ?? 2_000,
      })),
    );
  }
  return out;
}

test('baseline: office hours profiled in local time across the DST change; learning vs active', () => {
  const office = all.find((b) => b.clientId === 'office-anna')!;
  assert.equal(office.state, 'active');
  assert.equal(office.activeDays, 20);
  assert.equal(office.timeZone, 'Europe/Berlin');
  // weekday 10:00 local is busy, 03:00 local idle; pooled over 09–11 it stays busy
  assert.ok(office.metrics.calls.median[10]! >= 30);
  assert.equal(office.metrics.calls.median[3], 0);
  assert.equal(office.activeShare[3], 0);
  assert.ok(office.activeShare[8]! > 0.2, 'the hour before work pools with 09:00–10:00');
  // the weekly cell of Monday 09:00 local saw traffic, Sunday 09:00 never did
  assert.ok(office.metrics.calls.cellMax[9]! >= 30);
  assert.equal(office.metrics.calls.cellMax[6 * 24 + 9], 0);
  const batch = all.find((b) => b.clientId === 'batch-nightly')!;
  assert.ok(batch.metrics.calls.cellMax[2]! >= 280);
  const global = all.find((b) => b.kind === 'global')!;
  assert.equal(global.members, HABITS.length);
  assert.equal(global.tools.get('read_file'), 1);
});

test('normal week for every habit raises nothing (office after DST, nightly batch, noisy, weekend-only)', async () => {
  const h = await harness(all, cfg);
  const events = HABITS.flatMap((x, i) => normal(x, AS_OF, AS_OF + 7 * 24 * H, 100 + i)).sort(byTs);
  assert.ok(events.length > 10_000);
  await h.feed(events);
  h.engine.closeAll(AS_OF + 7 * 24 * H);
  await h.lifecycle.flush();
  assert.deepEqual(
    h.alerts().map((a) => `${a.dedup_key} ${a.window.start} ${a.summary}`),
    [],
  );
});

test('volume: fires on the event that crosses the band, suppresses repeats, resolves after an in-band window', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H; // Tuesday; 08:00Z = 10:00 CEST
  const spike = burst('office-anna', tue + 8 * H, 400, { tool: 'read_file', server: 'filesystem' });
  await h.feed([...normal(habit('office-anna'), tue, tue + 8 * H, 7), ...spike]);
  const [a] = h.alerts();
  assert.ok(a, 'a volume alert');
  assert.equal(a.dedup_key, 'volume:office-anna:1h');
  assert.equal(a.window.start, new Date(tue + 8 * H).toISOString());
  assert.equal(a.baseline_version, 'b1-20260330T00');
  assert.ok(a.observed > a.expected.high && a.observed < 400, 'fast: judged before the hour was over');
  assert.ok(Date.parse(a.created_at) < tue + 9 * H);
  assert.equal(a.severity, 'medium');
  // 11:00 local is still out of band (suppressed, stays open); 12:00 is normal → resolved at 13:00.
  await h.feed(burst('office-anna', tue + 9 * H, 400, { tool: 'read_file', server: 'filesystem' }));
  await h.feed(normal(habit('office-anna'), tue + 10 * H, tue + 11 * H, 8));
  assert.equal(h.alerts().length, 1);
  assert.equal(h.resolved().length, 0, 'the 12:00 window has not closed yet');
  await h.feed([ev('agent-247', tue + 11 * H + 5 * MIN, { tool: 'query', server: 'postgres' })]);
  const [r] = h.resolved();
  assert.ok(r);
  assert.equal(r.changed_at, new Date(tue + 11 * H).toISOString());
  assert.equal(r.alert_id, a.alert_id);
});

test('volume: bytes (exfiltration) with normal call counts', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  await h.feed(
    burst('office-anna', tue + 8 * H, 40, { tool: 'read_file', server: 'filesystem', bytes: 2_000_000 }),
  );
  const [a] = h.alerts();
  assert.ok(a);
  assert.equal(a.detector, 'volume');
  assert.match(a.title, /data volume/);
});

test('off-hours: an office client at 03:00 local alerts; the 24/7 agent and the 02:00 batch do not', async () => {
  const h = await harness(all, cfg);
  const wed = AS_OF + 2 * 24 * H; // 01:00Z = 03:00 CEST
  await h.feed(
    [
      ...burst('office-anna', wed + 1 * H, 10, { tool: 'read_file', server: 'filesystem' }),
      ...normal(habit('agent-247'), wed, wed + 3 * H, 3),
      ...normal(habit('batch-nightly'), wed, wed + 3 * H, 4),
    ].sort(byTs),
  );
  assert.deepEqual(
    h.alerts().map((a) => a.dedup_key),
    ['off_hours:office-anna:1h'],
  );
  assert.match(h.alerts()[0]!.summary, /03:00 Europe\/Berlin/);
});

test('off-hours: business hours alert a learning client outside them (no history needed)', async () => {
  const c = parseDetectorConfig({
    clients: { 'intern-*': { timeZone: 'Europe/Berlin', businessHours: { start: '09:00', end: '17:00' } } },
  });
  const h = await harness(all, c);
  const sat = AS_OF + 5 * 24 * H;
  await h.feed(burst('intern-new', sat + 10 * H, 6, { tool: 'read_file', server: 'filesystem' }));
  const [a] = h.alerts();
  assert.equal(a?.dedup_key, 'off_hours:intern-new:1h');
  assert.equal(a?.severity, 'low');
});

test('auth burst: needs no history, full severity for a brand-new client; a lone failure does not', async () => {
  const h = await harness(all, cfg);
  const t0 = AS_OF + 30 * H + 2 * MIN;
  await h.feed([ev('brand-new', t0, { authFailed: true })]);
  assert.equal(h.alerts().length, 0);
  await h.feed(burst('brand-new', t0 + MIN, 12, { authFailed: true, ip: '203.0.113.9' }, 2 * MIN));
  const [a] = h.alerts();
  assert.equal(a?.dedup_key, 'auth_burst:brand-new:5m');
  assert.equal(a?.severity, 'high');
  assert.equal(a?.observed, 10);
  assert.deepEqual(a?.contributors.addresses[0], { value: '203.0.113.9', count: 9 });
  // the next 5-minute window is idle: resolved at its end once the watermark passes it
  await h.feed([ev('brand-new', t0 + 30 * MIN)]);
  assert.equal(h.resolved()[0]?.changed_at, new Date(AS_OF + 30 * H + 10 * MIN).toISOString());
});

test('new tool: rarity decides severity; a tool common elsewhere stays quiet; reported once', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  // 'query' is used by 1 of 5 clients (20%) = commonShare → info, not raised
  await h.feed([ev('office-anna', tue + 8 * H, { tool: 'query', server: 'postgres' })]);
  assert.equal(h.alerts().length, 0);
  await h.feed([ev('office-anna', tue + 8 * H + MIN, { tool: 'dump_secrets', server: 'filesystem' })]);
  const [a] = h.alerts();
  assert.equal(a?.dedup_key, 'new_tool:office-anna:1h');
  assert.equal(a?.severity, 'high');
  assert.match(a!.summary, /no other client has used it/);
  // later hours: resolves (no new tool), then using it again does not re-raise under this baseline
  await h.feed([ev('office-anna', tue + 10 * H + 5 * MIN, { tool: 'read_file', server: 'filesystem' })]);
  await h.feed([ev('office-anna', tue + 10 * H + 6 * MIN, { tool: 'dump_secrets', server: 'filesystem' })]);
  assert.equal(h.resolved().length, 1);
  assert.equal(h.alerts().length, 1);
});

test("new tool, learning client: a known server's unused tool is onboarding; a server nobody used alerts", async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  // 'brand-new' has no baseline of its own. 'vacuum' is a tool nobody used, but of postgres, which
  // agent-247 uses: a newcomer trying a known server's tools is not news.
  await h.feed([ev('brand-new', tue + 8 * H, { tool: 'vacuum', server: 'postgres' })]);
  assert.equal(h.alerts().length, 0);
  // A server no client has ever called is new to the whole company: full severity, tools named.
  await h.feed([ev('brand-new', tue + 8 * H + MIN, { tool: 'exec_command', server: 'ops' })]);
  const [a] = h.alerts();
  assert.equal(a?.dedup_key, 'new_tool:brand-new:1h');
  assert.equal(a?.severity, 'high');
  assert.match(a!.title, /used a server it never used before: ops/);
  assert.ok(a!.contributors.tools.some((t) => t.value === 'tool:exec_command'));
});

test('alerts and their resolve carry the client labels of its events (routing by label)', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  const labels = { env: 'prod', team: 'finance' };
  await h.feed([ev('office-anna', tue + 8 * H, { tool: 'dump_secrets', server: 'filesystem', labels })]);
  const [a] = h.alerts();
  assert.deepEqual(a?.client_labels, labels);
  await h.feed([
    ev('office-anna', tue + 10 * H + 5 * MIN, { tool: 'read_file', server: 'filesystem', labels }),
  ]);
  assert.deepEqual(h.resolved()[0]?.client_labels, labels);
});

test('tool breadth: many distinct tools in an hour', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  const tools = [
    'read_file',
    'write_file',
    'search_files',
    'list_directory',
    't5',
    't6',
    't7',
    't8',
    't9',
    't10',
    't11',
    't12',
  ];
  await h.feed(
    burst('office-anna', tue + 8 * H, 36, (i) => ({ tool: tools[i % tools.length]!, server: 'filesystem' })),
  );
  assert.ok(h.alerts().some((a) => a.dedup_key === 'tool_breadth:office-anna:1h'));
});

test('error rate: judged at window close, not on the first errors', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  await h.feed(
    burst('agent-247', tue + 3 * H, 24, (i) => ({ tool: 'query', server: 'postgres', isError: i % 4 !== 0 })),
  );
  // (The sub-hour error_burst fires mid-hour on the same failures: error-burst.test.ts.)
  const hourly = () => h.alerts().filter((x) => x.detector === 'error_rate');
  assert.equal(hourly().length, 0, 'window still open');
  await h.feed([ev('agent-247', tue + 4 * H + 10 * MIN, { tool: 'query', server: 'postgres' })]);
  const [a] = hourly();
  assert.equal(a?.dedup_key, 'error_rate:agent-247:1h');
  assert.equal(a?.observed, 0.75);
  assert.equal(a?.created_at, new Date(tue + 4 * H).toISOString());
});

test('learning client: judged against the global profile, severity capped at low', async () => {
  const young = history(
    { id: 'young', tz: 'UTC', calls: () => 10, tools: ['read_file'], servers: ['filesystem'] },
    AS_OF - 3 * 24 * H,
    AS_OF,
  );
  const h = await harness(baselinesFor(HABITS, AS_OF, cfg, [young]), cfg);
  await h.feed(burst('young', AS_OF + 30 * H, 2_000, { tool: 'read_file', server: 'filesystem' }));
  const [a] = h.alerts();
  assert.equal(a?.detector, 'volume');
  assert.equal(a?.severity, 'low');
  assert.match(a!.summary, /still learning/);
  const suppressed = await harness(
    baselinesFor(HABITS, AS_OF, cfg, [young]),
    parseDetectorConfig({ learningSeverityCap: 'suppress' }),
  );
  await suppressed.feed(burst('young', AS_OF + 30 * H, 2_000, { tool: 'read_file', server: 'filesystem' }));
  assert.equal(suppressed.alerts().length, 0);
});

test('late events: beyond allowed lateness they are counted, not judged', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H;
  await h.feed([ev('agent-247', tue + 5 * H + 30 * MIN), ev('agent-247', tue + 7 * H)]);
  await h.feed(burst('agent-247', tue + 5 * H, 500, { tool: 'query', server: 'postgres' }));
  assert.equal(h.engine.stats.late, 500);
  assert.equal(h.alerts().length, 0);
  // within lateness (2 min): still counted in its window
  await h.feed([ev('agent-247', tue + 7 * H + 60 * MIN + 30_000), ev('agent-247', tue + 7 * H + 59 * MIN)]);
  assert.equal(h.engine.stats.late, 500);
});

test('determinism: partitioned, interleaved delivery gives the same alerts as a ts-ordered replay', async () => {
  const tue = AS_OF + 24 * H;
  const events = [
    ...normal(habit('office-anna'), tue, tue + 12 * H, 21),
    ...burst('office-anna', tue + 9 * H, 300, { tool: 'read_file', server: 'filesystem' }),
    ...normal(habit('agent-247'), tue, tue + 12 * H, 22),
    ...burst('agent-247', tue + 4 * H, 30, (i) => ({
      tool: i % 2 ? 'x_new' : 'query',
      server: 'postgres',
      isError: i % 3 !== 0,
    })),
    ...burst('brand-new', tue + 6 * H, 15, { authFailed: true }, 3 * MIN),
  ];
  const replay = await harness(all, cfg);
  await replay.feed([...events].sort(byTs));
  replay.engine.closeAll(tue + 12 * H);
  await replay.lifecycle.flush();
  // live: two partitions, each in produce (ts) order, consumed in unequal interleaved chunks
  const live = await harness(all, cfg);
  const part = (e: DetectorEvent) => (e.clientId === 'agent-247' ? 1 : 0);
  const sorted = [...events].sort(byTs);
  const p0 = sorted.filter((e) => part(e) === 0);
  const p1 = sorted.filter((e) => part(e) === 1);
  for (let i = 0, j = 0; i < p0.length || j < p1.length; i += 37, j += 50) {
    await live.feed(p1.slice(j, j + 50), part);
    await live.feed(p0.slice(i, i + 37), part);
  }
  live.engine.closeAll(tue + 12 * H);
  await live.lifecycle.flush();
  const key = (m: ReturnType<typeof comparable>) => JSON.stringify(m);
  const a = replay.messages.map(comparable).map(key).sort();
  const b = live.messages.map(comparable).map(key).sort();
  assert.ok(a.length >= 5, `several alerts and resolutions (${a.length})`);
  assert.deepEqual(b, a);
});

test('heavy-tailed client: bursts at random hours within 2.5× its busiest hour stay quiet; a retry loop does not', async () => {
  const heavy: Habit = {
    id: 'noisy-heavy',
    tz: 'UTC',
    // Pareto-like: median ~15, the occasional hour 10-15× that, at any busy hour.
    calls: (lt, r) =>
      weekday(lt) && lt.hour >= 8 && lt.hour <= 18 ? Math.floor(12 / Math.pow(1 - r() * 0.97, 0.8)) : 0,
    tools: ['a', 'b', 'c'],
    servers: ['github'],
  };
  const bl = baselinesFor([heavy, ...HABITS], AS_OF, cfg);
  const own = bl.find((b) => b.clientId === 'noisy-heavy')!;
  const busiest = Math.max(...own.metrics.calls.cellMax);
  assert.ok(
    busiest > 5 * own.metrics.calls.median[12]!,
    `bursty (max ${busiest}, median ${own.metrics.calls.median[12]})`,
  );
  const h = await harness(bl, cfg);
  await h.feed(normal(heavy, AS_OF, AS_OF + 14 * 24 * H, 99));
  assert.deepEqual(
    h.alerts().map((a) => `${a.dedup_key} ${a.observed} > ${a.expected.high}`),
    [],
  );
  const loop = AS_OF + 15 * 24 * H + 10 * H;
  await h.feed(burst('noisy-heavy', loop, Math.ceil(busiest * 3), { tool: 'a', server: 'github' }));
  const [a] = h.alerts();
  assert.equal(a?.dedup_key, 'volume:noisy-heavy:1h');
  assert.equal(a?.expected.high, 2.5 * busiest, 'the band is 2.5× the busiest hour of the window');
});

test('one event per id: a redelivered batch of 60 and forged copies under another client count once', async () => {
  const h = await harness(all, cfg);
  const tue = AS_OF + 24 * H; // Tuesday 10:00Z: noisy-regular's busy hours
  const batch = burst('noisy-regular', tue + 10 * H, 60, (i) => ({
    tool: 'abcde'[i % 5]!,
    server: 'github',
  }));
  await h.feed(batch);
  assert.deepEqual(h.alerts(), [], 'the first delivery is normal');
  // Kafka redelivers the whole batch four times (a rebalance before the commit): 300 calls if counted.
  await h.feed([...batch, ...batch, ...batch, ...batch]);
  // The same ids replayed as another client at 03:00 in Berlin (an office client's off-hours).
  const wed = AS_OF + 2 * 24 * H;
  await h.feed(
    batch.slice(0, 40).map((e, i) => ({ ...e, clientId: 'office-anna', ts: wed + 1 * H + i * MIN })),
  );
  assert.deepEqual(
    h.alerts().map((a) => a.dedup_key),
    [],
    'neither the redelivery nor the forged copies are second events',
  );
  assert.equal(h.engine.stats.duplicates, 240 + 40);
  // control: the same forged events with fresh ids are judged (the case is not vacuous)
  const fresh = burst('office-anna', wed + 1 * H, 40, { tool: 'read_file', server: 'filesystem' });
  await h.feed(fresh);
  assert.ok(
    h.alerts().some((a) => a.dedup_key.startsWith('off_hours:office-anna')),
    'off-hours with fresh ids',
  );
});
