-- Detection (services/detector). All tables are append-only MergeTree-family tables, partitioned by
-- month (baselines) or day (alerts) so retention can drop whole partitions (18.16 has no TTL).
--
-- baselines: one versioned row per (as_of, client_id), written in bulk by the baseline job from
-- events_hourly only. `version` is derived from as_of and the algorithm revision, so recomputing the
-- same as_of writes the same key: ReplacingMergeTree(computed_at) keeps the newest computation
-- (readers use FINAL or LIMIT 1 BY). A window is judged against the newest version with
-- as_of <= window start; the alert names that version.
--
-- kind: 'client' (one client), 'cohort' (clients sharing a server set; client_id = 'cohort:<key>'),
-- 'global' (all clients; client_id = '*'). Learning clients are judged against their cohort, else
-- the global row.
--
-- Profiles are in the client's local time (time_zone), so a daylight-saving change does not shift
-- a habit by an hour. Two shapes:
--   *_median/_mad/_q95: 48 pooled cells, index = day_type * 24 + local hour (day_type 0 = Mon-Fri,
--     1 = Sat-Sun); each cell pools the same hour +-1 over every day of that type in the window
--     (zero-filled), because one hour-of-week cell over 28 days holds only 4 samples.
--   *_cell_max: 168 exact hour-of-week cells, index = (ISO weekday - 1) * 24 + local hour: the largest
--     value seen in that exact hour, so a weekly job (Mondays 02:00) is normal even when pooling
--     dilutes it.
-- active_share: 48 cells, share of pooled samples (same hour +-2, same day type) with any call.
-- Metrics: calls, bytes (request + response), tools and servers (distinct per hour), auth failures.
-- Error share is not seasonal enough to profile by hour: one robust summary over active hours.
-- tools/servers: the names this client used in the window and in how many hours; on the global row,
-- in how many clients (rarity across all clients).
CREATE TABLE IF NOT EXISTS mcp_audit.baselines
(
    client_id String,
    as_of DateTime('UTC'),
    version String,
    kind String,
    computed_at DateTime('UTC'),
    state String,
    window_days UInt16,
    active_days UInt16,
    active_hours UInt32,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    time_zone String,
    cohort String,
    members UInt32,
    calls_median Array(Float64),
    calls_mad Array(Float64),
    calls_q95 Array(Float64),
    calls_cell_max Array(Float64),
    bytes_median Array(Float64),
    bytes_mad Array(Float64),
    bytes_q95 Array(Float64),
    bytes_cell_max Array(Float64),
    tools_median Array(Float64),
    tools_mad Array(Float64),
    tools_q95 Array(Float64),
    tools_cell_max Array(Float64),
    servers_median Array(Float64),
    servers_mad Array(Float64),
    servers_q95 Array(Float64),
    servers_cell_max Array(Float64),
    auth_failures_median Array(Float64),
    auth_failures_mad Array(Float64),
    auth_failures_q95 Array(Float64),
    auth_failures_cell_max Array(Float64),
    active_share Array(Float64),
    error_share_median Float64,
    error_share_mad Float64,
    error_share_q95 Float64,
    error_hours UInt32,
    auth_failures_hour_max Float64,
    tools Array(String),
    tool_counts Array(UInt32),
    servers Array(String),
    server_counts Array(UInt32)
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(as_of)
ORDER BY (as_of, client_id);

-- client_state: every client's learning/active state, appended by the baseline job with each
-- version (queryable history: the newest row per client is the current state).
CREATE TABLE IF NOT EXISTS mcp_audit.client_state
(
    client_id String,
    as_of DateTime('UTC'),
    state String,
    active_days UInt16,
    required_days UInt16,
    baseline_version String,
    cohort String,
    computed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(as_of)
ORDER BY (client_id, as_of);

-- alerts: one row per opened alert (the `alert` message of mcp.audit.alerts.v1, flattened).
-- Window and creation times are epoch milliseconds (no DateTime64 on 18.16) plus a DateTime for
-- partitioning. created_at_ms is event time (the detection instant), so a replay writes the same.
CREATE TABLE IF NOT EXISTS mcp_audit.alerts
(
    alert_id String,
    dedup_key String,
    detector String,
    client_id String,
    title String,
    summary String,
    severity String,
    window_start_ms Int64,
    window_end_ms Int64,
    observed Float64,
    expected_low Float64,
    expected_high Float64,
    score Float64,
    baseline_version String,
    contributor_tools String,
    contributor_addresses String,
    contributor_sessions String,
    sample_event_ids Array(String),
    created_at DateTime('UTC'),
    created_at_ms Int64,
    written_at DateTime('UTC'),
    origin String,
    message String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (client_id, dedup_key, created_at_ms, alert_id);

-- alert_transitions: every state change (open, acknowledged, resolved), append-only. An alert is
-- open while it has an 'open' row and no 'resolved' row. The detector reloads open alerts from here
-- at start-up.
CREATE TABLE IF NOT EXISTS mcp_audit.alert_transitions
(
    transition_id String,
    alert_id String,
    dedup_key String,
    detector String,
    client_id String,
    severity String,
    from_status String,
    to_status String,
    changed_at DateTime('UTC'),
    changed_at_ms Int64,
    actor String,
    note String,
    written_at DateTime('UTC')
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(changed_at)
ORDER BY (dedup_key, changed_at_ms, transition_id);
