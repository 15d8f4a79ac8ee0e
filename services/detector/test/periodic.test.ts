import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { alertSchema } from '@mcp-audit/schema';
import {
  createPeriodicRunner,
  DEFAULT_PERIODIC_CONFIG,
  driftedHashes,
  judgeSilence,
  quietAtThisHourBefore,
  memoryProgressStore,
  PeriodicConfig,
  type PeriodicDetector,
} from '../src/periodic/index.js';
import { makeFinding } from '../src/periodic/shared.js';
import { crossingsOf } from '../src/periodic/session-misuse.detector.js';
import {
  byPrecedence,
  CONTENT_COLUMNS,
  differingColumns,
  type StoredCopy,
} from '../src/periodic/event-id-reuse.detector.js';
import {
  alignDown,
  alignUp,
  dedupKeyOf,
  dueWindows,
  rangeWindows,
  resumeAt,
  windowLabel,
} from '../src/periodic/windows.js';
import type { SourceActivity } from '../src/periodic/silent-source.detector.js';
import { recordingLifecycle, silentLog } from './periodic.fixtures.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T = Date.UTC(2024, 2, 31, 0, 0, 0); // a Sunday, a DST change in Europe: windows are UTC, unaffected

test('window alignment and labels', () => {
  assert.equal(alignDown(T + 7 * MIN, 15 * MIN), T);
  assert.equal(alignUp(T + 7 * MIN, 15 * MIN), T + 15 * MIN);
  assert.equal(alignUp(T, 15 * MIN), T);
  assert.deepEqual([15 * MIN, HOUR, 24 * HOUR, 90_000, 1500].map(windowLabel), [
    '15m',
    '1h',
    '1d',
    '90s',
    '1500ms',
  ]);
  assert.throws(() => windowLabel(0), RangeError);
  assert.equal(dedupKeyOf('auth_spray', '10.0.0.1', 15 * MIN), 'auth_spray:10.0.0.1:15m');
});

test('dueWindows: closed windows only, earliest end first, bounded, lookahead respected', () => {
  const cursors = [
    { windowMs: 15 * MIN, lookaheadMs: 0, next: T },
    { windowMs: 5 * MIN, lookaheadMs: 0, next: T },
    { windowMs: 15 * MIN, lookaheadMs: 5 * MIN, next: T },
  ];
  const due = dueWindows(cursors, T + 20 * MIN, 100);
  assert.deepEqual(
    due.map((s) => [s.detector, (s.start - T) / MIN, (s.end - T) / MIN]),
    [
      [1, 0, 5],
      [1, 5, 10],
      [0, 0, 15],
      [1, 10, 15],
      [2, 0, 15], // needs 15 + 5 closed
      [1, 15, 20],
    ],
  );
  // Bounded: the first 3 of the same order, so the next tick continues without a gap.
  assert.deepEqual(dueWindows(cursors, T + 20 * MIN, 3), due.slice(0, 3));
  assert.deepEqual(dueWindows(cursors, T + 4 * MIN, 100), []);
});

test('rangeWindows: whole aligned windows inside [from, to) only', () => {
  const slots = rangeWindows(
    [{ windowMs: 15 * MIN }, { windowMs: HOUR }],
    T + 1 * MIN,
    T + 2 * HOUR + 10 * MIN,
  );
  // [detector, start minute]: ordered by window end; the hour [60, 120) ends with the 15-minute
  // window [105, 120), and detector order breaks the tie
  assert.deepEqual(
    slots.map((s) => [s.detector, (s.start - T) / MIN]),
    [
      [0, 15],
      [0, 30],
      [0, 45],
      [0, 60],
      [0, 75],
      [0, 90],
      [0, 105],
      [1, 60],
    ],
  );
  assert.ok(slots.every((s) => s.end <= T + 2 * HOUR + 10 * MIN && s.start >= T + MIN));
  assert.throws(() => rangeWindows([{ windowMs: MIN }], NaN, T), RangeError);
});

