import { z } from 'zod';
import { envBool, envHost, envInt, logLevel } from '@mcp-audit/service-kit';
import { kafkaEnvSchema, TOPIC_ALERTS, TOPIC_EVENTS } from '@mcp-audit/kafka';

/** The detector's environment (the tuning lives in the JSON file MCP_AUDIT_DETECTOR_CONFIG). */
export const detectorEnvSchema = kafkaEnvSchema.extend({
  MCP_AUDIT_LOG_LEVEL: logLevel,
  MCP_AUDIT_DETECTOR_HOST: envHost,
  MCP_AUDIT_DETECTOR_PORT: envInt(9474, 0, 65535),
  MCP_AUDIT_DETECTOR_GROUP_ID: z.string().min(1).default('mcp-audit-detector'),
  MCP_AUDIT_EVENTS_TOPIC: z.string().min(1).default(TOPIC_EVENTS),
  MCP_AUDIT_ALERTS_TOPIC: z.string().min(1).default(TOPIC_ALERTS),
  /** JSON tuning file (services/detector/src/detector.config.ts); defaults when unset. */
  MCP_AUDIT_DETECTOR_CONFIG: z.string().optional(),
  /** Only one instance runs the periodic (ClickHouse-query) detectors. */
  MCP_AUDIT_DETECTOR_PERIODIC: envBool('true'),
  /** Run the baseline cron job in this instance (idempotent if several do). */
  MCP_AUDIT_DETECTOR_BASELINE_JOB: envBool('true'),
  /** A new consumer group starts at the beginning of the topic (true) or at its end. */
  MCP_AUDIT_DETECTOR_FROM_BEGINNING: envBool('true'),
  MCP_AUDIT_DETECTOR_PARTITIONS_CONCURRENTLY: envInt(2, 1, 64),
  MCP_AUDIT_DETECTOR_SHUTDOWN_MS: envInt(25_000, 1_000, 600_000),
  MCP_AUDIT_CLICKHOUSE_URL: z.string().url().default('http://127.0.0.1:8123'),
  MCP_AUDIT_CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/)
    .default('mcp_audit'),
  MCP_AUDIT_CLICKHOUSE_WRITER_USER: z.string().default('mcp_writer'),
  MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD: z.string().min(1, 'the writer password is required'),
  MCP_AUDIT_CLICKHOUSE_ANALYST_USER: z.string().default('mcp_analyst'),
  MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD: z.string().min(1, 'the analyst password is required'),
});

export type DetectorEnv = z.infer<typeof detectorEnvSchema>;
