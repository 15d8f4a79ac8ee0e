-- Incidents (services/detector): related alerts grouped into one incident, which is what pages a
-- human (one PagerDuty dedup_key, one Slack thread). Append-only like alert_transitions.
--
-- incidents: one row per incident when it opens (its id derives from its first alert, so a replay
-- writes the same id). Readers take LIMIT 1 BY incident_id.
CREATE TABLE IF NOT EXISTS mcp_audit.incidents
(
    incident_id String,
    title String,
    first_alert_id String,
    opened_at DateTime('UTC'),
    opened_at_ms Int64,
    origin String,
    written_at DateTime('UTC')
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(opened_at)
ORDER BY (opened_at_ms, incident_id);

-- incident_transitions: the timeline. kind: opened | joined | alert_resolved | resolved | reopened.
-- seq orders one incident's rows; severity/status/alerts/open_alerts are the incident after the row;
-- keys are the grouping keys (client:, addr:, session:, source:) it holds after the row, and the
-- window the event-time span of its alerts, so a restarted detector rebuilds open incidents from here.
CREATE TABLE IF NOT EXISTS mcp_audit.incident_transitions
(
    transition_id String,
    incident_id String,
    seq UInt32,
    kind String,
    alert_id String,
    detector String,
    client_id String,
    alert_severity String,
    alert_title String,
    severity String,
    status String,
    alerts UInt32,
    open_alerts UInt32,
    title String,
    keys Array(String),
    window_start_ms Int64,
    window_end_ms Int64,
    at DateTime('UTC'),
    at_ms Int64,
    note String,
    origin String,
    written_at DateTime('UTC')
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(at)
ORDER BY (incident_id, seq, transition_id);

ALTER TABLE mcp_audit.alerts ADD COLUMN incident_id String DEFAULT '';
