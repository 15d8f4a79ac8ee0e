import { z } from 'zod';
import { envInt, opsEnv, serviceEnv } from '@mcp-audit/service-kit';
import { kafkaEnvSchema, TOPIC_EVENTS, TOPIC_EVENTS_DLQ } from '@mcp-audit/kafka';

export const collectorEnvSchema = kafkaEnvSchema.extend({
  ...serviceEnv('COLLECTOR').shape,
  ...opsEnv('COLLECTOR', 9470).shape,
  /** JSON file of source credentials: [{ "id", "source_id", "sha256", "scopes": ["ingest"] }]. */
  MCP_AUDIT_COLLECTOR_TOKENS_FILE: z
    .string()
    .min(1, 'a tokens file is required (see README: collector tokens)'),
  MCP_AUDIT_COLLECTOR_BODY_LIMIT_BYTES: envInt(5 * 1024 * 1024, 1024, 100 * 1024 * 1024),
  MCP_AUDIT_COLLECTOR_MAX_EVENTS_PER_REQUEST: envInt(5_000, 1, 100_000),
  MCP_AUDIT_COLLECTOR_RATE_LIMIT_PER_MINUTE: envInt(600, 1, 1_000_000),
  /** Failed authentications per client address per minute before the address gets 429s. */
  MCP_AUDIT_COLLECTOR_AUTH_FAILURES_PER_MINUTE: envInt(30, 1, 1_000_000),
  MCP_AUDIT_COLLECTOR_REQUEST_TIMEOUT_MS: envInt(15_000, 100, 300_000),
  MCP_AUDIT_EVENTS_TOPIC: z.string().default(TOPIC_EVENTS),
  MCP_AUDIT_DLQ_TOPIC: z.string().default(TOPIC_EVENTS_DLQ),
  /**
   * X25519 public key (PEM) that dead-lettered originals are sealed to. Only `dlq replay` holds the
   * private key. Unset: dead letters keep only their redacted preview and cannot be replayed.
   */
  MCP_AUDIT_DLQ_PUBLIC_KEY_FILE: z.string().optional(),
  MCP_AUDIT_REDACTION_KEY: z.string().min(16, 'MCP_AUDIT_REDACTION_KEY must be at least 16 characters'),
});

export type CollectorEnv = z.infer<typeof collectorEnvSchema>;
