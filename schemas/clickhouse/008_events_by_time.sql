-- events_by_time: a time-ordered copy of the columns the analyst API searches, filters and lists
-- (services/api/src/events.queries.ts), so "the newest matches across every client" reads a few
-- small granules instead of a day of mcp_audit.events, which is ordered by client_id first.
-- Not a source of truth: the full event (args, raw, …) is read from mcp_audit.events only.
--
-- Same row semantics as events: one row per delivered copy, ReplacingMergeTree(ver) so a merge keeps
-- the copy ingested first (highest ver) of identical keys; readers take the highest ver per event_id,
-- exactly as they do on events. Same day partitions as events: retention drops this table's day
-- together with the events day (services/retention/src/retention.job.ts), never on its own.
-- index_granularity 1024: a page of 100 keys spread over a day reads ≤ 100 granules of 1,024 rows.
-- 18.16 has no projections, hence a table and a materialized view (works unchanged on 25.8).
CREATE TABLE IF NOT EXISTS mcp_audit.events_by_time
(
    event_id UUID,
    ts DateTime('UTC'),
    ts_ms UInt16,
    ver UInt32,
    kind String,
    outcome String,
    client_id String,
    client_user String,
    client_ip String,
    session_id String,
    source_id String,
    server_name String,
    tool_name String,
    method String,
    duration_ms UInt32,
    error_message String,
    label_keys Array(String),
    label_values Array(String)
)
ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, ts_ms, event_id)
SETTINGS index_granularity = 1024;

-- Every insert into events (the ingester's, as mcp_writer) writes its copy here in the same insert.
CREATE MATERIALIZED VIEW IF NOT EXISTS mcp_audit.events_by_time_mv TO mcp_audit.events_by_time
AS SELECT event_id, ts, ts_ms, ver, kind, outcome, client_id, client_user, client_ip, session_id, source_id,
    server_name, tool_name, method, duration_ms, error_message, label_keys, label_values
FROM mcp_audit.events;

-- Backfill the rows that existed before the view. Created first, the view already copies inserts
-- that race with this statement, so a row may land twice: identical copies (same key and ver) are
-- one event to every reader and merge into one. Re-running the file after a crash does the same.
INSERT INTO mcp_audit.events_by_time
SELECT event_id, ts, ts_ms, ver, kind, outcome, client_id, client_user, client_ip, session_id, source_id,
    server_name, tool_name, method, duration_ms, error_message, label_keys, label_values
FROM mcp_audit.events;
