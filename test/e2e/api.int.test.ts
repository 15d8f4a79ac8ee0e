import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createClickHouse, dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { createKafka, createProducer, type AuditProducer } from '@mcp-audit/kafka';
import { createLogger, generateKey, hashKey } from '@mcp-audit/service-kit';
import { buildApi, clickHouseAccessLog, defaultApiConfig, staticKeyRing } from '@mcp-audit/api';
import { brokers, env, kafka, need, suffix, waitFor } from '../lib/index.js';

/**
 * The analyst API end to end through a real socket: events stored in a ClickHouse database of the
 * test's own, searched over HTTP with a console session (cookie + CSRF); an alert acknowledged and
 * resolved through the API, and both state changes observed on a Kafka alerts topic of the test's own
 * in the detector's shape.
 */
const SCHEMAS = fileURLToPath(new URL('../../../schemas/clickhouse/', import.meta.url));
const log = createLogger('e2e-api', { level: 'silent' });
const key = generateKey('mcpa');
const database = `mcp_audit_e2e_api_${suffix()}`;
const alertsTopic = `e2e.api.alerts.${suffix()}`;
const alertId = randomUUID();
const dedupKey = `volume|e2e-client|${suffix()}`;
let admin: ClickHouse;
let ch: ClickHouse;
let producer: AuditProducer;
let app: FastifyInstance;
let base: string;
const k = kafka();
const kadmin = k.admin();

const chDate = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

