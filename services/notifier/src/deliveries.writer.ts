import { BatchWriter, type Logger } from '@mcp-audit/service-kit';
import type { DeliveryRow } from './delivery.engine.js';

/**
 * Rows buffered at most before delivery pauses. NOTE: kept well under the engine's memory of jobs
 * it finished (RECENT_JOBS, 50,000), which must outlast a final row still waiting here.
 */
export const DEFAULT_MAX_BUFFERED_ROWS = 20_000;

/**
 * Appends alert_deliveries rows through the kit's batcher (about every `flushMs`, one insert in
 * flight, every error retried while ClickHouse is away). Rows are never dropped: they are the record
 * of who was told what and when, and a job's final row is what tells a new partition owner it is
 * done. Memory is bounded by backpressure on the engine instead of on `add`: above `maxBuffered` rows
 * the writer is paused (`paused()`), the engine starts no new attempts, and it resumes once the
 * buffer has drained to half the bound. `add` always accepts (attempts in flight still end with rows).
 */
export class DeliveriesWriter {
  readonly #batch: BatchWriter<DeliveryRow>;
  #paused: { since: number; drained: Promise<void>; resume: () => void } | undefined;

  constructor(
    private readonly opts: {
      insert: (rows: DeliveryRow[]) => Promise<void>;
      log: Logger;
      flushMs?: number;
      maxBuffered?: number;
      onBuffered?: (n: number) => void;
      onPaused?: (paused: boolean) => void;
    },
  ) {
    this.#batch = new BatchWriter<DeliveryRow>({
      name: 'alert_deliveries',
      insert: opts.insert,
      // Every failure is retried: a row refused for good would be a bug in this service, not data.
      isRetryable: () => true,
      maxRows: 10_000,
      flushMs: opts.flushMs ?? 250,
      maxBufferedRows: Number.MAX_SAFE_INTEGER,
      log: opts.log,
      backoff: { initialMs: 250, maxMs: 10_000 },
      onBuffered: (n) => {
        opts.onBuffered?.(n);
        this.#maybeResume(n);
      },
    });
  }

  get buffered(): number {
    return this.#batch.bufferedRows;
  }

  #max(): number {
    return this.opts.maxBuffered ?? DEFAULT_MAX_BUFFERED_ROWS;
  }

  /** While over the bound: a promise that resolves once the buffer has drained; otherwise undefined. */
  paused(): Promise<void> | undefined {
    return this.#paused?.drained;
  }

  add(rows: DeliveryRow[]): void {
    // Rejected only by abort() at a shutdown deadline, which logs what was not written.
    this.#batch.add(rows).catch(() => undefined);
    const n = this.#batch.bufferedRows;
    if (!this.#paused && n > this.#max()) {
      let resume!: () => void;
      const drained = new Promise<void>((r) => (resume = r));
      this.#paused = { since: Date.now(), drained, resume };
      this.opts.onPaused?.(true);
      this.opts.log.warn(
        { rows: n, max: this.#max() },
        'alert_deliveries rows over their bound (ClickHouse unavailable?): new delivery attempts paused',
      );
    }
  }

  #maybeResume(n: number): void {
    const p = this.#paused;
    if (!p || n > Math.floor(this.#max() / 2)) return;
    this.#paused = undefined;
    this.opts.onPaused?.(false);
    this.opts.log.info(
      { rows: n, pausedMs: Date.now() - p.since },
      'alert_deliveries rows drained: delivery attempts resumed',
    );
    p.resume();
  }

  /** Starts writing what is buffered now instead of at the next tick. */
  flush(): Promise<void> {
    return this.#batch.flush();
  }

  /** Flush what is buffered, trying for at most `deadlineMs`; what is left is logged, not written. */
  async stop(deadlineMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((r) => (timer = setTimeout(() => r('deadline'), deadlineMs)));
    const done = await Promise.race([this.#batch.stop().then(() => 'flushed' as const), deadline]);
    clearTimeout(timer);
    if (done === 'deadline') {
      const rows = this.#batch.bufferedRows;
      this.#batch.abort('notifier stopping: alert_deliveries rows not written');
      this.opts.log.error({ rows }, 'alert_deliveries rows not written at shutdown');
    }
  }
}
