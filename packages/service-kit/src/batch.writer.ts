import type { Logger } from 'pino';

export interface InsertFailure {
  index: number;
  error: Error;
}

export interface WriterOptions<T> {
  name: string;
  /** Inserts the rows or throws; `isRetryable` decides what a throw means. */
  insert: (rows: T[]) => Promise<void>;
  isRetryable: (err: unknown) => boolean;
  maxRows: number;
  flushMs: number;
  maxBufferedRows: number;
  log: Logger;
  onFlush?: (rows: number, ms: number) => void;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Rows held after each change (a gauge, or a caller's own backpressure). */
  onBuffered?: (rows: number) => void;
  /** For tests: backoff schedule. */
  backoff?: { initialMs: number; maxMs: number };
}

interface Pending<T> {
  rows: T[];
  resolve: (failures: InsertFailure[]) => void;
  reject: (err: Error) => void;
}

/**
 * One batcher per table (Langfuse's ClickhouseWriter shape): rows accumulate until `maxRows` or
 * `flushMs`, one insert is in flight at a time, transient errors are retried with backoff until
 * they succeed (never dropped), a batch ClickHouse rejects is split to isolate the bad rows.
 * `add` resolves only once its rows are durable, with the rows ClickHouse refused for good.
 * Memory is bounded: beyond `maxBufferedRows`, `add` waits for room (backpressure).
 */
export class BatchWriter<T> {
  private queue: Pending<T>[] = [];
  private queuedRows = 0;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private roomWaiters: Array<() => void> = [];
  private stopped = false;
  private aborted = false;
  private retrying = false;
  private lastError: string | undefined;

  constructor(private readonly opts: WriterOptions<T>) {}

  async add(rows: T[]): Promise<InsertFailure[]> {
    if (rows.length === 0) return [];
    if (this.stopped) throw new Error(`${this.opts.name} writer is stopped`);
    while (this.queuedRows > 0 && this.queuedRows + rows.length > this.opts.maxBufferedRows) {
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    const done = new Promise<InsertFailure[]>((resolve, reject) =>
      this.queue.push({ rows, resolve, reject }),
    );
    this.queuedRows += rows.length;
    this.opts.onBuffered?.(this.queuedRows);
    if (this.queuedRows >= this.opts.maxRows) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.flushMs);
    return done;
  }

  /** Flush everything held; resolves when the buffer is empty. */
  async flush(): Promise<void> {
    while (this.queuedRows > 0 || this.inFlight) {
      this.kick();
      await this.inFlight;
    }
  }

  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
  }

  /** Abandon retries (shutdown deadline): pending adds reject, nothing is acknowledged. */
  abort(reason: string): void {
    this.stopped = true;
    this.aborted = true;
    for (const p of this.queue) p.reject(new Error(reason));
    this.queue = [];
    this.queuedRows = 0;
  }

  health() {
    return {
      ok: !this.retrying,
      details: { bufferedRows: this.queuedRows, retrying: this.retrying, lastError: this.lastError },
    };
  }

  get bufferedRows(): number {
    return this.queuedRows;
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inFlight || this.queue.length === 0) return;
    this.inFlight = this.drainOnce().finally(() => {
      this.inFlight = undefined;
      if (this.queuedRows >= this.opts.maxRows) this.kick();
      else if (this.queuedRows > 0) this.timer ??= setTimeout(() => this.kick(), this.opts.flushMs);
    });
  }

  private async drainOnce(): Promise<void> {
    // Take whole `add` calls up to maxRows (at least one), so each caller's rows stay together.
    const take: Pending<T>[] = [];
    let n = 0;
    while (
      this.queue.length > 0 &&
      (take.length === 0 || n + this.queue[0]!.rows.length <= this.opts.maxRows)
    ) {
      const p = this.queue.shift()!;
      take.push(p);
      n += p.rows.length;
    }
    const rows = take.flatMap((p) => p.rows);
    const t0 = Date.now();
    let failures: InsertFailure[];
    try {
      failures = await this.insertWithRetry(rows, 0);
    } catch (err) {
      // Only reachable through abort(): nothing was acknowledged.
      for (const p of take) p.reject(err as Error);
      this.release(n);
      return;
    }
    this.opts.onFlush?.(rows.length - failures.length, Date.now() - t0);
    let offset = 0;
    for (const p of take) {
      const mine = failures
        .filter((f) => f.index >= offset && f.index < offset + p.rows.length)
        .map((f) => ({ index: f.index - offset, error: f.error }));
      offset += p.rows.length;
      p.resolve(mine);
    }
    this.release(n);
  }

  private release(n: number): void {
    this.queuedRows = Math.max(0, this.queuedRows - n);
    this.opts.onBuffered?.(this.queuedRows);
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }

  /** Returns the indexes (into `rows`, offset by `base`) ClickHouse refused for good. */
  private async insertWithRetry(rows: T[], base: number): Promise<InsertFailure[]> {
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 200, maxMs: 30_000 };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.opts.insert(rows);
        if (this.retrying) this.opts.log.info({ writer: this.opts.name, attempt }, 'insert recovered');
        this.retrying = false;
        this.lastError = undefined;
        return [];
      } catch (err) {
        if (this.opts.isRetryable(err)) {
          if (this.aborted) throw err;
          this.retrying = true;
          this.lastError = (err as Error).message;
          const delay =
            Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 16)) * (0.5 + Math.random() / 2);
          this.opts.onRetry?.(err, attempt, delay);
          if (attempt === 1 || attempt % 10 === 0) {
            this.opts.log.warn(
              { err, writer: this.opts.name, rows: rows.length, attempt, delayMs: Math.round(delay) },
              'insert failed: retrying',
            );
          }
          await new Promise((r) => setTimeout(r, delay));
          if (this.aborted) throw new Error(`${this.opts.name} writer aborted`);
          continue;
        }
        if (rows.length === 1) return [{ index: base, error: err as Error }];
        // Permanent error on a batch: split to find the rows ClickHouse refuses.
        const mid = Math.ceil(rows.length / 2);
        const left = await this.insertWithRetry(rows.slice(0, mid), base);
        const right = await this.insertWithRetry(rows.slice(mid), base + mid);
        return [...left, ...right];
      }
    }
  }
}
