import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  ClickHouseRequestError,
  dbIdent,
  runMigrations,
  sql,
  type ClickHouse,
  type SqlFragment,
} from '../src/index.js';
import { client, dropDatabase, SCHEMAS_DIR, testDatabase } from './helpers.js';

const MAX_U32 = 4294967295;
const HOUR = 3600;
const T0 = Date.UTC(2024, 0, 2, 10, 0, 0) / 1000; // 2024-01-02 10:00:00 UTC

/** A full mcp_audit.events row as the ingester writes it (JSONEachRow: DateTime as epoch seconds). */
function eventRow(o: Record<string, unknown> = {}) {
  const ingested = (o.ingested_at as number | undefined) ?? T0 + 5;
  return {
    event_id: randomUUID(),
    ts: T0,
    ts_ms: 123,
    ingested_at: ingested,
    ver: MAX_U32 - ingested,
    schema_version: 1,
    kind: 'tool_call',
    source_type: 'gateway',
    source_id: 'gw-1',
    source_version: '1.0.0',
    client_id: 'client-a',
    client_name: '',
    client_user: 'alice',
    client_agent: '',
    client_ip: '10.0.0.1',
    client_user_agent: '',
    session_id: 's1',
    server_name: 'files',
    server_version: '',
    server_transport: 'http',
    method: 'tools/call',
    tool_name: 'read_file',
    tool_definition_hash: '',
    outcome: 'ok',
    http_status: 200,
    rpc_error_code: null,
    tool_is_error: null,
    trace_id: '',
    auth_method: 'api_key',
    auth_result: 'success',
    auth_reason: '',
    error_code: '',
    error_message: '',
    duration_ms: 12,
    request_bytes: 100,
    response_bytes: 1000,
    args: '{}',
    response_digest: '',
    label_keys: ['env'],
    label_values: ['test'],
    raw: '{"unknown_field":true}',
    kafka_partition: 0,
    kafka_offset: 1,
    ...o,
  };
}

let admin: ClickHouse;
let db: string;
let ch: ClickHouse; // admin, scoped to the test database

before(async () => {
  admin = client('ADMIN');
  db = testDatabase('events');
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: db });
  ch = client('ADMIN', { database: db });
});

after(async () => {
  await ch?.close();
  await dropDatabase(admin, db);
  await admin.close();
});

interface HourlyRow {
  client_id: string;
  hour: string;
  calls: string;
  errors: string;
  auth_failures: string;
  tools: string;
  servers: string;
  tool_set: string[];
  server_set: string[];
  request_bytes: string;
  response_bytes: string;
}

const hourly = (from: SqlFragment) =>
  ch.query<HourlyRow>(sql`
    SELECT client_id, hour,
      uniqExactMerge(calls) AS calls,
      uniqExactIfMerge(errors) AS errors,
      uniqExactIfMerge(auth_failures) AS auth_failures,
      uniqExactMerge(tools) AS tools,
      uniqExactMerge(servers) AS servers,
      arraySort(groupUniqArrayMerge(tool_set)) AS tool_set,
      arraySort(groupUniqArrayMerge(server_set)) AS server_set,
      sumMerge(request_bytes) AS request_bytes,
      sumMerge(response_bytes) AS response_bytes
    FROM ${from}
    GROUP BY client_id, hour
    ORDER BY client_id, hour`);

