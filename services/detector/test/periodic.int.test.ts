/**
 * The periodic detectors against the real ClickHouse: events are inserted (as the writer) into the
 * shared mcp_audit.events on a random day years back that no other test uses, and the detectors read
 * them as the analyst. Detectors scan everything in a window (their job), so assertions look only at
 * this run's subjects (random suffix).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Finding } from '../src/model.js';
import {
  clickHouseProgressStore,
  createPeriodicDetectors,
  createPeriodicRunner,
  DEFAULT_PERIODIC_CONFIG,
  silentSourceDetector,
  PERIODIC_PROGRESS_TABLE,
  type PeriodicDetector,
} from '../src/periodic/index.js';
import {
  authFail,
  authOk,
  chClient,
  eventRow,
  randomPastDay,
  recordingLifecycle,
  SCHEMAS_DIR,
  silentLog,
  suffix,
} from './periodic.fixtures.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const D = randomPastDay();
const at = (h: number, m = 0, s = 0) => D + h * HOUR + m * MIN + s * 1000;
const sfx = suffix();
const octet = () => randomBytes(1)[0]! % 250;
const ip = (last: number) => `10.${octet()}.${octet()}.${last}`;
const IP = { spray: ip(1), sprayNear: ip(2), guess: ip(3), noSuccess: ip(4), fewFail: ip(5), other: ip(6) };
const SRC = {
  steady: `gw-steady-${sfx}`,
  alive: `gw-alive-${sfx}`,
  irregular: `gw-irregular-${sfx}`,
  batch: `sdk-batch-${sfx}`,
};
const SERVER = `srv-${sfx}`;
const SESS = {
  twoIps: `sess-${sfx}-ips`,
  twoUsers: `sess-${sfx}-users`,
  normal: `sess-${sfx}-ok`,
  replayed: `sess-${sfx}-replayed`,
};
const W = [at(10), at(10, 15)] as const; // the 15-minute window under test
const cfg = DEFAULT_PERIODIC_CONFIG;

let writer: ClickHouse;
let analyst: ClickHouse;
let detectors: Map<string, PeriodicDetector>;

const hash = (c: string) => c.repeat(64);
const rows: Record<string, unknown>[] = [];
const add = (...r: Record<string, unknown>[]) => rows.push(...r.map((x) => ({ source_id: SRC.alive, ...x })));

function scenario(): void {
  // silent_source: three gateways reporting for 40 hours before 09:00; "alive" every 10 minutes
  // until 11:00; "steady" every 10 minutes, last at 09:10, back at 10:20; "irregular" every third hour.
  for (let h = -40; h < 9; h++) {
    for (let m = 0; m < 60; m += 10)
      add(eventRow(at(h, m), { source_id: SRC.steady, client_id: `c-${sfx}` }));
    add(eventRow(at(h, 20), { source_id: SRC.alive, client_id: `c-${sfx}` }));
    if (h % 3 === 0) add(eventRow(at(h, 5), { source_id: SRC.irregular, client_id: `c-${sfx}` }));
  }
  add(eventRow(at(9, 0), { source_id: SRC.steady, client_id: `c-${sfx}` }));
  add(eventRow(at(9, 10), { source_id: SRC.steady, client_id: `c-${sfx}` }));
  for (let m = 0; m <= 120; m += 10) add(eventRow(at(9, m), { source_id: SRC.alive, client_id: `c-${sfx}` }));
  add(eventRow(at(10, 20), { source_id: SRC.steady, client_id: `c-${sfx}` }));
  // A nightly batch source: a 40-minute burst at 02:00 and heartbeats in every hour, alternately at
  // :05 and :55 (usual gaps of 10 and 110 minutes), last at 08:05. It reported in every hour, so the
  // share alone calls it steady; its own gaps say 115 minutes of quiet by 10:00 are normal for it.
  for (let h = -40; h <= 8; h++) {
    add(
      eventRow(at(h, h % 2 === 0 ? 5 : 55), {
        source_id: SRC.batch,
        source_type: 'sdk',
        client_id: `b-${sfx}`,
      }),
    );
    if (h % 24 === 2)
      for (let m = 0; m < 40; m += 2)
        add(eventRow(at(h, m), { source_id: SRC.batch, client_id: `b-${sfx}` }));
  }

  // auth_spray: one address against 5 clients (6 failures), a near miss against 4.
  for (let i = 1; i <= 5; i++) add(authFail(at(10, i), IP.spray, `sp-${sfx}-${i}`, { client_user: `u${i}` }));
  add(authFail(at(10, 6), IP.spray, `sp-${sfx}-1`));
  for (let i = 1; i <= 4; i++) add(authFail(at(10, i), IP.sprayNear, `spn-${sfx}-${i}`));

  // auth_fail_then_success: 5 failures then a success for a targeted client 2 minutes after the window.
  for (let i = 0; i < 5; i++) add(authFail(at(10, 2 + i), IP.guess, `fs-${sfx}-${i < 3 ? 'a' : 'b'}`));
  add(authOk(at(10, 17), IP.guess, `fs-${sfx}-b`, { client_user: 'bob', session_id: `fs-sess-${sfx}` }));
  // near misses: failures without success; 4 failures then success; success for an untargeted client
  for (let i = 0; i < 6; i++) add(authFail(at(10, 2 + i), IP.noSuccess, `ns-${sfx}`));
  for (let i = 0; i < 4; i++) add(authFail(at(10, 2 + i), IP.fewFail, `ff-${sfx}`));
  add(authOk(at(10, 8), IP.fewFail, `ff-${sfx}`));
  for (let i = 0; i < 5; i++) add(authFail(at(10, 2 + i), IP.other, `ot-${sfx}-x`));
  add(authOk(at(10, 9), IP.other, `ot-${sfx}-y`));

  // tool_drift (5-minute windows): history before the window, listings inside [10:00, 10:05).
  const list = (t: number, tool: string, h: string, o: Record<string, unknown> = {}) =>
    eventRow(t, {
      kind: 'tool_list',
      method: 'tools/list',
      server_name: SERVER,
      tool_name: tool,
      tool_definition_hash: h,
      client_id: `c-${sfx}`,
      client_ip: IP.other,
      ...o,
    });
  add(list(at(7), 'same', hash('1')), list(at(8), 'same', hash('1')), list(at(10, 1), 'same', hash('1')));
  add(list(at(7), 'changed', hash('9')), list(at(8), 'changed', hash('a')));
  add(list(at(10, 2), 'changed', hash('b'), { session_id: `drift-sess-${sfx}` }));
  // the gateway's explicit "definition changed" event carries the new hash too
  add(
    list(at(10, 3), 'changed', hash('b'), {
      kind: 'tool_call',
      label_keys: ['event'],
      label_values: ['tool_definition_changed'],
    }),
  );
  add(list(at(10, 1), 'brand_new', hash('c')));

  // session_misuse: two addresses; two users; a normal session; empty session ids everywhere.
  const call = (t: number, session: string, addr: string, user: string, client = `c-${sfx}`) =>
    eventRow(t, { session_id: session, client_ip: addr, client_user: user, client_id: client });
  add(
    call(at(10, 1), SESS.twoIps, '192.0.2.1', 'alice'),
    call(at(10, 4), SESS.twoIps, '198.51.100.7', 'alice'),
  );
  add(
    call(at(10, 2), SESS.twoUsers, '192.0.2.2', 'alice'),
    call(at(10, 3), SESS.twoUsers, '192.0.2.2', 'mallory'),
  );
  for (let i = 0; i < 5; i++) add(call(at(10, i), SESS.normal, '192.0.2.3', 'carol'));
  for (let i = 0; i < 3; i++) add(call(at(10, i), '', `192.0.2.${10 + i}`, `user${i}`, `empty-${sfx}`));
  add(call(at(10, 20), SESS.twoIps, '192.0.2.1', 'alice')); // next window: back to one address
  // The owner goes idle at 10:52; the id comes back from elsewhere at 11:05: no window holds both.
  add(
    call(at(10, 50), SESS.replayed, '192.0.2.4', 'alice'),
    call(at(10, 52), SESS.replayed, '192.0.2.4', 'alice'),
  );
  add(
    call(at(11, 5), SESS.replayed, '203.0.113.66', 'alice'),
    call(at(11, 7), SESS.replayed, '203.0.113.66', 'alice'),
  );
}

before(async () => {
  writer = chClient('WRITER');
  analyst = chClient('ANALYST');
  scenario();
  await writer.insert('events', rows);
  // Redelivered copies (same event_id) of the spray: must not inflate any count.
  const copies = rows.filter((r) => r.client_ip === IP.spray).slice(0, 3);
  await writer.insert(
    'events',
    copies.map((r) => ({ ...r, ingested_at: (r.ingested_at as number) + 60, ver: (r.ver as number) - 60 })),
  );
  detectors = new Map(
    createPeriodicDetectors({ ch: analyst, config: cfg, log: silentLog() }).map((d) => [d.name, d]),
  );
});

after(async () => {
  await writer?.close();
  await analyst?.close();
});

const mine = (fs: Finding[]) =>
  fs.filter((f) => f.dedupKey.includes(sfx) || Object.values(IP).some((a) => f.dedupKey.includes(`:${a}:`)));

test('every periodic detector is created with the default config', () => {
  assert.deepEqual(
    [...detectors.keys()],
    [
      'auth_spray',
      'auth_fail_then_success',
      'tool_drift',
      'silent_source',
      'session_misuse',
      'event_id_reuse',
      'secret_in_args',
      'toxic_flow',
      'tool_shadowing',
      'annotation_drift',
      'first_destructive_use',
    ],
  );
});

test('auth_spray: one address failing against 5 clients raises; 4 clients does not; resolves when it stops', async () => {
  const d = detectors.get('auth_spray')!;
  const { findings } = await d.evaluate(...W);
  const f = findings.find((x) => x.dedupKey === `auth_spray:${IP.spray}:15m`);
  assert.ok(f, 'spray found');
  assert.equal(f.observed, 5);
  assert.deepEqual(f.expected, { low: 0, high: 4 });
  assert.equal(f.score, 1);
  assert.equal(f.severity, 'medium');
  assert.equal(f.clientId, IP.spray);
  assert.deepEqual(f.contributors.addresses, [{ value: IP.spray, count: 6 }]);
  assert.equal(f.sampleEventIds.length, 6, 'duplicates removed');
  for (let i = 1; i <= 5; i++) assert.match(f.summary, new RegExp(`sp-${sfx}-${i}`));
  assert.equal(f.windowStart, W[0]);
  assert.equal(f.windowEnd, W[1]);
  assert.equal(
    findings.filter((x) => x.dedupKey.includes(IP.sprayNear)).length,
    0,
    'N-1 clients: no finding',
  );
  assert.equal(findings.filter((x) => x.dedupKey.includes(IP.guess)).length, 0);

  const next = await d.evaluate(W[1], W[1] + 15 * MIN);
  assert.ok(
    next.resolved.some((r) => r.dedupKey === `auth_spray:${IP.spray}:15m`),
    'resolves in the quiet window',
  );
  assert.ok(!next.findings.some((x) => x.dedupKey.includes(IP.spray)));
});

test('auth_fail_then_success: failures then a success for a targeted client; near misses stay quiet', async () => {
  const d = detectors.get('auth_fail_then_success')!;
  assert.equal(d.lookaheadMs, cfg.authFailThenSuccess.followMs);
  const { findings, resolved } = await d.evaluate(...W);
  const f = findings.find((x) => x.dedupKey === `auth_fail_then_success:${IP.guess}:15m`);
  assert.ok(f, 'guess found');
  assert.equal(f.severity, 'high');
  assert.equal(f.clientId, `fs-${sfx}-b`);
  assert.equal(f.observed, 5);
  assert.equal(f.detectedAt, at(10, 17));
  assert.match(f.summary, new RegExp(`fs-${sfx}-b \\(user bob\\) authenticated successfully`));
  assert.deepEqual(f.contributors.addresses, [{ value: IP.guess, count: 5 }]);
  assert.deepEqual(f.contributors.sessions, [{ value: `fs-sess-${sfx}`, count: 1 }]);
  assert.equal(f.sampleEventIds.length, 6); // the success first, then the 5 failures
  for (const near of [IP.noSuccess, IP.fewFail, IP.other, IP.spray]) {
    assert.ok(!findings.some((x) => x.dedupKey.includes(`:${near}:`)), `no finding for ${near}`);
  }
  assert.deepEqual(resolved, []);
});

test('tool_drift: a changed hash raises against the last one seen in history; re-listing and first listing do not', async () => {
  const d = detectors.get('tool_drift')!;
  const { findings } = await d.evaluate(at(10), at(10, 5));
  const ours = findings.filter((f) => f.dedupKey.includes(SERVER));
  assert.deepEqual(
    ours.map((f) => f.dedupKey),
    [`tool_drift:${SERVER}/changed:5m`],
  );
  const f = ours[0]!;
  assert.equal(f.severity, 'high');
  assert.equal(f.observed, 1);
  assert.match(f.summary, new RegExp(`hash ${'a'.repeat(16)}… \\(last seen`));
  assert.match(f.summary, new RegExp(`became ${'b'.repeat(16)}…`));
  assert.deepEqual(f.contributors.tools, [{ value: `${SERVER}/changed`, count: 2 }]);
  assert.deepEqual(f.contributors.sessions, [{ value: `drift-sess-${sfx}`, count: 1 }]);
  assert.equal(f.sampleEventIds.length, 2);
  // The next window sees no listing: nothing new, and drift never resolves by itself.
  const next = await d.evaluate(at(10, 5), at(10, 10));
  assert.ok(!next.findings.some((x) => x.dedupKey.includes(SERVER)));
  assert.deepEqual(next.resolved, []);
});

test('silent_source: a steady source that stops raises; irregular does not; resolves when it reports again', async () => {
  const d = detectors.get('silent_source')!;
  const { findings } = await d.evaluate(at(9, 45), at(10));
  const ours = findings.filter((f) => f.dedupKey.includes(sfx));
  assert.deepEqual(
    ours.map((f) => f.dedupKey),
    [`silent_source:${SRC.steady}:15m`],
  );
  const f = ours[0]!;
  assert.equal(f.observed, 50); // minutes since 09:10
  assert.deepEqual(f.expected, { low: 0, high: 30 });
  assert.equal(f.severity, 'medium');
  assert.equal(f.sampleEventIds.length, 10);
  assert.match(f.summary, /reported in 24 of the last 24 active 60-minute buckets/);

  const back = await d.evaluate(at(10, 15), at(10, 30));
  assert.ok(back.resolved.some((r) => r.dedupKey === `silent_source:${SRC.steady}:15m`));
  assert.ok(!back.findings.some((x) => x.dedupKey.includes(sfx)));
  // The batch source is quiet through its usual gaps; judged by the share and silenceMs alone it
  // would raise (what the gap rule is there for).
  assert.ok(!findings.some((x) => x.dedupKey.includes(SRC.batch)));
  const shareOnly = silentSourceDetector(analyst, { ...cfg.silentSource, gapFactor: 1, gapQuantile: 0.05 });
  const loose = await shareOnly.evaluate(at(9, 45), at(10));
  assert.deepEqual(
    loose.findings
      .filter((x) => x.dedupKey.includes(sfx))
      .map((x) => x.dedupKey)
      .sort(),
    [`silent_source:${SRC.steady}:15m`, `silent_source:${SRC.batch}:15m`].sort(),
  );
  assert.match(f.summary, /usual gap of \d/);
  // Hours later the whole (test) system is quiet: nobody is reported silent.
  const quiet = await d.evaluate(at(15, 45), at(16));
  assert.ok(!quiet.findings.some((x) => x.dedupKey.includes(sfx)));
});

test('session_misuse: a second address (medium) or user (high) raises; normal and empty sessions do not', async () => {
  const d = detectors.get('session_misuse')!;
  const { findings } = await d.evaluate(...W);
  const ours = mine(findings);
  assert.deepEqual(ours.map((f) => f.dedupKey).sort(), [
    `session_misuse:${SESS.twoIps}:15m`,
    `session_misuse:${SESS.twoUsers}:15m`,
  ]);
  const ips = ours.find((f) => f.dedupKey.includes(SESS.twoIps))!;
  assert.equal(ips.severity, 'medium');
  assert.equal(ips.observed, 2);
  assert.equal(ips.clientId, `c-${sfx}`);
  assert.deepEqual(ips.contributors.addresses.map((c) => c.value).sort(), ['192.0.2.1', '198.51.100.7']);
  const users = ours.find((f) => f.dedupKey.includes(SESS.twoUsers))!;
  assert.equal(users.severity, 'high');
  assert.match(users.summary, /2 user\(s\): alice \(1\), mallory \(1\)/);
  assert.ok(!findings.some((f) => f.dedupKey === 'session_misuse::15m'));

  const next = await d.evaluate(W[1], W[1] + 15 * MIN);
  const keys = next.resolved.map((r) => r.dedupKey);
  assert.ok(keys.includes(`session_misuse:${SESS.twoIps}:15m`));
  assert.ok(keys.includes(`session_misuse:${SESS.twoUsers}:15m`));
  assert.ok(!mine(next.findings).length);
});

test('session_misuse: a session id back from a new address after its owner went idle raises in the window it came back', async () => {
  const d = detectors.get('session_misuse')!;
  const key = `session_misuse:${SESS.replayed}:15m`;
  const before = await d.evaluate(at(10, 45), at(11));
  assert.ok(!before.findings.some((f) => f.dedupKey === key), 'the owner alone is normal');
  const { findings } = await d.evaluate(at(11), at(11, 15));
  const f = findings.find((x) => x.dedupKey === key);
  assert.ok(f, 'the replay is found although no single window holds both addresses');
  assert.equal(f.severity, 'medium');
  assert.equal(f.observed, 2);
  assert.equal(f.clientId, `c-${sfx}`);
  assert.deepEqual(f.contributors.addresses.map((c) => c.value).sort(), ['192.0.2.4', '203.0.113.66']);
  assert.match(f.summary, /first used from address 203\.0\.113\.66 at .*11:05:00.*192\.0\.2\.4 \(2\)/);
  const next = await d.evaluate(at(11, 15), at(11, 30));
  assert.ok(next.resolved.some((r) => r.dedupKey === key));
});

test('evaluateRange over many windows equals evaluate window by window, for every detector', async () => {
  const ranged = createPeriodicDetectors({ ch: analyst, config: cfg, log: silentLog() });
  for (const d of ranged) {
    const from = at(8);
    const to = at(11);
    const all = await d.evaluateRange!(from, to);
    // window by window, each with a fresh detector: no cache carried from one call to the next
    const one: unknown[] = [];
    for (let s = from; s < to; s += d.windowMs) {
      const fresh = createPeriodicDetectors({ ch: analyst, config: cfg, log: silentLog() }).find(
        (x) => x.name === d.name,
      )!;
      one.push(await fresh.evaluate(s, s + d.windowMs));
    }
    assert.equal(all.length, (to - from) / d.windowMs, d.name);
    assert.deepEqual(all, one, d.name);
  }
});

test('runRange is deterministic: the same stored events give the same findings', async () => {
  const run = async () => {
    const life = recordingLifecycle();
    const runner = createPeriodicRunner({
      detectors: [...detectors.values()],
      lifecycle: life,
      watermark: async () => 0,
      lateMs: 0,
      log: silentLog(),
    });
    const out = await runner.runRange(at(9, 30), at(10, 30));
    return {
      out,
      raised: mine(life.raised),
      resolved: life.resolved.filter((r) => r.dedupKey.includes(sfx)),
    };
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a, b);
  // silent_source raises in each window while the source is quiet (09:45, 10:00, 10:15): the
  // lifecycle keeps one open alert under the key; every other pattern is raised once.
  assert.equal(a.raised.filter((f) => f.detector === 'silent_source').length, 3);
  assert.deepEqual([...new Set(a.raised.map((f) => f.dedupKey))].sort(), [
    `auth_fail_then_success:${IP.guess}:15m`,
    `auth_spray:${IP.spray}:15m`,
    `session_misuse:${SESS.twoIps}:15m`,
    `session_misuse:${SESS.twoUsers}:15m`,
    `silent_source:${SRC.steady}:15m`,
    `tool_drift:${SERVER}/changed:5m`,
  ]);
  // 4 windows of 15 minutes for 5 detectors (tool_shadowing too), 12 of 5 minutes for tool_drift,
  // event_id_reuse, secret_in_args, toxic_flow, annotation_drift and first_destructive_use each
  assert.equal(a.out.windows, 5 * 4 + 6 * 12);
});

test('live runner with progress in ClickHouse: a restart neither skips nor repeats windows', async () => {
  const admin = chClient('ADMIN');
  const db = `mcp_audit_test_periodic_${sfx}`;
  const dir = mkdtempSync(join(tmpdir(), 'periodic-progress-'));
  try {
    copyFileSync(join(SCHEMAS_DIR, '005_periodic_progress.sql'), join(dir, '005_periodic_progress.sql'));
    await runMigrations({ client: admin, dir, database: db });
    const store = chClient('ADMIN', { database: db, insertTables: [PERIODIC_PROGRESS_TABLE] });
    const progress = clickHouseProgressStore({ reader: store, writer: store });
    await progress.save([{ detector: 'auth_spray', windowMs: 15 * MIN, lastEnd: at(9, 45) }]);

    const spray = detectors.get('auth_spray')!;
    const evaluated: number[] = [];
    const recorded: PeriodicDetector = {
      ...spray,
      evaluate: (s, e) => (evaluated.push(s), spray.evaluate(s, e)),
      // the runner hands a range of windows in one call: record each window of it
      evaluateRange: (from, to) => {
        for (let s = from; s < to; s += spray.windowMs) evaluated.push(s);
        return spray.evaluateRange!(from, to);
      },
    };
    let wm = at(11);
    const life = recordingLifecycle();
    const mk = () =>
      createPeriodicRunner({
        detectors: [recorded],
        lifecycle: life,
        watermark: async () => wm,
        lateMs: 0,
        log: silentLog(),
        progress,
        maxWindowsPerTick: 3,
      });
    const first = await mk().tick();
    assert.deepEqual({ windows: first.windows, behind: first.behind }, { windows: 3, behind: true });
    const second = mk(); // restart
    assert.equal((await second.tick()).windows, 2);
    assert.equal((await second.tick()).windows, 0);
    wm = at(11, 15);
    assert.equal((await second.tick()).windows, 1);
    assert.deepEqual(
      evaluated.map((s) => (s - D) / MIN - 600),
      [-15, 0, 15, 30, 45, 60],
    );
    assert.equal(life.raised.filter((f) => f.dedupKey === `auth_spray:${IP.spray}:15m`).length, 1);
    assert.deepEqual(await progress.load(), [
      { detector: 'auth_spray', windowMs: 15 * MIN, lastEnd: at(11, 15) },
    ]);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(db)}`);
    await admin.close();
  }
});
