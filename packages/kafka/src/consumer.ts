import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@mcp-audit/observability';

export interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | undefined>;
  timestamp: string;
}

export interface BatchContext {
  heartbeat(): Promise<void>;
  /** false once stop() was called or the group rebalanced this partition away. */
  isRunning(): boolean;
  isStale(): boolean;
  /** The partition's high watermark when the batch was fetched (for lag). */
  highWatermark: string;
}

/**
 * Handle a chunk of one partition's messages (ascending offsets). Resolve only when everything in
 * the chunk is durable downstream; throw to have the chunk redelivered.
 */
export type BatchHandler = (messages: ConsumedMessage[], ctx: BatchContext) => Promise<void>;

export interface BatchConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topic: string;
  fromBeginning?: boolean;
  handler: BatchHandler;
  log: Logger;
  /** Messages handed to the handler at once; a large fetched batch is handled in chunks. */
  chunkSize?: number;
  partitionsConsumedConcurrently?: number;
  maxBytesPerPartition?: number;
  sessionTimeoutMs?: number;
}

export interface BatchConsumer {
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): { ok: boolean; details: Record<string, unknown> };
}

function toConsumed(topic: string, partition: number, m: KafkaMessage): ConsumedMessage {
  const headers: Record<string, Buffer | undefined> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    headers[k] = v === undefined ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(String(v));
  }
  return { topic, partition, offset: m.offset, key: m.key, value: m.value, headers, timestamp: m.timestamp };
}

/**
 * At-least-once batch consumer. Offsets advance only past chunks the handler finished: chunks are
 * processed in ascending order and each is resolved after its handler resolved, so the resolved
 * position is always the contiguous prefix that is durable. NOTE: kafkajs's resolveOffset is
 * last-write-wins, so never resolve out of order (a lower offset after a higher one rewinds).
 */
export function createBatchConsumer(opts: BatchConsumerOptions): BatchConsumer {
  const log = opts.log.child({ component: 'consumer', topic: opts.topic, groupId: opts.groupId });
  const consumer: Consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: 3_000,
    maxBytesPerPartition: opts.maxBytesPerPartition ?? 4 * 1024 * 1024,
    maxWaitTimeInMs: 250,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 300, retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 10_000 },
  });
  const chunkSize = opts.chunkSize ?? 5_000;
  let running = false;
  let crashed: Error | undefined;
  let lastBatchAt = 0;

  consumer.on(consumer.events.CRASH, (e) => {
    const err = e.payload.error;
    crashed = err;
    log.error({ err, restart: e.payload.restart }, 'consumer crashed');
  });
  // A crash kafkajs restarts from (restart: true) is over once the group is joined again; without
  // this, health stayed "unhealthy" forever after one broker restart.
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (crashed) log.info({ after: crashed.message }, 'consumer rejoined the group after a crash');
    crashed = undefined;
  });

  return {
    async start() {
      await consumer.connect();
      await consumer.subscribe({ topic: opts.topic, fromBeginning: opts.fromBeginning ?? true });
      running = true;
      await consumer.run({
        eachBatchAutoResolve: false,
        autoCommit: true,
        autoCommitInterval: 1_000,
        partitionsConsumedConcurrently: opts.partitionsConsumedConcurrently ?? 6,
        eachBatch: async ({
          batch,
          resolveOffset,
          heartbeat,
          commitOffsetsIfNecessary,
          isRunning,
          isStale,
        }) => {
          lastBatchAt = Date.now();
          const all = batch.messages;
          for (let i = 0; i < all.length; i += chunkSize) {
            if (!isRunning() || isStale()) return;
            const chunk = all.slice(i, i + chunkSize).map((m) => toConsumed(batch.topic, batch.partition, m));
            await opts.handler(chunk, { heartbeat, isRunning, isStale, highWatermark: batch.highWatermark });
            resolveOffset(chunk[chunk.length - 1]!.offset);
            await commitOffsetsIfNecessary();
            await heartbeat();
          }
        },
      });
    },
    async stop() {
      running = false;
      // kafkajs waits for the eachBatch in hand to finish before leaving the group.
      await consumer.disconnect();
    },
    health() {
      return { ok: running && !crashed, details: { running, crashed: crashed?.message, lastBatchAt } };
    },
  };
}
