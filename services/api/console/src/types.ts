export interface Session {
  key_id: string;
  scopes: string[];
  csrf_token: string;
  expires_at: string;
}

export interface Range {
  from: string;
  to: string;
}

export interface EventSummary {
  event_id: string;
  ts: string;
  kind: string;
  outcome: string;
  client_id: string;
  client_user: string | null;
  client_ip: string | null;
  session_id: string | null;
  source_id: string;
  server_name: string | null;
  tool_name: string | null;
  method: string | null;
  duration_ms: number | null;
  error_message: string | null;
  labels: Record<string, string>;
}

export interface AuditEvent extends EventSummary {
  source_type?: string | null;
  source_version?: string | null;
  client_name?: string | null;
  client_agent?: string | null;
  client_user_agent?: string | null;
  server_version?: string | null;
  server_transport?: string | null;
  tool_definition_hash?: string | null;
  http_status?: number | null;
  rpc_error_code?: number | null;
  tool_is_error?: boolean | null;
  trace_id?: string | null;
  auth?: { method?: string | null; result?: string | null; reason?: string | null } | null;
  error_code?: string | null;
  request_bytes?: number | null;
  response_bytes?: number | null;
  args?: unknown;
  response_digest?: string | null;
  raw?: unknown;
  ingested_at?: string | null;
}

export interface ValueCount {
  value: string;
  count: number;
}

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

export interface AlertSummary {
  alert_id: string;
  dedup_key: string;
  detector: string;
  client_id: string;
  title: string;
  summary: string;
  severity: Severity;
  status: 'open' | 'acknowledged' | 'resolved';
  assignee: string | null;
  resolution: string | null;
  created_at: string;
  updated_at: string;
  window: { start: string; end: string };
}

export interface Transition {
  transition_id: string;
  alert_id: string;
  action: string;
  from_status: string | null;
  to_status: string | null;
  actor: string | null;
  note: string | null;
  assignee: string | null;
  resolution: string | null;
  changed_at: string;
}

export interface AlertDetail {
  alert: AlertSummary & {
    observed: number | null;
    expected: { low: number | null; high: number | null } | null;
    score: number | null;
    baseline_version: string | number | null;
    contributors: { tools?: ValueCount[]; addresses?: ValueCount[]; sessions?: ValueCount[] } | null;
    sample_event_ids: string[];
  };
  samples: AuditEvent[];
  transitions: Transition[];
  deliveries: Array<{
    destination: string;
    kind: string;
    attempt: number;
    status: string;
    http_status: number | null;
    error: string | null;
    at: string;
  }>;
}

export interface ClientPage {
  client_id: string;
  state: {
    state: 'learning' | 'active' | 'unknown';
    since: string | null;
    active_days: number;
    required_days: number;
  };
  labels: Record<string, string>;
  servers: Array<{ name: string; first_seen: string; last_seen: string; calls: number }>;
  tools: Array<{ server: string; name: string; first_seen: string; last_seen: string; calls: number }>;
  activity: Array<{ hour: string; calls: number; expected_low: number | null; expected_high: number | null }>;
  hour_of_week: number[];
  alerts: AlertSummary[];
  range: Range;
}

export interface Overview {
  range: Range;
  event_rate: Array<{ ts: string; count: number }>;
  outcomes: ValueCount[];
  top_clients: ValueCount[];
  top_tools: ValueCount[];
  open_alerts_by_severity: Record<Severity, number>;
  ingestion: {
    dead_letters: number | null;
    silent_sources: Array<{ source_id: string; last_seen: string }>;
    silent_sources_total: number;
  };
}

export interface AccessLogRow {
  at: string;
  key_id: string;
  scopes: string[] | string;
  route: string;
  method: string;
  filters: unknown;
  from: string | null;
  to: string | null;
  rows: number | null;
  status: number;
  duration_ms: number;
  ip: string | null;
  user_agent: string | null;
}

/** A legal hold (services/retention holds.ts): active while created and not released. */
export interface LegalHold {
  hold_id: string;
  case_id: string;
  reason: string;
  from: string;
  to: string;
  clients: string[];
  created_by: string;
  created_at: string;
  released_by?: string;
  released_at?: string;
  release_note?: string;
  active: boolean;
}
