import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClickHouse, type ClickHouse } from '@mcp-audit/clickhouse';
import { clickHouseAccessLog } from '../src/access-log.js';
import { adminClient, bearer, eventRow, freshDatabase, KEYS, testApi } from './helpers.js';

/** Against the real local ClickHouse (18.16 here), on a database of its own. */
let db: { name: string; drop: () => Promise<void> };
let reader: ClickHouse;
let writer: ClickHouse;
const NOW = Date.now();
const alertId = randomUUID();
const tricky = `it's a "quote" \\ back\\slash ; DROP -- ｃｌｉｅｎｔ`;
let sessionEvents: string[] = [];

before(async () => {
  db = await freshDatabase('api');
  reader = adminClient(db.name);
  writer = adminClient(db.name, ['access_log', 'alert_transitions', 'events', 'alerts']);
  const rows = [];
  for (let i = 0; i < 30; i++)
    rows.push(
      eventRow({
        tsMs: NOW - 3_600_000 + i * 1000,
        session_id: 'sess-1',
        tool_name: i % 2 ? 'read_file' : 'send_mail',
      }),
    );
  rows.push(eventRow({ tsMs: NOW - 1000, client_id: tricky, tool_name: 'x', session_id: 'other' }));
  rows.push(
    eventRow({ tsMs: NOW - 2000, client_id: 'it\'s a "quote" \\ back', tool_name: 'y', session_id: 'other' }),
  );
  // a duplicate copy of the first event (a redelivery): FINAL must show it once
  rows.push({ ...rows[0]!, ver: rows[0]!.ver - 10 });
  sessionEvents = rows.slice(0, 30).map((r) => r.event_id);
  await writer.insert('events', rows);
  await writer.insert('alerts', [
    {
      alert_id: alertId,
      dedup_key: 'volume|client-a|3600000',
      detector: 'volume',
      client_id: 'client-a',
      title: 'Volume spike',
      summary: 's',
      severity: 'high',
      window_start_ms: NOW - 3_600_000,
      window_end_ms: NOW,
      observed: 30,
      expected_low: 0,
      expected_high: 5,
      score: 9,
      baseline_version: 'v1',
      contributor_tools: '[{"value":"read_file","count":15}]',
      contributor_addresses: '[]',
      contributor_sessions: '[]',
      sample_event_ids: sessionEvents.slice(0, 3),
      created_at: new Date(NOW).toISOString().slice(0, 19).replace('T', ' '),
      created_at_ms: NOW,
      written_at: new Date(NOW).toISOString().slice(0, 19).replace('T', ' '),
      origin: 'live',
      message: '{}',
    },
  ]);
  await writer.insert('alert_transitions', [
    {
      transition_id: randomUUID(),
      alert_id: alertId,
      dedup_key: 'volume|client-a|3600000',
      detector: 'volume',
      client_id: 'client-a',
      severity: 'high',
      from_status: '',
      to_status: 'open',
      changed_at: new Date(NOW).toISOString().slice(0, 19).replace('T', ' '),
      changed_at_ms: NOW,
      actor: 'detector',
      note: 'opened',
      written_at: new Date(NOW).toISOString().slice(0, 19).replace('T', ' '),
    },
  ]);
});

after(async () => {
  await reader?.close();
  await writer?.close();
  await db?.drop();
});

const api = () => testApi({ reader, writer, accessLog: clickHouseAccessLog(writer) });

test('search: one row per event, keyset pages, filters, free text', async () => {
  const { app } = await api();
  const seen = new Set<string>();
  let cursor: string | null = null as string | null;
  let pages = 0;
  do {
    const r: {
      statusCode: number;
      body: string;
      json: () => { items: Array<{ event_id: string }>; next_cursor: string | null };
    } = await app.inject({
      url: `/api/v1/events?client=client-a&limit=7${cursor ? `&cursor=${cursor}` : ''}`,
      headers: bearer(KEYS.analyst),
    });
    assert.equal(r.statusCode, 200, r.body);
    const b = r.json();
    for (const e of b.items) {
      assert.ok(!seen.has(e.event_id), 'no event twice');
      seen.add(e.event_id);
    }
    cursor = b.next_cursor;
    pages++;
  } while (cursor);
  assert.equal(seen.size, 30);
  assert.equal(pages, 5);
  const q = await app.inject({
    url: '/api/v1/events?q=SEND_MAIL&tool=send_mail&label=env%3Dprod',
    headers: bearer(KEYS.analyst),
  });
  assert.equal(q.json().items.length, 15);
  const facets = await app.inject({ url: '/api/v1/events/facets', headers: bearer(KEYS.analyst) });
  assert.equal(facets.statusCode, 200, facets.body);
  assert.equal(facets.json().facets.tool_name[0].count, 15);
  await app.close();
});

