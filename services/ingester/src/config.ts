import { z } from 'zod';
import { envInt, opsEnv, serviceEnv } from '@mcp-audit/service-kit';
import { clickhouseEnv } from '@mcp-audit/clickhouse';
import { kafkaEnvSchema, TOPIC_EVENTS, TOPIC_EVENTS_DLQ } from '@mcp-audit/kafka';

export const ingesterEnvSchema = kafkaEnvSchema.extend({
  ...serviceEnv('INGESTER').shape,
  ...opsEnv('INGESTER', 9471).shape,
  ...clickhouseEnv('WRITER').shape,
  MCP_AUDIT_INGESTER_GROUP_ID: z.string().default('mcp-audit-ingester'),
  MCP_AUDIT_EVENTS_TOPIC: z.string().default(TOPIC_EVENTS),
  MCP_AUDIT_DLQ_TOPIC: z.string().default(TOPIC_EVENTS_DLQ),
  /**
   * X25519 public key (PEM) that dead-lettered originals are sealed to. Only `dlq replay` holds the
   * private key. Unset: dead letters keep only their redacted preview and cannot be replayed.
   */
  MCP_AUDIT_DLQ_PUBLIC_KEY_FILE: z.string().optional(),
  /** ClickHouse guidance: thousands of rows per insert, about one insert per second per table. */
  MCP_AUDIT_INGESTER_BATCH_ROWS: envInt(10_000, 1, 1_000_000),
  MCP_AUDIT_INGESTER_FLUSH_MS: envInt(1_000, 10, 60_000),
  /** Rows held in memory at most (backpressure: the consumer waits beyond this). */
  MCP_AUDIT_INGESTER_MAX_BUFFERED_ROWS: envInt(50_000, 100, 10_000_000),
  /**
   * Consumer group members in this process, each with its own writer, so one parses while another
   * waits on its insert (kafkajs fetches again only once a fetch is durable). 1 to 6 (the topic's
   * partitions; a member beyond them idles).
   */
  MCP_AUDIT_INGESTER_LANES: envInt(1, 1, 6),
  /**
   * Bytes per partition a fetch takes at most (kafkajs maxBytesPerPartition). What a fetch brings is
   * held, parsed, as rows until it is durable: with 6 partitions, about 6 times this per lane.
   */
  MCP_AUDIT_INGESTER_FETCH_BYTES_PER_PARTITION: envInt(4 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024),
  MCP_AUDIT_REDACTION_KEY: z.string().min(16, 'MCP_AUDIT_REDACTION_KEY must be at least 16 characters'),
});

export type IngesterEnv = z.infer<typeof ingesterEnvSchema>;
