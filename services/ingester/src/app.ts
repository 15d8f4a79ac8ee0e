import type { AuditProducer, BatchConsumer, Kafka, Sealer } from '@mcp-audit/kafka';
import { createBatchConsumer, createProducer } from '@mcp-audit/kafka';
import type { Logger, Registry } from '@mcp-audit/service-kit';
import { BatchWriter } from '@mcp-audit/service-kit';
import { createAuditEventsHandler, type EventIdConflictRow } from './audit-events.handler.js';
import { EventIdGuard, type EventIdRow, type EventIdStore } from './event-ids.guard.js';
import type { EventRedactor } from '@mcp-audit/redaction';
import type { EventRow } from './events.row.js';
import { createIngesterMetrics } from './metrics.js';

export interface IngesterConfig {
  groupId: string;
  eventsTopic: string;
  dlqTopic: string;
  batchRows: number;
  flushMs: number;
  maxBufferedRows: number;
  fromBeginning?: boolean;
  /**
   * Consumers (group members) in this process, each with its own writer: while one waits on its
   * ClickHouse insert, another parses. kafkajs fetches again only after every chunk of its last
   * fetch is durable, so one member leaves the CPU idle for every insert. Default 1.
   */
  lanes?: number;
  /** Bytes per partition per fetch (kafkajs maxBytesPerPartition). */
  fetchBytesPerPartition?: number;
}

export interface IngesterDeps {
  kafka: Kafka;
  /** Inserts rows into mcp_audit.events as the writer user. */
  insertEvents: (rows: EventRow[]) => Promise<void>;
  /** Inserts rows into mcp_audit.event_ids (reservations, before their events rows). */
  insertEventIds: (rows: EventIdRow[]) => Promise<void>;
  /** Inserts rows into mcp_audit.event_id_conflicts. */
  insertConflicts: (rows: EventIdConflictRow[]) => Promise<void>;
  /** Reads mcp_audit.event_ids and the stored events rows behind them. */
  eventIds: EventIdStore;
  isRetryableInsertError: (err: unknown) => boolean;
  redactor: EventRedactor;
  /** Seals dead-lettered originals to the `dlq replay` key (MCP_AUDIT_DLQ_PUBLIC_KEY_FILE). */
  dlqSealer?: Sealer;
  log: Logger;
  registry: Registry;
  producer?: AuditProducer;
}

export interface Ingester {
  start(): Promise<void>;
  /** Stop fetching, finish the batch in hand, flush, commit. */
  stop(): Promise<void>;
  health(): { ok: boolean; details: Record<string, unknown> };
  /** One writer per lane. */
  writers: BatchWriter<EventRow>[];
}

export function buildIngester(cfg: IngesterConfig, deps: IngesterDeps): Ingester {
  const log = deps.log.child({ component: 'ingester' });
  const metrics = createIngesterMetrics(deps.registry);
  const producer = deps.producer ?? createProducer(deps.kafka);
  // The guard inserts the ids before their events (reservations, see event-ids.guard.ts): a crash in
  // between leaves ids reserved and not stored; the redelivered batch (its offsets were not committed)
  // finds its own content reserved and not in events, and writes it.
  const guard = new EventIdGuard(deps.eventIds, deps.insertEventIds);
  const laneCount = Math.max(1, cfg.lanes ?? 1);
  const lanes = Array.from({ length: laneCount }, (_, lane) => {
    const writer = new BatchWriter<EventRow>({
      name: 'events',
      insert: (rows) => deps.insertEvents(rows),
      isRetryable: deps.isRetryableInsertError,
      // The buffer bound is the process's: each lane holds its share.
      maxRows: cfg.batchRows,
      flushMs: cfg.flushMs,
      maxBufferedRows: Math.max(1, Math.floor(cfg.maxBufferedRows / laneCount)),
      log,
      onFlush: (rows, ms) => {
        metrics.batchRows.observe(rows);
        metrics.flushSeconds.observe(ms / 1000);
        log.debug({ table: 'events', lane, rows, ms }, 'batch flushed');
      },
      onRetry: () => metrics.insertRetries.inc(),
    });
    const handler = createAuditEventsHandler({
      writer,
      guard,
      recordConflicts: deps.insertConflicts,
      isRetryable: deps.isRetryableInsertError,
      producer,
      redactor: deps.redactor,
      ...(deps.dlqSealer ? { dlqSealer: deps.dlqSealer } : {}),
      dlqTopic: cfg.dlqTopic,
      log,
      metrics,
      // A full fetch is thousands of rows; a trickle keeps the writer's one insert a second.
      flushWhenAllWaitRows: Math.min(1_000, cfg.batchRows),
    });
    const consumer: BatchConsumer = createBatchConsumer({
      kafka: deps.kafka,
      groupId: cfg.groupId,
      topic: cfg.eventsTopic,
      fromBeginning: cfg.fromBeginning ?? true,
      handler,
      log,
      // Every partition's chunk of a fetch joins the lane's one ClickHouse insert.
      partitionsConsumedConcurrently: 6,
      ...(cfg.fetchBytesPerPartition ? { maxBytesPerPartition: cfg.fetchBytesPerPartition } : {}),
    });
    return { writer, consumer };
  });
  const bufferedRows = () => lanes.reduce((n, l) => n + l.writer.bufferedRows, 0);
  const gauge = setInterval(() => metrics.bufferedRows.set(bufferedRows()), 1_000);
  gauge.unref();
  let started = false;

  return {
    writers: lanes.map((l) => l.writer),
    async start() {
      await producer.connect();
      await Promise.all(lanes.map((l) => l.consumer.start()));
      started = true;
      log.info({ topic: cfg.eventsTopic, groupId: cfg.groupId, lanes: laneCount }, 'ingester started');
    },
    async stop() {
      if (!started) return;
      started = false;
      await Promise.all(lanes.map((l) => l.consumer.stop()));
      await Promise.all(lanes.map((l) => l.writer.stop()));
      await producer.disconnect();
      clearInterval(gauge);
    },
    health() {
      const consumers = lanes.map((l) => l.consumer.health());
      const writers = lanes.map((l) => l.writer.health());
      return {
        ok: started && consumers.every((c) => c.ok),
        details: {
          consumer: consumers.length === 1 ? consumers[0]!.details : consumers.map((c) => c.details),
          writer: writers.length === 1 ? writers[0]!.details : writers.map((w) => w.details),
          producer: producer.isConnected(),
        },
      };
    },
  };
}
