// Issue 13 items 1 and 8 on the local ClickHouse (Debian's 18.16): what its users.xml
// (deploy/clickhouse/users.xml.tmpl) really blocks, what it cannot, and the reading users' limits.
// Talks HTTP to ClickHouse directly, because the attack is a setting in the URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stackEnv, need, suffix } from '../lib/env.js';

const env = stackEnv();
const base = env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
const user = (role: string) => ({
  name: need(env, `MCP_AUDIT_CLICKHOUSE_${role}_USER`),
  password: need(env, `MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD`),
});

type User = ReturnType<typeof user>;
interface Reply {
  status: number;
  body: string;
  /** ClickHouse's error code, parsed from `Code: N, e.displayText() = …`. */
  code: number | undefined;
}

async function query(u: User, sqlText: string, params: Record<string, string> = {}): Promise<Reply> {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${u.name}:${u.password}`).toString('base64')}` },
    body: sqlText,
  });
  const body = await res.text();
  const m = /^Code: (\d+)/.exec(body);
  return { status: res.status, body, code: m ? Number(m[1]) : undefined };
}

async function refused(u: User, sqlText: string, params: Record<string, string>, code: number, text: RegExp) {
  const r = await query(u, sqlText, params);
  assert.equal(
    r.code,
    code,
    `${u.name} ${JSON.stringify(params)} ${sqlText}: expected code ${code}, got ${r.body}`,
  );
  assert.match(r.body, text);
}

async function ok(u: User, sqlText: string, params: Record<string, string> = {}): Promise<string> {
  const r = await query(u, sqlText, params);
  assert.equal(r.status, 200, `${u.name} ${JSON.stringify(params)} ${sqlText}: ${r.body}`);
  return r.body;
}

/** The reading users and the limits their profiles must carry (README: "Query limits and quotas"). */
const READERS = [
  {
    role: 'ANALYST',
    limits: {
      max_execution_time: '60',
      max_rows_to_read: '2000000000',
      max_bytes_to_read: '400000000000',
      max_result_rows: '10000000',
      max_memory_usage: '4000000000',
      max_concurrent_queries_for_user: '16',
    },
  },
  {
    role: 'API_READER',
    limits: {
      max_execution_time: '15',
      max_rows_to_read: '200000000',
      max_bytes_to_read: '100000000000',
      max_result_rows: '500000',
      max_memory_usage: '2000000000',
      max_concurrent_queries_for_user: '16',
    },
  },
] as const;

for (const reader of READERS) {
  test(`${reader.role.toLowerCase()}: per-query limits are set, throw, and cannot be raised`, async () => {
    const u = user(reader.role);
    const settings = new Map(
      (await ok(u, `SELECT name, value FROM system.settings WHERE changed FORMAT TSV`))
        .trim()
        .split('\n')
        .map((l) => l.split('\t') as [string, string]),
    );
    for (const [name, value] of Object.entries(reader.limits))
      assert.equal(settings.get(name), value, `${u.name}: ${name}`);
    for (const mode of ['read_overflow_mode', 'result_overflow_mode', 'timeout_overflow_mode'])
      assert.equal(
        settings.get(mode),
        'throw',
        `${u.name}: ${mode} (a truncated answer would look complete)`,
      );
    assert.equal(settings.get('readonly'), '1', `${u.name}: readonly`);

    // One row over the result limit: a clear error (396 TOO_MANY_ROWS_OR_BYTES) naming the limit.
    const over = Number(reader.limits.max_result_rows) + 1;
    await refused(
      u,
      `SELECT number FROM system.numbers LIMIT ${over} FORMAT Null`,
      {},
      396,
      /Limit for result exceeded/,
    );
    await ok(u, `SELECT number FROM system.numbers LIMIT ${over - 1} FORMAT Null`);

    // Raising a limit (or readonly itself, or switching profile) by URL parameter or SET: 164 READONLY.
    for (const name of [...Object.keys(reader.limits), 'read_overflow_mode', 'readonly', 'profile']) {
      const value = name === 'read_overflow_mode' ? 'break' : name === 'profile' ? 'admin' : '0';
      await refused(u, 'SELECT 1', { [name]: value }, 164, /in readonly mode/);
    }
    await refused(u, 'SET max_result_rows = 0', {}, 164, /readonly mode/);
    // Table functions (url() reaching loopback services, remote() to another server) are refused.
    await refused(
      u,
      `SELECT * FROM url('${base}/ping', TSV, 'x String')`,
      {},
      164,
      /Table functions are forbidden/,
    );
    await refused(
      u,
      `SELECT * FROM remote('127.0.0.1', system.one)`,
      {},
      164,
      /Table functions are forbidden/,
    );
  });
}

test('api_reader: a scan over max_rows_to_read stops with 158 naming the limit', async () => {
  const u = user('API_READER');
  await refused(
    u,
    'SELECT count() FROM (SELECT number FROM system.numbers LIMIT 200000001)',
    {},
    158,
    /Limit for rows to read exceeded.*maximum: 200000000/,
  );
});

test('writer on 18.16: DDL is off and SET cannot turn it on; the URL-parameter gap the README states', async () => {
  const writer = user('WRITER');
  const admin = user('ADMIN');
  const table = `mcp_audit.h13_gap_${suffix()}`;
  try {
    await refused(
      writer,
      `CREATE TABLE ${table} (x UInt8) ENGINE = Memory`,
      {},
      392,
      /DDL queries are prohibited/,
    );
    await refused(writer, 'SET allow_ddl = 1', {}, 392, /Cannot modify 'allow_ddl'/);
    // Other databases stay out of reach, with or without DDL.
    await refused(
      writer,
      'SELECT 1 FROM default.anything',
      { allow_ddl: '1' },
      291,
      /Access denied to database default/,
    );

    // NOTE: the known 18.16 gaps (README "Security model"): its HTTP handler applies URL settings
    // without the allow_ddl check SET has, and it has no GRANT to take table functions away from a
    // user that may INSERT. If either assertion starts failing, the server closed the gap: update
    // the README instead of this test.
    await ok(writer, `CREATE TABLE ${table} (x UInt8) ENGINE = Memory`, { allow_ddl: '1' });
    await ok(writer, `DROP TABLE ${table}`, { allow_ddl: '1' });
    assert.equal((await ok(writer, `SELECT * FROM url('${base}/ping', TSV, 'x String')`)).trim(), 'Ok.');
  } finally {
    await query(admin, `DROP TABLE IF EXISTS ${table}`);
  }
});
