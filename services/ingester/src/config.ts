import { z } from 'zod';
import { envHost, envInt, logLevel } from '@mcp-audit/service-kit';
import { kafkaEnvSchema, TOPIC_EVENTS, TOPIC_EVENTS_DLQ } from '@mcp-audit/kafka';

export const ingesterEnvSchema = kafkaEnvSchema.extend({
  MCP_AUDIT_LOG_LEVEL: logLevel,
  MCP_AUDIT_INGESTER_HOST: envHost,
  MCP_AUDIT_INGESTER_PORT: envInt(9471, 0, 65535),
  MCP_AUDIT_INGESTER_GROUP_ID: z.string().default('mcp-audit-ingester'),
  MCP_AUDIT_EVENTS_TOPIC: z.string().default(TOPIC_EVENTS),
  MCP_AUDIT_DLQ_TOPIC: z.string().default(TOPIC_EVENTS_DLQ),
  MCP_AUDIT_CLICKHOUSE_URL: z.string().url().default('http://127.0.0.1:8123'),
  MCP_AUDIT_CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/)
    .default('mcp_audit'),
  MCP_AUDIT_CLICKHOUSE_WRITER_USER: z.string().default('mcp_writer'),
  MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: z.string().min(1, 'the writer password is required'),
  /** ClickHouse guidance: thousands of rows per insert, about one insert per second per table. */
  MCP_AUDIT_INGESTER_BATCH_ROWS: envInt(10_000, 1, 1_000_000),
  MCP_AUDIT_INGESTER_FLUSH_MS: envInt(1_000, 10, 60_000),
  /** Rows held in memory at most (backpressure: the consumer waits beyond this). */
  MCP_AUDIT_INGESTER_MAX_BUFFERED_ROWS: envInt(50_000, 100, 10_000_000),
  MCP_AUDIT_INGESTER_SHUTDOWN_MS: envInt(25_000, 1_000, 600_000),
  MCP_AUDIT_REDACTION_KEY: z.string().min(16, 'MCP_AUDIT_REDACTION_KEY must be at least 16 characters'),
});

export type IngesterEnv = z.infer<typeof ingesterEnvSchema>;
