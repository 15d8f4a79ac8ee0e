/**
 * Alert lifecycles that end (issue 14 item 3), on the real ClickHouse and Kafka: tool_drift and
 * auth_fail_then_success have no "back in band" window, so their alerts expire `expireMs` of event time
 * after they opened, and the next occurrence after that is a NEW alert, across restarts of the
 * detector (the open set is reloaded from alert_transitions, the runner's progress from
 * periodic_progress). A human resolve stays final. auth_spray and session_misuse resolve at the first
 * window back in band, and the same restart cycle holds for them. Own database (the repo migrations)
 * and alerts topic.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { createProducer, type AuditProducer, type Kafka } from '@mcp-audit/kafka';
import { Lifecycle, liveSink, loadOpenAlerts, stableUuid } from '../src/alert.lifecycle.js';
import { DETECTOR_TABLES } from '../src/app.js';
import { parseDetectorConfig } from '../src/config.js';
import {
  authFailThenSuccessDetector,
  authSprayDetector,
  clickHouseProgressStore,
  createPeriodicRunner,
  sessionMisuseDetector,
  toolDriftDetector,
  type PeriodicDetector,
} from '../src/periodic/index.js';
import {
  authFail,
  authOk,
  chClient,
  eventRow,
  SCHEMAS_DIR,
  silentLog,
  suffix,
  testKafka,
} from './periodic.fixtures.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const sfx = suffix();
const DB = `mcp_audit_life_${sfx}`;
const ALERTS = `test.detector.lifecycle.${sfx}`;
// A past UTC midnight (periodic detectors read stored events of any age).
const D = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 3 * 86_400_000;
const at = (h: number, m = 0) => D + h * HOUR + m * MIN;
const SERVER = `srv-${sfx}`;
const IP = '10.77.0.9';
const DRIFT_KEY = `tool_drift:${SERVER}/fetch:5m`;
const GUESS_KEY = `auth_fail_then_success:${IP}:15m`;
const config = parseDetectorConfig({
  periodic: {
    toolDrift: { expireMs: HOUR },
    authFailThenSuccess: { expireMs: HOUR },
  },
});
const log = silentLog();

let kafka: Kafka;
let producer: AuditProducer;
let admin: ClickHouse;
let ch: ClickHouse;
let wm = 0;

const list = (t: number, hash: string) =>
  eventRow(t, {
    kind: 'tool_list',
    method: 'tools/list',
    server_name: SERVER,
    tool_name: 'fetch',
    tool_definition_hash: hash.repeat(64),
    client_id: `c-${sfx}`,
    source_id: `gw-${sfx}`,
  });
/** Five failures against `client` from IP, then its success two minutes later. */
const guess = (t: number, client: string) => [
  ...[0, 1, 2, 3, 4].map((i) => authFail(t + i * 20_000, IP, client)),
  authOk(t + 2 * MIN, IP, client),
];

/** A detector process: a lifecycle reloaded from ClickHouse and a runner resuming its progress. */
async function startDetector(
  detectors: PeriodicDetector[] = [
    authFailThenSuccessDetector(ch, config.periodic.authFailThenSuccess),
    toolDriftDetector(ch, config.periodic.toolDrift),
  ],
) {
  const lifecycle = new Lifecycle({
    sink: liveSink({ writer: ch, producer, topic: ALERTS }),
    log,
    origin: 'live',
  });
  lifecycle.restore(await loadOpenAlerts(ch));
  const runner = createPeriodicRunner({
    detectors,
    lifecycle,
    watermark: async () => wm,
    lateMs: 0,
    log,
    progress: clickHouseProgressStore({ reader: ch, writer: ch }),
    maxWindowsPerTick: 10_000,
  });
  return { lifecycle, runner };
}

/** Advances event time to `t` and runs the runner until it is caught up. */
async function advance(d: Awaited<ReturnType<typeof startDetector>>, t: number) {
  wm = t;
  while ((await d.runner.tick()).behind);
}

async function transitions(key: string) {
  return ch.query<{
    alert_id: string;
    to_status: string;
    changed_at_ms: string;
    actor: string;
    note: string;
  }>(sql`
    SELECT alert_id, to_status, changed_at_ms, actor, note FROM ${dbIdent(DB)}.alert_transitions
    WHERE dedup_key = ${key} ORDER BY changed_at_ms, to_status = 'resolved'`);
}