before(async () => {
  const url = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
  const creds = {
    url,
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
  };
  admin = createClickHouse(creds);
  await runMigrations({ client: admin, dir: SCHEMAS, database });
  // NOTE: mcp_api_reader/mcp_api may only use mcp_audit, so the test's own database is read and
  // written as admin here; the users' limits are covered by services/api/test/api.int.test.ts.
  ch = createClickHouse({
    ...creds,
    database,
    insertTables: ['events', 'alerts', 'alert_transitions', 'access_log'],
  });
  await kadmin.connect();
  await kadmin.createTopics({
    waitForLeaders: true,
    topics: [{ topic: alertsTopic, numPartitions: 1, replicationFactor: 1 }],
  });
  producer = createProducer(
    createKafka(
      {
        brokers,
        clientId: 'e2e-api',
        ssl: false,
        replicationFactor: 1,
        connectionTimeoutMs: 3000,
        requestTimeoutMs: 10_000,
      },
      log,
    ),
  );
  await producer.connect();

  const now = Date.now();
  const rows = Array.from({ length: 20 }, (_, i) => {
    const t = now - 600_000 + i * 1000;
    const ingested = Math.floor(t / 1000) + 1;
    return {
      event_id: randomUUID(),
      ts: Math.floor(t / 1000),
      ts_ms: t % 1000,
      ingested_at: ingested,
      ver: 4294967295 - ingested,
      schema_version: 1,
      kind: 'tool_call',
      source_type: 'gateway',
      source_id: 'gw-e2e',
      source_version: '1',
      client_id: 'e2e-client',
      client_name: '',
      client_user: 'alice',
      client_agent: '',
      client_ip: '10.1.1.1',
      client_user_agent: '',
      session_id: 'e2e-session',
      server_name: 'files',
      server_version: '',
      server_transport: 'http',
      method: 'tools/call',
      tool_name: i < 5 ? 'delete_file' : 'read_file',
      tool_definition_hash: '',
      outcome: i < 5 ? 'error' : 'ok',
      http_status: 200,
      rpc_error_code: null,
      tool_is_error: null,
      trace_id: '',
      auth_method: 'api_key',
      auth_result: 'success',
      auth_reason: '',
      error_code: '',
      error_message: i < 5 ? "permission denied: 'C:\\secret'" : '',
      duration_ms: 5,
      request_bytes: 10,
      response_bytes: 10,
      args: '{}',
      response_digest: '',
      label_keys: ['team'],
      label_values: ['soc'],
      raw: '{}',
      kafka_partition: 0,
      kafka_offset: i,
    };
  });
  await ch.insert('events', rows);
  await ch.insert('alerts', [
    {
      alert_id: alertId,
      dedup_key: dedupKey,
      detector: 'volume',
      client_id: 'e2e-client',
      title: 'Volume spike',
      summary: 's',
      severity: 'high',
      window_start_ms: now - 3_600_000,
      window_end_ms: now,
      observed: 20,
      expected_low: 0,
      expected_high: 2,
      score: 7,
      baseline_version: 'v1',
      contributor_tools: '[]',
      contributor_addresses: '[]',
      contributor_sessions: '[]',
      sample_event_ids: [rows[0]!.event_id],
      created_at: chDate(now),
      created_at_ms: now,
      written_at: chDate(now),
      origin: 'live',
      message: '{}',
    },
  ]);
  await ch.insert('alert_transitions', [
    {
      transition_id: randomUUID(),
      alert_id: alertId,
      dedup_key: dedupKey,
      detector: 'volume',
      client_id: 'e2e-client',
      severity: 'high',
      from_status: '',
      to_status: 'open',
      changed_at: chDate(now),
      changed_at_ms: now,
      actor: 'detector',
      note: 'opened',
      written_at: chDate(now),
    },
  ]);

  app = await buildApi(defaultApiConfig({ alertsTopic }), {
    reader: ch,
    writer: ch,
    producer,
    keys: staticKeyRing([{ id: 'e2e-analyst', sha256: hashKey(key), scopes: ['analyst', 'admin'] }]),
    accessLog: clickHouseAccessLog(ch),
    log,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

after(async () => {
  await app?.close();
  await producer?.disconnect();
  await kadmin.deleteTopics({ topics: [alertsTopic] }).catch(() => undefined);
  await kadmin.disconnect();
  await ch?.close();
  await admin?.command(sql`DROP DATABASE IF EXISTS ${dbIdent(database)}`);
  await admin?.close();
});

test('log in, search, triage over HTTP; state changes arrive on the alerts topic', async () => {
  const login = await fetch(`${base}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base },
    body: JSON.stringify({ key }),
  });
  assert.equal(login.status, 200);
  const { csrf_token } = (await login.json()) as { csrf_token: string };
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  assert.match(cookie, /^mcpa_session=/);

  const search = await fetch(
    `${base}/api/v1/events?client=e2e-client&outcome=error&q=${encodeURIComponent("'C:\\secret'")}`,
    { headers: { cookie } },
  );
  assert.equal(search.status, 200);
  const found = (await search.json()) as { items: Array<{ tool_name: string }> };
  assert.equal(found.items.length, 5);
  assert.ok(found.items.every((e) => e.tool_name === 'delete_file'));

  const consumer = k.consumer({ groupId: `e2e-api-${suffix()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: alertsTopic, fromBeginning: true });
  const seen: Array<Record<string, unknown>> = [];
  await consumer.run({
    eachMessage: async ({ message }) =>
      void seen.push(JSON.parse(String(message.value)) as Record<string, unknown>),
  });

  const post = (path: string, body: unknown, csrf?: string) =>
    fetch(`${base}/api/v1/alerts/${alertId}/${path}`, {
      method: 'POST',
      headers: {
        cookie,
        'content-type': 'application/json',
        origin: base,
        ...(csrf ? { 'x-csrf-token': csrf } : {}),
      },
      body: JSON.stringify(body),
    });
  assert.equal((await post('acknowledge', {})).status, 403, 'no CSRF token');
  assert.equal((await post('acknowledge', { note: 'looking' }, csrf_token)).status, 200);
  const resolved = await post('resolve', { reason: 'true_positive' }, csrf_token);
  assert.equal(resolved.status, 200);
  assert.equal(((await resolved.json()) as { alert: { status: string } }).alert.status, 'resolved');

  await waitFor(() => seen.length >= 2, { timeoutMs: 30_000, what: 'two state changes on the alerts topic' });
  await consumer.disconnect();
  assert.deepEqual(
    seen.map((m) => [m.type, m.action, m.from, m.status, m.actor, m.dedup_key]),
    [
      ['state_change', 'acknowledge', 'open', 'acknowledged', 'e2e-analyst', dedupKey],
      ['state_change', 'resolve', 'acknowledged', 'resolved', 'e2e-analyst', dedupKey],
    ],
  );
  assert.equal(seen[1]!.resolution, 'true_positive');

  const logRows = await ch.query<{ route: string; key_id: string; auth: string }>(
    sql`SELECT route, key_id, auth FROM ${dbIdent(database)}.access_log WHERE key_id = 'e2e-analyst'`,
  );
  assert.ok(logRows.some((r) => r.route === '/api/v1/alerts/:alert_id/resolve' && r.auth === 'session'));
  assert.ok(logRows.some((r) => r.route === '/api/v1/events'));
});
