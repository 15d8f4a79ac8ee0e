import { readFileSync } from 'node:fs';
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
  /** PEM files for TLS to the brokers: a private CA, and a client certificate and key for mTLS. */
  MCP_AUDIT_KAFKA_SSL_CA_FILE: z.string().optional(),
  MCP_AUDIT_KAFKA_SSL_CERT_FILE: z.string().optional(),
  MCP_AUDIT_KAFKA_SSL_KEY_FILE: z.string().optional(),
  /** SASL is optional: without a mechanism the client speaks plain Kafka (the local stack). */
  MCP_AUDIT_KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  MCP_AUDIT_KAFKA_SASL_USERNAME: z.string().optional(),
  MCP_AUDIT_KAFKA_SASL_PASSWORD: z.string().optional(),
  /** The password from a file (a container secret) instead of the environment. */
  MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE: z.string().optional(),
  /** Production clusters use 3; the local single broker can only hold 1. */
  MCP_AUDIT_KAFKA_REPLICATION_FACTOR: envInt(1, 1, 7),
  MCP_AUDIT_KAFKA_CONNECTION_TIMEOUT_MS: envInt(3000, 100, 60_000),
  MCP_AUDIT_KAFKA_REQUEST_TIMEOUT_MS: envInt(10_000, 500, 120_000),
});

export type KafkaEnv = z.infer<typeof kafkaEnvSchema>;

/** TLS options handed to kafkajs (tls.connect): certificates are always verified. */
export interface KafkaTls {
  ca?: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized: true;
}

export interface KafkaSasl {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  ssl: boolean | KafkaTls;
  sasl?: KafkaSasl;
  replicationFactor: number;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
}

/** A Kafka security setting that cannot work; the message names the variables, never a value. */
export class KafkaConfigError extends Error {
  readonly code = 'AUDIT_ERR_KAFKA_CONFIG';
  constructor(message: string) {
    super(`invalid Kafka configuration: ${message}`);
    this.name = 'KafkaConfigError';
  }
}

type SecurityEnv = Pick<
  KafkaEnv,
  | 'MCP_AUDIT_KAFKA_SSL'
  | 'MCP_AUDIT_KAFKA_SSL_CA_FILE'
  | 'MCP_AUDIT_KAFKA_SSL_CERT_FILE'
  | 'MCP_AUDIT_KAFKA_SSL_KEY_FILE'
  | 'MCP_AUDIT_KAFKA_SASL_MECHANISM'
  | 'MCP_AUDIT_KAFKA_SASL_USERNAME'
  | 'MCP_AUDIT_KAFKA_SASL_PASSWORD'
  | 'MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE'
>;

function readSecret(file: string, name: string): string {
  try {
    // One trailing newline is how secret files are usually written; it is not part of the secret.
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new KafkaConfigError(
      `${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/**
 * TLS and SASL from the environment. Neither is required (the local stack is plain Kafka on
 * loopback), but what is set must be complete: a mechanism needs a username and exactly one of a
 * password or a password file; PLAIN sends the password itself, so it needs TLS; a client
 * certificate needs its key.
 */
export function kafkaSecurityFromEnv(env: SecurityEnv): { ssl: boolean | KafkaTls; sasl?: KafkaSasl } {
  const caFile = env.MCP_AUDIT_KAFKA_SSL_CA_FILE;
  const certFile = env.MCP_AUDIT_KAFKA_SSL_CERT_FILE;
  const keyFile = env.MCP_AUDIT_KAFKA_SSL_KEY_FILE;
  if (!certFile !== !keyFile)
    throw new KafkaConfigError(
      'MCP_AUDIT_KAFKA_SSL_CERT_FILE and MCP_AUDIT_KAFKA_SSL_KEY_FILE go together (mTLS)',
    );
  const tlsFiles = caFile || certFile;
  if (tlsFiles && !env.MCP_AUDIT_KAFKA_SSL)
    throw new KafkaConfigError('MCP_AUDIT_KAFKA_SSL_*_FILE is set but MCP_AUDIT_KAFKA_SSL is not true');
  const ssl: boolean | KafkaTls = tlsFiles
    ? {
        rejectUnauthorized: true,
        ...(caFile ? { ca: [readSecret(caFile, 'MCP_AUDIT_KAFKA_SSL_CA_FILE')] } : {}),
        ...(certFile ? { cert: readSecret(certFile, 'MCP_AUDIT_KAFKA_SSL_CERT_FILE') } : {}),
        ...(keyFile ? { key: readSecret(keyFile, 'MCP_AUDIT_KAFKA_SSL_KEY_FILE') } : {}),
      }
    : env.MCP_AUDIT_KAFKA_SSL;

  const mechanism = env.MCP_AUDIT_KAFKA_SASL_MECHANISM;
  const username = env.MCP_AUDIT_KAFKA_SASL_USERNAME;
  const password = env.MCP_AUDIT_KAFKA_SASL_PASSWORD;
  const passwordFile = env.MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE;
  if (!mechanism) {
    if (username || password || passwordFile)
      throw new KafkaConfigError(
        'MCP_AUDIT_KAFKA_SASL_USERNAME/PASSWORD are set but MCP_AUDIT_KAFKA_SASL_MECHANISM is not',
      );
    return { ssl };
  }
  if (!username)
    throw new KafkaConfigError(`MCP_AUDIT_KAFKA_SASL_USERNAME is required with SASL ${mechanism}`);
  if (!password === !passwordFile)
    throw new KafkaConfigError(
      `SASL ${mechanism} needs exactly one of MCP_AUDIT_KAFKA_SASL_PASSWORD and MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE`,
    );
  if (mechanism === 'plain' && !env.MCP_AUDIT_KAFKA_SSL)
    throw new KafkaConfigError('SASL plain sends the password itself: it needs MCP_AUDIT_KAFKA_SSL=true');
  const secret = password ?? readSecret(passwordFile!, 'MCP_AUDIT_KAFKA_SASL_PASSWORD_FILE');
  if (!secret) throw new KafkaConfigError('the SASL password is empty');
  return { ssl, sasl: { mechanism, username, password: secret } };
}

export function kafkaConfigFromEnv(env: KafkaEnv, clientId: string): KafkaConfig {
  return {
    brokers: env.MCP_AUDIT_KAFKA_BROKERS,
    clientId,
    ...kafkaSecurityFromEnv(env),
    replicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
    connectionTimeoutMs: env.MCP_AUDIT_KAFKA_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: env.MCP_AUDIT_KAFKA_REQUEST_TIMEOUT_MS,
  };
}
