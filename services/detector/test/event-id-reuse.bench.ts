/**
 * node services/detector/dist/test/event-id-reuse.bench.js — what one event per event_id costs the
 * periodic detectors on a large table (not part of the suite: prints figures, asserts nothing about
 * speed on a shared machine). Run under `flock /work/bench.lock` with the tests' stack environment.
 *
 *   BENCH_DB    database holding a filled `events` (read as the admin user)
 *   BENCH_FILL  N: first create BENCH_DB.events (as mcp_audit.events) and fill it with N events over
 *               the 30 days before 2026-12-01, plus identical redeliveries of 1% of them (ingested a
 *               minute later) and copies of 0.001% with another client (an hour later): forgeries
 *   BENCH_AT    ISO end of the newest ingestion window to judge (default: the newest ingested_at)
 *   BENCH_RUNS  repetitions per figure (default 3; the median is printed)
 */
import { createClickHouse, dbIdent, sql, type SqlFragment } from '@mcp-audit/clickhouse';
import {
  authSprayDetector,
  DEFAULT_PERIODIC_CONFIG,
  eventIdReuseDetector,
  type PeriodicDetector,
} from '../src/periodic/index.js';
import { eventsTable, firstCopies, tsBetween } from '../src/periodic/shared.js';

const env = process.env as Record<string, string>;
const DB = env.BENCH_DB;
if (!DB) throw new Error('BENCH_DB is required (a database with a filled events table)');
const RUNS = Number(env.BENCH_RUNS ?? 3);
const client = (database: string) =>
  createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123',
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
    password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD ?? '',
    database,
    requestTimeoutMs: 600_000,
  });
const FILL = Number(env.BENCH_FILL ?? 0);
if (FILL > 0) {
  const ch = client('mcp_audit');
  const db = dbIdent(DB);
  const T0 = Date.UTC(2026, 10, 1) / 1000;
  await ch.command(sql`CREATE DATABASE IF NOT EXISTS ${db}`);
  await ch.command(sql`CREATE TABLE IF NOT EXISTS ${db}.events AS mcp_audit.events`);
  const pad = 'x'.repeat(120);
  await ch.command(sql`
    INSERT INTO ${db}.events
    SELECT generateUUIDv4() AS event_id,
      toDateTime(${T0} + intDiv(number * 2592000, ${FILL}), 'UTC') AS ts, toUInt16(number % 1000) AS ts_ms,
      toDateTime(toUInt32(ts) + 2, 'UTC') AS ingested_at, toUInt32(4294967295 - toUInt32(ingested_at)) AS ver,
      toUInt8(1) AS schema_version, if(number % 50 = 0, 'auth', 'tool_call') AS kind, 'gateway' AS source_type,
      concat('gw-', toString(number % 7)) AS source_id, '1.0.0' AS source_version,
      concat('client-', toString(number % 1000)) AS client_id, '' AS client_name,
      concat('user-', toString(number % 300)) AS client_user, '' AS client_agent,
      IPv4NumToString(toUInt32(167772160 + (number % 5000))) AS client_ip, '' AS client_user_agent,
      concat('sess-', toString(intDiv(number, 40))) AS session_id, concat('srv-', toString(number % 20)) AS server_name,
      '' AS server_version, 'http' AS server_transport, 'tools/call' AS method,
      concat('tool-', toString(number % 50)) AS tool_name,
      if(number % 97 = 0, hex(cityHash64(number % 20)), '') AS tool_definition_hash,
      if(number % 50 = 0, 'auth_failed', 'ok') AS outcome, toNullable(toUInt16(200)) AS http_status,
      CAST(NULL AS Nullable(Int32)) AS rpc_error_code, CAST(NULL AS Nullable(UInt8)) AS tool_is_error, '' AS trace_id,
      'api_key' AS auth_method, if(number % 50 = 0, 'failure', 'success') AS auth_result, '' AS auth_reason,
      '' AS error_code, '' AS error_message, toUInt32(number % 300) AS duration_ms,
      toUInt64(100 + number % 900) AS request_bytes, toUInt64(1000 + number % 9000) AS response_bytes,
      concat('{"path":"/home/u/file-', toString(number % 10000), '.txt"}') AS args, '' AS response_digest,
      CAST([] AS Array(String)) AS label_keys, CAST([] AS Array(String)) AS label_values,
      concat('{"schema_version":1,"n":', toString(number), ',"pad":"', ${pad}, '"}') AS raw,
      toInt32(number % 12) AS kafka_partition, toInt64(number) AS kafka_offset
    FROM numbers(${FILL})`);
  const later = (seconds: number, client: SqlFragment, offset: number, where: SqlFragment) => sql`
    INSERT INTO ${db}.events
    SELECT event_id, ts, ts_ms, toDateTime(toUInt32(ingested_at) + ${seconds}, 'UTC'), ver - ${seconds},
      schema_version, kind, source_type, source_id, source_version, ${client}, client_name, client_user,
      client_agent, client_ip, client_user_agent, session_id, server_name, server_version, server_transport,
      method, tool_name, tool_definition_hash, outcome, http_status, rpc_error_code, tool_is_error, trace_id,
      auth_method, auth_result, auth_reason, error_code, error_message, duration_ms, request_bytes,
      response_bytes, args, response_digest, label_keys, label_values, raw, kafka_partition, kafka_offset + ${offset}
    FROM ${db}.events WHERE ${where}`;
  await ch.command(later(60, sql`client_id`, 1, sql`kafka_offset % 100 = 7`));
  await ch.command(later(3600, sql`'mallory'`, 2, sql`kafka_offset % 100000 = 13`));
  await ch.close();
}
const ch = client(DB);

