import { z } from 'zod';
import { kafkaEnvSchema, TOPIC_EVENTS } from '@mcp-audit/kafka';
import { envTimeoutMs, parseEnv, SdkConfigError } from '../env.js';
import type { AuditLogger } from '../logger.js';
import type { AuditSink } from '../sink.js';
import { createKafkaSink } from './kafka.sink.js';

/** Kafka: the shared MCP_AUDIT_KAFKA_* fragment plus the topic and client id. */
const kafkaSinkEnv = kafkaEnvSchema.extend({
  MCP_AUDIT_SDK_SINK: z.literal('kafka'),
  MCP_AUDIT_SDK_KAFKA_TOPIC: z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,249}$/, 'must be a Kafka topic name')
    .default(TOPIC_EVENTS),
  MCP_AUDIT_SDK_KAFKA_CLIENT_ID: z.string().max(255).default('mcp-audit-sdk'),
  MCP_AUDIT_SDK_TIMEOUT_MS: envTimeoutMs,
});

/** `sinkFromEnv` for `MCP_AUDIT_SDK_SINK=kafka` (what it calls when @mcp-audit/kafka is installed). */
export function kafkaSinkFromEnv(
  env: Record<string, string | undefined> = process.env,
  opts: { logger?: AuditLogger } = {},
): AuditSink {
  const k = parseEnv(kafkaSinkEnv, env);
  const mech = k.MCP_AUDIT_KAFKA_SASL_MECHANISM;
  if (mech && (!k.MCP_AUDIT_KAFKA_SASL_USERNAME || !k.MCP_AUDIT_KAFKA_SASL_PASSWORD)) {
    throw new SdkConfigError(
      'invalid configuration:\n  MCP_AUDIT_KAFKA_SASL_USERNAME, MCP_AUDIT_KAFKA_SASL_PASSWORD: required when MCP_AUDIT_KAFKA_SASL_MECHANISM is set',
    );
  }
  return createKafkaSink({
    brokers: k.MCP_AUDIT_KAFKA_BROKERS,
    clientId: k.MCP_AUDIT_SDK_KAFKA_CLIENT_ID,
    topic: k.MCP_AUDIT_SDK_KAFKA_TOPIC,
    ssl: k.MCP_AUDIT_KAFKA_SSL,
    ...(mech
      ? {
          sasl: {
            mechanism: mech,
            username: k.MCP_AUDIT_KAFKA_SASL_USERNAME!,
            password: k.MCP_AUDIT_KAFKA_SASL_PASSWORD!,
          },
        }
      : {}),
    timeoutMs: k.MCP_AUDIT_SDK_TIMEOUT_MS,
    connectionTimeoutMs: k.MCP_AUDIT_KAFKA_CONNECTION_TIMEOUT_MS,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
}