test('resumeAt: after the last evaluated window, or at the last closed one on a first start', () => {
  assert.equal(resumeAt(T + 30 * MIN, 15 * MIN, 0, T + 10 * HOUR), T + 30 * MIN);
  // window length changed from 5 to 15 minutes: resume at the next 15-minute boundary
  assert.equal(resumeAt(T + 35 * MIN, 15 * MIN, 0, T + 10 * HOUR), T + 45 * MIN);
  // first start at closedUntil = 10:07: the window [9:45, 10:00) is the first evaluated
  assert.equal(resumeAt(undefined, 15 * MIN, 0, T + 10 * HOUR + 7 * MIN), T + 9 * HOUR + 45 * MIN);
  // with a 5-minute lookahead [9:45, 10:00) needs 10:05 closed: still the first at 10:07, not at 10:04
  assert.equal(resumeAt(undefined, 15 * MIN, 5 * MIN, T + 10 * HOUR + 7 * MIN), T + 9 * HOUR + 45 * MIN);
  assert.equal(resumeAt(undefined, 15 * MIN, 5 * MIN, T + 10 * HOUR + 4 * MIN), T + 9 * HOUR + 30 * MIN);
});

test('PeriodicConfig: defaults, overrides, and clear errors', () => {
  const d = PeriodicConfig.parse({});
  assert.deepEqual(d, DEFAULT_PERIODIC_CONFIG);
  assert.equal(d.authSpray.minClients, 5);
  assert.equal(d.authSpray.windowMs, 15 * MIN);
  assert.equal(d.silentSource.minShare, 0.9);
  const o = PeriodicConfig.parse({ authSpray: { minClients: 3 }, toolDrift: { enabled: false } });
  assert.equal(o.authSpray.minClients, 3);
  assert.equal(o.authSpray.windowMs, 15 * MIN);
  assert.equal(o.toolDrift.enabled, false);
  const bad = PeriodicConfig.safeParse({
    authSpray: { windowMs: 7 * MIN },
    sessionMisuse: { maxAddresses: 0 },
  });
  assert.equal(bad.success, false);
  const paths = bad.error!.issues.map((i) => i.path.join('.'));
  assert.deepEqual(paths.sort(), ['authSpray.windowMs', 'sessionMisuse.maxAddresses']);
  assert.match(bad.error!.issues.find((i) => i.path[0] === 'authSpray')!.message, /divide a day/);
});

test('makeFinding fills every field within the alert contract bounds', () => {
  const ids = Array.from({ length: 60 }, () => randomUUID());
  const f = makeFinding({
    detector: 'session_misuse',
    subject: 'sess\n1',
    windowMs: 15 * MIN,
    windowStart: T,
    windowEnd: T + 15 * MIN,
    severity: 'high',
    title: 'x'.repeat(300),
    summary: 'y'.repeat(3000),
    observed: 2 / 3,
    expected: { low: 1, high: 1 },
    score: 2 / 3,
    contributors: {
      addresses: Array.from({ length: 30 }, (_, i) => ({ value: `10.0.0.${i}`, count: i })),
    },
    sampleEventIds: [...ids, ids[0]!, '00000000-0000-0000-0000-000000000000'],
  });
  assert.equal(f.dedupKey, 'session_misuse:sess?1:15m');
  assert.equal(f.clientId, 'sess?1');
  assert.equal(f.title.length, 200);
  assert.equal(f.summary.length, 2000);
  assert.equal(f.observed, 0.667);
  assert.equal(f.contributors.addresses.length, 20);
  assert.deepEqual(f.contributors.tools, []);
  assert.deepEqual(f.sampleEventIds, ids.slice(0, 50));
  assert.equal(f.detectedAt, T + 15 * MIN);
  assert.equal(f.baselineVersion, '');
  // The lifecycle turns it into an alert message: every bound of the contract holds.
  const alert = alertSchema.safeParse({
    schema_version: 1,
    type: 'alert',
    alert_id: randomUUID(),
    dedup_key: f.dedupKey,
    detector: f.detector,
    client_id: f.clientId,
    title: f.title,
    summary: f.summary,
    severity: f.severity,
    status: 'open',
    window: { start: new Date(f.windowStart).toISOString(), end: new Date(f.windowEnd).toISOString() },
    observed: f.observed,
    expected: f.expected,
    score: f.score,
    baseline_version: f.baselineVersion,
    contributors: f.contributors,
    sample_event_ids: f.sampleEventIds,
    created_at: new Date().toISOString(),
  });
  assert.equal(alert.success, true, JSON.stringify(alert.error?.issues));
});

