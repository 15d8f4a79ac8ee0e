-- Alert delivery (services/notifier). Both tables are append-only and partitioned by day so
-- retention can drop whole days (ClickHouse 18.16 has no TTL).
--
-- alert_deliveries: one row per delivery attempt, so an analyst can see who was told what and when.
-- destination_id names a destination of the routing file, never its URL or key. final = 1 marks
-- the row that ends a job (delivered, dead_lettered, suppressed); the notifier's start-up reload
-- treats a job with a final row as done.
CREATE TABLE IF NOT EXISTS mcp_audit.alert_deliveries
(
    at DateTime('UTC'),
    at_ms UInt16,
    group_id String,
    job_id String,
    message_id String,
    alert_id String,
    dedup_key String,
    action String,
    destination_id String,
    destination_kind String,
    attempt UInt16,
    status String,
    final UInt8,
    http_status UInt16,
    latency_ms UInt32,
    error String,
    digest_id String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(at)
ORDER BY (destination_id, dedup_key, at, job_id);

-- alert_outbox: the notifier's parking place. A routed job (one alert message x one destination)
-- is written here before the Kafka offset of its message advances; at start-up every job of the
-- consumer group without a final row in alert_deliveries is loaded again, in topic order.
CREATE TABLE IF NOT EXISTS mcp_audit.alert_outbox
(
    parked_at DateTime('UTC'),
    group_id String,
    job_id String,
    message_id String,
    dedup_key String,
    destination_id String,
    topic String,
    kafka_partition Int32,
    kafka_offset Int64,
    seq UInt16,
    message String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(parked_at)
ORDER BY (group_id, kafka_partition, kafka_offset, seq);
