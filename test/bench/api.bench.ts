/**
 * npm run bench:api — the analyst API's read paths on a realistic volume, against the real local
 * ClickHouse. Prints figures; asserts nothing about speed (shared, noisy machine).
 *
 * Loads BENCH_EVENTS (10,000,000) events over BENCH_DAYS (30) days for BENCH_CLIENTS (1,000) clients
 * into a database of its own, generated server-side (one day by INSERT … SELECT FROM numbers(), the
 * other days copies of it shifted by whole days with new event ids and sessions; one INSERT per day):
 * skewed client volumes, half-hour sessions, 3 of 8 servers per client with 5 tools each, outcomes,
 * labels, args text, 0.3% redelivered copies. events_hourly is filled once after the load with its
 * materialized view's SELECT; client_state, baselines and alerts rows are written for every client.
 *
 * Then, for each of: a 24 h search with two filters, facet counts (same filters), a client page, a
 * session timeline — BENCH_RUNS requests with varying values through buildApi + inject() (the whole
 * fastify path: auth, zod, handler, access_log row, JSON), each followed by the same SQL statements
 * the API issued, replayed directly with @clickhouse/client in the same shape (statements the API ran
 * concurrently run concurrently). p50/p95 of both and the ratio API/raw.
 *
 *   BENCH_EVENTS, BENCH_CLIENTS, BENCH_DAYS, BENCH_RUNS (30), BENCH_WARMUP (3)
 *   BENCH_API_MODULE  another build's dist/src/index.js to time instead of this checkout's
 *   BENCH_COMPARE_MODULE  another build's dist/src/index.js timed after each iteration (same data,
 *                same moment's load): a before/after column
 *   BENCH_DB     database name (default bench_api_<events>); BENCH_KEEP=1 keeps it for re-runs, and a
 *                kept database holding the same number of events is reused without reloading
 */
import { readdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@clickhouse/client';
import {
  createClickHouse,
  dbIdent,
  runMigrations,
  sql,
  toSql,
  type ClickHouse,
  type SqlFragment,
} from '@mcp-audit/clickhouse';
import type { AuditProducer } from '@mcp-audit/kafka';
import { createLogger, generateKey, hashKey } from '@mcp-audit/service-kit';
import type * as Api from '@mcp-audit/api';
import { env, need } from '../lib/index.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1_000);
const DAYS = Number(process.env.BENCH_DAYS ?? 30);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const DB = process.env.BENCH_DB ?? `bench_api_${EVENTS}`;
const KEEP = process.env.BENCH_KEEP === '1';
// Another build of the API to time on the same data (e.g. an older commit's services/api/dist).
const API_MODULE = process.env.BENCH_API_MODULE;
const { buildApi, clickHouseAccessLog, defaultApiConfig, staticKeyRing } = (
  API_MODULE ? await import(pathToFileURL(API_MODULE).href) : await import('@mcp-audit/api')
) as typeof Api;
// A build to compare with in the same run: each iteration times it right after this one.
const COMPARE_MODULE = process.env.BENCH_COMPARE_MODULE;
const other = COMPARE_MODULE ? ((await import(pathToFileURL(COMPARE_MODULE).href)) as typeof Api) : undefined;
const SCHEMAS = fileURLToPath(new URL('../../../schemas/clickhouse/', import.meta.url));
const DAY = 86_400;
const HOUR_MS = 3_600_000;
const SERVERS = ['files', 'github', 'postgres', 'slack', 'jira', 'search', 'email', 'browser'];
const VERBS = ['read', 'list', 'search', 'write', 'delete'];
const MAX_U32 = 4294967295;

const url = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
const username = env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin';
const password = need(env, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD');
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** One day of events: `n` rows with ts in [day, day + 1 d), numbered from `base` (the hash seed). */
function dayInsert(day: number, n: number, base: number): SqlFragment {
  // h(k): an independent deterministic 64-bit stream per k; u(k) uniform in [0, 1).
  const h = (k: number) => sql`cityHash64(number + ${base}, ${k})`;
  const u = (k: number) => sql`(${h(k)} % 1000000) / 1000000`;
  return sql`
    INSERT INTO events (event_id, ts, ts_ms, ingested_at, ver, schema_version, kind, source_type, source_id,
      source_version, client_id, client_name, client_user, client_agent, client_ip, client_user_agent, session_id,
      server_name, server_version, server_transport, method, tool_name, tool_definition_hash, outcome, http_status,
      rpc_error_code, tool_is_error, trace_id, auth_method, auth_result, auth_reason, error_code, error_message,
      duration_ms, request_bytes, response_bytes, args, response_digest, label_keys, label_values, raw,
      kafka_partition, kafka_offset)
    SELECT event_id, toDateTime(t) AS ts, ts_ms, toDateTime(t + 2) AS ingested_at, toUInt32(${MAX_U32} - t - 2) AS ver,
      1, kind, 'gateway', concat('gw-', toString(c % 4)), '1.4.2', client_id, concat('agent ', toString(c)),
      concat('user-', toString(c % 300)), 'claude-code/1.0', concat('10.', toString(c % 200), '.', toString(c % 7), '.', toString(c % 250 + 1)),
      'node', session_id, server, '2.1.0', if(c % 3 = 0, 'stdio', 'http'), method, tool, lower(hex(cityHash64(tool))),
      outcome, toNullable(toUInt16(multiIf(outcome = 'ok', 200, outcome = 'auth_failed', 401, outcome = 'denied', 403, 500))),
      CAST(if(outcome = 'error', -32603, NULL) AS Nullable(Int32)), CAST(if(kind = 'tool_call', toUInt8(outcome = 'error'), NULL) AS Nullable(UInt8)),
      lower(hex(${h(9)})), 'api_key', if(outcome = 'auth_failed', 'failure', 'success'), if(outcome = 'auth_failed', 'expired key', ''),
      if(outcome = 'ok', '', upper(outcome)),
      multiIf(outcome = 'error', concat('upstream ', server, ' failed: ', arrayElement(['timeout after 30s', 'connection reset', 'ENOENT: no such file', 'rate limited'], toUInt32(${h(10)} % 4) + 1)),
              outcome = 'denied', concat('policy denied ', tool), outcome = 'auth_failed', 'invalid credentials', ''),
      toUInt32(${h(11)} % 2000), toUInt64(200 + ${h(12)} % 2000), toUInt64(500 + ${h(13)} % 20000), args, '',
      ['env', 'team'], [arrayElement(['prod', 'staging', 'dev'], c % 3 + 1), concat('team-', toString(c % 20))],
      concat('{"schema_version":1,"kind":"', kind, '","client":{"id":"', client_id,
             '"},"server":{"name":"', server, '"},"tool":{"name":"', tool, '","arguments":', args, '},"outcome":"', outcome,
             '","labels":{"env":"prod"},"note":"', substring(${'lorem ipsum dolor sit amet '.repeat(12)}, 1, toUInt32(${h(14)} % 300)), '"}'),
      toInt32(c % 6), toInt64(number)
    FROM (
      SELECT number, generateUUIDv4() AS event_id,
        -- skewed volumes: client c gets a share ~ 1/sqrt(c) (the busiest about 3% of all events)
        toUInt32(floor(pow(${u(1)}, 2) * ${CLIENTS})) AS c,
        concat('client-', toString(c)) AS client_id,
        -- 60% of the traffic in working hours (08-18 UTC), the rest all day
        toUInt32(${day} + if(${u(2)} < 0.6, 28800 + ${h(3)} % 36000, ${h(3)} % ${DAY})) AS t,
        toUInt16(${h(4)} % 1000) AS ts_ms,
        concat(client_id, '-', toString(intDiv(t, 1800)), '-', toString(${h(5)} % 3)) AS session_id,
        arrayElement(${SERVERS}, (c + toUInt32(${h(6)} % 3)) % 8 + 1) AS server,
        concat(server, '_', arrayElement(${VERBS}, toUInt32(floor(pow(${u(7)}, 2) * 5)) + 1)) AS tool,
        ${u(8)} AS r,
        multiIf(r < 0.90, 'tool_call', r < 0.95, 'tool_list', r < 0.98, 'resource_read', 'auth') AS kind,
        multiIf(kind = 'tool_call', 'tools/call', kind = 'tool_list', 'tools/list', kind = 'resource_read', 'resources/read', 'initialize') AS method,
        multiIf(kind = 'auth', if(${u(15)} < 0.5, 'auth_failed', 'ok'), ${u(15)} < 0.93, 'ok', ${u(15)} < 0.97, 'error', 'denied') AS outcome,
        concat('{"path":"/srv/', client_id, '/docs/report-', toString(${h(16)} % 5000), '.md","query":"',
               arrayElement(['quarterly revenue', 'password reset', 'invoice 2291', 'customer list', 'deploy logs', 'TODO'], toUInt32(${h(17)} % 6) + 1),
               '","limit":', toString(${h(18)} % 100), '}') AS args
      FROM numbers(${n})
    )`;
}

async function loadData(admin: ClickHouse, now: number) {
  const start = Math.floor(now / 1000 / 3600) * 3600 - DAYS * DAY;
  const perDay = Math.ceil(EVENTS / DAYS);
  let t = Date.now();
  // NOTE: the materialized view would re-merge the month's aggregate states after every insert block
  // (that made a day take ~90 s here); the bench database fills events_hourly once after the load.
  await admin.command(sql`DROP TABLE events_hourly_mv`);
  // One part per insert and partition: big blocks.
  const settings = { max_block_size: '1048576', min_insert_block_size_rows: '1048576' };
  // Day 0 from the generator; the other days copy it shifted by whole days with new event ids and
  // sessions (evaluating the generator's expressions costs ~40 µs a row on this loaded machine).
  await admin.command(dayInsert(start, perDay, 0), { settings });
  for (let d = 1; d < DAYS; d++) {
    await admin.command(
      sql`
      INSERT INTO events SELECT generateUUIDv4(), ts + ${d * DAY}, ts_ms, ingested_at + ${d * DAY}, toUInt32(ver - ${d * DAY}),
        schema_version, kind, source_type, source_id, source_version, client_id, client_name, client_user, client_agent,
        client_ip, client_user_agent, concat(client_id, '-', toString(intDiv(toUInt32(ts) + ${d * DAY}, 1800)), '-', toString(kafka_offset % 3)),
        server_name, server_version, server_transport, method, tool_name, tool_definition_hash, outcome, http_status,
        rpc_error_code, tool_is_error, trace_id, auth_method, auth_result, auth_reason, error_code, error_message,
        duration_ms, request_bytes, response_bytes, args, response_digest, label_keys, label_values, raw,
        kafka_partition, kafka_offset + ${d * perDay}
      FROM events WHERE ts < ${new Date((start + DAY) * 1000)} AND kafka_offset < ${Math.min(perDay, EVENTS - d * perDay)}`,
      { settings },
    );
    process.stdout.write(`\r  loaded day ${d + 1}/${DAYS} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
  }
  // Redelivered copies (0.3%): the same row again, ingested later (lower ver): one event each.
  await admin.command(sql`
    INSERT INTO events SELECT event_id, ts, ts_ms, ingested_at + 60, toUInt32(ver - 60), schema_version, kind,
      source_type, source_id, source_version, client_id, client_name, client_user, client_agent, client_ip,
      client_user_agent, session_id, server_name, server_version, server_transport, method, tool_name,
      tool_definition_hash, outcome, http_status, rpc_error_code, tool_is_error, trace_id, auth_method, auth_result,
      auth_reason, error_code, error_message, duration_ms, request_bytes, response_bytes, args, response_digest,
      label_keys, label_values, raw, kafka_partition, kafka_offset
    FROM events WHERE kafka_offset % 333 = 0`);
  console.log(`\n  events loaded in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  t = Date.now();
  // events_hourly as its materialized view (002_events_hourly.sql) computes it, a few days at a time.
  for (let d = 0; d < DAYS; d += 5) {
    await admin.command(sql`
      INSERT INTO events_hourly
      SELECT toStartOfHour(ts) AS hour, client_id, uniqExactState(event_id),
        uniqExactIfState(event_id, toUInt8(outcome IN ('error', 'denied') OR ifNull(tool_is_error, 0) = 1)),
        uniqExactIfState(event_id, toUInt8(outcome = 'auth_failed' OR auth_result = 'failure')),
        uniqExactStateIf(tool_name, tool_name != ''), uniqExactStateIf(server_name, server_name != ''),
        groupUniqArrayStateIf(tool_name, tool_name != ''), groupUniqArrayStateIf(server_name, server_name != ''),
        sumState(request_bytes), sumState(response_bytes)
      FROM events
      WHERE ts >= ${new Date((start + d * DAY) * 1000)} AND ts < ${new Date((start + (d + 5) * DAY) * 1000)}
      GROUP BY hour, client_id`);
  }
  console.log(`  events_hourly in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  t = Date.now();
  const asOf = Math.floor(now / 1000 / 3600) * 3600 - 3600;
  await admin.command(sql`
    INSERT INTO client_state (client_id, as_of, state, active_days, required_days, baseline_version, cohort, computed_at)
    SELECT concat('client-', toString(number)), toDateTime(${asOf - 14 * DAY} + number % 7 * ${DAY}),
           if(number % 10 = 9, 'learning', 'active'), 14, 7, 'v1', '', toDateTime(${asOf})
    FROM numbers(${CLIENTS})`);
  await admin.command(sql`
    INSERT INTO baselines (client_id, as_of, version, kind, computed_at, state, window_days, active_days, active_hours,
      first_seen, last_seen, time_zone, cohort, members, calls_median, calls_mad, calls_q95, active_share)
    SELECT concat('client-', toString(number)), toDateTime(${asOf}), 'v1', 'client', toDateTime(${asOf}), 'active', 28, 28,
           400, toDateTime(${start}), toDateTime(${asOf}), if(number % 2 = 0, 'UTC', 'Europe/Berlin'), '', 1,
           arrayMap(i -> toFloat64(i % 24 >= 8 AND i % 24 < 18) * 10 + 1, range(48)),
           arrayMap(i -> 2., range(48)), arrayMap(i -> toFloat64(i % 24) + 5, range(48)), arrayMap(i -> 0.5, range(48))
    FROM numbers(${CLIENTS})`);
  await admin.command(sql`
    INSERT INTO alerts (alert_id, dedup_key, detector, client_id, title, summary, severity, window_start_ms, window_end_ms,
      observed, expected_low, expected_high, score, baseline_version, contributor_tools, contributor_addresses,
      contributor_sessions, sample_event_ids, created_at, created_at_ms, written_at, origin, message)
    SELECT toString(generateUUIDv4()), concat('volume|client-', toString(number % ${CLIENTS}), '|', toString(number)), 'volume',
           concat('client-', toString(number % ${CLIENTS})), 'Volume spike', 's', 'medium',
           toInt64(t) * 1000 - 3600000, toInt64(t) * 1000, 40, 0, 10, 5, 'v1', '[]', '[]', '[]', [],
           toDateTime(t), toInt64(t) * 1000, toDateTime(t), 'live', '{}'
    FROM (SELECT number, ${start} + number * 613 % ${DAYS * DAY} AS t FROM numbers(${CLIENTS * 3}))`);
  console.log(`  client_state, baselines, alerts in ${((Date.now() - t) / 1000).toFixed(0)} s`);
}

const quantile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};

interface Recorded {
  text: string;
  start: number;
  end: number;
}

/** Wraps the API's reader: every statement with its start and end (to replay the same shape raw). */
function recording(ch: ClickHouse, log: Recorded[]): ClickHouse {
  return {
    ...ch,
    database: ch.database,
    async query<T>(q: SqlFragment, o?: Parameters<ClickHouse['query']>[1]) {
      const r: Recorded = { text: toSql(q), start: performance.now(), end: 0 };
      log.push(r);
      try {
        return await ch.query<T>(q, o);
      } finally {
        r.end = performance.now();
      }
    },
  };
}

/** Groups of statements: one that started after every earlier one ended begins a new group. */
function phases(rec: Recorded[]): string[][] {
  const out: string[][] = [];
  let lastEnd = -Infinity;
  for (const r of [...rec].sort((a, b) => a.start - b.start)) {
    if (r.start >= lastEnd || out.length === 0) out.push([]);
    out[out.length - 1]!.push(r.text);
    lastEnd = Math.max(lastEnd, r.end);
  }
  return out;
}

async function main() {
  const adminRoot = createClickHouse({ url, username, password, requestTimeoutMs: 1_800_000 });
  const admin = createClickHouse({ url, username, password, database: DB, requestTimeoutMs: 1_800_000 });
  if (API_MODULE) console.log(`api module: ${API_MODULE}`);
  console.log(
    `machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 20)} MiB, node ${process.version}; load average ${load()}`,
  );
  const now = Date.now();
  const exists = await adminRoot.query<{ n: string }>(
    sql`SELECT count() AS n FROM system.tables WHERE database = ${DB} AND name = 'events'`,
  );
  let reuse = false;
  if (Number(exists[0]?.n) > 0) {
    const [c] = await admin.query<{ n: string }>(sql`SELECT uniqExact(event_id) AS n FROM events`);
    // A database kept from an older schema is loaded again: tables a later migration adds (such as
    // events_by_time, filled by a materialized view on events) must be filled the way production
    // fills them, by the inserts into events, not by a migration's backfill.
    const [m] = await admin.query<{ v: number }>(sql`SELECT max(version) AS v FROM schema_migrations`);
    const latest = Math.max(...readdirSync(SCHEMAS).map((f) => Number(/^(\d{3,})_/.exec(f)?.[1] ?? 0)));
    reuse = Number(c?.n) === EVENTS && Number(m?.v) === latest;
    if (!reuse) {
      console.log(
        `dropping ${DB} (${Number(c?.n)} events, schema ${Number(m?.v)}; want ${EVENTS}, ${latest})`,
      );
      await adminRoot.command(sql`DROP DATABASE ${dbIdent(DB)}`);
    }
  }
  if (reuse) console.log(`reusing ${DB} (${EVENTS} events)`);
  else {
    console.log(`loading ${EVENTS} events, ${DAYS} days, ${CLIENTS} clients into ${DB} …`);
    await runMigrations({ client: adminRoot, dir: SCHEMAS, database: DB });
    await loadData(admin, now);
  }
  const [stats] = await admin.query<{
    rows: string;
    ids: string;
    parts: string;
    maxts: number;
    bytes: string;
  }>(sql`
    SELECT (SELECT count() FROM events) AS rows, (SELECT uniq(event_id) FROM events) AS ids,
           (SELECT count() FROM system.parts WHERE database = ${DB} AND table = 'events' AND active) AS parts,
           (SELECT toUInt32(max(ts)) FROM events) AS maxts,
           (SELECT sum(bytes) FROM system.parts WHERE database = ${DB} AND table = 'events' AND active) AS bytes`);
  console.log(
    `events: ${stats!.rows} rows (~${stats!.ids} ids), ${stats!.parts} active parts, ${Math.round(Number(stats!.bytes) / 2 ** 20)} MiB on disk`,
  );
  const [copy] = await admin.query<{ rows: string; parts: string; bytes: string }>(sql`
    SELECT (SELECT count() FROM events_by_time) AS rows,
           (SELECT count() FROM system.parts WHERE database = ${DB} AND table = 'events_by_time' AND active) AS parts,
           (SELECT sum(bytes) FROM system.parts WHERE database = ${DB} AND table = 'events_by_time' AND active) AS bytes`);
  console.log(
    `events_by_time (008, filled by its materialized view): ${copy!.rows} rows, ${copy!.parts} active parts, ${Math.round(Number(copy!.bytes) / 2 ** 20)} MiB on disk`,
  );
  const to = (Number(stats!.maxts) + 1) * 1000;
  const from24 = to - 24 * HOUR_MS;

  // The API: reader = the admin user on the bench database (mcp_api_reader may read mcp_audit only).
  const log = createLogger('api-bench', { level: 'silent' });
  const key = generateKey('mcpa');
  const recorded: Recorded[] = [];
  const reader = createClickHouse({ url, username, password, database: DB, application: 'mcp-audit-api' });
  const writer = createClickHouse({ url, username, password, database: DB, insertTables: ['access_log'] });
  const producer: AuditProducer = {
    connect: async () => {},
    disconnect: async () => {},
    isConnected: () => true,
    send: async () => {},
  };
  const app = await buildApi(defaultApiConfig({ maxRangeDays: 31 }), {
    reader: recording(reader, recorded),
    writer,
    producer,
    keys: staticKeyRing([{ id: 'bench', sha256: hashKey(key), scopes: ['analyst'] }]),
    accessLog: clickHouseAccessLog(writer),
    log,
  });
  await app.ready();
  const otherApp = other
    ? await other.buildApi(other.defaultApiConfig({ maxRangeDays: 31 }), {
        reader,
        writer,
        producer,
        keys: other.staticKeyRing([{ id: 'bench', sha256: hashKey(key), scopes: ['analyst'] }]),
        accessLog: other.clickHouseAccessLog(writer),
        log,
      })
    : undefined;
  await otherApp?.ready();
  if (COMPARE_MODULE) console.log(`compared with: ${COMPARE_MODULE} (timed after each iteration)`);
  // The reference: the same statements straight through @clickhouse/client.
  const raw = createClient({ url, username, password, database: DB, request_timeout: 600_000 });
  const runRaw = async (text: string) => {
    const rs = await raw.query({ query: text, format: 'JSONEachRow' });
    await rs.json();
  };

  // Values to vary: clients across the volume range, sessions of busy clients in the last 24 h.
  const sessions = await admin.query<{ session_id: string }>(sql`
    SELECT session_id FROM events WHERE ts >= ${new Date(from24 + 12 * HOUR_MS)} AND client_id IN ('client-0', 'client-3', 'client-17', 'client-120', 'client-640')
    GROUP BY session_id ORDER BY cityHash64(session_id) LIMIT 100`);
  const pick = <T>(xs: readonly T[], i: number) => xs[i % xs.length]!;
  const range = `from=${new Date(from24).toISOString()}&to=${new Date(to).toISOString()}`;
  const searchFilters = (i: number) => {
    const server = pick(SERVERS, i);
    return pick(
      [
        `server=${server}&outcome=${pick(['ok', 'error', 'denied'], i)}`,
        `tool=${server}_${pick(VERBS, i * 7)}&label=${encodeURIComponent(`env=${pick(['prod', 'staging', 'dev'], i)}`)}`,
        `client=client-${pick([0, 5, 42, 300, 777], i)}&kind=tool_call`,
      ],
      i,
    );
  };
  const cases: Array<{ name: string; url: (i: number) => string }> = [
    { name: '24 h search, two filters', url: (i) => `/api/v1/events?${range}&${searchFilters(i)}&limit=100` },
    { name: 'facet counts (same filters)', url: (i) => `/api/v1/events/facets?${range}&${searchFilters(i)}` },
    {
      name: 'client page (24 h)',
      url: (i) => `/api/v1/clients/client-${pick([0, 1, 7, 42, 99, 300, 512, 777, 901, 998], i)}?${range}`,
    },
    {
      name: 'session timeline',
      url: (i) => `/api/v1/sessions/${encodeURIComponent(pick(sessions, i).session_id)}?${range}&limit=100`,
    },
  ];
  const headers = { authorization: `Bearer ${key}` };
  const table: string[] = [];
  for (const c of cases) {
    const api: number[] = [];
    const rawMs: number[] = [];
    const otherMs: number[] = [];
    let rows = 0;
    for (let i = 0; i < WARMUP + RUNS; i++) {
      recorded.length = 0;
      const t0 = performance.now();
      const r = await app.inject({ url: c.url(i), headers });
      const apiMs = performance.now() - t0;
      if (r.statusCode !== 200) throw new Error(`${c.url(i)}: ${r.statusCode} ${r.body.slice(0, 300)}`);
      const body = r.json<{ items?: unknown[] }>();
      const groups = phases(recorded);
      const t1 = performance.now();
      for (const g of groups) await Promise.all(g.map(runRaw));
      const rawT = performance.now() - t1;
      if (otherApp) {
        const t2 = performance.now();
        const o = await otherApp.inject({ url: c.url(i), headers });
        if (o.statusCode !== 200) throw new Error(`compared: ${o.statusCode} ${o.body.slice(0, 300)}`);
        if (i >= WARMUP) otherMs.push(performance.now() - t2);
      }
      if (i >= WARMUP) {
        api.push(apiMs);
        rawMs.push(rawT);
        rows += body.items?.length ?? 0;
      }
    }
    const line = {
      name: c.name,
      api50: quantile(api, 0.5),
      api95: quantile(api, 0.95),
      raw50: quantile(rawMs, 0.5),
      raw95: quantile(rawMs, 0.95),
    };
    const f = (n: number) => n.toFixed(0).padStart(6);
    table.push(
      `| ${line.name.padEnd(28)} | ${f(line.api50)} | ${f(line.api95)} | ${f(line.raw50)} | ${f(line.raw95)} | ${(line.api50 / line.raw50).toFixed(2)} | ${(line.api95 / line.raw95).toFixed(2)} |${otherApp ? ` ${f(quantile(otherMs, 0.5))} | ${f(quantile(otherMs, 0.95))} |` : ''}`,
    );
    console.log(
      `${c.name}: ${RUNS} runs, api p50 ${line.api50.toFixed(0)} ms p95 ${line.api95.toFixed(0)} ms; raw p50 ${line.raw50.toFixed(0)} ms p95 ${line.raw95.toFixed(0)} ms${rows ? `; ${(rows / RUNS).toFixed(0)} items/answer` : ''}; load ${load()}`,
    );
  }
  console.log(
    `\nms, ${RUNS} runs each (after ${WARMUP} warm-up); api = inject() through buildApi, raw = the same SQL via @clickhouse/client`,
  );
  console.log(
    `| query | api p50 | api p95 | raw p50 | raw p95 | ratio p50 | ratio p95 |${otherApp ? ' compared p50 | compared p95 |' : ''}`,
  );
  console.log(`|---|---|---|---|---|---|---|${otherApp ? '---|---|' : ''}`);
  for (const l of table) console.log(l);
  console.log(`load average at the end: ${load()}`);
  await app.close();
  await otherApp?.close();
  await raw.close();
  await reader.close();
  await writer.close();
  if (KEEP) console.log(`kept ${DB} (BENCH_KEEP=1)`);
  else await adminRoot.command(sql`DROP DATABASE IF EXISTS ${dbIdent(DB)}`);
  await admin.close();
  await adminRoot.close();
}

await main();