const [size] = await ch.query<{ rows: string; ids: string; last: string; first: string }>(sql`
  SELECT count() AS rows, uniqExact(event_id) AS ids, toUInt32(max(ingested_at)) AS last, toUInt32(min(ts)) AS first
  FROM ${eventsTable(ch)}`);
const W5 = 5 * 60_000;
const DAY = 86_400_000;
const end = env.BENCH_AT ? Date.parse(env.BENCH_AT) : Math.floor((Number(size!.last) * 1000) / W5) * W5;
console.log(
  `events: ${size!.rows} rows, ${size!.ids} ids, event time from ${new Date(Number(size!.first) * 1000).toISOString()}; judged up to ${new Date(end).toISOString()}`,
);

async function time(label: string, f: () => Promise<string>): Promise<void> {
  const ms: number[] = [];
  let what = '';
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    what = await f();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  console.log(
    `${label.padEnd(58)} median ${ms[Math.floor(ms.length / 2)]!.toFixed(0).padStart(6)} ms  (${ms.map((m) => m.toFixed(0)).join(', ')})  ${what}`,
  );
}

const reuse = eventIdReuseDetector(ch, DEFAULT_PERIODIC_CONFIG.eventIdReuse);
const findings = async (d: PeriodicDetector, from: number, to: number) => {
  const evs = await d.evaluateRange!(from, to);
  return `${evs.length} windows, ${evs.reduce((a, e) => a + e.findings.length, 0)} findings`;
};
await time('event_id_reuse: one 5-minute window (a live tick)', () => findings(reuse, end - W5, end));
await time('event_id_reuse: one hour (12 windows)', () => findings(reuse, end - 12 * W5, end));
await time('event_id_reuse: catch-up of one day (288 windows)', () => findings(reuse, end - DAY, end));

// firstCopies: the same range query with and without the one-copy-per-id condition.
const count = (cond: typeof tsBetween) => async (from: number, to: number) => {
  const [r] = await ch.query<{ n: string; c: string }>(sql`
    SELECT uniqExact(event_id) AS n, uniqExact(client_id) AS c FROM ${eventsTable(ch)}
    WHERE ${cond(from, to)} AND (outcome = 'auth_failed' OR auth_result = 'failure')`);
  return `${r!.n} failures, ${r!.c} clients`;
};
const plain = count(tsBetween);
const dedup = count((a, b) => firstCopies(ch, a, b));
for (const [label, span] of [
  ['15 minutes', 15 * 60_000],
  ['one day', DAY],
  ['three days', 3 * DAY],
] as const) {
  await time(`auth failures over ${label}, every copy (before)`, () => plain(end - span, end));
  await time(`auth failures over ${label}, firstCopies (after)`, () => dedup(end - span, end));
}
const spray = authSprayDetector(ch, DEFAULT_PERIODIC_CONFIG.authSpray);
const Q = 15 * 60_000;
const endQ = Math.floor(end / Q) * Q;
await time('auth_spray: one day of windows (96)', () => findings(spray, endQ - DAY, endQ));
await ch.close();
