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
  writer: BatchWriter<EventRow>;
}

export function buildIngester(cfg: IngesterConfig, deps: IngesterDeps): Ingester {
  const log = deps.log.child({ component: 'ingester' });
  const metrics = createIngesterMetrics(deps.registry);
  const producer = deps.producer ?? createProducer(deps.kafka);
  // The guard inserts the ids before their events (reservations, see event-ids.guard.ts): a crash in
  // between leaves ids reserved and not stored; the redelivered batch (its offsets were not committed)
  // finds its own content reserved and not in events, and writes it.
  const guard = new EventIdGuard(deps.eventIds, deps.insertEventIds);
  const writer = new BatchWriter<EventRow>({
    name: 'events',
    insert: (rows) => deps.insertEvents(rows),
    isRetryable: deps.isRetryableInsertError,
    maxRows: cfg.batchRows,
    flushMs: cfg.flushMs,
    maxBufferedRows: cfg.maxBufferedRows,
    log,
    onFlush: (rows, ms) => {
      metrics.batchRows.observe(rows);
      metrics.flushSeconds.observe(ms / 1000);
      log.debug({ table: 'events', rows, ms }, 'batch flushed');
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
  });
  const consumer: BatchConsumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: cfg.groupId,
    topic: cfg.eventsTopic,
    fromBeginning: cfg.fromBeginning ?? true,
    handler,
    log,
    // Every partition's batch joins the same ClickHouse insert.
    partitionsConsumedConcurrently: 6,
  });
  const gauge = setInterval(() => metrics.bufferedRows.set(writer.bufferedRows), 1_000);
  gauge.unref();
  let started = false;

  return {
    writer,
    async start() {
      await producer.connect();
      await consumer.start();
      started = true;
      log.info({ topic: cfg.eventsTopic, groupId: cfg.groupId }, 'ingester started');
    },
    async stop() {
      if (!started) return;
      started = false;
      await consumer.stop();
      await writer.stop();
      await producer.disconnect();
      clearInterval(gauge);
    },
    health() {
      const c = consumer.health();
      const w = writer.health();
      return {
        ok: started && c.ok,
        details: { consumer: c.details, writer: w.details, producer: producer.isConnected() },
      };
    },
  };
}
