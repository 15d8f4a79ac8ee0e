-- Analyst API (services/api).
--
-- access_log: "audit of the auditors". One row per request that reads or changes audit data, written
-- by the API before its response completes (a request whose row cannot be written fails with 503 and
-- returns nothing). Append-only; day partitions so retention can drop whole days. `at_ms` is epoch
-- milliseconds (no DateTime64 on 18.16); `from_ms`/`to_ms` are the queried time range (0 when the
-- route has none). `filters` is the validated query/body as JSON (never a key or a session token).
-- phase: 'response' (the row written before the answer), 'export_complete' (an export's final count).
CREATE TABLE IF NOT EXISTS mcp_audit.access_log
(
    at DateTime('UTC'),
    at_ms Int64,
    request_id String,
    key_id String,
    scopes Array(String),
    auth String,
    route String,
    method String,
    filters String,
    from_ms Int64,
    to_ms Int64,
    rows UInt64,
    status UInt16,
    duration_ms UInt32,
    ip String,
    user_agent String,
    phase String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(at)
ORDER BY (at, request_id);

-- Triage by humans through the API: what a transition did (open, acknowledge, assign, note, resolve,
-- auto_resolve, expire), who it was assigned to, and a resolve's reason (true_positive, benign,
-- false_positive, duplicate). The detector's older rows have '' (readers derive the action from
-- to_status and actor). 18.16 has no ADD COLUMN IF NOT EXISTS: the migration runner skips an ALTER
-- that was already applied.
ALTER TABLE mcp_audit.alert_transitions ADD COLUMN action String DEFAULT '';
ALTER TABLE mcp_audit.alert_transitions ADD COLUMN assignee String DEFAULT '';
ALTER TABLE mcp_audit.alert_transitions ADD COLUMN resolution String DEFAULT '';
