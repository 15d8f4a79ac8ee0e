/**
 * Incidents across a detector restart, on the real ClickHouse (own database, the repo migrations) and
 * Kafka (own alerts topic): the first process opens an incident for a spray, the second reloads it
 * from incident_transitions and puts the session misuse that follows into the same incident, then
 * resolves it when its last alert ends. Alert rows and messages carry the incident id.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { createProducer, type AuditProducer, type Kafka } from '@mcp-audit/kafka';
import { alertMessageSchema } from '@mcp-audit/schema';
import { Lifecycle, liveSink, loadOpenAlerts } from '../src/alert.lifecycle.js';
import { DETECTOR_TABLES } from '../src/app.js';
import { loadIncidents } from '../src/incident.grouper.js';
import type { Finding } from '../src/model.js';
import { chClient, SCHEMAS_DIR, silentLog, suffix, testKafka } from './periodic.fixtures.js';

const MIN = 60_000;
const sfx = suffix();
const DB = `mcp_audit_incident_${sfx}`;
const ALERTS = `test.detector.incidents.${sfx}`;
const D = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000;
const IP = '2001:db8::a1';
const log = silentLog();

let kafka: Kafka;
let producer: AuditProducer;
let admin: ClickHouse;
let ch: ClickHouse;

const finding = (o: Partial<Finding> & Pick<Finding, 'detector' | 'clientId' | 'dedupKey'>): Finding => ({
  severity: 'medium',
  title: `${o.detector} ${o.clientId}`,
  summary: 'test',
  windowStart: D,
  windowEnd: D + 15 * MIN,
  observed: 1,
  expected: { low: 0, high: 1 },
  score: 1,
  baselineVersion: '',
  contributors: { tools: [], addresses: [], sessions: [] },
  sampleEventIds: [],
  detectedAt: D + 15 * MIN,
  ...o,
});

async function startDetector(): Promise<Lifecycle> {
  const lifecycle = new Lifecycle({
    sink: liveSink({ writer: ch, producer, topic: ALERTS }),
    log,
    origin: 'live',
  });
  lifecycle.restore(await loadOpenAlerts(ch));
  lifecycle.incidents.restore(await loadIncidents(ch));
  return lifecycle;
}

before(async () => {
  kafka = testKafka('detector-incident-test', log);
  const ka = kafka.admin();
  await ka.connect();
  await ka.createTopics({ waitForLeaders: true, topics: [{ topic: ALERTS, numPartitions: 1 }] });
  await ka.disconnect();
  producer = createProducer(kafka);
  await producer.connect();
  admin = chClient('ADMIN');
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: DB });
  ch = chClient('ADMIN', { database: DB, insertTables: DETECTOR_TABLES });
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

test('an incident survives a detector restart: the next related alert joins it, the last end resolves it', async () => {
  const first = await startDetector();
  await first.raise(
    finding({
      detector: 'auth_spray',
      clientId: IP,
      dedupKey: `auth_spray:${IP}:15m`,
      severity: 'high',
      contributors: {
        tools: [],
        addresses: [{ value: IP, count: 13 }],
        sessions: [{ value: 's-spray-1', count: 1 }],
      },
    }),
  );
  const [spray] = first.openAlerts();
  const incidentId = first.incidents.incidentOf(spray!.alertId)!;
  assert.ok(incidentId);

  // Restart: a new process, state from ClickHouse only.
  const second = await startDetector();
  assert.equal(second.incidents.incidentOf(spray!.alertId), incidentId, 'reloaded membership');
  await second.raise(
    finding({
      detector: 'session_misuse',
      clientId: 'client-1',
      dedupKey: 'session_misuse:s-spray-1:15m',
      windowStart: D + 15 * MIN,
      windowEnd: D + 30 * MIN,
      detectedAt: D + 30 * MIN,
      contributors: {
        tools: [],
        addresses: [{ value: IP, count: 1 }],
        sessions: [{ value: 's-spray-1', count: 2 }],
      },
    }),
  );
  await second.resolve(`auth_spray:${IP}:15m`, D + 45 * MIN, 'back in band');

  // Another restart, then the last alert ends.
  const third = await startDetector();
  await third.resolve('session_misuse:s-spray-1:15m', D + 60 * MIN, 'back in band');

  const db = dbIdent(DB);
  const alerts = await ch.query<{ detector: string; incident_id: string; message: string }>(
    sql`SELECT detector, incident_id, message FROM ${db}.alerts ORDER BY created_at_ms`,
  );
  assert.deepEqual(
    alerts.map((a) => [a.detector, a.incident_id]),
    [
      ['auth_spray', incidentId],
      ['session_misuse', incidentId],
    ],
  );
  for (const a of alerts) {
    const m = alertMessageSchema.parse(JSON.parse(a.message));
    assert.equal(m.incident_id, incidentId);
  }
  const timeline = await ch.query<{
    seq: string;
    kind: string;
    status: string;
    open_alerts: string;
    severity: string;
  }>(
    sql`SELECT seq, kind, status, open_alerts, severity FROM ${db}.incident_transitions
        WHERE incident_id = ${incidentId} ORDER BY seq`,
  );
  assert.deepEqual(
    timeline.map((t) => [Number(t.seq), t.kind, t.status, Number(t.open_alerts), t.severity]),
    [
      [1, 'opened', 'open', 1, 'high'],
      [2, 'joined', 'open', 2, 'high'],
      [3, 'alert_resolved', 'open', 1, 'high'],
      [4, 'resolved', 'resolved', 0, 'high'],
    ],
  );
  const incidents = await ch.query<{ n: string }>(sql`SELECT count() AS n FROM ${db}.incidents`);
  assert.equal(Number(incidents[0]!.n), 1);
  // Hours after it resolved, a related alert opens a new incident.
  const fourth = await startDetector();
  const later = fourth.incidents.join({
    alertId: '00000000-0000-8000-8000-000000000001',
    detector: 'auth_spray',
    clientId: IP,
    title: 'again',
    severity: 'medium',
    windowStart: D + 10 * 60 * MIN,
    windowEnd: D + 10 * 60 * MIN + 15 * MIN,
    detectedAt: D + 10 * 60 * MIN + 15 * MIN,
    contributors: { addresses: [{ value: IP, count: 1 }], sessions: [] },
  });
  assert.notEqual(later.id, incidentId);
});
