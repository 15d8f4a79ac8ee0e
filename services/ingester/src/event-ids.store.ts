import { dbIdent, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { EventIdStore, StoredId } from './event-ids.guard.js';

/** mcp_audit.event_ids and mcp_audit.events as the ingester's ClickHouse user reads them. */
export function clickHouseEventIdStore(ch: ClickHouse): EventIdStore {
  const db = dbIdent(ch.database);
  return {
    async lookup(ids) {
      if (ids.length === 0) return [];
      const rows = await ch.query<{
        event_id: string;
        digest: string;
        ts: number;
        client_id: string;
        ver: number;
        ingested_at: number;
      }>(sql`
        SELECT toString(event_id) AS event_id, digest, toUInt32(ts) AS ts, client_id, ver,
               toUInt32(ingested_at) AS ingested_at
        FROM ${db}.event_ids WHERE event_id IN ${tuple(ids)}`);
      return rows.map((r): StoredId => ({
        ...r,
        ts: Number(r.ts),
        ver: Number(r.ver),
        ingested_at: Number(r.ingested_at),
      }));
    },
    async storedRows(keys) {
      if (keys.length === 0) return [];
      // SELECT *: every column, so a column added to events is compared without touching this file.
      // DateTime columns come back as text: their epoch seconds, as EventRow holds them, replace them.
      // The events primary key is (client_id, ts, event_id): the three IN lists keep this a few granules.
      const rows = await ch.query<Record<string, unknown>>(sql`
        SELECT *, toUInt32(ts) AS ts_epoch_s, toUInt32(ingested_at) AS ingested_epoch_s
        FROM ${db}.events
        WHERE client_id IN ${tuple([...new Set(keys.map((k) => k.client_id))])}
          AND ts IN ${tuple([...new Set(keys.map((k) => new Date(k.ts * 1000)))])}
          AND event_id IN ${tuple([...new Set(keys.map((k) => k.event_id))])}`);
      return rows.map(({ ts_epoch_s, ingested_epoch_s, ...r }) => ({
        ...r,
        ts: Number(ts_epoch_s),
        ingested_at: Number(ingested_epoch_s),
      }));
    },
  };
}
