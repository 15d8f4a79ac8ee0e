/**
 * The streaming detector through the real Kafka and ClickHouse: events for a unique client are
 * produced to a test topic, the detector (its real consumer, engine, lifecycle, sinks) raises alerts
 * on a test alerts topic and appends rows to mcp_audit.alerts / alert_transitions, and a replay of
 * the same range over the stored events gives the same alerts. Event times sit on a random day years
 * back (2005–2014) with its own baseline version, so no other test's traffic is judged with ours.
 * The test runs on its own database (the repo migrations, random name, dropped afterwards) as the
 * admin, since the writer and analyst users are confined to mcp_audit; the event times are recent
 * (the event contract refuses ts older than 30 days). The stored copy of the events is inserted as the
 * ingester writes it (the ingester's own tests cover that path); the detector reads the topic, the
 * replay reads ClickHouse.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { createProducer, type AuditProducer, type Kafka } from '@mcp-audit/kafka';
import { createRegistry } from '@mcp-audit/service-kit';
import { alertMessageSchema, validateEvent, type AlertMessage } from '@mcp-audit/schema';
import { loadOpenAlerts } from '../src/alert.lifecycle.js';
import { buildDetector, DETECTOR_TABLES, type DetectorService } from '../src/app.js';
import { createBaselineJob } from '../src/baselines.job.js';
import { parseDetectorConfig } from '../src/config.js';
import { comparable, memorySink, runReplay } from '../src/replay.js';
import { chClient, eventRow, SCHEMAS_DIR, silentLog, suffix, testKafka } from './periodic.fixtures.js';

const MIN = 60_000;
const H = 60 * MIN;
const sfx = suffix();
// Five days ago, UTC midnight (event times must be within the contract's 30 days).
const D = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 5 * 86_400_000;
const DB = `mcp_audit_det_${sfx}`;
const CLIENT = `it-client-${sfx}`;
const HIST = `it-hist-${sfx}`;
const NEW_TOOL = `exfil_${sfx}`;
// A learning client alerts on a server no client has used (a known server's unused tool is onboarding).
const NEW_SERVER = `shell_${sfx}`;
const TOPIC = `test.detector.events.${sfx}`;
const ALERTS = `test.detector.alerts.${sfx}`;
const config = parseDetectorConfig({});
const log = silentLog();

let kafka: Kafka;
let producer: AuditProducer;
let chAdmin: ClickHouse;
let writer: ClickHouse;
let analyst: ClickHouse;
let detector: DetectorService | undefined;
const received: AlertMessage[] = [];
let stopAlerts: () => Promise<void>;

function event(
  at: number,
  o: { tool?: string; server?: string; authFailed?: boolean; client?: string } = {},
) {
  const e: Record<string, unknown> = {
    schema_version: 1,
    event_id: randomUUID(),
    ts: new Date(at).toISOString(),
    kind: o.authFailed ? 'auth' : 'tool_call',
    source: { type: 'gateway', id: `gw-${sfx}`, version: '1.0.0' },
    client: { id: o.client ?? CLIENT, ip: '198.51.100.7', session_id: `sess-${sfx}` },
    server: { name: o.server ?? 'files', transport: 'http' },
    method: o.authFailed ? 'initialize' : 'tools/call',
    ...(o.authFailed ? {} : { tool: { name: o.tool ?? 'read_file' } }),
    outcome: o.authFailed ? 'auth_failed' : 'ok',
    auth: { method: 'api_key', result: o.authFailed ? 'failure' : 'success' },
    duration_ms: 5,
    request_bytes: 100,
    response_bytes: 1_000,
  };
  const r = validateEvent(e, { now: Date.now() });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return e;
}

/** Produce to the detector's topic and store the same events as the ingester would. */
async function send(events: Record<string, unknown>[]) {
  await producer.send(
    TOPIC,
    events.map((e) => ({ key: (e.client as { id: string }).id, value: JSON.stringify(e) })),
  );
  await writer.insert(
    'events',
    events.map((e) => {
      const c = e.client as { id: string; ip: string; session_id: string };
      return eventRow(Date.parse(e.ts as string), {
        event_id: e.event_id,
        kind: e.kind,
        client_id: c.id,
        client_ip: c.ip,
        session_id: c.session_id,
        server_name: (e.server as { name: string }).name,
        tool_name: (e.tool as { name: string } | undefined)?.name ?? '',
        outcome: e.outcome,
        auth_result: (e.auth as { result: string }).result,
        source_id: `gw-${sfx}`,
      });
    }),
  );
}

