import { dbIdent, join, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import { alertMessageSchema, type AlertMessage } from '@mcp-audit/schema';
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

/** A position in a partition of the alerts topic: a message's offset and the job's place in it. */
export interface OutboxCursor {
  partition: number;
  offset: bigint;
  seq: number;
}

export interface PendingQuery {
  groupId: string;
  topic: string;
  destinationId: string;
  /** Per partition, the position to read from (inclusive). */
  from: readonly OutboxCursor[];
  limit: number;
  days?: number;
}

/**
 * A parked job whose message no longer parses (written by an older version, or corrupted): it is
 * dead-lettered with the reason, never retried.
 */
export interface UnreadableJob {
  unreadable: true;
  jobId: string;
  messageId: string;
  destinationId: string;
  dedupKey: string;
  /** The stored message as it is. */
  raw: string;
  /** Why it does not parse: a field path and message, never its content. */
  reason: string;
  source: NonNullable<DeliveryJob['source']>;
}

export type PendingJob = DeliveryJob | UnreadableJob;

export const isUnreadable = (j: PendingJob): j is UnreadableJob => 'unreadable' in j;

/** A stored message as a job's message, or why it is not one. */
export function parseParked(
  raw: string,
): { ok: true; message: AlertMessage } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const r = alertMessageSchema.safeParse(json);
  if (r.success) return { ok: true, message: r.data };
  const i = r.error.issues[0];
  return { ok: false, reason: `${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`.slice(0, 300) };
}

export interface Outbox {
  park(rows: OutboxRow[]): Promise<void>;
  /** Which of these job ids are already parked (a redelivered message must not be parked twice). */
  parked(groupId: string, jobIds: string[]): Promise<Set<string>>;
  /**
   * One destination's parked jobs without a final delivery row, from each cursor on, ordered by
   * partition, offset and place in the message (so per partition in topic order). A row whose
   * message does not parse comes back as an UnreadableJob in its place, so one bad row never
   * fails the whole read.
   */
  pending(q: PendingQuery): Promise<PendingJob[]>;
  /** Unfinished parked jobs of these partitions for destinations not in `known`, per destination. */
  orphans(q: {
    groupId: string;
    topic: string;
    partitions: readonly number[];
    known: readonly string[];
    days?: number;
  }): Promise<Array<{ destination_id: string; jobs: number }>>;
}

export function clickHouseOutbox(ch: ClickHouse): Outbox {
  const db = dbIdent(ch.database);
  // NOTE: a final row is written after the job ends, asynchronously (deliveries.writer.ts); the
  // engine also skips jobs it finished itself recently, so a row still in its buffer is no resend.
  const finished = (groupId: string, days: number, destinationId?: string) =>
    sql`SELECT job_id FROM ${db}.alert_deliveries
        WHERE ${destinationId === undefined ? sql`1` : sql`destination_id = ${destinationId}`}
          AND group_id = ${groupId} AND final = 1 AND at >= now() - ${(days + 1) * 86_400}`;
  return {
    park: (rows) => ch.insert('alert_outbox', rows),
    async parked(groupId, jobIds) {
      if (jobIds.length === 0) return new Set();
      const rows = await ch.query<{ job_id: string }>(
        sql`SELECT DISTINCT job_id FROM ${db}.alert_outbox WHERE group_id = ${groupId} AND has(${jobIds}, job_id)`,
      );
      return new Set(rows.map((r) => r.job_id));
    },
    async pending({ groupId, topic, destinationId, from, limit, days = 30 }) {
      if (from.length === 0 || limit <= 0) return [];
      const positions = join(
        from.map(
          (c) =>
            sql`(kafka_partition = ${c.partition} AND (kafka_offset > ${c.offset} OR (kafka_offset = ${c.offset} AND seq >= ${c.seq})))`,
        ),
        sql` OR `,
      );
      const rows = await ch.query<{
        job_id: string;
        message_id: string;
        dedup_key: string;
        destination_id: string;
        kafka_partition: number;
        kafka_offset: string;
        seq: number;
        message: string;
      }>(
        sql`SELECT job_id, message_id, dedup_key, destination_id, kafka_partition, kafka_offset, seq, message
            FROM ${db}.alert_outbox
            WHERE group_id = ${groupId} AND topic = ${topic} AND destination_id = ${destinationId}
              AND parked_at >= now() - ${days * 86_400}
              AND (${positions})
              AND job_id NOT IN (${finished(groupId, days, destinationId)})
            ORDER BY kafka_partition, kafka_offset, seq
            LIMIT ${limit}`,
      );
      return rows.map((r): PendingJob => {
        const ids = { jobId: r.job_id, messageId: r.message_id, destinationId: r.destination_id };
        const source = {
          partition: Number(r.kafka_partition),
          offset: String(r.kafka_offset),
          seq: Number(r.seq),
        };
        const m = parseParked(r.message);
        return m.ok
          ? { ...ids, message: m.message, attempts: 0, source }
          : { unreadable: true, ...ids, dedupKey: r.dedup_key, raw: r.message, reason: m.reason, source };
      });
    },
    async orphans({ groupId, topic, partitions, known, days = 30 }) {
      if (partitions.length === 0) return [];
      const rows = await ch.query<{ destination_id: string; jobs: string }>(
        sql`SELECT destination_id, count() AS jobs
            FROM ${db}.alert_outbox
            WHERE group_id = ${groupId} AND topic = ${topic} AND kafka_partition IN ${tuple([...partitions])}
              AND ${known.length > 0 ? sql`destination_id NOT IN ${tuple([...known])}` : sql`1`}
              AND parked_at >= now() - ${days * 86_400}
              AND job_id NOT IN (${finished(groupId, days)})
            GROUP BY destination_id`,
      );
      return rows.map((r) => ({ destination_id: r.destination_id, jobs: Number(r.jobs) }));
    },
  };
}