test('events_hourly aggregates per client and hour; a duplicate event_id does not inflate counts', async () => {
  const a = [
    eventRow({ tool_name: 'read_file' }),
    eventRow({ ts: T0 + 60, tool_name: 'write_file', outcome: 'error', http_status: 500 }),
    eventRow({ ts: T0 + 120, tool_name: 'read_file', outcome: 'denied', server_name: 'mail' }),
    eventRow({ ts: T0 + 180, tool_name: 'send_mail', tool_is_error: 1, server_name: 'mail' }),
    eventRow({ ts: T0 + 240, kind: 'auth', tool_name: '', outcome: 'auth_failed', auth_result: 'failure' }),
    eventRow({ ts: T0 + HOUR + 5, tool_name: 'read_file' }),
  ];
  const b = [
    eventRow({ client_id: 'client-b', tool_name: 'search', rpc_error_code: -32601, outcome: 'error' }),
  ];
  await ch.insert('events', [...a, ...b]);

  // Redelivery: the same events ingested again later, in another insert (another MV block).
  const redelivered = [a[1]!, a[4]!, b[0]!].map((r) => ({
    ...r,
    ingested_at: T0 + 600,
    ver: MAX_U32 - (T0 + 600),
  }));
  await ch.insert('events', redelivered);

  const rows = await hourly(sql`${dbIdent(db)}.events_hourly`);
  const view = rows.map((r) => ({
    client_id: r.client_id,
    hour: r.hour,
    calls: Number(r.calls),
    errors: Number(r.errors),
    auth_failures: Number(r.auth_failures),
    tools: Number(r.tools),
    servers: Number(r.servers),
    tool_set: r.tool_set,
    server_set: r.server_set,
    request_bytes: Number(r.request_bytes),
  }));
  assert.deepEqual(view, [
    {
      client_id: 'client-a',
      hour: '2024-01-02 10:00:00',
      calls: 5,
      errors: 3, // error, denied, tool_is_error
      auth_failures: 1,
      tools: 3, // '' (the auth event) is not a tool
      servers: 2,
      tool_set: ['read_file', 'send_mail', 'write_file'],
      server_set: ['files', 'mail'],
      request_bytes: 700, // NOTE: sums overcount redeliveries (5 events + 2 redelivered copies)
    },
    {
      client_id: 'client-a',
      hour: '2024-01-02 11:00:00',
      calls: 1,
      errors: 0,
      auth_failures: 0,
      tools: 1,
      servers: 1,
      tool_set: ['read_file'],
      server_set: ['files'],
      request_bytes: 100,
    },
    {
      client_id: 'client-b',
      hour: '2024-01-02 10:00:00',
      calls: 1,
      errors: 1,
      auth_failures: 0,
      tools: 1,
      servers: 1,
      tool_set: ['search'],
      server_set: ['files'],
      request_bytes: 200,
    },
  ]);

  // Merging parts must not change the answer.
  await ch.command(sql`OPTIMIZE TABLE ${dbIdent(db)}.events_hourly FINAL`);
  const merged = await hourly(sql`${dbIdent(db)}.events_hourly`);
  assert.deepEqual(
    merged.map((r) => [r.client_id, r.hour, r.calls, r.errors]),
    rows.map((r) => [r.client_id, r.hour, r.calls, r.errors]),
  );
});

test('events: the FIRST ingested copy of an event_id survives merges', async () => {
  const id = randomUUID();
  const original = eventRow({
    event_id: id,
    client_id: 'client-first',
    ingested_at: T0 + 10,
    error_message: 'original',
  });
  const later = eventRow({
    event_id: id,
    client_id: 'client-first',
    ingested_at: T0 + 99,
    error_message: 'forged',
  });
  await ch.insert('events', [later]); // inserted first on purpose: order of arrival must not matter
  await ch.insert('events', [original]);
  const t = sql`${dbIdent(db)}.events`;
  const final = await ch.query<{ error_message: string }>(
    sql`SELECT error_message FROM ${t} FINAL WHERE event_id = ${id}`,
  );
  assert.deepEqual(
    final.map((r) => r.error_message),
    ['original'],
  );
  await ch.command(sql`OPTIMIZE TABLE ${t} FINAL`);
  const physical = await ch.query<{ error_message: string }>(
    sql`SELECT error_message FROM ${t} WHERE event_id = ${id}`,
  );
  assert.deepEqual(
    physical.map((r) => r.error_message),
    ['original'],
  );
});