before(async () => {
  kafka = testKafka('detector-lifecycle-test', log);
  const ka = kafka.admin();
  await ka.connect();
  await ka.createTopics({ waitForLeaders: true, topics: [{ topic: ALERTS, numPartitions: 1 }] });
  await ka.disconnect();
  producer = createProducer(kafka);
  await producer.connect();
  admin = chClient('ADMIN');
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: DB });
  ch = chClient('ADMIN', { database: DB, insertTables: ['events', ...DETECTOR_TABLES] });
  // History: the approved definition (hash 1) days before. The runner starts at 10:00.
  await ch.insert('events', [list(at(-48), '1')]);
  await clickHouseProgressStore({ reader: ch, writer: ch }).save([
    { detector: 'auth_fail_then_success', windowMs: 15 * MIN, lastEnd: at(10) },
    { detector: 'tool_drift', windowMs: 5 * MIN, lastEnd: at(10) },
  ]);
});

after(async () => {
  await producer?.disconnect();
  const ka = kafka.admin();
  await ka.connect();
  await ka.deleteTopics({ topics: [ALERTS] }).catch(() => undefined);
  await ka.disconnect();
  await ch?.close();
  await admin?.command(sql`DROP DATABASE IF EXISTS ${dbIdent(DB)}`);
  await admin?.close();
});

test('tool_drift and auth_fail_then_success: a repeat while open is part of the alert; after expiry, across restarts, a new occurrence raises a new alert', async () => {
  // 10:01 first rug pull (hash 2) and a guessed credential at 10:02; 10:31 another change (3) and
  // another guess at 10:32, both inside the hour the alerts stay open.
  await ch.insert('events', [
    list(at(10, 1), '2'),
    ...guess(at(10, 2), `a-${sfx}`),
    list(at(10, 31), '3'),
    ...guess(at(10, 32), `a-${sfx}`),
  ]);
  let d = await startDetector();
  await advance(d, at(10, 50));
  let drift = await transitions(DRIFT_KEY);
  let guessed = await transitions(GUESS_KEY);
  assert.deepEqual(
    drift.map((t) => [t.to_status, Number(t.changed_at_ms)]),
    [['open', at(10, 5)]],
    'one drift alert; the second change is suppressed while it is open',
  );
  assert.deepEqual(
    guessed.map((t) => [t.to_status, Number(t.changed_at_ms)]),
    [['open', at(10, 15)]],
  );

  // Restart: the open alerts are reloaded (not re-raised); event time passes their expiry.
  d = await startDetector();
  assert.ok(d.lifecycle.isOpen(DRIFT_KEY) && d.lifecycle.isOpen(GUESS_KEY), 'reloaded as open');
  await advance(d, at(11, 20));
  drift = await transitions(DRIFT_KEY);
  guessed = await transitions(GUESS_KEY);
  assert.deepEqual(
    drift.map((t) => [t.to_status, Number(t.changed_at_ms)]),
    [
      ['open', at(10, 5)],
      ['resolved', at(11, 5)],
    ],
    'the drift alert expires one hour (event time) after it opened',
  );
  assert.match(drift[1]!.note, /^expired: 1 hours of event time since it opened/);
  assert.deepEqual(
    guessed.map((t) => [t.to_status, Number(t.changed_at_ms)]),
    [
      ['open', at(10, 15)],
      ['resolved', at(11, 15)],
    ],
  );

  // Restart again: nothing is reloaded under those keys; the next rug pull and the next guess are
  // new alerts with new ids.
  d = await startDetector();
  assert.ok(!d.lifecycle.isOpen(DRIFT_KEY) && !d.lifecycle.isOpen(GUESS_KEY), 'expired: not reloaded');
  await ch.insert('events', [list(at(11, 31), '4'), ...guess(at(11, 32), `a-${sfx}`)]);
  await advance(d, at(12));
  drift = await transitions(DRIFT_KEY);
  guessed = await transitions(GUESS_KEY);
  assert.equal(drift.length, 3, 'a second drift alert after the first expired');
  assert.deepEqual([drift[2]!.to_status, Number(drift[2]!.changed_at_ms)], ['open', at(11, 35)]);
  assert.notEqual(drift[2]!.alert_id, drift[0]!.alert_id);
  assert.equal(drift[2]!.alert_id, stableUuid(`alert|${DRIFT_KEY}|${at(11, 30)}`));
  assert.equal(guessed.length, 3, 'a second guess alert after the first expired');
  assert.deepEqual([guessed[2]!.to_status, Number(guessed[2]!.changed_at_ms)], ['open', at(11, 45)]);
  const alerts = await ch.query<{ n: string }>(sql`
    SELECT count() AS n FROM ${dbIdent(DB)}.alerts WHERE dedup_key IN (${DRIFT_KEY}, ${GUESS_KEY})`);
  assert.equal(Number(alerts[0]!.n), 4, 'two alert rows per key, none re-raised by a restart');

  // A human resolves the new drift alert (as the analyst API writes it): final. The detector does
  // not resolve it again at expiry, a restart does not reload it, and the next change is new again.
  const human = drift[2]!.alert_id;
  await ch.insert('alert_transitions', [
    {
      transition_id: stableUuid(`human|${human}`),
      alert_id: human,
      dedup_key: DRIFT_KEY,
      detector: 'tool_drift',
      client_id: `${SERVER}/fetch`,
      severity: 'high',
      from_status: 'open',
      to_status: 'resolved',
      changed_at: Math.floor(at(11, 50) / 1000),
      changed_at_ms: at(11, 50),
      actor: 'analyst:tester',
      note: 'verified upgrade',
      written_at: Math.floor(Date.now() / 1000),
    },
  ]);
  d.lifecycle.closeByHuman(human); // what the human triage watcher does in the running detector
  await advance(d, at(12, 40));
  d = await startDetector();
  assert.ok(!d.lifecycle.isOpen(DRIFT_KEY), 'a human resolve is not reloaded as open');
  await ch.insert('events', [list(at(12, 41), '5')]);
  await advance(d, at(13));
  drift = await transitions(DRIFT_KEY);
  assert.deepEqual(
    drift.slice(3).map((t) => [t.to_status, t.actor, Number(t.changed_at_ms)]),
    [
      ['resolved', 'analyst:tester', at(11, 50)],
      ['open', 'detector', at(12, 45)],
    ],
    'no detector resolve after the human one; the next change opens a new alert',
  );
});

