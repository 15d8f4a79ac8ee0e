import { z } from 'zod';
import { envHost, envInt, logLevel } from '@mcp-audit/service-kit';
import { kafkaEnvSchema, TOPIC_ALERTS } from '@mcp-audit/kafka';

export const TOPIC_ALERTS_DLQ = 'mcp.audit.alerts.dlq';

export const notifierEnvSchema = kafkaEnvSchema.extend({
  MCP_AUDIT_LOG_LEVEL: logLevel,
  MCP_AUDIT_NOTIFIER_HOST: envHost,
  MCP_AUDIT_NOTIFIER_PORT: envInt(9472, 0, 65535),
  MCP_AUDIT_NOTIFIER_GROUP_ID: z.string().default('mcp-audit-notifier'),
  MCP_AUDIT_ALERTS_TOPIC: z.string().default(TOPIC_ALERTS),
  MCP_AUDIT_NOTIFIER_DLQ_TOPIC: z.string().default(TOPIC_ALERTS_DLQ),
  /** Routing file (deploy/notifier/routes.example.json): destinations and rules, secrets by reference. */
  MCP_AUDIT_NOTIFIER_ROUTES_FILE: z.string().min(1, 'a routing file is required (see README: notifier)'),
  /** Base URL of the web console; alerts link to `${url}/alerts/<alert_id>`. */
  MCP_AUDIT_CONSOLE_URL: z.string().url().default('http://127.0.0.1:9474'),
  MCP_AUDIT_NOTIFIER_TIMEOUT_MS: envInt(10_000, 100, 120_000),
  /** Attempts per delivery before it is dead-lettered (with the defaults: about half an hour). */
  MCP_AUDIT_NOTIFIER_MAX_ATTEMPTS: envInt(12, 1, 1_000),
  MCP_AUDIT_NOTIFIER_BACKOFF_BASE_MS: envInt(1_000, 1, 600_000),
  MCP_AUDIT_NOTIFIER_BACKOFF_MAX_MS: envInt(300_000, 10, 3_600_000),
  /**
   * Jobs held in memory at most, shared equally among the destinations. Beyond its share a
   * destination's jobs wait in the outbox (ClickHouse) and are read back as it drains; the consumer
   * never waits, so a dead destination holds back only itself.
   */
  MCP_AUDIT_NOTIFIER_MAX_PENDING: envInt(10_000, 10, 1_000_000),
  MCP_AUDIT_NOTIFIER_SHUTDOWN_MS: envInt(25_000, 1_000, 600_000),
  MCP_AUDIT_CLICKHOUSE_URL: z.string().url().default('http://127.0.0.1:8123'),
  MCP_AUDIT_CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/)
    .default('mcp_audit'),
  MCP_AUDIT_CLICKHOUSE_WRITER_USER: z.string().default('mcp_writer'),
  MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: z.string().min(1, 'the writer password is required'),
});

export type NotifierEnv = z.infer<typeof notifierEnvSchema>;