test('a value with quotes and backslashes matches exactly the row that has it', async () => {
  const { app } = await api();
  const r = await app.inject({
    url: `/api/v1/events?client=${encodeURIComponent(tricky)}`,
    headers: bearer(KEYS.analyst),
  });
  assert.equal(r.statusCode, 200, r.body);
  const items = r.json().items;
  assert.equal(items.length, 1);
  assert.equal(items[0].client_id, tricky);
  await app.close();
});

test('event detail with neighbours, session timeline, client page, overview, export', async () => {
  const { app } = await api();
  const id = sessionEvents[10]!;
  const ev = await app.inject({ url: `/api/v1/events/${id}`, headers: bearer(KEYS.analyst) });
  assert.equal(ev.statusCode, 200, ev.body);
  assert.equal(ev.json().event.event_id, id);
  assert.equal(ev.json().neighbours.before.length, 10);
  assert.equal(ev.json().neighbours.after.length, 10);
  const s = await app.inject({ url: '/api/v1/sessions/sess-1?limit=100', headers: bearer(KEYS.analyst) });
  assert.equal(s.statusCode, 200, s.body);
  assert.equal(s.json().items.length, 30);
  assert.equal(s.json().items[0].event_id, sessionEvents[0]);
  assert.equal(s.json().identities[0].events, 30);
  const c = await app.inject({ url: '/api/v1/clients/client-a', headers: bearer(KEYS.analyst) });
  assert.equal(c.statusCode, 200, c.body);
  assert.equal(c.json().hour_of_week.length, 168);
  assert.equal(c.json().tools.length, 2);
  assert.equal(c.json().alerts[0].alert_id, alertId);
  // 55 sources whose last event is two hours old: silent; the answer lists 50, oldest first, and counts all
  await writer.insert(
    'events',
    Array.from({ length: 55 }, (_, i) =>
      eventRow({
        tsMs: NOW - 7_200_000 - i * 1000,
        source_id: `silent-${i}`,
        client_id: 'quiet',
        session_id: 'q',
      }),
    ),
  );
  const o = await app.inject({ url: '/api/v1/overview', headers: bearer(KEYS.analyst) });
  assert.equal(o.statusCode, 200, o.body);
  assert.equal(o.json().open_alerts_by_severity.high, 1);
  const silent = o.json().ingestion as {
    silent_sources: Array<{ source_id: string }>;
    silent_sources_total: number;
  };
  assert.equal(silent.silent_sources_total, 55);
  assert.deepEqual(
    silent.silent_sources.map((x) => x.source_id),
    Array.from({ length: 50 }, (_, i) => `silent-${54 - i}`),
  );
  // the outcome mix counts each event once (the redelivered copy too): 33 + 55 events
  assert.equal(
    (o.json().outcomes as Array<{ count: number }>).reduce((n, x) => n + x.count, 0),
    33 + 55 - 1,
  );
  const x = await app.inject({
    url: '/api/v1/events/export?format=csv&client=client-a',
    headers: bearer(KEYS.analyst),
  });
  assert.equal(x.statusCode, 200, x.body);
  assert.equal(x.body.trim().split('\r\n').length, 31);
  assert.equal(x.headers['x-row-cap-reached'], 'false');
  await app.close();
});

