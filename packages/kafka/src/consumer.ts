import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '@mcp-audit/service-kit';

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
  /**
   * Partition assignment of this member, after every rebalance (kafkajs GROUP_JOIN), and `left` when
   * the consumer crashed or stopped (it holds nothing then). For state that follows partitions, such
   * as the notifier's parked deliveries.
   */
  assignments?: AssignmentListener;
}

export interface AssignmentListener {
  joined(partitions: number[], memberId: string): void;
  left(reason: 'crash' | 'stop'): void;
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
  const chunkSize = opts.chunkSize ?? 5_000;
  let running = false;
  let crashed: Error | undefined;
  let lastBatchAt = 0;
  let restarts = 0;
  let attempt = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let consumer: Consumer = makeConsumer();

  function makeConsumer(): Consumer {
    const c = opts.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: 3_000,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 4 * 1024 * 1024,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 300, retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 10_000 },
    });
    c.on(c.events.CRASH, (e) => {
      const err = e.payload.error;
      crashed = err;
      log.error({ err, restart: e.payload.restart }, 'consumer crashed');
      // NOTE: kafkajs gives up for good on some errors (a broker down longer than its connection
      // retries ends in KafkaJSNumberOfRetriesExceeded with restart: false). A consumer that stops
      // while the process stays up loses nothing but silently stops the pipeline, so start a new one.
      if (!e.payload.restart && running && c === consumer) scheduleRestart();
    });
    // A crash kafkajs restarts from (restart: true) is over once the group is joined again; without
    // this, health stayed "unhealthy" forever after one broker restart.
    c.on(c.events.GROUP_JOIN, (e) => {
      if (crashed) log.info({ after: crashed.message }, 'consumer rejoined the group after a crash');
      crashed = undefined;
      attempt = 0;
      opts.assignments?.joined([...(e.payload.memberAssignment[opts.topic] ?? [])], e.payload.memberId);
    });
    if (opts.assignments) {
      const listener = opts.assignments;
      c.on(c.events.CRASH, () => listener.left('crash'));
      c.on(c.events.STOP, () => listener.left('stop'));
    }
    return c;
  }

  function scheduleRestart(): void {
    if (restartTimer) return;
    // 1 s, 2 s, 4 s … capped at 30 s between attempts
    const delay = Math.min(30_000, 1_000 * 2 ** Math.min(attempt, 5));
    attempt += 1;
    restarts += 1;
    log.warn({ delayMs: delay, restarts }, 'restarting the consumer kafkajs gave up on');
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      void (async () => {
        const old = consumer;
        await old.disconnect().catch(() => undefined);
        if (!running) return;
        consumer = makeConsumer();
        try {
          await runConsumer(consumer);
        } catch (err) {
          crashed = err as Error;
          log.error({ err }, 'consumer restart failed');
          if (running) scheduleRestart();
        }
      })();
    }, delay);
  }

  async function runConsumer(c: Consumer): Promise<void> {
    await c.connect();
    await c.subscribe({ topic: opts.topic, fromBeginning: opts.fromBeginning ?? true });
    await c.run({
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
  }

  return {
    async start() {
      running = true;
      await runConsumer(consumer);
    },
    async stop() {
      running = false;
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = undefined;
      // kafkajs waits for the eachBatch in hand to finish before leaving the group.
      await consumer.disconnect();
    },
    health() {
      return {
        ok: running && !crashed,
        details: { running, crashed: crashed?.message, lastBatchAt, restarts },
      };
    },
  };
}
