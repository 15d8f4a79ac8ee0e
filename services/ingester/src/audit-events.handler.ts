import { parseEventDocument, type AuditEventV1 } from '@mcp-audit/schema';
import {
  chunkBySize,
  createDeadLetterBuilder,
  DLQ_HEADERS,
  type AuditProducer,
  type BatchContext,
  type ConsumedMessage,
  type DeadLetterBuilder,
  type OutgoingMessage,
  type Sealer,
} from '@mcp-audit/kafka';
import type { Logger } from '@mcp-audit/service-kit';
import type { EventRedactor } from '@mcp-audit/redaction';
import type { BatchWriter } from '@mcp-audit/service-kit';
import { toEventRow, type EventRow } from './events.row.js';
import type { EventIdGuard, StoredCopy } from './event-ids.guard.js';
import type { IngesterMetrics } from './metrics.js';

/** Dead-letter code of a copy refused because its event_id is already stored with other content. */
export const EVENT_ID_CONFLICT = 'AUDIT_ERR_EVENT_ID_CONFLICT';

/** A row of mcp_audit.event_id_conflicts (schemas/clickhouse/009_event_ids.sql). */
export interface EventIdConflictRow {
  event_id: string;
  detected_at: number;
  fields: string[];
  stored_ts: number;
  stored_client_id: string;
  stored_source_id: string;
  stored_ingested_at: number;
  stored_kafka_partition: number;
  stored_kafka_offset: number;
  refused_ts: number;
  refused_client_id: string;
  refused_source_id: string;
  refused_digest: string;
  refused_kafka_partition: number;
  refused_kafka_offset: number;
}

export interface HandlerDeps {
  writer: BatchWriter<EventRow>;
  /** Refuses a copy whose event_id is stored or reserved with other content (reserve-then-check). */
  guard: EventIdGuard;
  /** Inserts into mcp_audit.event_id_conflicts; throws a retryable error to be retried. */
  recordConflicts: (rows: EventIdConflictRow[]) => Promise<void>;
  isRetryable: (err: unknown) => boolean;
  producer: AuditProducer;
  redactor: EventRedactor;
  /** Seals dead-lettered originals to the `dlq replay` key; without it only redacted previews are kept. */
  dlqSealer?: Sealer;
  dlqTopic: string;
  log: Logger;
  metrics: IngesterMetrics;
  now?: () => number;
  /**
   * Flush the writer at once when every chunk this handler holds waits on it and it holds at least
   * this many rows. kafkajs fetches again only once every chunk of a fetch is handled, so nothing
   * else can join the insert: waiting out the writer's flush interval would only idle. Unset: the
   * writer's own row count and age decide.
   */
  flushWhenAllWaitRows?: number;
}

interface DeadLetter {
  message: ConsumedMessage;
  code: string;
  reason: string;
}

/** Header names on dead-lettered messages (documented in the README; defined with the envelope). */
export { DLQ_HEADERS };

/** A dead letter as the ingester writes it: redacted preview, redacted headers, original sealed. */
export function toDeadLetterMessage(
  d: DeadLetter,
  nowMs: number,
  builder: DeadLetterBuilder,
): OutgoingMessage {
  return builder.build({
    original: d.message.value,
    key: d.message.key,
    code: d.code,
    reason: d.reason,
    context: {
      [DLQ_HEADERS.topic]: d.message.topic,
      [DLQ_HEADERS.partition]: String(d.message.partition),
      [DLQ_HEADERS.offset]: d.message.offset,
    },
    atMs: nowMs,
  });
}

/**
 * Handles one chunk of the events topic: validate, redact, write. Resolves only once every
 * message is either in ClickHouse or in the dead-letter topic, so the consumer may commit past it.
 */