test('triage: transitions with the actor, messages in the detector shape, 409 on a second resolve, access log readable', async () => {
  const { app, producer } = await api();
  const ack = await app.inject({
    method: 'POST',
    url: `/api/v1/alerts/${alertId}/acknowledge`,
    headers: bearer(KEYS.analyst),
    payload: {},
  });
  assert.equal(ack.statusCode, 200, ack.body);
  assert.equal(ack.json().alert.status, 'acknowledged');
  const asg = await app.inject({
    method: 'POST',
    url: `/api/v1/alerts/${alertId}/assign`,
    headers: bearer(KEYS.analyst),
    payload: { assignee: 'bob' },
  });
  assert.equal(asg.json().alert.assignee, 'bob');
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/alerts/${alertId}/resolve`,
    headers: bearer(KEYS.analyst),
    payload: { reason: 'false_positive', note: 'noise' },
  });
  assert.equal(res.statusCode, 200, res.body);
  const again = await app.inject({
    method: 'POST',
    url: `/api/v1/alerts/${alertId}/resolve`,
    headers: bearer(KEYS.analyst),
    payload: { reason: 'benign' },
  });
  assert.equal(again.statusCode, 409);
  const detail = await app.inject({ url: `/api/v1/alerts/${alertId}`, headers: bearer(KEYS.analyst) });
  const d = detail.json();
  assert.equal(d.alert.status, 'resolved');
  assert.equal(d.alert.resolution, 'false_positive');
  assert.equal(d.alert.assignee, 'bob');
  assert.deepEqual(
    d.transitions.map((t: { action: string }) => t.action),
    ['open', 'acknowledge', 'assign', 'resolve'],
  );
  assert.equal(d.transitions[3].actor, 'k-analyst');
  assert.equal(d.samples.length, 3);
  const msgs = producer.sent.flatMap((s) => s.messages.map((m) => JSON.parse(String(m.value))));
  assert.deepEqual(
    msgs.map((m) => [m.action, m.status]),
    [
      ['acknowledge', 'acknowledged'],
      ['assign', 'acknowledged'],
      ['resolve', 'resolved'],
    ],
  );
  const list = await app.inject({ url: '/api/v1/alerts?status=resolved', headers: bearer(KEYS.analyst) });
  assert.equal(list.json().items.length, 1);
  const open = await app.inject({ url: '/api/v1/alerts?status=open', headers: bearer(KEYS.analyst) });
  assert.equal(open.json().items.length, 0);
  const log = await app.inject({ url: '/api/v1/access-log?limit=1000', headers: bearer(KEYS.admin) });
  assert.equal(log.statusCode, 200, log.body);
  assert.ok(
    log
      .json()
      .items.some(
        (r: { route: string; key_id: string }) =>
          r.route === '/api/v1/alerts/:alert_id/resolve' && r.key_id === 'k-analyst',
      ),
  );
  await app.close();
});

test('the api_reader profile limit surfaces as 422 AUDIT_ERR_QUERY_LIMIT naming the limit', async () => {
  const password = process.env.MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD;
  if (!password) return; // needs the local stack's mcp_api_reader
  const real = createClickHouse({
    url: process.env.MCP_AUDIT_CLICKHOUSE_URL || 'http://127.0.0.1:8123',
    username: 'mcp_api_reader',
    password,
  });
  const { sql } = await import('@mcp-audit/clickhouse');
  const limited = {
    ...real,
    query: () => real.query(sql`SELECT count() FROM system.numbers LIMIT 300000000`),
  } as ClickHouse;
  const { app } = await testApi({ reader: limited });
  const r = await app.inject({ url: '/api/v1/events', headers: bearer(KEYS.analyst) });
  assert.equal(r.statusCode, 422, r.body);
  assert.equal(r.json().error.code, 'AUDIT_ERR_QUERY_LIMIT');
  assert.match(r.json().error.message, /max_rows_to_read/);
  await app.close();
  await real.close();
});

test('a ClickHouse that refuses the access-log insert: 503, nothing returned', async () => {
  const apiPassword = process.env.MCP_AUDIT_CLICKHOUSE_API_PASSWORD;
  // mcp_api may only use mcp_audit, so its insert into this test database is refused by ClickHouse.
  const refusing = apiPassword
    ? createClickHouse({
        url: process.env.MCP_AUDIT_CLICKHOUSE_URL || 'http://127.0.0.1:8123',
        username: 'mcp_api',
        password: apiPassword,
        database: db.name,
        insertTables: ['access_log'],
      })
    : createClickHouse({
        url: 'http://127.0.0.1:1',
        username: 'x',
        password: 'y',
        database: db.name,
        insertTables: ['access_log'],
      });
  const { app } = await testApi({ reader, accessLog: clickHouseAccessLog(refusing) });
  const r = await app.inject({ url: '/api/v1/events?client=client-a', headers: bearer(KEYS.analyst) });
  assert.equal(r.statusCode, 503);
  assert.equal(r.json().error.code, 'AUDIT_ERR_AUDIT_LOG');
  assert.ok(!r.body.includes('client-a'));
  await app.close();
  await refusing.close();
});
