/**
 * The wall-clock pipeline watchdog (issue 14 item 8) on the tests' real Kafka and ClickHouse: a busy
 * source that goes silent raises `pipeline_silence` within the configured window and resolves when its
 * traffic returns; a source at its normal quiet hour stays quiet; a real ingester stopped while events
 * keep arriving in Kafka raises `pipeline_stall` and its restart resolves it. The watchdog's clock is
 * injected (minutes pass without sleeping); the stored rows are the ingester's own rows (`toEventRow`,
 * with the ingestion time the test needs) or, for the stall, written by a real ingester. Own database
 * (the repo migrations), topics and consumer groups.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createClickHouse, dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { createKafka, createProducer, type AuditProducer, type Kafka } from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry } from '@mcp-audit/service-kit';
import type { AuditEventV1 } from '@mcp-audit/schema';
import { buildIngester, clickHouseEventIdStore, toEventRow, type Ingester } from '@mcp-audit/ingester';
import {
  createPipelineWatchdog,
  DETECTOR_TABLES,
  kafkaGroupOffsets,
  Lifecycle,
  liveSink,
  loadOpenAlerts,
  parseDetectorConfig,
  stableUuid,
} from '@mcp-audit/detector';
import { makeEvent, need, rng, stackEnv, suffix, waitFor } from '../lib/index.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const env = stackEnv();
const sfx = suffix();
const DB = `mcp_audit_watchdog_${sfx}`;
const TOPIC = `e2e.watchdog.events.${sfx}`;
const DLQ = `e2e.watchdog.dlq.${sfx}`;
const ALERTS = `e2e.watchdog.alerts.${sfx}`;
const GROUP = `e2e-watchdog-ingester-${sfx}`;
const SRC = {
  busy: `gw-busy-${sfx}`,
  other: `gw-other-${sfx}`,
  quiet: `gw-quiet-${sfx}`,
  live: `gw-live-${sfx}`,
};
const SCHEMAS = fileURLToPath(new URL('../../../schemas/clickhouse/', import.meta.url));
const log = createLogger('watchdog-e2e', { level: 'silent' });
const r = rng(14);
// Checks every 5 minutes of silence; "normal" = the same hour on each of the last 3 days.
const config = parseDetectorConfig({
  watchdog: {
    windowMs: 5 * MIN,
    periodMs: DAY,
    periods: 3,
    referenceSpanMs: HOUR,
    minExpected: 3,
    stall: { groupId: GROUP, topic: TOPIC, stallMs: MIN },
  },
}).watchdog;

let kafka: Kafka;
let producer: AuditProducer;
let admin: ClickHouse;
let ch: ClickHouse;

/** A stored event of `source` at event time `ts`, ingested at `ingestedAt` (as the ingester writes it). */
function row(source: string, ts: number, ingestedAt = ts + 2_000) {
  const e = makeEvent(r, 0, { sourceId: source, now: ts, spreadMs: 1 }) as unknown as AuditEventV1;
  return toEventRow(e, JSON.stringify(e), { partition: 0, offset: '0', ingestedAtMs: ingestedAt });
}

function lifecycle() {
  return new Lifecycle({ sink: liveSink({ writer: ch, producer, topic: ALERTS }), log, origin: 'live' });
}

async function transitions(detector: string) {
  return ch.query<{
    dedup_key: string;
    alert_id: string;
    to_status: string;
    severity: string;
    changed_at_ms: string;
    actor: string;
  }>(sql`
    SELECT dedup_key, alert_id, to_status, severity, changed_at_ms, actor FROM ${dbIdent(DB)}.alert_transitions
    WHERE detector = ${detector} ORDER BY changed_at_ms, dedup_key, to_status = 'resolved'`);
}

