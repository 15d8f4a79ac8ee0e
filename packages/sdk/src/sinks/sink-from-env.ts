import { z } from 'zod';
import { envTimeoutMs, parseEnv, SdkConfigError } from '../env.js';
import type { AuditLogger } from '../logger.js';
import type { AuditSink } from '../sink.js';
import { createCollectorSink } from './collector.sink.js';

// NOTE: the Kafka sink needs the optional peer @mcp-audit/kafka (and with it kafkajs). It is loaded
// here when it is installed and skipped when it is not, so a server that sends to the collector
// never needs it, and sinkFromEnv stays synchronous for both.
const kafkaEntry = await import('../kafka.js').catch((err: unknown) => {
  const e = err as { code?: unknown; message?: unknown };
  if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes("'@mcp-audit/kafka'")) return undefined;
  throw err;
});

const collectorSinkEnv = z.object({
  MCP_AUDIT_SDK_SINK: z.literal('collector'),
  MCP_AUDIT_SDK_COLLECTOR_URL: z.url({
    protocol: /^https?$/,
    error: 'must be the collector URL, e.g. http://127.0.0.1:9470',
  }),
  MCP_AUDIT_SDK_COLLECTOR_TOKEN: z.string().min(16, 'must be an ingest token of this source'),
  MCP_AUDIT_SDK_TIMEOUT_MS: envTimeoutMs,
});

const sinkKind = z.object({
  MCP_AUDIT_SDK_SINK: z.enum(['kafka', 'collector'], { error: 'must be kafka or collector' }),
});

/**
 * Builds the sink the environment asks for: `MCP_AUDIT_SDK_SINK=kafka` (MCP_AUDIT_KAFKA_BROKERS,
 * MCP_AUDIT_KAFKA_SSL, MCP_AUDIT_KAFKA_SASL_*, MCP_AUDIT_SDK_KAFKA_TOPIC; needs @mcp-audit/kafka
 * installed) or `collector` (MCP_AUDIT_SDK_COLLECTOR_URL, MCP_AUDIT_SDK_COLLECTOR_TOKEN). Throws an
 * SdkConfigError whose message names each bad variable; never prints secrets.
 */
export function sinkFromEnv(
  env: Record<string, string | undefined> = process.env,
  opts: { logger?: AuditLogger } = {},
): AuditSink {
  const { MCP_AUDIT_SDK_SINK } = parseEnv(sinkKind, env);
  if (MCP_AUDIT_SDK_SINK === 'collector') {
    const c = parseEnv(collectorSinkEnv, env);
    return createCollectorSink({
      url: c.MCP_AUDIT_SDK_COLLECTOR_URL,
      token: c.MCP_AUDIT_SDK_COLLECTOR_TOKEN,
      timeoutMs: c.MCP_AUDIT_SDK_TIMEOUT_MS,
    });
  }
  if (!kafkaEntry) {
    throw new SdkConfigError(
      'invalid configuration:\n  MCP_AUDIT_SDK_SINK: kafka needs the optional peer dependency @mcp-audit/kafka (npm install @mcp-audit/kafka)',
    );
  }
  return kafkaEntry.kafkaSinkFromEnv(env, opts);
}
