import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createClickHouse, type ClickHouse, type ClickHouseOptions } from '@mcp-audit/clickhouse';
import { createKafka, type Kafka } from '@mcp-audit/kafka';
import { createLogger, type Logger } from '@mcp-audit/service-kit';
import type { AlertLifecycle, Finding } from '../src/model.js';

/** Repo root (compiled tests live in services/detector/dist/test). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const SCHEMAS_DIR = `${REPO_ROOT}schemas/clickhouse/`;

/** The local stack's credentials: the environment first, then .local/secrets.env. */
function stackEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  const file = `${process.env.MCP_AUDIT_LOCAL_DIR ?? `${REPO_ROOT}.local`}/secrets.env`;
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!;
    }
  }
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('MCP_AUDIT_') && v) out[k] = v;
  return out;
}

type Role = 'ADMIN' | 'WRITER' | 'ANALYST';
const USERS: Record<Role, string> = { ADMIN: 'mcp_admin', WRITER: 'mcp_writer', ANALYST: 'mcp_analyst' };

export function chClient(role: Role, extra: Partial<ClickHouseOptions> = {}): ClickHouse {
  const env = stackEnv();
  const password = env[`MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD`];
  if (!password) throw new Error(`MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD is not set: run \`npm start\``);
  return createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL || 'http://127.0.0.1:8123',
    username: env[`MCP_AUDIT_CLICKHOUSE_${role}_USER`] || USERS[role],
    password,
    ...extra,
  });
}

/** A client of the tests' Kafka (MCP_AUDIT_KAFKA_BROKERS, plain TCP as the local stacks run it). */
export function testKafka(clientId: string, log: Logger): Kafka {
  return createKafka(
    {
      brokers: (process.env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
      clientId,
      ssl: false,
      replicationFactor: 1,
      connectionTimeoutMs: 3_000,
      requestTimeoutMs: 10_000,
    },
    log,
  );
}

export const suffix = (): string => randomBytes(4).toString('hex');
export const silentLog = () => createLogger('detector-periodic-test', { level: 'silent' });

const MAX_U32 = 4294967295;

/** A full mcp_audit.events row as the ingester writes it; `at` is the event time in epoch ms. */
export function eventRow(at: number, o: Record<string, unknown> = {}): Record<string, unknown> {
  const ts = Math.floor(at / 1000);
  const ingested = ts + 5;
  return {
    event_id: randomUUID(),
    ts,
    ts_ms: at % 1000,
    ingested_at: ingested,
    ver: MAX_U32 - ingested,
    schema_version: 1,
    kind: 'tool_call',
    source_type: 'gateway',
    source_id: 'gw-periodic-test',
    source_version: '1.0.0',
    client_id: 'client',
    client_name: '',
    client_user: '',
    client_agent: '',
    client_ip: '',
    client_user_agent: '',
    session_id: '',
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
    label_keys: [],
    label_values: [],
    raw: '{}',
    kafka_partition: 0,
    kafka_offset: 0,
    ...o,
  };
}

/** An auth failure row. */
export const authFail = (at: number, ip: string, clientId: string, o: Record<string, unknown> = {}) =>
  eventRow(at, {
    kind: 'auth',
    method: '',
    tool_name: '',
    server_name: '',
    client_ip: ip,
    client_id: clientId,
    outcome: 'auth_failed',
    auth_result: 'failure',
    auth_reason: 'invalid key',
    http_status: 401,
    ...o,
  });

/** A successful auth row. */
export const authOk = (at: number, ip: string, clientId: string, o: Record<string, unknown> = {}) =>
  eventRow(at, {
    kind: 'auth',
    method: '',
    tool_name: '',
    server_name: '',
    client_ip: ip,
    client_id: clientId,
    outcome: 'ok',
    auth_result: 'success',
    ...o,
  });

/** Records what the runner hands to the lifecycle. */
export function recordingLifecycle(): AlertLifecycle & {
  raised: Finding[];
  resolved: Array<{ dedupKey: string; at: number; reason: string }>;
} {
  const raised: Finding[] = [];
  const resolved: Array<{ dedupKey: string; at: number; reason: string }> = [];
  return {
    raised,
    resolved,
    async raise(f) {
      raised.push(f);
    },
    async resolve(dedupKey, at, reason) {
      resolved.push({ dedupKey, at, reason });
    },
  };
}

/** A random day years back (2005–2014), UTC midnight: windows no other test uses. */
export function randomPastDay(): number {
  const days = randomBytes(2).readUInt16BE(0) % 3650;
  return Date.UTC(2005, 0, 1) + days * 86_400_000;
}
