-- Raw audit events, one row per delivered copy (the ingester writes exactly these columns:
-- services/ingester/src/events.row.ts). Append-only: nobody's application path updates or deletes.
--
-- ReplacingMergeTree(ver), ver = 4294967295 - ingest epoch seconds: merges keep the row with the
-- highest ver, so the FIRST ingested copy of an event_id wins and a later duplicate (a redelivery,
-- or a forgery reusing the id) can never replace the original. Merges are eventual: readers that
-- need one row per event use FINAL or uniqExact(event_id).
--
-- Day partitions: retention drops whole days (ClickHouse 18.16 has no TTL).
-- Optional strings are '' when absent. Plain String rather than LowCardinality: 18.16 needs an
-- experimental setting for it.
CREATE TABLE IF NOT EXISTS mcp_audit.events
(
    event_id UUID,
    ts DateTime('UTC'),
    ts_ms UInt16,
    ingested_at DateTime('UTC'),
    ver UInt32,
    schema_version UInt8,
    kind String,
    source_type String,
    source_id String,
    source_version String,
    client_id String,
    client_name String,
    client_user String,
    client_agent String,
    client_ip String,
    client_user_agent String,
    session_id String,
    server_name String,
    server_version String,
    server_transport String,
    method String,
    tool_name String,
    tool_definition_hash String,
    outcome String,
    http_status Nullable(UInt16),
    rpc_error_code Nullable(Int32),
    tool_is_error Nullable(UInt8),
    trace_id String,
    auth_method String,
    auth_result String,
    auth_reason String,
    error_code String,
    error_message String,
    duration_ms UInt32,
    request_bytes UInt64,
    response_bytes UInt64,
    -- redacted JSON
    args String,
    response_digest String,
    label_keys Array(String),
    label_values Array(String),
    -- the redacted original JSON, unknown fields included
    raw String,
    kafka_partition Int32,
    kafka_offset Int64
)
ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (client_id, ts, event_id);
