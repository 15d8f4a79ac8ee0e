import { Kafka, logLevel, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from '@mcp-audit/service-kit';
import type { KafkaConfig } from './config.js';

export type { Kafka };

const LEVEL: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs client whose own log lines go through pino (never to the console). */
export function createKafka(cfg: KafkaConfig, log: Logger): Kafka {
  const klog = log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    ssl: cfg.ssl,
    ...(cfg.sasl ? { sasl: cfg.sasl as SASLOptions } : {}),
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    // Fail fast and let the caller decide: kafkajs's defaults retry for minutes.
    retry: { initialRetryTime: 200, retries: 5, maxRetryTime: 5_000 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        // NOTE: kafkajs logs broker addresses and sometimes SASL mechanism names, never passwords.
        klog[LEVEL[level] ?? 'info']({ ...rest }, String(message));
      },
  });
}
