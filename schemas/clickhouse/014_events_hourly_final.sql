-- Finalized per-hour counts for the baselines (issue 15): the numbers the baseline job reads, so it
-- no longer merges ~6.7 M uniqExact states of events_hourly for 10,000 clients x 28 days per run.
--
-- events_hourly_touched: one row per (client, hour) an insert into events touched, stamped with the
-- server time of that insert (the materialized view below). The detector's finalizer
-- (services/detector/src/hourly.finalizer.ts) finalizes every closed hour touched since its previous
-- run (minus a safety margin) by merging that hour's states ONCE into events_hourly_final; a late
-- event touches its hour again, so the hour is finalized again with it. Re-finalizing is idempotent
-- (same numbers, a later finalized_at). Its first run (no row in events_hourly_final_runs) finalizes
-- every hour events_hourly holds, so what was there before this migration needs no touched rows.
CREATE TABLE IF NOT EXISTS mcp_audit.events_hourly_touched
(
    hour DateTime('UTC'),
    client_id String,
    touched_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(touched_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS mcp_audit.events_hourly_touched_mv TO mcp_audit.events_hourly_touched
AS SELECT
    toStartOfHour(ts) AS hour,
    client_id,
    now() AS touched_at
FROM mcp_audit.events
GROUP BY hour, client_id;

-- The merged states of events_hourly as plain numbers, one row per (client, hour) and finalization:
-- calls/errors/auth_failures/tools/servers = the uniqExact counts, bytes = request + response sums,
-- tool_set/server_set = the groupUniqArray sets. Readers take the row with the latest finalized_at
-- (argMax; the ReplacingMergeTree merges the older ones away).
CREATE TABLE IF NOT EXISTS mcp_audit.events_hourly_final
(
    hour DateTime('UTC'),
    client_id String,
    calls UInt32,
    errors UInt32,
    auth_failures UInt32,
    tools UInt32,
    servers UInt32,
    bytes UInt64,
    tool_set Array(String),
    server_set Array(String),
    finalized_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(finalized_at)
PARTITION BY toYYYYMM(hour)
ORDER BY (client_id, hour);

-- The finalizer's runs: every closed hour before up_to touched before ran_at minus the margin is
-- finalized. Readers take the row with the latest ran_at. A handful of rows a day.
CREATE TABLE IF NOT EXISTS mcp_audit.events_hourly_final_runs
(
    up_to DateTime('UTC'),
    ran_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(ran_at)
ORDER BY up_to;