async function waitFor<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function startDetector(): DetectorService {
  const d = buildDetector(
    {
      groupId: `test-detector-${sfx}`,
      eventsTopic: TOPIC,
      alertsTopic: ALERTS,
      fromBeginning: true,
      periodic: false,
      baselineJob: false,
    },
    {
      kafka,
      writer,
      reader: analyst,
      config,
      log,
      registry: createRegistry('detector-test', { defaultMetrics: false }),
    },
  );
  return d;
}

before(async () => {
  kafka = testKafka('detector-int-test', log);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: TOPIC, numPartitions: 2, replicationFactor: 1 },
      { topic: ALERTS, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  await admin.disconnect();
  producer = createProducer(kafka);
  await producer.connect();
  chAdmin = chClient('ADMIN');
  await runMigrations({ client: chAdmin, dir: SCHEMAS_DIR, database: DB });
  writer = chClient('ADMIN', { database: DB, insertTables: ['events', ...DETECTOR_TABLES] });
  analyst = chClient('ADMIN', { database: DB });
  const consumer = kafka.consumer({ groupId: `test-alerts-${sfx}` });
  await consumer.connect();
  await consumer.subscribe({ topic: ALERTS, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      received.push(alertMessageSchema.parse(JSON.parse(message.value!.toString('utf8'))));
    },
  });
  stopAlerts = () => consumer.disconnect();
  // A history three days before D, and the baseline version as of D (the global row that knows
  // read_file on server files).
  await send([
    event(D - 3 * 24 * H + 9 * H, { client: HIST }),
    event(D - 3 * 24 * H + 9 * H + MIN, { client: HIST }),
  ]);
  const r = await createBaselineJob({ reader: analyst, writer, config, log }).computeAsOf(D);
  assert.ok(r.clients >= 1);
});

after(async () => {
  await detector?.stop();
  await stopAlerts?.();
  await producer?.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [TOPIC, ALERTS] }).catch(() => undefined);
  await admin.disconnect();
  await writer?.close();
  await analyst?.close();
  await chAdmin?.command(sql`DROP DATABASE IF EXISTS ${dbIdent(DB)}`);
  await chAdmin?.close();
});

const alertsFor = (client: string) => received.filter((m) => m.client_id === client);

