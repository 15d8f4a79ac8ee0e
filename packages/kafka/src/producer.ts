import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import { AuditError } from '@mcp-audit/service-kit';

export interface OutgoingMessage {
  key: string | Buffer | null;
  value: string | Buffer;
  headers?: Record<string, string | Buffer>;
}

/** What services depend on instead of kafkajs's Producer. */
export interface AuditProducer {
  connect(): Promise<void>;
  /** Resolves once every message is acknowledged by all in-sync replicas. */
  send(topic: string, messages: OutgoingMessage[]): Promise<void>;
  disconnect(): Promise<void>;
  isConnected(): boolean;
}

export function createProducer(kafka: Kafka, opts: { timeoutMs?: number } = {}): AuditProducer {
  let connected = false;
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 100, retries: 3, maxRetryTime: 2_000 },
  });
  producer.on(producer.events.CONNECT, () => (connected = true));
  producer.on(producer.events.DISCONNECT, () => (connected = false));
  return {
    async connect() {
      await producer.connect();
      connected = true;
    },
    async send(topic, messages) {
      if (messages.length === 0) return;
      try {
        await producer.send({
          topic,
          acks: -1,
          timeout: opts.timeoutMs ?? 5_000,
          compression: CompressionTypes.GZIP,
          messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? {} })),
        });
      } catch (err) {
        throw new AuditError(
          'AUDIT_ERR_KAFKA_UNAVAILABLE',
          `kafka send to ${topic} failed: ${(err as Error).message}`,
          {
            retryable: true,
            cause: err,
          },
        );
      }
    },
    async disconnect() {
      await producer.disconnect();
      connected = false;
    },
    isConnected: () => connected,
  };
}
