import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { alertMessageSchema } from '@mcp-audit/schema';
import type { DeliveryJob } from './destinations.js';

/** A row of mcp_audit.alert_outbox: a routed delivery job, parked before its offset advances. */
export interface OutboxRow {
  parked_at: string;
  group_id: string;
  job_id: string;
  message_id: string;
  dedup_key: string;
  destination_id: string;
  topic: string;
  kafka_partition: number;
  kafka_offset: string;
  seq: number;
  message: string;
}

export interface Outbox {
  park(rows: OutboxRow[]): Promise<void>;
  /** Which of these job ids are already parked (a redelivered message must not be parked twice). */
  parked(groupId: string, jobIds: string[]): Promise<Set<string>>;
  /** Parked jobs without a final delivery row, in topic order. */
  unfinished(groupId: string, days?: number): Promise<DeliveryJob[]>;
}

export function clickHouseOutbox(ch: ClickHouse): Outbox {
  return {
    park: (rows) => ch.insert('alert_outbox', rows),
    async parked(groupId, jobIds) {
      if (jobIds.length === 0) return new Set();
      const rows = await ch.query<{ job_id: string }>(
        sql`SELECT DISTINCT job_id FROM mcp_audit.alert_outbox WHERE group_id = ${groupId} AND has(${jobIds}, job_id)`,
      );
      return new Set(rows.map((r) => r.job_id));
    },
    async unfinished(groupId, days = 30) {
      const rows = await ch.query<{
        job_id: string;
        message_id: string;
        destination_id: string;
        message: string;
      }>(
        sql`SELECT job_id, message_id, destination_id, message
            FROM mcp_audit.alert_outbox
            WHERE group_id = ${groupId} AND parked_at >= now() - ${days * 86_400}
              AND job_id NOT IN (
                SELECT job_id FROM mcp_audit.alert_deliveries
                WHERE group_id = ${groupId} AND final = 1 AND at >= now() - ${(days + 1) * 86_400})
            ORDER BY kafka_partition, kafka_offset, seq
            LIMIT 1 BY job_id`,
      );
      return rows.map((r) => ({
        jobId: r.job_id,
        messageId: r.message_id,
        destinationId: r.destination_id,
        message: alertMessageSchema.parse(JSON.parse(r.message)),
        attempts: 0,
      }));
    },
  };
}