test('driftedHashes: re-listing is not drift, a new hash is, first listing sets the reference', () => {
  const h = (hash: string, first: number) => ({ hash, first, events: 1 });
  assert.deepEqual(driftedHashes('a', [h('a', 1), h('a', 2)]), []);
  assert.deepEqual(
    driftedHashes('a', [h('b', 5)]).map((x) => x.hash),
    ['b'],
  );
  assert.deepEqual(driftedHashes(undefined, [h('a', 1)]), []);
  assert.deepEqual(
    driftedHashes(undefined, [h('b', 9), h('a', 1)]).map((x) => x.hash),
    ['b'],
  );
  // A→B→A within the window: B is drift even though the window ends on A
  assert.deepEqual(
    driftedHashes('a', [h('a', 1), h('b', 2)]).map((x) => x.hash),
    ['b'],
  );
});

test('judgeSilence: steady source that stops while others report; irregular or whole-system quiet is not', () => {
  const cfg = { ...DEFAULT_PERIODIC_CONFIG.silentSource, minShare: 0.8 }; // 24 buckets, 80 %, 30 min
  const end = T + 48 * HOUR;
  const start = end - 15 * MIN;
  const hours = (n: number, skip: (i: number) => boolean = () => false) => {
    const out: number[] = [];
    for (let i = 1; i <= n; i++) if (!skip(i)) out.push((end - i * HOUR) / HOUR - 1);
    return out;
  };
  const src = (source: string, buckets: number[], last: number, o: Partial<SourceActivity> = {}) => ({
    source,
    type: 'gateway',
    buckets,
    last,
    lastBefore: last < start ? last : start - MIN,
    inWindow: last >= start ? 1 : 0,
    ...o,
  });
  const steadyQuiet = src(
    'steady',
    hours(30, (i) => i % 6 === 0),
    end - 45 * MIN,
  ); // 25/30: in 20 of the last 24
  const irregular = src(
    'irregular',
    hours(30, (i) => i % 2 === 0),
    end - 45 * MIN,
  ); // 15 of 30
  const almost = src('almost', hours(30), end - 29 * MIN); // quiet for 29 minutes only
  const alive = src('alive', hours(30), end - 1 * MIN);
  const v = judgeSilence([steadyQuiet, irregular, almost, alive], start, end, cfg);
  assert.deepEqual(
    v.silent.map((s) => s.a.source),
    ['steady'],
  );
  assert.equal(v.silent[0]!.reference, 24);
  assert.equal(v.silent[0]!.present, 20);
  assert.equal(v.silent[0]!.others, 2);
  // The whole system quiet: nobody is "silent".
  const quiet = judgeSilence([steadyQuiet, { ...alive, last: end - 45 * MIN }], start, end, cfg);
  assert.deepEqual(quiet.silent, []);
  // Back: reported in the window after a gap of at least silenceMs.
  const back = src('steady', hours(30), end - 2 * MIN, { lastBefore: start - 50 * MIN, inWindow: 3 });
  assert.deepEqual(
    judgeSilence([back, alive], start, end, cfg).back.map((a) => a.source),
    ['steady'],
  );
  // At the default share (0.9) 20 of 24 is not steady.
  assert.deepEqual(
    judgeSilence([steadyQuiet, alive], start, end, DEFAULT_PERIODIC_CONFIG.silentSource).silent,
    [],
  );
  // Its own gaps: usual gaps of 5 minutes keep the 30-minute rule; usual gaps of 40 minutes need 120.
  const gapsEvery = (ms: number) => {
    const out: Array<{ end: number; ms: number }> = [];
    for (let t = end - 30 * HOUR; t < end - 2 * HOUR; t += ms) out.push({ end: t + ms, ms });
    return out;
  };
  const full = hours(30);
  const d = DEFAULT_PERIODIC_CONFIG.silentSource;
  const tight = src('tight', full, end - 45 * MIN, { gaps: gapsEvery(5 * MIN) });
  const sparse = src('sparse', full, end - 45 * MIN, { gaps: gapsEvery(40 * MIN) });
  const g = judgeSilence([tight, sparse, alive], start, end, d);
  assert.deepEqual(
    g.silent.map((s) => [s.a.source, s.usualGapMs / MIN, s.thresholdMs / MIN]),
    [['tight', 5, 30]],
  );
  const later = judgeSilence([{ ...sparse, last: end - 121 * MIN }, alive], start, end, d);
  assert.deepEqual(
    later.silent.map((s) => [s.a.source, s.thresholdMs / MIN]),
    [['sparse', 120]],
  );
  // Too little history: no bucket set of 20 exists yet, so nobody is steady.
  const young = src('young', hours(10), end - 45 * MIN);
  assert.deepEqual(judgeSilence([young, src('alive', hours(10), end - MIN)], start, end, cfg).silent, []);
});

