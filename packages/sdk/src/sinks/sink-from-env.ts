import { z } from 'zod';
import { kafkaEnvSchema, TOPIC_EVENTS } from '@mcp-audit/kafka';
import { ConfigError, envInt, parseConfig, type Logger } from '@mcp-audit/service-kit';
import type { AuditSink } from '../sink.js';
import { createCollectorSink } from './collector.sink.js';
import { createKafkaSink } from './kafka.sink.js';

const common = {
  MCP_AUDIT_SDK_TIMEOUT_MS: envInt(5_000, 100, 120_000),
};

/** Kafka: the shared MCP_AUDIT_KAFKA_* fragment plus the topic and client id. */
const kafkaSinkEnv = kafkaEnvSchema.extend({
  MCP_AUDIT_SDK_SINK: z.literal('kafka'),
  MCP_AUDIT_SDK_KAFKA_TOPIC: z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,249}$/, 'must be a Kafka topic name')
    .default(TOPIC_EVENTS),
  MCP_AUDIT_SDK_KAFKA_CLIENT_ID: z.string().max(255).default('mcp-audit-sdk'),
  ...common,
});

const collectorSinkEnv = z.object({
  MCP_AUDIT_SDK_SINK: z.literal('collector'),
  MCP_AUDIT_SDK_COLLECTOR_URL: z.url({
    protocol: /^https?$/,
    error: 'must be the collector URL, e.g. http://127.0.0.1:9470',
  }),
  MCP_AUDIT_SDK_COLLECTOR_TOKEN: z.string().min(16, 'must be an ingest token of this source'),
  ...common,
});

const sinkKind = z.object({
  MCP_AUDIT_SDK_SINK: z.enum(['kafka', 'collector'], { error: 'must be kafka or collector' }),
});

/**
 * Builds the sink the environment asks for: `MCP_AUDIT_SDK_SINK=kafka` (MCP_AUDIT_KAFKA_BROKERS,
 * MCP_AUDIT_KAFKA_SSL, MCP_AUDIT_KAFKA_SASL_*, MCP_AUDIT_SDK_KAFKA_TOPIC) or `collector`
 * (MCP_AUDIT_SDK_COLLECTOR_URL, MCP_AUDIT_SDK_COLLECTOR_TOKEN). Throws a ConfigError whose message
 * names each bad variable; never prints secrets.
 */
export function sinkFromEnv(
  env: Record<string, string | undefined> = process.env,
  opts: { logger?: Logger } = {},
): AuditSink {
  const { MCP_AUDIT_SDK_SINK } = parseConfig(sinkKind, env);
  if (MCP_AUDIT_SDK_SINK === 'collector') {
    const c = parseConfig(collectorSinkEnv, env);
    return createCollectorSink({
      url: c.MCP_AUDIT_SDK_COLLECTOR_URL,
      token: c.MCP_AUDIT_SDK_COLLECTOR_TOKEN,
      timeoutMs: c.MCP_AUDIT_SDK_TIMEOUT_MS,
    });
  }
  const k = parseConfig(kafkaSinkEnv, env);
  const mech = k.MCP_AUDIT_KAFKA_SASL_MECHANISM;
  if (mech && (!k.MCP_AUDIT_KAFKA_SASL_USERNAME || !k.MCP_AUDIT_KAFKA_SASL_PASSWORD)) {
    throw new ConfigError(
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
