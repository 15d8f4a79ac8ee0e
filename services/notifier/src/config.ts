import { z } from 'zod';
import { envInt, opsEnv, serviceEnv } from '@mcp-audit/service-kit';
import { clickhouseEnv } from '@mcp-audit/clickhouse';
import { kafkaEnvSchema, TOPIC_ALERTS } from '@mcp-audit/kafka';

export const TOPIC_ALERTS_DLQ = 'mcp.audit.alerts.dlq';

export const notifierEnvSchema = kafkaEnvSchema.extend({
  ...serviceEnv('NOTIFIER').shape,
  ...opsEnv('NOTIFIER', 9472).shape,
  ...clickhouseEnv('WRITER').shape,
  MCP_AUDIT_NOTIFIER_GROUP_ID: z.string().default('mcp-audit-notifier'),
  MCP_AUDIT_ALERTS_TOPIC: z.string().default(TOPIC_ALERTS),
  MCP_AUDIT_NOTIFIER_DLQ_TOPIC: z.string().default(TOPIC_ALERTS_DLQ),
  /** Routing file (deploy/notifier/routes.example.json): destinations and rules, secrets by reference. */
  MCP_AUDIT_NOTIFIER_ROUTES_FILE: z.string().min(1, 'a routing file is required (see README: notifier)'),
  /** Base URL of the web console; alerts link to `${url}/alerts/<alert_id>`. */
  MCP_AUDIT_CONSOLE_URL: z.string().url().default('http://127.0.0.1:9475'),
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
});

export type NotifierEnv = z.infer<typeof notifierEnvSchema>;
