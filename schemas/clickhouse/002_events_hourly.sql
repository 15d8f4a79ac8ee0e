-- Hourly per-client rollups that feed the baselines, so baselining never rescans raw events.
-- Read with the -Merge combinators, e.g.
--   SELECT client_id, hour, uniqExactMerge(calls) AS calls, uniqExactIfMerge(errors) AS errors
--   FROM mcp_audit.events_hourly WHERE … GROUP BY client_id, hour
--
-- Counts are uniqExact over event_id, so a redelivered duplicate (the materialized view sees
-- every inserted copy) never inflates them. request_bytes and response_bytes are plain sums and
-- DO overcount when a copy is redelivered; treat them as approximate.
-- tools/servers and their sets skip '' (events without a tool): -StateIf keeps the plain
-- uniqExact / groupUniqArray state types while filtering rows.
CREATE TABLE IF NOT EXISTS mcp_audit.events_hourly
(
    hour DateTime('UTC'),
    client_id String,
    calls AggregateFunction(uniqExact, UUID),
    -- outcome error or denied, or the tool reported isError
    errors AggregateFunction(uniqExactIf, UUID, UInt8),
    -- outcome auth_failed, or an auth result of failure
    auth_failures AggregateFunction(uniqExactIf, UUID, UInt8),
    tools AggregateFunction(uniqExact, String),
    servers AggregateFunction(uniqExact, String),
    tool_set AggregateFunction(groupUniqArray, String),
    server_set AggregateFunction(groupUniqArray, String),
    request_bytes AggregateFunction(sum, UInt64),
    response_bytes AggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS mcp_audit.events_hourly_mv TO mcp_audit.events_hourly
AS SELECT
    toStartOfHour(ts) AS hour,
    client_id,
    uniqExactState(event_id) AS calls,
    uniqExactIfState(event_id, toUInt8(outcome IN ('error', 'denied') OR ifNull(tool_is_error, 0) = 1)) AS errors,
    uniqExactIfState(event_id, toUInt8(outcome = 'auth_failed' OR auth_result = 'failure')) AS auth_failures,
    uniqExactStateIf(tool_name, tool_name != '') AS tools,
    uniqExactStateIf(server_name, server_name != '') AS servers,
    groupUniqArrayStateIf(tool_name, tool_name != '') AS tool_set,
    groupUniqArrayStateIf(server_name, server_name != '') AS server_set,
    sumState(request_bytes) AS request_bytes,
    sumState(response_bytes) AS response_bytes
FROM mcp_audit.events
GROUP BY hour, client_id;
