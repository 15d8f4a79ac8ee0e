import type { AuditProducer, BatchHandler, ConsumedMessage } from '@mcp-audit/kafka';
import type { Logger } from '@mcp-audit/service-kit';
import { alertMessageId, alertMessageSchema, type AlertMessage } from '@mcp-audit/schema';
import { jobIdOf, routeAlert, type RoutesFile } from './alerts.router.js';
import type { DeliveryJob, Destination } from './destinations.js';
import { deliveryRow, type DeliveryEngine, type DeliveryRow } from './delivery.engine.js';
import type { NotifierMetrics } from './metrics.js';
import type { Outbox, OutboxRow } from './outbox.js';

const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface AlertsHandlerDeps {
  groupId: string;
  dlqTopic: string;
  routes: RoutesFile;
  destinations: Map<string, Destination>;
  outbox: Outbox;
  engine: DeliveryEngine;
  producer: AuditProducer;
  record: (rows: DeliveryRow[]) => void;
  /** While the attempt rows are over their bound: resolves once they drained (deliveries.writer.ts). */
  recordPaused?: () => Promise<void> | undefined;
  log: Logger;
  metrics: NotifierMetrics;
  now?: () => Date;
}

/** Retry a durable step until it succeeds; give up (throw) only when the consumer is stopping. */
async function durably<T>(
  what: string,
  fn: () => Promise<T>,
  ctx: { isRunning(): boolean; isStale(): boolean; heartbeat(): Promise<void> },
  log: Logger,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!ctx.isRunning() || ctx.isStale()) throw err;
      log.warn({ err, step: what, attempt }, 'durable step failed; retrying');
      // Wait in short slices, heartbeating, so a stop is noticed within a quarter of a second.
      const until = Date.now() + Math.min(5_000, 100 * 2 ** Math.min(attempt, 6));
      while (Date.now() < until && ctx.isRunning() && !ctx.isStale()) {
        await new Promise((r) => setTimeout(r, Math.min(250, until - Date.now())));
        await ctx.heartbeat().catch(() => undefined);
      }
    }
  }
}

function dlqMessage(m: ConsumedMessage, code: string, reason: string) {
  return {
    key: m.key,
    value: m.value ?? Buffer.alloc(0),
    headers: {
      'mcp-audit-dlq-code': code,
      'mcp-audit-dlq-reason': reason.slice(0, 500),
      'mcp-audit-source-topic': m.topic,
      'mcp-audit-source-partition': String(m.partition),
      'mcp-audit-source-offset': m.offset,
      'mcp-audit-dlq-at': new Date().toISOString(),
    },
  };
}

/**
 * Parse, route and park each message's delivery jobs in the outbox, then hand them to the engine.
 * The handler resolves (and the offset advances) only once every job is parked or the message is
 * in the dead-letter topic: a crash after that point loses nothing, because whoever holds the
 * partition next loads its parked jobs. It never waits for delivery capacity: a destination that is
 * full leaves its jobs in the outbox and reads them back as it drains (delivery.engine.ts), so the
 * only waits here are durable writes, which give up (throw, nothing resolved) once the consumer stops.
 */
