-- Progress of the detector's periodic (ClickHouse-query) detectors: the end of the last event-time
-- window each detector evaluated, per window length, so a restart neither skips nor repeats windows.
-- Rows only move forward; readers take max(last_end_ms), so the result is right before and after the
-- ReplacingMergeTree merges that keep the table small. A handful of rows; no partitions to drop.
CREATE TABLE IF NOT EXISTS mcp_audit.periodic_progress
(
    detector String,
    window_ms UInt64,
    last_end_ms UInt64,
    updated_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(last_end_ms)
ORDER BY (detector, window_ms);
