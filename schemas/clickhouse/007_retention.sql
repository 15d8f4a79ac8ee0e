-- Retention, legal holds and the integrity ledger (services/retention; format in
-- services/retention/LEDGER.md). Every table here is append-only.
--
-- integrity_ledger: one row per signed ledger record (a seal or an addendum of one hour of
-- mcp_audit.events). `record` holds the exact canonical JSON that was signed, `sig` the hex
-- Ed25519 signature; the other columns are copies for querying. Never dropped: no partitions.
CREATE TABLE IF NOT EXISTS mcp_audit.integrity_ledger
(
    seq UInt64,
    table_name String,
    hour DateTime('UTC'),
    kind String,
    rows UInt64,
    root String,
    cutoff DateTime('UTC'),
    prev String,
    key_id String,
    record String,
    sig String,
    written_at DateTime('UTC')
)
ENGINE = MergeTree()
ORDER BY seq;

-- integrity_leaves: the (event_id, leaf hash) list of each record, so a failing hour can be told
-- apart into rows added, removed and changed. Not trusted on its own: verify recomputes the signed
-- root from it before using it. Day partitions of event time, dropped with the events' day.
CREATE TABLE IF NOT EXISTS mcp_audit.integrity_leaves
(
    seq UInt64,
    hour DateTime('UTC'),
    event_id String,
    leaf FixedString(32)
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(hour)
ORDER BY (seq, event_id);

-- retention_receipts: one signed receipt per dropped partition. Never dropped.
CREATE TABLE IF NOT EXISTS mcp_audit.retention_receipts
(
    receipt_id String,
    at DateTime('UTC'),
    table_name String,
    partition String,
    rows UInt64,
    first_ts DateTime('UTC'),
    last_ts DateTime('UTC'),
    receipt String,
    key_id String,
    sig String
)
ENGINE = MergeTree()
ORDER BY (at, receipt_id);

-- legal_holds: one row per action on a hold ('create' or 'release'), with who, when and why. A hold
-- is active while it has a 'create' row and no 'release' row. Never dropped.
CREATE TABLE IF NOT EXISTS mcp_audit.legal_holds
(
    hold_id String,
    action String,
    case_id String,
    reason String,
    from_ms Int64,
    to_ms Int64,
    clients Array(String),
    actor String,
    note String,
    at DateTime('UTC'),
    at_ms Int64
)
ENGINE = MergeTree()
ORDER BY (hold_id, at_ms);
