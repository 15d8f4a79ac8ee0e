import { after, before } from 'node:test';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { createClickHouse, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { eventKeyFor } from '@mcp-audit/schema';
import { need, stackEnv, suffix, waitFor } from './env.js';

export const env = stackEnv();
export const brokers = (env.MCP_AUDIT_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

export function kafka(): Kafka {
  return new Kafka({ clientId: `e2e-${suffix()}`, brokers, logLevel: logLevel.NOTHING });
}

/** Fresh, uniquely named events + DLQ topics for one test. */
/**
 * A fresh events topic (and its DLQ) for one test. On a loaded machine the broker sometimes answers
 * the leader wait of a topic it has just created with "This server does not host this
 * topic-partition" (its metadata not yet caught up): retried with new names, the half-created ones
 * deleted, so a slow broker is not a test failure.
 */
export async function createTestTopics(admin: Admin, tag: string, partitions = 6) {
  for (let attempt = 1; ; attempt++) {
    const events = `e2e.${tag}.events.${suffix()}`;
    const dlq = `e2e.${tag}.dlq.${suffix()}`;
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: events, numPartitions: partitions, replicationFactor: 1 },
          { topic: dlq, numPartitions: 1, replicationFactor: 1 },
        ],
      });
      return { events, dlq };
    } catch (err) {
      const retriable =
        (err as { retriable?: boolean }).retriable === true ||
        /does not host this topic-partition|leader/i.test(String((err as Error).message));
      if (!retriable || attempt >= 5) throw err;
      await admin.deleteTopics({ topics: [events, dlq] }).catch(() => {});
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

export async function produceEvents(
  producer: Producer,
  topic: string,
  events: Array<Record<string, unknown> | Buffer | string>,
  batch = 1000,
): Promise<void> {
  for (let i = 0; i < events.length; i += batch) {
    await producer.send({
      topic,
      acks: -1,
      messages: events.slice(i, i + batch).map((e) => {
        if (Buffer.isBuffer(e) || typeof e === 'string') return { key: 'poison', value: e };
        return {
          key: eventKeyFor(String((e.client as { id?: string } | undefined)?.id ?? 'x')),
          value: JSON.stringify(e),
        };
      }),
    });
  }
}

/** The analyst's view: rows per event_id after deduplication (FINAL), plus raw physical rows. */
export function analyst(): ClickHouse {
  return createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    username: need(env, 'MCP_AUDIT_CLICKHOUSE_ANALYST_USER'),
    password: need(env, 'MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD'),
    database: 'mcp_audit',
  });
}

export async function countBySource(
  ch: ClickHouse,
  sourceId: string,
): Promise<{ distinct: number; visible: number; physical: number }> {
  const [r] = await ch.query<{ n_distinct: string; visible: string }>(
    sql`SELECT uniqExact(event_id) AS n_distinct, count() AS visible FROM mcp_audit.events FINAL WHERE source_id = ${sourceId}`,
  );
  const [p] = await ch.query<{ physical: string }>(
    sql`SELECT count() AS physical FROM mcp_audit.events WHERE source_id = ${sourceId}`,
  );
  return {
    distinct: Number(r?.n_distinct ?? 0),
    visible: Number(r?.visible ?? 0),
    physical: Number(p?.physical ?? 0),
  };
}

export async function waitForStored(ch: ClickHouse, sourceId: string, n: number, timeoutMs = 180_000) {
  return waitFor(
    async () => {
      const c = await countBySource(ch, sourceId);
      return c.distinct >= n ? c : undefined;
    },
    { timeoutMs, intervalMs: 500, what: `${n} events of source ${sourceId} in ClickHouse` },
  );
}

export function ingesterEnv(
  topics: { events: string; dlq: string },
  group: string,
  extra: Record<string, string> = {},
) {
  return {
    MCP_AUDIT_KAFKA_BROKERS: brokers.join(','),
    MCP_AUDIT_CLICKHOUSE_URL: env.MCP_AUDIT_CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    MCP_AUDIT_CLICKHOUSE_WRITER_USER: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_USER'),
    MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: need(env, 'MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD'),
    MCP_AUDIT_REDACTION_KEY: env.MCP_AUDIT_REDACTION_KEY ?? 'test-redaction-key-0123456789',
    MCP_AUDIT_EVENTS_TOPIC: topics.events,
    MCP_AUDIT_DLQ_TOPIC: topics.dlq,
    MCP_AUDIT_INGESTER_GROUP_ID: group,
    MCP_AUDIT_INGESTER_PORT: '0',
    MCP_AUDIT_LOG_LEVEL: 'info',
    ...extra,
  };
}

export interface StackClients {
  admin: Admin;
  producer: Producer;
  ch: ClickHouse;
}

/**
 * The clients most integration test files share: a Kafka admin, an idempotent producer and the
 * analyst ClickHouse client, connected in a `before` hook (handed to `assign`) and closed in `after`.
 */
export function useStackClients(assign: (c: StackClients) => void): void {
  let c: Partial<StackClients> = {};
  before(async () => {
    const k = kafka();
    const admin = k.admin();
    await admin.connect();
    const producer = k.producer({ idempotent: true, allowAutoTopicCreation: false });
    await producer.connect();
    c = { admin, producer, ch: analyst() };
    assign(c as StackClients);
  });
  after(async () => {
    await c.producer?.disconnect();
    await c.admin?.disconnect();
    await c.ch?.close();
  });
}