test('judgeSilence: a source quiet at this hour every night is not silent; the same stretch by day is', () => {
  const d = DEFAULT_PERIODIC_CONFIG.silentSource;
  const DAY = 24 * HOUR;
  const end = T + 5 * DAY + 3 * HOUR + 45 * MIN; // 03:45
  const start = end - 15 * MIN;
  // Busy every 5 minutes except 03:00-06:00 each night (bots in two zones; nobody works then).
  const gaps: Array<{ end: number; ms: number }> = [];
  let t = end - 3 * DAY - 3 * HOUR - 45 * MIN;
  while (t < end - 45 * MIN) {
    const hourOfDay = Math.floor(((t - T) % DAY) / HOUR);
    const step = hourOfDay === 3 ? 3 * HOUR : 5 * MIN;
    gaps.push({ end: t + step, ms: step });
    t += step;
  }
  const buckets: number[] = [];
  for (let i = 1; i <= 30; i++) buckets.push((end - i * HOUR) / HOUR - 1);
  const base = { type: 'gateway', buckets, lastBefore: end - 46 * MIN, inWindow: 0, gaps };
  const night = { ...base, source: 'ci', last: end - 45 * MIN };
  const alive = { ...base, source: 'alive', last: end - MIN, gaps: [] };
  assert.equal(quietAtThisHourBefore(night, end, d.lookbackMs), true);
  assert.deepEqual(judgeSilence([night, alive], start, end, d).silent, []);
  // The same source silent from 14:00 on a working afternoon: yesterday it was busy then.
  const afternoon = end + 11 * HOUR; // 14:45
  const day = { ...night, last: afternoon - 45 * MIN, lastBefore: afternoon - 46 * MIN };
  assert.equal(quietAtThisHourBefore(day, afternoon, d.lookbackMs), false);
});

/** A detector that records the windows it is asked for; finds in chosen windows; fails on demand. */
function fakeDetector(
  name: PeriodicDetector['name'],
  windowMs: number,
  o: { findAt?: Set<number>; failAt?: Set<number>; lookaheadMs?: number } = {},
) {
  const calls: number[] = [];
  const det: PeriodicDetector = {
    name,
    windowMs,
    ...(o.lookaheadMs ? { lookaheadMs: o.lookaheadMs } : {}),
    async evaluate(start, end) {
      if (o.failAt?.has(start)) {
        o.failAt.delete(start);
        throw new Error('ClickHouse is down');
      }
      calls.push(start);
      const findings = o.findAt?.has(start)
        ? [
            makeFinding({
              detector: name,
              subject: 'x',
              windowMs,
              windowStart: start,
              windowEnd: end,
              severity: 'medium',
              title: 't',
              summary: 's',
              observed: 1,
              expected: { low: 0, high: 0 },
              score: 1,
            }),
          ]
        : [];
      return { findings, resolved: [{ dedupKey: `${name}:y:w`, reason: 'back' }] };
    },
  };
  return { det, calls };
}

test('runner: each window once, in order; bounded per tick; a restart neither skips nor repeats', async () => {
  const progress = memoryProgressStore([{ detector: 'auth_spray', windowMs: 15 * MIN, lastEnd: T }]);
  let wm = T + 3 * HOUR + 2 * MIN;
  const a = fakeDetector('auth_spray', 15 * MIN, { findAt: new Set([T + 30 * MIN]) });
  const b = fakeDetector('silent_source', HOUR);
  const life = recordingLifecycle();
  const mk = (det: PeriodicDetector[]) =>
    createPeriodicRunner({
      detectors: det,
      lifecycle: life,
      watermark: async () => wm,
      lateMs: 2 * MIN,
      log: silentLog(),
      progress,
      maxWindowsPerTick: 5,
    });
  const r1 = mk([a.det, b.det]);
  const t1 = await r1.tick();
  assert.equal(t1.windows, 5);
  assert.equal(t1.behind, true);
  // auth_spray resumes from its progress (T) and its windows end first; silent_source has no
  // progress: it starts at its last closed hour [2h, 3h), which ends after the first five.
  assert.deepEqual(
    a.calls.map((s) => (s - T) / MIN),
    [0, 15, 30, 45, 60],
  );
  assert.deepEqual(b.calls, []);
  assert.equal(life.raised.length, 1);
  assert.equal(life.raised[0]!.windowStart, T + 30 * MIN);
  assert.ok(life.resolved.every((r) => r.at > T));

  // "Restart": a new runner over the same progress store continues where the first stopped.
  const r2 = mk([a.det, b.det]);
  while ((await r2.tick()).behind);
  assert.deepEqual(
    a.calls.map((s) => (s - T) / MIN),
    [0, 15, 30, 45, 60, 75, 90, 105, 120, 135, 150, 165],
  );
  assert.deepEqual(
    b.calls.map((s) => (s - T) / MIN),
    [120],
  );
  // Nothing due until the watermark moves past the next window end + lateness.
  wm = T + 3 * HOUR + 16 * MIN;
  assert.equal((await r2.tick()).windows, 0);
  wm = T + 3 * HOUR + 17 * MIN;
  assert.equal((await r2.tick()).windows, 1);
  assert.equal(new Set(a.calls).size, a.calls.length, 'no window evaluated twice');
});

