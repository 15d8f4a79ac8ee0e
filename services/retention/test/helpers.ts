import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { CANONICAL_COLUMN_NAMES, type CanonicalValues } from '../src/ledger/canonical.js';
import { createRowStream, type RowStream } from '../src/ledger/stream.js';

export const env = process.env;
export const stackAvailable = Boolean(env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD);

export const MIGRATIONS = fileURLToPath(new URL('../../../../schemas/clickhouse/', import.meta.url));

export const RETENTION_TABLES = [
  'events',
  'integrity_ledger',
  'integrity_leaves',
  'retention_receipts',
  'legal_holds',
  'alerts',
  'alert_transitions',
  'alert_deliveries',
  'access_log',
];

export interface TestDb {
  database: string;
  ch: ClickHouse;
  stream: RowStream;
  drop(): Promise<void>;
}

/** A database of its own (all migrations applied), as the admin user. */
export async function testDb(prefix = 'retention_test'): Promise<TestDb> {
  const database = `${prefix}_${randomBytes(4).toString('hex')}`;
  const base = {
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER ?? 'mcp_admin',
    password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD ?? '',
    requestTimeoutMs: 300_000,
  };
  const boot = createClickHouse(base);
  await runMigrations({ client: boot, dir: MIGRATIONS, database });
  await boot.close();
  const ch = createClickHouse({ ...base, database, insertTables: RETENTION_TABLES });
  return {
    database,
    ch,
    stream: createRowStream({ ...base, database }),
    async drop() {
      await ch.command(sql`DROP DATABASE IF EXISTS ${dbIdent(database)}`);
      await ch.close();
    },
  };
}

export const tempDir = (p = 'retention-') => mkdtempSync(join(tmpdir(), p));

/** A stored events row (canonical columns + bookkeeping). */
export type EventRow = CanonicalValues & {
  ingested_at: number;
  ver: number;
  kafka_partition: number;
  kafka_offset: number;
};

/** UUIDv7-shaped, lowercase. */
export function uuid7(ms: number): string {
  const u = randomUUID().replace(/-/g, '');
  const t = ms.toString(16).padStart(12, '0');
  const h = `${t}7${u.slice(13)}`;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function makeRow(
  tsMs: number,
  i: number,
  over: Partial<EventRow> = {},
  ingestedSec?: number,
): EventRow {
  const ia = ingestedSec ?? Math.floor(tsMs / 1000) + 5;
  const row: EventRow = {
    event_id: uuid7(tsMs),
    ts: Math.floor(tsMs / 1000),
    ts_ms: tsMs % 1000,
    schema_version: 1,
    kind: 'tool_call',
    source_type: 'gateway',
    source_id: 'gw-1',
    source_version: '1.0.0',
    client_id: `client-${i % 7}`,
    client_name: 'Claude "Desktop"',
    client_user: 'alice@example.com',
    client_agent: '',
    client_ip: '10.0.0.1',
    client_user_agent: 'ua/1.0 (x\\y)',
    session_id: `s-${i % 3}`,
    server_name: 'files',
    server_version: '2.1',
    server_transport: 'http',
    method: 'tools/call',
    tool_name: 'read_file',
    tool_definition_hash: 'ab'.repeat(32),
    outcome: i % 5 === 0 ? 'error' : 'ok',
    http_status: i % 4 === 0 ? null : 200,
    rpc_error_code: i % 5 === 0 ? -32000 : null,
    tool_is_error: i % 5 === 0 ? 1 : null,
    trace_id: '',
    auth_method: 'api_key',
    auth_result: 'success',
    auth_reason: '',
    error_code: '',
    error_message: i % 5 === 0 ? 'line1\nline2\t"quoted" é ✓' : '',
    duration_ms: 10 + i,
    request_bytes: String(100 + i),
    response_bytes: '18446744073709551615',
    args: JSON.stringify({ path: `/tmp/${i}`, n: i }),
    response_digest: 'cd'.repeat(32),
    label_keys: i % 2 ? ['env', 'team'] : [],
    label_values: i % 2 ? ['prod', 'a"b\\c'] : [],
    raw: JSON.stringify({ event_id: 'x', note: 'unicode ☃ and / slash' }),
    ingested_at: ia,
    ver: 4294967295 - ia,
    kafka_partition: 0,
    kafka_offset: i,
    ...over,
  };
  return row;
}

/** The canonical values of a stored row (what canonicalRow takes). */
export function canonicalOf(r: EventRow): CanonicalValues {
  return Object.fromEntries(CANONICAL_COLUMN_NAMES.map((c) => [c, r[c]]));
}

/** Polls until fn() is truthy (mutations on 18.16 are asynchronous). */
export async function waitFor<T>(fn: () => Promise<T>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until every mutation of a table has finished. */
export async function waitMutations(ch: ClickHouse, database: string, table: string): Promise<void> {
  await waitFor(async () => {
    const r = await ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM system.mutations WHERE database = ${database} AND table = ${table} AND is_done = 0`,
    );
    return Number(r[0]?.n ?? 1) === 0;
  }, `mutations on ${database}.${table}`);
}
