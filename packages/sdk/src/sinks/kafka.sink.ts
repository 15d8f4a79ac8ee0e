import { createKafka, createProducer, TOPIC_EVENTS, type AuditProducer } from '@mcp-audit/kafka';
import { eventKeyFor } from '@mcp-audit/schema';
import { sdkLog, stderrLogger, type AuditLogger, type AuditLogLevel } from '../logger.js';
import type { AuditEvent, AuditSink } from '../sink.js';

export interface KafkaSinkOptions {
  brokers: string[];
  clientId?: string;
  /** Default `mcp.audit.events.v1`. */
  topic?: string;
  ssl?: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** Produce request timeout (acks from all in-sync replicas). Default 5000 ms. */
  timeoutMs?: number;
  /** TCP connect timeout per broker. Default 3000 ms. */
  connectionTimeoutMs?: number;
  logger?: AuditLogger;
  /**
   * Level of kafkajs's own log lines. Default `fatal`: while a broker is down kafkajs logs every
   * reconnect attempt, and the emitter already reports delivery failures (rate-limited).
   */
  kafkaLogLevel?: AuditLogLevel;
}

/**
 * Produces each event to the events topic keyed by `eventKeyFor(client.id)` of the redacted event
 * (the emitter redacts before the sink; DESIGN: one client's events stay ordered on one partition,
 * and a secret in a client id never reaches the key), idempotent with acks=-1 through packages/kafka. Connects on first use
 * and reconnects after the broker went away, so a sink built while Kafka is down starts working
 * when Kafka comes back.
 */
export function createKafkaSink(opts: KafkaSinkOptions): AuditSink {
  if (!Array.isArray(opts.brokers) || opts.brokers.length === 0) {
    throw new TypeError('createKafkaSink: brokers must list at least one host:port');
  }
  const topic = opts.topic ?? TOPIC_EVENTS;
  const kafkaLog = sdkLog(
    opts.logger ?? stderrLogger('mcp-audit-sdk'),
    { component: 'audit-kafka-sink' },
    opts.kafkaLogLevel ?? 'fatal',
  );
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const kafka = createKafka(
    {
      brokers: opts.brokers,
      clientId: opts.clientId ?? 'mcp-audit-sdk',
      ssl: opts.ssl ?? false,
      ...(opts.sasl ? { sasl: opts.sasl } : {}),
      replicationFactor: 1,
      connectionTimeoutMs: opts.connectionTimeoutMs ?? 3_000,
      requestTimeoutMs: timeoutMs,
    },
    // NOTE: packages/kafka types its logger as pino's; it calls only child() and the four levels.
    kafkaLog as unknown as Parameters<typeof createKafka>[1],
  );
  const producer: AuditProducer = createProducer(kafka, { timeoutMs });
  let connecting: Promise<void> | undefined;
  let closed = false;

  async function ensureConnected(): Promise<void> {
    if (producer.isConnected()) return;
    connecting ??= producer.connect().finally(() => (connecting = undefined));
    await connecting;
  }

  return {
    async send(events: AuditEvent[]): Promise<void> {
      if (closed) throw new Error('kafka sink is closed');
      if (events.length === 0) return;
      await ensureConnected();
      await producer.send(
        topic,
        events.map((e) => ({ key: eventKeyFor(e.client.id), value: JSON.stringify(e) })),
      );
    },
    async close(): Promise<void> {
      closed = true;
      await connecting?.catch(() => undefined);
      await producer.disconnect();
    },
  };
}