export function createAlertsHandler(deps: AlertsHandlerDeps): BatchHandler {
  const log = deps.log.child({ component: 'alerts-consumer' });
  return async (messages, ctx) => {
    deps.metrics.consumed.inc(messages.length);
    const invalid: ReturnType<typeof dlqMessage>[] = [];
    const parked: Array<{ row: OutboxRow; job: DeliveryJob }> = [];
    const suppressed: DeliveryRow[] = [];
    const now = deps.now?.() ?? new Date();
    for (const m of messages) {
      if (!m.value || m.value.length > MAX_MESSAGE_BYTES) {
        invalid.push(dlqMessage(m, 'AUDIT_ERR_TOO_LARGE', m.value ? 'message over 1 MiB' : 'empty message'));
        continue;
      }
      let parsed: AlertMessage;
      try {
        const r = alertMessageSchema.safeParse(JSON.parse(m.value.toString('utf8')));
        if (!r.success) {
          const i = r.error.issues[0];
          invalid.push(
            dlqMessage(
              m,
              'AUDIT_ERR_INVALID_ALERT',
              `${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`,
            ),
          );
          continue;
        }
        parsed = r.data;
      } catch {
        invalid.push(dlqMessage(m, 'AUDIT_ERR_MALFORMED_JSON', 'not JSON'));
        continue;
      }
      const messageId = alertMessageId(parsed);
      routeAlert(deps.routes, parsed, now).forEach((d, seq) => {
        const job: DeliveryJob = {
          jobId: jobIdOf(parsed, d.destinationId),
          messageId,
          destinationId: d.destinationId,
          message: parsed,
          attempts: 0,
          source: { partition: m.partition, offset: m.offset, seq },
        };
        if (d.suppressed) {
          const kind = deps.destinations.get(d.destinationId)?.kind ?? 'unknown';
          deps.metrics.suppressed.inc({ destination: d.destinationId, reason: d.suppressed });
          suppressed.push(
            deliveryRow(deps.groupId, job, kind, { status: 'suppressed', attempt: 0, error: d.suppressed }),
          );
          return;
        }
        parked.push({
          job,
          row: {
            parked_at: now.toISOString().slice(0, 19).replace('T', ' '),
            group_id: deps.groupId,
            job_id: job.jobId,
            message_id: messageId,
            dedup_key: parsed.dedup_key,
            destination_id: d.destinationId,
            topic: m.topic,
            kafka_partition: m.partition,
            kafka_offset: m.offset,
            seq,
            message: JSON.stringify(parsed),
          },
        });
      });
    }
    if (invalid.length > 0) {
      await durably('dead-letter invalid alerts', () => deps.producer.send(deps.dlqTopic, invalid), ctx, log);
      deps.metrics.invalid.inc(invalid.length);
      log.warn({ invalid: invalid.length }, 'invalid alert messages dead-lettered');
    }
    if (parked.length > 0) {
      // A redelivered message (its offset was not committed) may be parked already: not twice.
      const known = await durably(
        'look up parked jobs',
        () =>
          deps.outbox.parked(
            deps.groupId,
            parked.map((p) => p.job.jobId),
          ),
        ctx,
        log,
      );
      const fresh = parked.filter((p) => !known.has(p.job.jobId));
      if (fresh.length > 0) {
        await durably('park jobs', () => deps.outbox.park(fresh.map((p) => p.row)), ctx, log);
        deps.metrics.parked.inc(fresh.length);
      }
      // All parked: hand every job over, the redelivered ones too (the engine skips what it holds or
      // finished, and what belongs to a partition that moved away).
      const r = deps.engine.admit(parked.map((p) => p.job));
      if (known.size > 0 || r.deferred > 0 || r.foreign > 0)
        log.info(
          {
            partition: messages[0]!.partition,
            parked: fresh.length,
            redelivered: known.size,
            queued: r.queued,
            deferred: r.deferred,
            foreign: r.foreign,
          },
          'alert jobs parked',
        );
    }
    if (suppressed.length > 0) {
      // Suppressed rows are final rows, never dropped: while the writer is over its bound the batch
      // waits for it (heartbeating) rather than grow it, and gives up (throws) once stopping.
      for (let p = deps.recordPaused?.(); p; p = deps.recordPaused?.()) {
        if (!ctx.isRunning() || ctx.isStale())
          throw new Error('stopping while alert_deliveries rows are over their bound');
        let t: NodeJS.Timeout | undefined;
        await Promise.race([p, new Promise((r) => (t = setTimeout(r, 250)))]);
        clearTimeout(t);
        await ctx.heartbeat().catch(() => undefined);
      }
      deps.record(suppressed);
    }
  };
}