before(async () => {
  kafka = createKafka(
    {
      brokers: (env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
      clientId: 'watchdog-e2e',
      ssl: false,
      replicationFactor: 1,
      connectionTimeoutMs: 3_000,
      requestTimeoutMs: 10_000,
    },
    log,
  );
  const ka = kafka.admin();
  await ka.connect();
  await ka.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: TOPIC, numPartitions: 2, replicationFactor: 1 },
      { topic: DLQ, numPartitions: 1, replicationFactor: 1 },
      { topic: ALERTS, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  await ka.disconnect();
  producer = createProducer(kafka);
  await producer.connect();
  const url = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
  const creds = {
    url,
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
  };
  admin = createClickHouse(creds);
  await runMigrations({ client: admin, dir: SCHEMAS, database: DB });
  ch = createClickHouse({
    ...creds,
    database: DB,
    insertTables: ['events', 'event_ids', 'event_id_conflicts', ...DETECTOR_TABLES],
  });
});

after(async () => {
  await producer?.disconnect();
  const ka = kafka.admin();
  await ka.connect();
  await ka.deleteTopics({ topics: [TOPIC, DLQ, ALERTS] }).catch(() => undefined);
  await ka.disconnect();
  await ch?.close();
  await admin?.command(sql`DROP DATABASE IF EXISTS ${dbIdent(DB)}`);
  await admin?.close();
});

test('silence: a busy source that stops raises within the window, a restart keeps it, traffic back resolves it; a quiet source at its quiet hour never raises', async () => {
  // Two hours back, so none of these rows is "recently stored" for the stall test's real clock.
  const T = Math.floor(Date.now() / MIN) * MIN - 2 * HOUR;
  const rows = [];
  // What is normal: busy and other send 2 events a minute in the two hours around T on each of the last 3
  // days; quiet sends as much for the 12 hours away from T (on average it is busier than busy, but it
  // is quiet at this hour).
  for (let k = 1; k <= 3; k++) {
    for (let m = -60; m < 60; m += 0.5)
      rows.push(row(SRC.busy, T - k * DAY + m * MIN), row(SRC.other, T - k * DAY + m * MIN));
    for (let m = 6 * 60; m < 18 * 60; m += 0.5) rows.push(row(SRC.quiet, T - k * DAY + m * MIN));
  }
  // Today: busy reports until T, then stops; other keeps reporting until T+30m.
  for (let m = -10; m <= 0; m++) rows.push(row(SRC.busy, T + m * MIN, T + m * MIN));
  for (let m = -10; m <= 30; m++) rows.push(row(SRC.other, T + m * MIN, T + m * MIN));
  await ch.insert('events', rows);

  let clock = T;
  const start = async () => {
    const life = lifecycle();
    life.restore(await loadOpenAlerts(ch));
    return createPipelineWatchdog({ reader: ch, lifecycle: life, config, log, now: () => clock });
  };
  let w = await start();
  const at = async (t: number) => ((clock = t), w.check());

  let c = await at(T);
  assert.deepEqual([c.busy, c.silent], [2, []], 'busy and other are busy now; quiet is not');
  c = await at(T + 4 * MIN);
  assert.deepEqual(c.silent, [], 'four minutes without events: still inside the window');
  c = await at(T + 6 * MIN);
  assert.deepEqual(
    [c.silent, c.raised],
    [[SRC.busy], 1],
    'raised at the first check past the 5-minute window',
  );
  let tr = await transitions('pipeline_silence');
  assert.deepEqual(
    tr.map((t) => [t.dedup_key, t.to_status, t.severity, Number(t.changed_at_ms)]),
    [[`pipeline_silence:${SRC.busy}:5m`, 'open', 'high', T + 6 * MIN]],
  );

  // Restart: the open alert is reloaded, not raised again, while the source stays silent.
  w = await start();
  c = await at(T + 7 * MIN);
  assert.deepEqual([c.silent, c.raised], [[SRC.busy], 0]);
  // Traffic back: resolved at the next check.
  await ch.insert('events', [row(SRC.busy, T + 8 * MIN, T + 8 * MIN)]);
  c = await at(T + 9 * MIN);
  assert.deepEqual([c.silent, c.resolved], [[], 1]);
  tr = await transitions('pipeline_silence');
  assert.deepEqual(
    tr.map((t) => [t.to_status, Number(t.changed_at_ms)]),
    [
      ['open', T + 6 * MIN],
      ['resolved', T + 9 * MIN],
    ],
  );

  // Everything stops after T+30m: both busy sources raise, as critical (the pipeline, not a gateway);
  // busy's is a new alert (new id) after the first one resolved.
  c = await at(T + 36 * MIN);
  assert.deepEqual([c.silent, c.raised], [[SRC.busy, SRC.other].sort(), 2]);
  tr = await transitions('pipeline_silence');
  const opened = tr.filter((t) => t.to_status === 'open' && Number(t.changed_at_ms) === T + 36 * MIN);
  assert.deepEqual(
    opened.map((t) => t.severity),
    ['critical', 'critical'],
  );
  assert.ok(!tr.slice(0, 2).some((t) => opened.some((o) => o.alert_id === t.alert_id)));
  assert.ok(!tr.some((t) => t.dedup_key.includes(SRC.quiet)), 'quiet at its quiet hour: never raised');
  const busyKey = `pipeline_silence:${SRC.busy}:5m`;
  const episode = opened.find((t) => t.dedup_key === busyKey)!;
  assert.equal(episode.alert_id, stableUuid(`alert|${busyKey}|${T + 8 * MIN}`), 'the id names the episode');

  // A human resolves it (as the analyst API writes it) while busy is still silent: final for this
  // silence, across a restart; busy's next silence is a new alert.
  await ch.insert('alert_transitions', [
    {
      transition_id: stableUuid(`human|${episode.alert_id}`),
      alert_id: episode.alert_id,
      dedup_key: busyKey,
      detector: 'pipeline_silence',
      client_id: SRC.busy,
      severity: 'critical',
      from_status: 'open',
      to_status: 'resolved',
      changed_at: Math.floor((T + 36 * MIN) / 1000),
      changed_at_ms: T + 36 * MIN + 30_000,
      actor: 'analyst:tester',
      note: 'known: gateway decommissioned for the night',
      written_at: Math.floor(Date.now() / 1000),
    },
  ]);
  w = await start();
  c = await at(T + 37 * MIN);
  assert.deepEqual(
    [c.silent.includes(SRC.busy), c.raised],
    [true, 0],
    'not raised again for the same silence',
  );
  await ch.insert('events', [row(SRC.busy, T + 38 * MIN, T + 38 * MIN)]);
  c = await at(T + 39 * MIN);
  assert.ok(!c.silent.includes(SRC.busy));
  c = await at(T + 44 * MIN);
  assert.deepEqual([c.silent.includes(SRC.busy), c.raised], [true, 1], 'a new silence, a new alert');
  const again = (await transitions('pipeline_silence')).filter((t) => t.dedup_key === busyKey).at(-1)!;
  assert.equal(again.alert_id, stableUuid(`alert|${busyKey}|${T + 38 * MIN}`));

  // Every state change of the detector went out on the alerts topic too (the notifier's input).
  const ka = kafka.admin();
  await ka.connect();
  const [p] = await ka.fetchTopicOffsets(ALERTS);
  await ka.disconnect();
  const mine = (await transitions('pipeline_silence')).filter((t) => t.actor === 'detector');
  assert.equal(Number(p!.high), mine.length);
});

test('stall: a real ingester stopped while events keep arriving raises pipeline_stall; its restart resolves it', async () => {
  const start = () => {
    const ing: Ingester = buildIngester(
      {
        groupId: GROUP,
        eventsTopic: TOPIC,
        dlqTopic: DLQ,
        batchRows: 1_000,
        flushMs: 200,
        maxBufferedRows: 10_000,
        fromBeginning: true,
      },
      {
        kafka,
        insertEvents: (rows) => ch.insert('events', rows),
        insertEventIds: (rows) => ch.insert('event_ids', rows),
        insertConflicts: (rows) => ch.insert('event_id_conflicts', rows),
        eventIds: clickHouseEventIdStore(ch),
        isRetryableInsertError: () => false,
        redactor: createEventRedactor({ fingerprintKey: 'watchdog-e2e-fingerprint-key' }),
        log,
        registry: createRegistry('ingester-watchdog-e2e', { defaultMetrics: false }),
      },
    );
    return ing;
  };
  const offsets = kafkaGroupOffsets(kafka, GROUP, TOPIC);
  const send = (n: number) =>
    producer.send(
      TOPIC,
      Array.from({ length: n }, (_, i) => {
        const e = makeEvent(r, i, { sourceId: SRC.live, spreadMs: 60_000 });
        return { key: String(i % 7), value: JSON.stringify(e) };
      }),
    );
  const stored = async () =>
    Number(
      (
        await ch.query<{ n: string }>(
          sql`SELECT count() AS n FROM ${dbIdent(DB)}.events WHERE source_id = ${SRC.live}`,
        )
      )[0]!.n,
    );

  let skew = 0;
  const life = lifecycle();
  life.restore(await loadOpenAlerts(ch));
  const w = createPipelineWatchdog({
    reader: ch,
    lifecycle: life,
    // No source is "busy" here: only the stall is under test (the first test's sources share the DB).
    config: { ...config, minExpected: 1e9 },
    offsets,
    group: { groupId: GROUP, topic: TOPIC },
    log,
    now: () => Date.now() + skew,
  });

  let ingester = start();
  await ingester.start();
  await send(20);
  await waitFor(async () => (await stored()) >= 20, { what: '20 events stored', timeoutMs: 60_000 });
  await waitFor(async () => (await offsets()).lag === 0, { what: 'offsets committed', timeoutMs: 60_000 });
  let c = await w.check();
  assert.deepEqual([c.lag, c.stalled], [0, false]);

  // The ingester stops; events keep arriving.
  await ingester.stop();
  await send(30);
  c = await w.check();
  assert.deepEqual([c.lag, c.stalled], [30, false], 'a backlog alone is not a stall yet');
  skew = 30_000;
  c = await w.check();
  assert.deepEqual([c.lag, c.stalled], [30, false], 'half of stallMs');
  skew = 61_000;
  c = await w.check();
  assert.deepEqual([c.lag, c.stalled, c.raised], [30, true, 1], 'no progress for stallMs and nothing stored');
  assert.equal(await stored(), 20);
  c = await w.check();
  assert.deepEqual([c.stalled, c.raised], [true, 0], 'one open alert, not one per check');

  // The ingester comes back, catches up: the next check sees the committed offsets move.
  ingester = start();
  await ingester.start();
  await waitFor(async () => (await stored()) >= 50, { what: 'the backlog stored', timeoutMs: 60_000 });
  await waitFor(async () => (await offsets()).lag === 0, { what: 'offsets committed', timeoutMs: 60_000 });
  c = await w.check();
  assert.deepEqual([c.lag, c.stalled, c.resolved], [0, false, 1]);
  await ingester.stop();

  const tr = await transitions('pipeline_stall');
  assert.deepEqual(
    tr.map((t) => [t.dedup_key, t.to_status, t.severity]),
    [
      [`pipeline_stall:${GROUP}:1m`, 'open', 'critical'],
      [`pipeline_stall:${GROUP}:1m`, 'resolved', 'critical'],
    ],
  );
});