test('unknown columns and non-allowlisted tables are refused', async () => {
  await assert.rejects(ch.insert('events', [{ ...eventRow(), not_a_column: 1 }]), (err: unknown) => {
    assert.ok(err instanceof ClickHouseRequestError);
    assert.equal(err.retryable, false);
    return true;
  });
  await assert.rejects(ch.insert('events_hourly', [{}]), /allowlist/);
  await assert.rejects(ch.insert('schema_migrations', [{}]), /allowlist/);
});

// Writer and analyst may only use the database `mcp_audit` (users.xml allow_databases), so this
// test migrates the real database (what `npm test` does anyway) and writes its rows on
// 1970-01-02, a day partition nothing else uses, which it drops afterwards.
test('writer inserts into mcp_audit.events; analyst reads but cannot write, alter or drop', async () => {
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: 'mcp_audit' });
  const writer = client('WRITER', { database: 'mcp_audit' });
  const analyst = client('ANALYST', { database: 'mcp_audit' });
  const tag = `perm-${randomUUID()}`;
  const day = 86_400 + 3_600; // 1970-01-02 01:00:00
  try {
    await writer.insert('events', [
      eventRow({ ts: day, ingested_at: day, client_id: tag }),
      eventRow({ ts: day + 1, ingested_at: day, client_id: tag }),
    ]);
    const [seen] = await analyst.query<{ n: string }>(
      sql`SELECT count() AS n FROM mcp_audit.events WHERE client_id = ${tag}`,
    );
    assert.equal(Number(seen?.n), 2);
    const [agg] = await analyst.query<{ calls: string }>(
      sql`SELECT uniqExactMerge(calls) AS calls FROM mcp_audit.events_hourly WHERE client_id = ${tag}`,
    );
    assert.equal(Number(agg?.calls), 2);

    const refused = async (c: ClickHouse, q: SqlFragment, code: number) =>
      assert.rejects(c.command(q), (err: unknown) => {
        assert.ok(err instanceof ClickHouseRequestError, String(err));
        assert.equal(err.serverCode, code, err.message);
        return true;
      });
    // readonly=1 → 164 READONLY
    await assert.rejects(analyst.insert('events', [eventRow({ ts: day, client_id: tag })]), /readonly/i);
    await refused(analyst, sql`INSERT INTO mcp_audit.events (client_id) VALUES (${tag})`, 164);
    await refused(analyst, sql`ALTER TABLE mcp_audit.events DELETE WHERE client_id = ${tag}`, 164);
    await refused(analyst, sql`ALTER TABLE mcp_audit.events DROP PARTITION 19700102`, 164);
    await refused(analyst, sql`DROP TABLE mcp_audit.events`, 164);
    await refused(analyst, sql`TRUNCATE TABLE mcp_audit.events`, 164);
    await refused(analyst, sql`CREATE TABLE mcp_audit.analyst_was_here (x UInt8) ENGINE = Log`, 164);
    await assert.rejects(
      // NOTE: a value that differs from the current one (18.16 accepts re-setting the current value,
      // and max_threads is 1 on a machine with one physical core).
      analyst.query(sql`SELECT 1`, { settings: { max_block_size: '12345' } }),
      /readonly/i,
      'the analyst cannot even change a setting',
    );
    // allow_ddl=0 → 392 QUERY_IS_PROHIBITED
    await refused(writer, sql`ALTER TABLE mcp_audit.events DELETE WHERE client_id = ${tag}`, 392);
    await refused(writer, sql`ALTER TABLE mcp_audit.events DROP PARTITION 19700102`, 392);
    await refused(writer, sql`DROP TABLE mcp_audit.events`, 392);
    await refused(writer, sql`TRUNCATE TABLE mcp_audit.events`, 392);
    await refused(writer, sql`OPTIMIZE TABLE mcp_audit.events FINAL`, 392);
    await refused(writer, sql`CREATE TABLE mcp_audit.writer_was_here (x UInt8) ENGINE = Log`, 392);
  } finally {
    await admin.command(sql`ALTER TABLE mcp_audit.events DROP PARTITION 19700102`);
    await admin.command(sql`ALTER TABLE mcp_audit.events_hourly DROP PARTITION 197001`);
    await writer.close();
    await analyst.close();
  }
});
