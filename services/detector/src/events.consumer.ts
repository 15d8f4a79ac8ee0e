import type { BatchContext, BatchHandler } from '@mcp-audit/kafka';
import type { Logger } from '@mcp-audit/service-kit';
import { parseEvent } from '@mcp-audit/schema';
import type { Lifecycle } from './alert.lifecycle.js';
import type { BaselineStore } from './baseline.store.js';
import type { DetectorMetrics } from './metrics.js';
import { fromAuditEvent, type DetectorEvent, type StreamEngine } from './stream.engine.js';

export interface EventsHandlerDeps {
  engine: StreamEngine;
  store: BaselineStore;
  lifecycle: Lifecycle;
  log: Logger;
  metrics?: DetectorMetrics;
  /** How often the list of baseline versions is re-read (wall clock; it is a cache). */
  versionsRefreshMs?: number;
}

/** Retry a durable step until it succeeds; give up (throw, so the chunk is redelivered) only when stopping. */
async function durably<T>(what: string, fn: () => Promise<T>, ctx: BatchContext, log: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!ctx.isRunning() || ctx.isStale()) throw err;
      log.warn({ err, step: what, attempt }, 'durable step failed; retrying');
      await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** Math.min(attempt, 6))));
      await ctx.heartbeat().catch(() => undefined);
    }
  }
}

/**
 * One chunk of one partition: parse, feed the engine in offset order, close what the watermark
 * closes, then make the alerts durable (ClickHouse rows, Kafka acks) before resolving: the consumer
 * commits the offsets only after this returns. A chunk redelivered after a failed flush is not fed
 * twice (offsets already fed are skipped; the queued alerts are still flushed).
 */
export function createEventsHandler(deps: EventsHandlerDeps): BatchHandler {
  const log = deps.log.child({ component: 'events-consumer' });
  const fed = new Map<number, bigint>();
  return async (messages, ctx) => {
    const t0 = process.hrtime.bigint();
    if (messages.length === 0) return;
    const partition = messages[0]!.partition;
    const done = fed.get(partition) ?? -1n;
    const events: DetectorEvent[] = [];
    let invalid = 0;
    let last = done;
    for (const m of messages) {
      const off = BigInt(m.offset);
      if (off <= done) continue;
      last = off > last ? off : last;
      if (!m.value) {
        invalid++;
        continue;
      }
      const r = parseEvent(m.value);
      if (!r.ok) {
        invalid++;
        continue;
      }
      events.push(fromAuditEvent(r.event));
    }
    if (invalid > 0) {
      deps.metrics?.invalid.inc(invalid);
      log.warn({ partition, invalid }, 'invalid events skipped (the ingester dead-letters them)');
    }
    await durably(
      'refresh baseline versions',
      () => deps.store.refreshIfOlder(deps.versionsRefreshMs ?? 60_000),
      ctx,
      log,
    );
    await durably('load baselines', () => deps.store.prepare(deps.engine.needs(events)), ctx, log);
    const before = { ...deps.engine.stats };
    for (const e of events) deps.engine.process(e, partition);
    deps.engine.advance(partition);
    fed.set(partition, last);
    const late = deps.engine.stats.late - before.late;
    if (late > 0) {
      deps.metrics?.late.inc(late);
      log.warn(
        { partition, late, watermark: new Date(deps.engine.watermark(partition)).toISOString() },
        'late events beyond allowed lateness: counted, not judged',
      );
    }
    deps.metrics?.duplicates.inc(deps.engine.stats.duplicates - before.duplicates);
    deps.metrics?.events.inc(events.length);
    await durably('write alerts', () => deps.lifecycle.flush(), ctx, log);
    const wm = deps.engine.watermark(partition);
    if (Number.isFinite(wm))
      deps.metrics?.watermarkLag.set({ partition: String(partition) }, (Date.now() - wm) / 1000);
    deps.metrics?.batchSize.observe(messages.length);
    deps.metrics?.batchSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
  };
}
