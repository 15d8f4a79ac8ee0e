/**
 * GET /api/v1/incidents and /api/v1/incidents/:id on a real ClickHouse database of the test's own,
 * holding what the detector writes for two incidents (incidents, incident_transitions, alerts rows in
 * the 011 layout): filters, time range, keyset pages, the detail with its alerts and timeline, the
 * analyst scope, and one access_log row per read.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { clickHouseAccessLog } from '../src/access-log.js';
import { adminClient, bearer, freshDatabase, KEYS, testApi } from './helpers.js';

let db: { name: string; drop: () => Promise<void> };
let reader: ClickHouse;
let writer: ClickHouse;
const NOW = Math.floor(Date.now() / 1000) * 1000;
const MIN = 60_000;
const chTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

interface Seed {
  id: string;
  title: string;
  openedMs: number;
  alerts: Array<{ id: string; detector: string; client: string; severity: string; title: string }>;
  resolved: boolean;
}
const SPRAY: Seed = {
  id: randomUUID(),
  title: 'Authentication spraying from 2001:db8::a1: 13 clients',
  openedMs: NOW - 90 * MIN,
  alerts: [
    { id: randomUUID(), detector: 'auth_spray', client: '2001:db8::a1', severity: 'high', title: 'spray' },
    {
      id: randomUUID(),
      detector: 'session_misuse',
      client: 'client-1',
      severity: 'medium',
      title: 'misuse 1',
    },
    {
      id: randomUUID(),
      detector: 'session_misuse',
      client: 'client-2',
      severity: 'medium',
      title: 'misuse 2',
    },
  ],
  resolved: true,
};
const VOLUME: Seed = {
  id: randomUUID(),
  title: 'Unusual call volume for client-9',
  openedMs: NOW - 30 * MIN,
  alerts: [{ id: randomUUID(), detector: 'volume', client: 'client-9', severity: 'low', title: 'volume' }],
  resolved: false,
};
const EXTRA = Array.from({ length: 5 }, (_, i) => ({
  id: randomUUID(),
  title: `off hours ${i}`,
  openedMs: NOW - (40 + i) * MIN,
  alerts: [
    { id: randomUUID(), detector: 'off_hours', client: `client-x${i}`, severity: 'low', title: `oh ${i}` },
  ],
  resolved: false,
}));

function rowsOf(s: Seed) {
  const incident = {
    incident_id: s.id,
    title: s.alerts[0]!.title,
    first_alert_id: s.alerts[0]!.id,
    opened_at: chTime(s.openedMs),
    opened_at_ms: s.openedMs,
    origin: 'live',
    written_at: chTime(NOW),
  };
  const transitions: Record<string, unknown>[] = [];
  let seq = 0;
  const push = (
    kind: string,
    a: Seed['alerts'][number],
    at: number,
    status: string,
    open: number,
    n: number,
  ) =>
    transitions.push({
      transition_id: randomUUID(),
      incident_id: s.id,
      seq: ++seq,
      kind,
      alert_id: a.id,
      detector: a.detector,
      client_id: a.client,
      alert_severity: a.severity,
      alert_title: a.title,
      severity: s.alerts.some((x) => x.severity === 'high') ? 'high' : a.severity,
      status,
      alerts: n,
      open_alerts: open,
      title: s.title,
      keys: [`client:${a.client}`],
      window_start_ms: s.openedMs - 15 * MIN,
      window_end_ms: s.openedMs + seq * MIN,
      at: chTime(s.openedMs + seq * MIN),
      at_ms: s.openedMs + seq * MIN,
      note: '',
      origin: 'live',
      written_at: chTime(NOW),
    });
  s.alerts.forEach((a, i) => push(i === 0 ? 'opened' : 'joined', a, 0, 'open', i + 1, i + 1));
  if (s.resolved)
    s.alerts.forEach((a, i) =>
      push(
        i === s.alerts.length - 1 ? 'resolved' : 'alert_resolved',
        a,
        0,
        i === s.alerts.length - 1 ? 'resolved' : 'open',
        s.alerts.length - 1 - i,
        s.alerts.length,
      ),
    );
  const alerts = s.alerts.map((a, i) => ({
    alert_id: a.id,
    dedup_key: `${a.detector}:${a.client}:15m`,
    detector: a.detector,
    client_id: a.client,
    title: a.title,
    summary: 's',
    severity: a.severity,
    window_start_ms: s.openedMs - 15 * MIN,
    window_end_ms: s.openedMs,
    observed: 1,
    expected_low: 0,
    expected_high: 1,
    score: 1,
    baseline_version: '',
    contributor_tools: '[]',
    contributor_addresses: '[]',
    contributor_sessions: '[]',
    sample_event_ids: [],
    created_at: chTime(s.openedMs + i * MIN),
    created_at_ms: s.openedMs + i * MIN,
    written_at: chTime(NOW),
    origin: 'live',
    message: '{}',
    incident_id: s.id,
  }));
  return { incident, transitions, alerts };
}

before(async () => {
  db = await freshDatabase('incidents');
  reader = adminClient(db.name);
  writer = adminClient(db.name, ['access_log', 'incidents', 'incident_transitions', 'alerts']);
  for (const s of [SPRAY, VOLUME, ...EXTRA]) {
    const r = rowsOf(s);
    await writer.insert('incidents', [r.incident]);
    // A retried flush writes the timeline twice: still one row per transition to readers.
    await writer.insert('incident_transitions', [...r.transitions, ...r.transitions]);
    await writer.insert('alerts', r.alerts);
  }
});

after(async () => {
  await reader?.close();
  await writer?.close();
  await db?.drop();
});

const api = () => testApi({ reader, writer, accessLog: clickHouseAccessLog(writer) });
type Page = {
  items: Array<{
    incident_id: string;
    status: string;
    severity: string;
    alerts: number;
    detectors: string[];
  }>;
  next_cursor: string | null;
};

test('incidents: list newest first with state, filters and keyset pages', async () => {
  const { app } = await api();
  const all = await app.inject({ url: '/api/v1/incidents?limit=100', headers: bearer(KEYS.analyst) });
  assert.equal(all.statusCode, 200, all.body);
  const b = all.json() as Page;
  assert.deepEqual(
    b.items.map((i) => i.incident_id),
    [VOLUME, ...EXTRA, SPRAY].map((s) => s.id),
  );
  const spray = b.items.find((i) => i.incident_id === SPRAY.id)!;
  assert.deepEqual([spray.status, spray.severity, spray.alerts], ['resolved', 'high', 3]);
  assert.deepEqual(spray.detectors, ['auth_spray', 'session_misuse']);

  const q = async (qs: string) => {
    const r = await app.inject({ url: `/api/v1/incidents?${qs}`, headers: bearer(KEYS.analyst) });
    assert.equal(r.statusCode, 200, r.body);
    return (r.json() as Page).items.map((i) => i.incident_id);
  };
  assert.deepEqual(await q('status=resolved'), [SPRAY.id]);
  assert.deepEqual(await q('status=open&severity=low&detector=volume'), [VOLUME.id]);
  assert.deepEqual(await q('client=client-2'), [SPRAY.id], 'any member alert’s client');
  assert.deepEqual(await q(`from=${new Date(NOW - 35 * MIN).toISOString()}`), [VOLUME.id]);

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await app.inject({
      url: `/api/v1/incidents?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      headers: bearer(KEYS.analyst),
    });
    const p = r.json() as Page;
    seen.push(...p.items.map((i) => i.incident_id));
    cursor = p.next_cursor;
  } while (cursor);
  assert.deepEqual(
    seen,
    b.items.map((i) => i.incident_id),
    'pages cover the list once, in order',
  );

  const bad = await app.inject({ url: '/api/v1/incidents?status=closed', headers: bearer(KEYS.analyst) });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.body, /status/);
});

test('incident detail: its alerts and timeline; 404 for an unknown id; analyst scope; access log', async () => {
  const { app } = await api();
  const r = await app.inject({ url: `/api/v1/incidents/${SPRAY.id}`, headers: bearer(KEYS.analyst) });
  assert.equal(r.statusCode, 200, r.body);
  const d = r.json() as {
    incident: { status: string; alerts: number };
    alerts: Array<{ alert_id: string; detector: string }>;
    timeline: Array<{ seq: number; kind: string; alert_id: string; open_alerts: number }>;
  };
  assert.equal(d.incident.status, 'resolved');
  assert.deepEqual(d.alerts.map((a) => a.alert_id).sort(), SPRAY.alerts.map((a) => a.id).sort());
  assert.deepEqual(
    d.timeline.map((t) => t.kind),
    ['opened', 'joined', 'joined', 'alert_resolved', 'alert_resolved', 'resolved'],
  );
  assert.deepEqual(
    d.timeline.map((t) => t.seq),
    [1, 2, 3, 4, 5, 6],
  );

  const missing = await app.inject({
    url: `/api/v1/incidents/${randomUUID()}`,
    headers: bearer(KEYS.analyst),
  });
  assert.equal(missing.statusCode, 404);
  const notUuid = await app.inject({ url: '/api/v1/incidents/nope', headers: bearer(KEYS.analyst) });
  assert.equal(notUuid.statusCode, 400);
  const compliance = await app.inject({
    url: `/api/v1/incidents/${SPRAY.id}`,
    headers: bearer(KEYS.compliance),
  });
  assert.equal(compliance.statusCode, 403);

  const log = await reader.query<{ route: string; status: number; rows: number; key_id: string }>(sql`
    SELECT route, status, rows, key_id FROM ${dbIdent(db.name)}.access_log
    WHERE route = '/api/v1/incidents/:incident_id' AND status = 200`);
  assert.ok(log.length >= 1, 'the read is in the access log');
  assert.equal(Number(log[0]!.rows), 1 + 3 + 6);
});
