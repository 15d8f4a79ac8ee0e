import type { Logger } from '@mcp-audit/observability';
import type { DeliveryRow } from './delivery.engine.js';

/**
 * Appends alert_deliveries rows in small batches (about every `flushMs`), one insert in flight,
 * retrying while ClickHouse is away. Delivery never waits for it: the rows are the audit trail, the
 * outbox is what guarantees delivery. Beyond `maxBuffered` the oldest rows are dropped and counted.
 */
export class DeliveriesWriter {
  #buf: DeliveryRow[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #failures = 0;
  dropped = 0;

  constructor(
    private readonly opts: {
      insert: (rows: DeliveryRow[]) => Promise<void>;
      log: Logger;
      flushMs?: number;
      maxBuffered?: number;
      onBuffered?: (n: number) => void;
    },
  ) {}

  get buffered(): number {
    return this.#buf.length;
  }

  add(rows: DeliveryRow[]): void {
    this.#buf.push(...rows);
    const max = this.opts.maxBuffered ?? 100_000;
    if (this.#buf.length > max) {
      const n = this.#buf.length - max;
      this.#buf.splice(0, n);
      this.dropped += n;
      this.opts.log.error({ dropped: n }, 'alert_deliveries buffer full: oldest rows dropped');
    }
    this.opts.onBuffered?.(this.#buf.length);
    this.#schedule();
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
    this.#schedule(ok ? undefined : Math.min(10_000, 250 * 2 ** Math.min(this.#failures, 6)));
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
