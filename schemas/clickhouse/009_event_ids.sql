-- event_ids: one row per stored content of an event id, so the ingester can refuse a copy that
-- reuses an id with other content BEFORE it reaches mcp_audit.events (services/ingester, README
-- "One event per event_id"). Every reader and rollup is then right by construction: only one content
-- per id is ever stored, whatever hour, day or client a forged copy claims.
--
-- digest: SHA-256 (hex) of the canonical stored row minus event_id and bookkeeping (ver, ingested_at,
-- kafka_partition, kafka_offset), computed by the ingester (event-ids.guard.ts). '' = a row backfilled
-- from events below: the ingester then reads that stored row and compares it column by column.
-- ORDER BY (event_id, digest) + small granules: the ingester looks up one batch's ids per query
-- (`WHERE event_id IN (…)`); identical copies (redeliveries) merge, different contents (only possible
-- in a race between two ingesters) both stay visible to the lookup.
-- Same day partitions as events (by event time): retention drops this table's day together with the
-- events day (services/retention/src/retention.job.ts WITH_EVENTS), never on its own; once an
-- original's day is gone, its id is forgotten with it.
CREATE TABLE IF NOT EXISTS mcp_audit.event_ids
(
    event_id UUID,
    digest String,
    ts DateTime('UTC'),
    client_id String,
    ingested_at DateTime('UTC'),
    ver UInt32
)
ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (event_id, digest)
SETTINGS index_granularity = 256;

-- A copy the ingester refused because its id was already stored with other content (it also went to
-- the dead-letter topic with AUDIT_ERR_EVENT_ID_CONFLICT). The detector's event_id_reuse reads it and
-- raises the high alert. No values, only where each copy came from and the names of the differing
-- columns. A redelivered refusal is recorded again: readers group by event_id.
-- Month partitions (not a day: retention leaves it alone): alert evidence, kept like alerts.
CREATE TABLE IF NOT EXISTS mcp_audit.event_id_conflicts
(
    event_id UUID,
    -- ingestion time of the refused copy
    detected_at DateTime('UTC'),
    fields Array(String),
    stored_ts DateTime('UTC'),
    stored_client_id String,
    stored_source_id String,
    stored_ingested_at DateTime('UTC'),
    stored_kafka_partition Int32,
    stored_kafka_offset Int64,
    refused_ts DateTime('UTC'),
    refused_client_id String,
    refused_source_id String,
    refused_digest String,
    refused_kafka_partition Int32,
    refused_kafka_offset Int64
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(detected_at)
ORDER BY (detected_at, event_id);

-- The ids stored before this table existed, content unknown (digest ''). Re-running after a crash only
-- adds identical rows, merged away.
INSERT INTO mcp_audit.event_ids
SELECT event_id, '' AS digest, ts, client_id, ingested_at, ver
FROM mcp_audit.events;
