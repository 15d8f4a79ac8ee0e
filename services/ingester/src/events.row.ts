import { toolAnnotationsFromText, toolAnnotationsText, type AuditEventV1 } from '@mcp-audit/schema';

/** One row of mcp_audit.events (schemas/clickhouse/001_events.sql); keep the two in step. */
export interface EventRow {
  event_id: string;
  ts: number;
  ts_ms: number;
  ingested_at: number;
  ver: number;
  schema_version: number;
  kind: string;
  source_type: string;
  source_id: string;
  source_version: string;
  client_id: string;
  client_name: string;
  client_user: string;
  client_agent: string;
  client_ip: string;
  client_user_agent: string;
  session_id: string;
  server_name: string;
  server_version: string;
  server_transport: string;
  method: string;
  tool_name: string;
  tool_definition_hash: string;
  outcome: string;
  http_status: number | null;
  rpc_error_code: number | null;
  tool_is_error: number | null;
  trace_id: string;
  auth_method: string;
  auth_result: string;
  auth_reason: string;
  error_code: string;
  error_message: string;
  duration_ms: number;
  request_bytes: number;
  response_bytes: number;
  args: string;
  response_digest: string;
  label_keys: string[];
  label_values: string[];
  raw: string;
  kafka_partition: number;
  kafka_offset: number;
  tool_annotations: string;
}

const MAX_U32 = 4294967295;

/**
 * `ver` makes the FIRST ingested copy of an event_id win at merge time (ReplacingMergeTree keeps
 * the highest version): a redelivered or forged later duplicate can never replace the original.
 */
export function toEventRow(
  e: AuditEventV1,
  raw: string,
  meta: { partition: number; offset: string; ingestedAtMs: number },
): EventRow {
  const tsMs = Date.parse(e.ts);
  const ingestedSec = Math.floor(meta.ingestedAtMs / 1000);
  const labels = Object.entries(e.labels ?? {});
  return {
    event_id: e.event_id,
    // DateTime columns take epoch seconds in JSONEachRow; milliseconds live in ts_ms.
    ts: Math.floor(tsMs / 1000),
    ts_ms: tsMs % 1000,
    ingested_at: ingestedSec,
    ver: MAX_U32 - ingestedSec,
    schema_version: e.schema_version,
    kind: e.kind,
    source_type: e.source.type,
    source_id: e.source.id,
    source_version: e.source.version,
    client_id: e.client.id,
    client_name: e.client.name ?? '',
    client_user: e.client.user ?? '',
    client_agent: e.client.agent ?? '',
    client_ip: e.client.ip ?? '',
    client_user_agent: e.client.user_agent ?? '',
    session_id: e.client.session_id ?? '',
    server_name: e.server.name,
    server_version: e.server.version ?? '',
    server_transport: e.server.transport,
    method: e.method,
    tool_name: e.tool?.name ?? '',
    tool_definition_hash: e.tool?.definition_hash ?? '',
    outcome: e.outcome,
    http_status: e.http_status ?? null,
    rpc_error_code: e.rpc_error_code ?? null,
    tool_is_error: e.tool_is_error === undefined ? null : e.tool_is_error ? 1 : 0,
    trace_id: e.trace_id ?? '',
    auth_method: e.auth?.method ?? '',
    auth_result: e.auth?.result ?? '',
    auth_reason: e.auth?.reason ?? '',
    error_code: e.error === undefined ? '' : String(e.error.code),
    error_message: e.error?.message ?? '',
    duration_ms: e.duration_ms,
    request_bytes: e.request_bytes,
    response_bytes: e.response_bytes,
    // '' = absent (the contract makes args optional); '{}' is an explicit empty object.
    args: e.args === undefined ? '' : JSON.stringify(e.args),
    response_digest: e.response_digest ?? '',
    label_keys: labels.map(([k]) => k),
    label_values: labels.map(([, v]) => v),
    raw,
    kafka_partition: meta.partition,
    kafka_offset: Number(meta.offset),
    tool_annotations: toolAnnotationsText(e.tool?.annotations),
  };
}

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const opt = (v: unknown): string | undefined => (str(v) === '' ? undefined : str(v));
const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/** Parse ClickHouse's DateTime text ('YYYY-MM-DD hh:mm:ss', UTC) or epoch seconds. */
function dateTimeToMs(v: unknown): number {
  if (typeof v === 'number') return v * 1000;
  const s = String(v);
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  return Date.parse(`${s.replace(' ', 'T')}Z`);
}

/**
 * Rebuild the v1 event from a stored row (as returned by a JSONEachRow SELECT *). The inverse of
 * `toEventRow` for every field of the contract; the stored `raw` copy additionally keeps unknown
 * fields.
 */
export function fromEventRow(row: Record<string, unknown>): Record<string, unknown> {
  const keys = (row.label_keys as string[] | undefined) ?? [];
  const values = (row.label_values as string[] | undefined) ?? [];
  const ts = new Date(dateTimeToMs(row.ts) + Number(row.ts_ms ?? 0)).toISOString();
  const toolName = opt(row.tool_name);
  const authMethod = opt(row.auth_method);
  const errorCode = opt(row.error_code);
  const toolIsError = num(row.tool_is_error);
  return dropUndefined({
    schema_version: Number(row.schema_version),
    event_id: str(row.event_id),
    ts,
    kind: str(row.kind),
    source: { type: str(row.source_type), id: str(row.source_id), version: str(row.source_version) },
    client: dropUndefined({
      id: str(row.client_id),
      name: opt(row.client_name),
      user: opt(row.client_user),
      agent: opt(row.client_agent),
      ip: opt(row.client_ip),
      user_agent: opt(row.client_user_agent),
      session_id: opt(row.session_id),
    }),
    server: dropUndefined({
      name: str(row.server_name),
      version: opt(row.server_version),
      transport: str(row.server_transport),
    }),
    method: str(row.method),
    tool: toolName
      ? dropUndefined({
          name: toolName,
          definition_hash: opt(row.tool_definition_hash),
          annotations: toolAnnotationsFromText(str(row.tool_annotations)),
        })
      : undefined,
    outcome: str(row.outcome),
    http_status: num(row.http_status),
    rpc_error_code: num(row.rpc_error_code),
    tool_is_error: toolIsError === undefined ? undefined : toolIsError === 1,
    trace_id: opt(row.trace_id),
    auth: authMethod
      ? dropUndefined({ method: authMethod, result: str(row.auth_result), reason: opt(row.auth_reason) })
      : undefined,
    error: errorCode !== undefined ? { code: errorCode, message: str(row.error_message) } : undefined,
    duration_ms: Number(row.duration_ms),
    request_bytes: Number(row.request_bytes),
    response_bytes: Number(row.response_bytes),
    args: str(row.args) === '' ? undefined : (JSON.parse(str(row.args)) as unknown),
    response_digest: opt(row.response_digest),
    labels: keys.length > 0 ? Object.fromEntries(keys.map((k, i) => [k, values[i] ?? ''])) : undefined,
  });
}
