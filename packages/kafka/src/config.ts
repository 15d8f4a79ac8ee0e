import { z } from 'zod';
import { envBool, envInt } from '@mcp-audit/service-kit';

/** Shared Kafka fragment of every service's config (env names are MCP_AUDIT_KAFKA_*). */
export const kafkaEnvSchema = z.object({
  MCP_AUDIT_KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((s) =>
      s
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean),
    ),
  MCP_AUDIT_KAFKA_SSL: envBool('false'),
  MCP_AUDIT_KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  MCP_AUDIT_KAFKA_SASL_USERNAME: z.string().optional(),
  MCP_AUDIT_KAFKA_SASL_PASSWORD: z.string().optional(),
  /** Production clusters use 3; the local single broker can only hold 1. */
  MCP_AUDIT_KAFKA_REPLICATION_FACTOR: envInt(1, 1, 7),
  MCP_AUDIT_KAFKA_CONNECTION_TIMEOUT_MS: envInt(3000, 100, 60_000),
  MCP_AUDIT_KAFKA_REQUEST_TIMEOUT_MS: envInt(10_000, 500, 120_000),
});

export type KafkaEnv = z.infer<typeof kafkaEnvSchema>;

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  ssl: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  replicationFactor: number;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
}

export function kafkaConfigFromEnv(env: KafkaEnv, clientId: string): KafkaConfig {
  const mech = env.MCP_AUDIT_KAFKA_SASL_MECHANISM;
  return {
    brokers: env.MCP_AUDIT_KAFKA_BROKERS,
    clientId,
    ssl: env.MCP_AUDIT_KAFKA_SSL,
    ...(mech
      ? {
          sasl: {
            mechanism: mech,
            username: env.MCP_AUDIT_KAFKA_SASL_USERNAME ?? '',
            password: env.MCP_AUDIT_KAFKA_SASL_PASSWORD ?? '',
          },
        }
      : {}),
    replicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
    connectionTimeoutMs: env.MCP_AUDIT_KAFKA_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: env.MCP_AUDIT_KAFKA_REQUEST_TIMEOUT_MS,
  };
}
