import type { CanonicalValues } from '../ledger/canonical.js';

/**
 * OCSF 1.3.0 API Activity (class_uid 6003, category Application Activity 6) from one event's
 * canonical values. Field by field in OCSF.md; deterministic (verify-bundle recomputes every object
 * from its `raw_data` and compares).
 */
export const OCSF_VERSION = '1.3.0';
export const API_ACTIVITY = {
  class_uid: 6003,
  class_name: 'API Activity',
  category_uid: 6,
  category_name: 'Application Activity',
};

/** activity_id: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other, 0 Unknown. */
const ACTIVITY: Record<string, number> = {
  'tools/list': 2,
  'resources/list': 2,
  'resources/read': 2,
  'resources/templates/list': 2,
  'prompts/list': 2,
  'prompts/get': 2,
  'completion/complete': 2,
  'resources/subscribe': 1,
  'resources/unsubscribe': 4,
  'logging/setLevel': 3,
};
const ACTIVITY_NAME: Record<number, string> = {
  0: 'Unknown',
  1: 'Create',
  2: 'Read',
  3: 'Update',
  4: 'Delete',
  99: 'Other',
};

export function activityIdOf(method: string): number {
  if (method === '') return 0;
  return ACTIVITY[method] ?? 99;
}

/** status_id: 1 Success, 2 Failure, 0 Unknown; severity_id: 1 Informational, 2 Low, 3 Medium. */
function statusOf(outcome: string): {
  status_id: number;
  status: string;
  severity_id: number;
  severity: string;
} {
  switch (outcome) {
    case 'ok':
      return { status_id: 1, status: 'Success', severity_id: 1, severity: 'Informational' };
    case 'error':
      return { status_id: 2, status: 'Failure', severity_id: 2, severity: 'Low' };
    case 'denied':
    case 'auth_failed':
      return { status_id: 2, status: 'Failure', severity_id: 3, severity: 'Medium' };
    default:
      return { status_id: 0, status: 'Unknown', severity_id: 0, severity: 'Unknown' };
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : String(v));
const num = (v: unknown) => (typeof v === 'number' ? v : Number(v));
const nonEmpty = <T extends object>(o: T): T | undefined =>
  Object.values(o).some((x) => x !== undefined && x !== '') ? o : undefined;
const opt = (s: unknown) => (typeof s === 'string' && s !== '' ? s : undefined);

export interface OcsfContext {
  /** The exporting software's version (metadata.product.version). */
  productVersion: string;
}

/**
 * The OCSF object of an event. `raw` is the event's canonical row (LEDGER.md), carried as
 * `raw_data` so the bundle can be checked against the ledger; `ingestedAt` (epoch s) goes to
 * `unmapped.ingested_at` (it places the row in the ledger's segments).
 */
export function toOcsf(
  v: CanonicalValues,
  raw: string,
  ingestedAt: number,
  ctx: OcsfContext,
): Record<string, unknown> {
  const activity_id = activityIdOf(str(v.method));
  const st = statusOf(str(v.outcome));
  const labels: Record<string, string> = {};
  (v.label_keys as string[]).forEach((k, i) => (labels[k] = (v.label_values as string[])[i] ?? ''));
  const timeMs = num(v.ts) * 1000 + num(v.ts_ms);
  const o: Record<string, unknown> = {
    class_uid: API_ACTIVITY.class_uid,
    class_name: API_ACTIVITY.class_name,
    category_uid: API_ACTIVITY.category_uid,
    category_name: API_ACTIVITY.category_name,
    activity_id,
    activity_name: ACTIVITY_NAME[activity_id],
    type_uid: API_ACTIVITY.class_uid * 100 + activity_id,
    type_name: `API Activity: ${ACTIVITY_NAME[activity_id]}`,
    time: timeMs,
    duration: num(v.duration_ms),
    severity_id: st.severity_id,
    severity: st.severity,
    status_id: st.status_id,
    status: st.status,
    status_code: v.http_status === null ? undefined : String(v.http_status),
    status_detail: opt(v.error_message),
    message: `${str(v.kind)} ${str(v.method) || '-'}${v.tool_name ? ` ${str(v.tool_name)}` : ''}: ${str(v.outcome)}`,
    metadata: {
      version: OCSF_VERSION,
      uid: str(v.event_id),
      product: { name: 'mcp-audit', vendor_name: 'mcp-audit', version: ctx.productVersion },
      log_name: 'mcp_audit.events',
      original_time: String(v.ts),
      correlation_uid: opt(v.trace_id),
      labels: Object.keys(labels).length ? Object.entries(labels).map(([k, x]) => `${k}=${x}`) : undefined,
    },
    cloud: { provider: 'unknown' },
    api: {
      operation: str(v.method) || str(v.kind),
      service: { name: str(v.server_name), version: opt(v.server_version) },
      request: { uid: str(v.event_id) },
      response: nonEmpty({
        code: v.rpc_error_code === null ? undefined : num(v.rpc_error_code),
        error: opt(v.error_code),
        message: opt(v.error_message),
      }),
    },
    actor: {
      user: nonEmpty({ name: opt(v.client_user), uid: opt(v.client_user) }),
      app_name: opt(v.client_name) ?? opt(v.client_id),
      app_uid: opt(v.client_id),
      session: nonEmpty({ uid: opt(v.session_id) }),
    },
    src_endpoint: { ip: opt(v.client_ip) },
    http_request: nonEmpty({ user_agent: opt(v.client_user_agent) }),
    resources: v.tool_name
      ? [{ name: str(v.tool_name), type: 'mcp_tool', uid: opt(v.tool_definition_hash) }]
      : undefined,
    raw_data: raw,
    unmapped: {
      kind: str(v.kind),
      schema_version: num(v.schema_version),
      source_type: str(v.source_type),
      source_id: str(v.source_id),
      source_version: str(v.source_version),
      client_agent: str(v.client_agent),
      server_transport: str(v.server_transport),
      tool_is_error: v.tool_is_error,
      auth_method: str(v.auth_method),
      auth_result: str(v.auth_result),
      auth_reason: str(v.auth_reason),
      request_bytes: str(v.request_bytes),
      response_bytes: str(v.response_bytes),
      args: str(v.args),
      response_digest: str(v.response_digest),
      raw: str(v.raw),
      labels,
      ingested_at: ingestedAt,
    },
  };
  return o;
}