test('runner: a failing window is retried next tick, later windows of that detector wait', async () => {
  const failAt = new Set([T + 15 * MIN]);
  const a = fakeDetector('auth_spray', 15 * MIN, { failAt });
  const b = fakeDetector('tool_drift', 15 * MIN);
  const progress = memoryProgressStore([
    { detector: 'auth_spray', windowMs: 15 * MIN, lastEnd: T },
    { detector: 'tool_drift', windowMs: 15 * MIN, lastEnd: T },
  ]);
  const runner = createPeriodicRunner({
    detectors: [a.det, b.det],
    lifecycle: recordingLifecycle(),
    watermark: async () => T + HOUR,
    lateMs: 0,
    log: silentLog(),
    progress,
  });
  const t1 = await runner.tick();
  assert.equal(t1.failed, 1);
  assert.deepEqual(
    a.calls.map((s) => (s - T) / MIN),
    [0],
  );
  assert.deepEqual(
    b.calls.map((s) => (s - T) / MIN),
    [0, 15, 30, 45],
  );
  assert.equal(runner.health().details?.consecutiveFailures, 1);
  const t2 = await runner.tick();
  assert.equal(t2.failed, 0);
  assert.deepEqual(
    a.calls.map((s) => (s - T) / MIN),
    [0, 15, 30, 45],
  );
  const saved = await progress.load();
  assert.deepEqual(
    saved.map((e) => [e.detector, (e.lastEnd - T) / MIN]),
    [
      ['auth_spray', 60],
      ['tool_drift', 60],
    ],
  );
});