export function createAuditEventsHandler(deps: HandlerDeps) {
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'handler' });
  const deadLetters = createDeadLetterBuilder({
    redactor: deps.redactor,
    ...(deps.dlqSealer ? { sealer: deps.dlqSealer } : {}),
  });

  async function sendDeadLetters(letters: DeadLetter[], ctx: BatchContext): Promise<void> {
    if (letters.length === 0) return;
    const msgs = letters.map((d) => toDeadLetterMessage(d, now(), deadLetters));
    const chunks = chunkBySize(msgs);
    for (let attempt = 1; ; attempt++) {
      try {
        // A retry after a partial failure re-sends sent chunks: at-least-once, like the consumer.
        while (chunks.length > 0) {
          await deps.producer.send(deps.dlqTopic, chunks[0]!);
          chunks.shift();
        }
        break;
      } catch (err) {
        // Never resolve past a message that is neither stored nor dead-lettered.
        if (!ctx.isRunning()) throw err;
        log.warn({ err, attempt, messages: msgs.length }, 'dead-letter send failed: retrying');
        await new Promise((r) => setTimeout(r, Math.min(10_000, 200 * 2 ** attempt)));
        await ctx.heartbeat();
      }
    }
    for (const d of letters) deps.metrics.deadLettered.inc({ code: d.code });
    // One sample reason per batch: reasons name fields, and are redacted like everything else.
    log.info(
      {
        messages: letters.length,
        codes: [...new Set(letters.map((d) => d.code))],
        sample: deps.redactor.redactString(letters[0]!.reason).value,
      },
      'dead-lettered',
    );
  }

  async function recordConflicts(records: EventIdConflictRow[], ctx: BatchContext): Promise<void> {
    if (records.length === 0) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await deps.recordConflicts(records);
        return;
      } catch (err) {
        // A refusal that is not recorded raises no alert: keep it retried like the events insert.
        if (!deps.isRetryable(err) || !ctx.isRunning()) throw err;
        log.warn({ err, attempt, conflicts: records.length }, 'conflict record failed: retrying');
        await new Promise((r) => setTimeout(r, Math.min(10_000, 200 * 2 ** attempt)));
        await ctx.heartbeat();
      }
    }
  }

  async function checkIds(rows: EventRow[], ctx: BatchContext) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await deps.guard.check(rows);
      } catch (err) {
        // A reservation sent again merges with the first (same digest), and ids this process just
        // reserved are checked against events: retrying here is what a redelivery would do, without
        // kafkajs dropping the fetch and rejoining the group (a socket closed under a starved loop).
        if (!deps.isRetryable(err) || !ctx.isRunning() || attempt >= 5) throw err;
        log.warn({ err, attempt, rows: rows.length }, 'event id check failed: retrying');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)));
        await ctx.heartbeat();
      }
    }
  }

  /** Chunks in hand that have not reached the writer yet. */
  let preparing = 0;
  const addToWriter = (rows: EventRow[]) => {
    const added = deps.writer.add(rows);
    preparing--;
    const min = deps.flushWhenAllWaitRows;
    if (min !== undefined && preparing === 0 && deps.writer.bufferedRows >= min) void deps.writer.flush();
    return added;
  };

  return async function handle(messages: ConsumedMessage[], ctx: BatchContext): Promise<void> {
    preparing++;
    let waiting = false;
    try {
      await handleChunk(messages, ctx, () => {
        waiting = true;
      });
    } finally {
      if (!waiting) preparing--;
    }
  };

  async function handleChunk(
    messages: ConsumedMessage[],
    ctx: BatchContext,
    reachedWriter: () => void,
  ): Promise<void> {
    const rows: EventRow[] = [];
    const rowSource: ConsumedMessage[] = [];
    const letters: DeadLetter[] = [];
    const ingestedAtMs = now();
    for (const m of messages) {
      if (!m.value || m.value.length === 0) {
        letters.push({ message: m, code: 'AUDIT_ERR_MALFORMED_JSON', reason: 'empty message value' });
        continue;
      }
      const parsed = parseEventDocument(m.value, { now: ingestedAtMs });
      if (!parsed.ok) {
        letters.push({
          message: m,
          code: parsed.code,
          reason: deps.redactor.redactString(parsed.reason).value,
        });
        continue;
      }
      const { event, raw } = deps.redactor.redactEvent(
        parsed.event as AuditEventV1,
        parsed.raw,
        parsed.document,
      );
      rows.push(toEventRow(event, raw, { partition: m.partition, offset: m.offset, ingestedAtMs }));
      rowSource.push(m);
    }
    deps.metrics.consumed.inc(messages.length);
    const last = messages[messages.length - 1];
    if (last) {
      const lag = Number(ctx.highWatermark) - Number(last.offset) - 1;
      if (Number.isFinite(lag)) deps.metrics.lag.set({ partition: String(last.partition) }, Math.max(0, lag));
    }

    // Reserve-then-check per chunk: at most one content per event_id ever reaches mcp_audit.events.
    const lookupStart = now();
    const guarded = await checkIds(rows, ctx);
    deps.metrics.lookupSeconds.observe((now() - lookupStart) / 1000);
    try {
      const accepted: EventRow[] = [];
      const acceptedSource: ConsumedMessage[] = [];
      const conflicts: EventIdConflictRow[] = [];
      guarded.verdicts.forEach((v, i) => {
        const row = rows[i]!;
        if (v.kind === 'new') {
          accepted.push(row);
          acceptedSource.push(rowSource[i]!);
        } else if (v.kind === 'duplicate') {
          deps.metrics.duplicates.inc();
        } else {
          letters.push({ message: rowSource[i]!, code: EVENT_ID_CONFLICT, reason: conflictReason(row, v) });
          conflicts.push(conflictRow(row, v.fields, v.stored, deps.guard.idRow(row).digest));
        }
      });
      await recordConflicts(conflicts, ctx);
      await sendDeadLetters(letters, ctx);

      // Keep the group membership alive while ClickHouse is slow or down (the insert is retried).
      const beat = setInterval(() => void ctx.heartbeat().catch(() => undefined), 3_000);
      let failures;
      try {
        reachedWriter();
        failures = await addToWriter(accepted);
      } finally {
        clearInterval(beat);
      }
      deps.metrics.written.inc(accepted.length - failures.length);
      if (failures.length > 0) {
        await sendDeadLetters(
          failures.map((f) => ({
            message: acceptedSource[f.index]!,
            code: 'AUDIT_ERR_CLICKHOUSE_REJECTED',
            reason: `clickhouse refused the row: ${f.error.message}`,
          })),
          ctx,
        );
      }
    } finally {
      guarded.release();
    }
  }
}

