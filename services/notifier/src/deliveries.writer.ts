import type { Logger } from '@mcp-audit/service-kit';
import type { DeliveryRow } from './delivery.engine.js';

/**
 * Rows buffered at most before delivery pauses. NOTE: kept well under the engine's memory of jobs
 * it finished (RECENT_JOBS, 50,000), which must outlast a final row still waiting here.
 */
export const DEFAULT_MAX_BUFFERED_ROWS = 20_000;

/**
 * Appends alert_deliveries rows in small batches (about every `flushMs`), one insert in flight,
 * retrying while ClickHouse is away. Rows are never dropped: they are the record of who was told
 * what and when, and a job's final row is what tells a new partition owner it is done. Memory is
 * bounded by backpressure instead: above `maxBuffered` rows the writer is paused (`paused()`), the
 * engine starts no new attempts, and it resumes once the buffer has drained to half the bound.
 * `add` always accepts (the attempts already in flight still end with their rows).
 */
export class DeliveriesWriter {
  #buf: DeliveryRow[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #failures = 0;
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
  ) {}

  get buffered(): number {
    return this.#buf.length;
  }

  #max(): number {
    return this.opts.maxBuffered ?? DEFAULT_MAX_BUFFERED_ROWS;
  }

  /** While over the bound: a promise that resolves once the buffer has drained; otherwise undefined. */
  paused(): Promise<void> | undefined {
    return this.#paused?.drained;
  }

  add(rows: DeliveryRow[]): void {
    this.#buf.push(...rows);
    if (!this.#paused && this.#buf.length > this.#max()) {
      let resume!: () => void;
      const drained = new Promise<void>((r) => (resume = r));
      this.#paused = { since: Date.now(), drained, resume };
      this.opts.onPaused?.(true);
      this.opts.log.warn(
        { rows: this.#buf.length, max: this.#max(), failures: this.#failures },
        'alert_deliveries rows over their bound (ClickHouse unavailable?): new delivery attempts paused',
      );
    }
    this.opts.onBuffered?.(this.#buf.length);
    this.#schedule();
  }

  #maybeResume(): void {
    const p = this.#paused;
    if (!p || this.#buf.length > Math.floor(this.#max() / 2)) return;
    this.#paused = undefined;
    this.opts.onPaused?.(false);
    this.opts.log.info(
      { rows: this.#buf.length, pausedMs: Date.now() - p.since },
      'alert_deliveries rows drained: delivery attempts resumed',
    );
    p.resume();
  }

  #schedule(delay = this.opts.flushMs ?? 250): void {
    if (this.#timer || this.#buf.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delay);
  }

  async flush(): Promise<boolean> {
    if (this.#inFlight) await this.#inFlight;
    if (this.#buf.length === 0) return true;
    const rows = this.#buf.splice(0, 10_000);
    let ok = true;
    this.#inFlight = (async () => {
      try {
        await this.opts.insert(rows);
        this.#failures = 0;
      } catch (err) {
        ok = false;
        this.#failures++;
        this.#buf.unshift(...rows);
        this.opts.log.warn(
          { err, rows: rows.length, failures: this.#failures },
          'alert_deliveries insert failed; will retry',
        );
      }
    })();
    await this.#inFlight;
    this.#inFlight = undefined;
    this.opts.onBuffered?.(this.#buf.length);
    this.#maybeResume();
    // Drain a backlog insert after insert; wait the usual age only for rows just added.
    const next = ok
      ? this.#buf.length >= 10_000
        ? 0
        : undefined
      : Math.min(10_000, 250 * 2 ** Math.min(this.#failures, 6));
    this.#schedule(next);
    return ok;
  }

  /** Flush what is buffered, trying for at most `deadlineMs`. */
  async stop(deadlineMs = 5_000): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const until = Date.now() + deadlineMs;
    while (this.#buf.length > 0 && Date.now() < until) {
      if (!(await this.flush())) await new Promise((r) => setTimeout(r, 200));
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buf.length > 0)
      this.opts.log.error({ rows: this.#buf.length }, 'alert_deliveries rows not written at shutdown');
  }
}
