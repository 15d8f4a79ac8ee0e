import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createClickHouse, dbIdent, runMigrations, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { AuditProducer, OutgoingMessage } from '@mcp-audit/kafka';
import { createLogger, generateKey, hashKey } from '@mcp-audit/service-kit';
import { staticKeyRing, type ApiKey } from '../src/api-keys.js';
import type { AccessLogRow, AccessLogWriter } from '../src/access-log.js';
import { buildApi, type ApiDeps } from '../src/app.js';
import { defaultApiConfig, type ApiConfig } from '../src/config.js';

export const SCHEMAS_DIR = fileURLToPath(new URL('../../../../schemas/clickhouse/', import.meta.url));
export const log = createLogger('api-test', {
  level: (process.env.API_TEST_LOG_LEVEL ?? 'silent') as 'silent',
});

export function makeKey(id: string, scopes: ApiKey['scopes'], disabled = false) {
  const plain = generateKey('mcpa');
  return {
    plain,
    entry: { id, sha256: hashKey(plain), scopes, ...(disabled ? { disabled } : {}) } as ApiKey,
  };
}

export const KEYS = {
  analyst: makeKey('k-analyst', ['analyst']),
  compliance: makeKey('k-compliance', ['compliance']),
  admin: makeKey('k-admin', ['admin']),
  revoked: makeKey('k-revoked', ['admin'], true),
};
export const keyRing = () => staticKeyRing(Object.values(KEYS).map((k) => k.entry));
export const bearer = (k: { plain: string }) => ({ authorization: `Bearer ${k.plain}` });

export function memoryProducer() {
  const sent: Array<{ topic: string; messages: OutgoingMessage[] }> = [];
  const p: AuditProducer & { sent: typeof sent } = {
    sent,
    connect: async () => {},
    disconnect: async () => {},
    isConnected: () => true,
    send: async (topic, messages) => void sent.push({ topic, messages }),
  };
  return p;
}

export function memoryAccessLog(fail = false) {
  const rows: AccessLogRow[] = [];
  const w: AccessLogWriter & { rows: AccessLogRow[] } = {
    rows,
    write: async (r) => {
      if (fail) throw new Error('insert refused');
      rows.push(r);
    },
  };
  return w;
}

/** A ClickHouse that answers every query with no rows (for logic tests through inject()). */
export function emptyClickHouse(queries: string[] = []): ClickHouse {
  return {
    database: 'mcp_audit',
    query: async (q) => {
      queries.push(String(q));
      return [];
    },
    command: async () => {},
    insert: async () => {},
    ping: async () => true,
    close: async () => {},
  };
}

export async function testApi(over: Partial<ApiDeps> = {}, cfg: Partial<ApiConfig> = {}) {
  const producer = memoryProducer();
  const accessLog = memoryAccessLog();
  const deps: ApiDeps = {
    reader: emptyClickHouse(),
    writer: emptyClickHouse(),
    producer,
    keys: keyRing(),
    accessLog,
    log,
    ...over,
  };
  const app = await buildApi(defaultApiConfig(cfg), deps);
  await app.ready();
  return { app, producer, accessLog, deps };
}

// ---- real ClickHouse -------------------------------------------------------------------------------

const env = process.env;
export const CH_URL = env.MCP_AUDIT_CLICKHOUSE_URL || 'http://127.0.0.1:8123';

export function adminClient(database?: string, insertTables?: string[]): ClickHouse {
  const password = env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD;
  if (!password)
    throw new Error('MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD is not set (source .local/secrets.env)');
  return createClickHouse({
    url: CH_URL,
    username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER || 'mcp_admin',
    password,
    ...(database ? { database } : {}),
    ...(insertTables ? { insertTables } : {}),
  });
}

export async function freshDatabase(tag: string): Promise<{ name: string; drop: () => Promise<void> }> {
  const name = `mcp_audit_test_${tag}_${randomBytes(4).toString('hex')}`;
  const admin = adminClient();
  await runMigrations({ client: admin, dir: SCHEMAS_DIR, database: name });
  return {
    name,
    drop: async () => {
      await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(name)}`);
      await admin.close();
    },
  };
}

const MAX_U32 = 4294967295;

/** A full events row as the ingester writes it. */
export function eventRow(o: Record<string, unknown> = {}) {
  const tsMs = (o.tsMs as number | undefined) ?? Date.now() - 60_000;
  const ingested = Math.floor(tsMs / 1000) + 5;
  const { tsMs: _drop, ...rest } = o;
  void _drop;
  return {
    event_id: randomUUID(),
    ts: Math.floor(tsMs / 1000),
    ts_ms: tsMs % 1000,
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
    label_values: ['prod'],
    raw: '{}',
    kafka_partition: 0,
    kafka_offset: 0,
    ...rest,
  };
}

/** Compliance deps that hold nothing (for the authorization matrix: the routes must reach their handlers). */
export function emptyCompliance(): import('../src/compliance.routes.js').ComplianceDeps {
  return {
    maxRangeDays: 31,
    holds: {
      create: () => Promise.reject(new Error('not in this test')),
      release: () => Promise.reject(new Error('not in this test')),
      list: async () => [],
    },
    verify: () => Promise.reject(new Error('not in this test')),
  };
}
