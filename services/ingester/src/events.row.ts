import { fromEventRow, remainderOfReceived, toolAnnotationsText, type AuditEventV1 } from '@mcp-audit/schema';

// The inverse lives beside reconstructEvent (packages/schema stored-event.ts), which every reader uses.
export { fromEventRow, reconstructEvent } from '@mcp-audit/schema';

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
  /** What the typed columns do not hold (packages/schema stored-event.ts); '' when nothing. */
  raw: string;
  kafka_partition: number;
  kafka_offset: number;
  tool_annotations: string;
}

const MAX_U32 = 4294967295;

/**
 * `e` and `raw` are the pair redactEvent returns: the validated event and the redacted JSON text it
 * came from (unknown fields included). NOTE: `e` must be exactly what the schema gave for `raw`, with
 * nothing added (the remainder is found by counting members); add to the row afterwards instead. The
 * row stores only the remainder of `raw`: `reconstructEvent(row)` gives the event back.
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
  const row: EventRow = {
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
    raw: '',
    kafka_partition: meta.partition,
    kafka_offset: Number(meta.offset),
    tool_annotations: toolAnnotationsText(e.tool?.annotations),
  };
  row.raw = remainderOfReceived(raw, e, () => fromEventRow(row as unknown as Record<string, unknown>));
  return row;
}