/** Names the id and the differing columns, never a value (the DLQ reason is not sealed). */
function conflictReason(row: EventRow, v: { fields: string[]; stored: StoredCopy }): string {
  const fields =
    v.fields.length > 0
      ? v.fields.join(', ')
      : 'unknown (the other copy is not readable in events: reserved by a concurrent copy, or its day is being dropped)';
  return (
    `event_id ${row.event_id} is already stored or reserved with other content (differing fields: ${fields}); ` +
    'this copy is refused as a possible forgery (event_id_reuse alert; `dlq replay` puts back a legitimate one)'
  );
}

function conflictRow(
  row: EventRow,
  fields: string[],
  stored: StoredCopy,
  digest: string,
): EventIdConflictRow {
  return {
    event_id: row.event_id,
    detected_at: row.ingested_at,
    fields,
    stored_ts: stored.ts,
    stored_client_id: stored.clientId,
    stored_source_id: stored.sourceId,
    stored_ingested_at: stored.ingestedAt,
    stored_kafka_partition: stored.partition,
    stored_kafka_offset: Number(stored.offset),
    refused_ts: row.ts,
    refused_client_id: row.client_id,
    refused_source_id: row.source_id,
    refused_digest: digest,
    refused_kafka_partition: row.kafka_partition,
    refused_kafka_offset: row.kafka_offset,
  };
}