test('live: a never-seen tool and an auth burst raise alerts on the topic and in ClickHouse, then resolve', async () => {
  detector = startDetector();
  await detector.start();
  const t0 = D + 10 * H;
  await send([
    event(t0 + MIN, { tool: NEW_TOOL, server: NEW_SERVER }),
    ...Array.from({ length: 12 }, (_, i) => event(t0 + 2 * MIN + i * 10_000, { authFailed: true })),
  ]);
  const opened = await waitFor(() => {
    const a = alertsFor(CLIENT).filter((m) => m.type === 'alert');
    return a.length >= 2 ? a : undefined;
  }, 'two alerts on the alerts topic');
  assert.deepEqual(opened.map((m) => m.dedup_key).sort(), [
    `auth_burst:${CLIENT}:5m`,
    `new_tool:${CLIENT}:1h`,
  ]);
  const burst = opened.find((m) => m.detector === 'auth_burst');
  assert.equal(burst?.type === 'alert' && burst.severity, 'high');
  // a later event moves the watermark: the idle next windows resolve both
  await send([event(t0 + 2 * H + 30 * MIN)]);
  const resolved = await waitFor(() => {
    const r = alertsFor(CLIENT).filter((m) => m.type === 'state_change');
    return r.length >= 2 ? r : undefined;
  }, 'two resolutions');
  assert.deepEqual(
    resolved.map((m) => (m.type === 'state_change' ? `${m.dedup_key} ${m.changed_at}` : '')).sort(),
    [
      `auth_burst:${CLIENT}:5m ${new Date(t0 + 10 * MIN).toISOString()}`,
      `new_tool:${CLIENT}:1h ${new Date(t0 + 2 * H).toISOString()}`,
    ],
  );
  const rows = await analyst.query<{ n: string; d: string }>(sql`
    SELECT count() AS n, uniqExact(dedup_key) AS d FROM ${dbIdent(DB)}.alerts WHERE client_id = ${CLIENT} AND origin = 'live'`);
  assert.deepEqual(rows[0], { n: '2', d: '2' });
  const transitions = await analyst.query<{ to_status: string; n: string }>(sql`
    SELECT to_status, count() AS n FROM ${dbIdent(DB)}.alert_transitions WHERE client_id = ${CLIENT}
    GROUP BY to_status ORDER BY to_status`);
  assert.deepEqual(transitions, [
    { to_status: 'open', n: '2' },
    { to_status: 'resolved', n: '2' },
  ]);
});

test('replay of the stored range gives the same alerts as live', async () => {
  const sink = memorySink();
  const r = await runReplay({
    reader: analyst,
    config,
    log,
    from: D,
    to: D + 13 * H,
    sink,
    periodic: false,
    clientIds: [CLIENT],
  });
  assert.equal(r.events, 14, JSON.stringify(r));
  const key = (m: AlertMessage) => JSON.stringify(comparable(m));
  assert.deepEqual(sink.messages.map(key).sort(), alertsFor(CLIENT).map(key).sort());
  assert.deepEqual(
    sink.messages
      .filter((m) => m.type === 'alert')
      .map((m) => m.alert_id)
      .sort(),
    alertsFor(CLIENT)
      .filter((m) => m.type === 'alert')
      .map((m) => m.alert_id)
      .sort(),
    'alert ids are derived from the dedup key and window, so they match too',
  );
});

test('restart: an open alert is reloaded from ClickHouse and keeps suppressing its key', async () => {
  const t1 = D + 13 * H;
  await send(Array.from({ length: 11 }, (_, i) => event(t1 + i * 5_000, { authFailed: true })));
  await waitFor(
    () => alertsFor(CLIENT).filter((m) => m.type === 'alert').length >= 3 || undefined,
    'third alert',
  );
  await detector!.stop();
  const open = await loadOpenAlerts(analyst);
  assert.ok(open.some((a) => a.dedupKey === `auth_burst:${CLIENT}:5m` && a.windowStart === t1));
  detector = startDetector();
  await detector.start();
  // the next 5-minute window bursts again: suppressed (still open), no new alert message
  await send(Array.from({ length: 11 }, (_, i) => event(t1 + 5 * MIN + i * 5_000, { authFailed: true })));
  // then quiet: resolved at the end of the first in-band window after the second burst
  await send([event(t1 + 40 * MIN)]);
  const res = await waitFor(
    () =>
      alertsFor(CLIENT).find(
        (m) => m.type === 'state_change' && m.changed_at === new Date(t1 + 15 * MIN).toISOString(),
      ),
    'the reloaded alert resolved',
  );
  assert.equal(res.type === 'state_change' && res.dedup_key, `auth_burst:${CLIENT}:5m`);
  assert.deepEqual(
    alertsFor(CLIENT)
      .filter((m) => m.type === 'alert')
      .map((m) => m.dedup_key),
    [`new_tool:${CLIENT}:1h`, `auth_burst:${CLIENT}:5m`, `auth_burst:${CLIENT}:5m`],
  );
});