test('runner: lookahead delays a window; no events means nothing closes; start/stop/health', async () => {
  const a = fakeDetector('auth_fail_then_success', 15 * MIN, { lookaheadMs: 5 * MIN });
  let wm = 0;
  const runner = createPeriodicRunner({
    detectors: [a.det],
    lifecycle: recordingLifecycle(),
    watermark: async () => wm,
    lateMs: MIN,
    log: silentLog(),
    progress: memoryProgressStore([{ detector: 'auth_fail_then_success', windowMs: 15 * MIN, lastEnd: T }]),
    tickMs: 20,
    catchUpDelayMs: 1,
  });
  assert.equal((await runner.tick()).closedUntil, null);
  wm = T + 20 * MIN; // closed until 19 min: [0, 15) needs 15 + 5
  assert.equal((await runner.tick()).windows, 0);
  wm = T + 21 * MIN;
  assert.equal((await runner.tick()).windows, 1);
  assert.equal(runner.health().ok, false, 'not running before start');
  wm = T + 2 * HOUR;
  runner.start();
  const deadline = Date.now() + 10_000;
  while (a.calls.length < 7 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.equal(runner.health().ok, true);
  await runner.stop();
  assert.equal(runner.health().ok, false);
  assert.deepEqual(
    a.calls.map((s) => (s - T) / MIN),
    [0, 15, 30, 45, 60, 75, 90],
  );
});

test('runner.runRange: every window of the range in order, independent of the watermark and progress', async () => {
  const a = fakeDetector('auth_spray', 15 * MIN, { findAt: new Set([T + 15 * MIN]) });
  const b = fakeDetector('silent_source', HOUR);
  const progress = memoryProgressStore();
  const life = recordingLifecycle();
  const runner = createPeriodicRunner({
    detectors: [a.det, b.det],
    lifecycle: life,
    watermark: async () => {
      throw new Error('replay must not read the watermark');
    },
    lateMs: 0,
    log: silentLog(),
    progress,
  });
  const seen: string[] = [];
  const out = await runner.runRange(T, T + HOUR + 10 * MIN, {
    onProgress: (done, total, s) => seen.push(`${done}/${total} ${s.detector}`),
  });
  assert.deepEqual(out, { windows: 5, findings: 1, resolved: 5 });
  assert.deepEqual(seen, [
    '1/5 auth_spray',
    '2/5 auth_spray',
    '3/5 auth_spray',
    '4/5 auth_spray',
    '5/5 silent_source',
  ]);
  assert.equal(life.raised[0]!.dedupKey, 'auth_spray:x:15m');
  assert.deepEqual(progress.entries, []);
  assert.throws(
    () =>
      createPeriodicRunner({
        detectors: [a.det, a.det],
        lifecycle: life,
        watermark: async () => 0,
        lateMs: 0,
        log: silentLog(),
      }),
    /listed twice/,
  );
});

test('session crossings: a new address while the old one is recent crosses; one idle beyond the lookback does not', () => {
  const H = 3_600_000;
  const row = (values: Array<[ip: string, user: string, first: number, last: number]>) => ({
    s: 'sess-1',
    ips: values.map((v) => v[0]),
    users: values.map((v) => v[1]),
    clients: values.map(() => 'c-1'),
    firsts: values.map((v) => String(v[2])),
    lasts: values.map((v) => String(v[3])),
    ns: values.map(() => '3'),
  });
  const limits = { address: 1, user: 1, client: 1 };
  // used from A until 10:00, from B at 10:20: one crossing at B's first use, A as the earlier one
  const [c] = crossingsOf(
    row([
      ['A', 'u', 9 * H, 10 * H],
      ['B', 'u', 10 * H + 20 * 60_000, 11 * H],
    ]),
    12 * H,
    limits,
  );
  assert.deepEqual(c, {
    dimension: 'address',
    value: 'B',
    at: 10 * H + 20 * 60_000,
    earlier: [{ value: 'A', count: 3 }],
  });
  // A last used 13 h before B: beyond a 12 h lookback, a new address of a long-idle session is not misuse
  assert.deepEqual(
    crossingsOf(
      row([
        ['A', 'u', 0, H],
        ['B', 'u', 14 * H, 15 * H],
      ]),
      12 * H,
      limits,
    ),
    [],
  );
  // a second user on the same address is a crossing of the user dimension
  const [u] = crossingsOf(
    row([
      ['A', 'alice', 0, H],
      ['A', 'mallory', 2 * H, 3 * H],
    ]),
    12 * H,
    limits,
  );
  assert.equal(u?.dimension, 'user');
  assert.equal(u?.value, 'mallory');
  // a raised limit (NAT: two addresses allowed) needs a third
  assert.deepEqual(
    crossingsOf(
      row([
        ['A', 'u', 0, H],
        ['B', 'u', 2 * H, 3 * H],
      ]),
      12 * H,
      { ...limits, address: 2 },
    ),
    [],
  );
});

test('event_id_reuse: the first ingested copy wins (ties: lower Kafka position), differing columns by name', () => {
  const cols = CONTENT_COLUMNS.map((c) => `h-${c}`);
  const copy = (o: Partial<StoredCopy>): StoredCopy => ({
    ingestedAt: 100,
    ver: 4294967295 - 100,
    partition: 0,
    offset: '10',
    clientId: 'a',
    content: 'x',
    columns: cols,
    ...o,
  });
  const first = copy({});
  const later = copy({ ingestedAt: 160, ver: 4294967295 - 160, offset: '9' });
  const sameSecond = copy({ partition: 0, offset: '11' });
  assert.deepEqual([later, sameSecond, first].sort(byPrecedence), [first, sameSecond, later]);
  // offsets compare as numbers, not text ('9' < '10')
  assert.deepEqual(
    [copy({ offset: '10' }), copy({ offset: '9' })].sort(byPrecedence).map((c) => c.offset),
    ['9', '10'],
  );
  const forged = copy({
    columns: cols.map((h, i) => (['ts', 'client_id'].includes(CONTENT_COLUMNS[i]!) ? `${h}-forged` : h)),
  });
  assert.deepEqual(differingColumns(first, forged), ['ts', 'client_id']);
  assert.deepEqual(differingColumns(first, later), []);
});