test('auth_spray and session_misuse: resolve at the first window back in band; across restarts, the next occurrence is a new alert', async () => {
  const D2 = D + 86_400_000; // a day of its own
  const at2 = (h: number, m = 0) => D2 + h * HOUR + m * MIN;
  const SPRAY_IP = '10.77.1.7';
  const SESSION = `sess-${sfx}`;
  const SPRAY_KEY = `auth_spray:${SPRAY_IP}:15m`;
  const SESSION_KEY = `session_misuse:${SESSION}:15m`;
  const spray = (t: number) =>
    [1, 2, 3, 4, 5].map((i) => authFail(t + i * 10_000, SPRAY_IP, `sp-${sfx}-${i}`));
  const use = (t: number, ip: string) =>
    eventRow(t, { session_id: SESSION, client_ip: ip, client_user: 'alice', client_id: `c-${sfx}` });
  await clickHouseProgressStore({ reader: ch, writer: ch }).save([
    { detector: 'auth_spray', windowMs: 15 * MIN, lastEnd: at2(10) },
    { detector: 'session_misuse', windowMs: 15 * MIN, lastEnd: at2(10) },
  ]);
  const detectors = () => [
    authSprayDetector(ch, config.periodic.authSpray),
    sessionMisuseDetector(ch, config.periodic.sessionMisuse),
  ];
  // 10:00–10:15: a spray, and one session from two addresses.
  await ch.insert('events', [
    ...spray(at2(10, 1)),
    use(at2(10, 2), '192.0.2.10'),
    use(at2(10, 4), '192.0.2.11'),
  ]);
  let d = await startDetector(detectors());
  await advance(d, at2(10, 15));
  const opened = [await transitions(SPRAY_KEY), await transitions(SESSION_KEY)];
  assert.deepEqual(
    opened.map((ts) => ts.map((t) => [t.to_status, Number(t.changed_at_ms)])),
    [[['open', at2(10, 15)]], [['open', at2(10, 15)]]],
  );
  // Restart: reloaded open; the quiet window after resolves both.
  d = await startDetector(detectors());
  assert.ok(d.lifecycle.isOpen(SPRAY_KEY) && d.lifecycle.isOpen(SESSION_KEY));
  await advance(d, at2(10, 30));
  for (const key of [SPRAY_KEY, SESSION_KEY]) {
    const ts = await transitions(key);
    assert.deepEqual(
      ts.map((t) => t.to_status),
      ['open', 'resolved'],
      key,
    );
    assert.equal(Number(ts[1]!.changed_at_ms), at2(10, 30));
  }
  // Restart: nothing reloaded; the next spray and the session back from a third address (its owner
  // used it within the lookback) are new alerts.
  d = await startDetector(detectors());
  assert.ok(!d.lifecycle.isOpen(SPRAY_KEY) && !d.lifecycle.isOpen(SESSION_KEY));
  await ch.insert('events', [...spray(at2(11, 1)), use(at2(11, 2), '203.0.113.12')]);
  await advance(d, at2(11, 15));
  for (const key of [SPRAY_KEY, SESSION_KEY]) {
    const ts = await transitions(key);
    assert.deepEqual(
      ts.map((t) => [t.to_status, Number(t.changed_at_ms)]),
      [
        ['open', at2(10, 15)],
        ['resolved', at2(10, 30)],
        ['open', at2(11, 15)],
      ],
      key,
    );
    assert.notEqual(ts[2]!.alert_id, ts[0]!.alert_id);
  }
});
