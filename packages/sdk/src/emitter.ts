import {
  MAX_ERROR_MESSAGE_LENGTH,
  SCHEMA_VERSION,
  utf8ByteLength,
  validateEvent,
  type AuditEventV1Input,
  type EventClient,
  type EventServer,
  type SourceType,
} from '@mcp-audit/schema';
import { createRedactor, type EventRedactor } from '@mcp-audit/redaction';
import { capArgs, DEFAULT_MAX_ARG_VALUE_BYTES } from './args.js';
import { sdkLog, stderrLogger, type AuditLogger } from './logger.js';
import { cutText, type TextRedactor } from './sanitize.js';
import type { AuditEvent, AuditSink } from './sink.js';
import { uuidv7 } from './uuid.js';

/**
 * An event as the caller knows it: the contract's fields minus what the emitter fills in
 * (`schema_version`, `event_id`, `source`; `ts` defaults to now). `args` may hold anything JSON;
 * it is redacted and size-capped before validation.
 */
export type AuditEventDraft = Omit<
  AuditEventV1Input,
  'schema_version' | 'event_id' | 'source' | 'ts' | 'args'
> & {
  ts?: string;
  args?: Record<string, unknown>;
};

export interface AuditEmitterStats {
  /** Events waiting for delivery. */
  buffered: number;
  /** Events the sink acknowledged (drop reports not included). */
  sent: number;
  /** Events lost: refused because the buffer was full, or still buffered when close() gave up. */
  dropped: number;
  /** Drafts that failed validation (logged with the reason, never delivered). */
  invalid: number;
  /** Sink calls that failed (each is retried with backoff). */
  failedAttempts: number;
  /** UTF-8 bytes of the buffered events as JSON. */
  bufferedBytes: number;
  /** Events the receiver refused for good after delivery (collector sink: dead-lettered there). */
  rejected: number;
  /** Drop reports delivered (events of their own, see README). */
  dropReports: number;
  /** Drops not reported yet (they will be once a batch gets through). */
  unreportedDrops: number;
}

export interface AuditEmitter {
  /** Synchronous; never throws and never waits on delivery. */
  emit(event: AuditEventDraft): void;
  /**
   * Count events the caller could not build at all (the wrap: requests past its in-flight limit)
   * as dropped, with `reason`: they are in `stats().dropped` and the drop report like buffer drops.
   */
  countDropped(reason: string, count?: number): void;
  /** Resolves once everything emitted so far is delivered, or after `timeoutMs` (default: closeTimeoutMs). */
  flush(opts?: { timeoutMs?: number }): Promise<void>;
  /** Flushes (bounded by closeTimeoutMs), then closes the sink. Later emits are counted as dropped. */
  close(): Promise<void>;
  stats(): AuditEmitterStats;
  /**
   * The redactor `emit` applies. Callers that must redact a value before cutting it (the wrap's
   * tool names) use it, so a secret gets the same fingerprint either way. Optional for emitters
   * of other makes.
   */
  readonly redactor?: TextRedactor;
}

export interface AuditEmitterOptions {
  sink: AuditSink;
  source: { type: SourceType; id: string; version: string };
  /** Most events buffered. Default 10 000. */
  capacity?: number;
  /** Most bytes (events as JSON) buffered. Default 32 MiB. */
  maxBufferBytes?: number;
  /** Most events per sink call. Default 500. */
  maxBatch?: number;
  /** How long an event may wait for a batch to fill. Default 200 ms. */
  flushIntervalMs?: number;
  /** Retry delay while the sink fails: doubles from min to max, with jitter. Default 200 ms to 10 s. */
  retryBackoffMs?: { min: number; max: number };
  /** Bound on close()'s flush and on the sink's close. Default 10 s. */
  closeTimeoutMs?: number;
  /** Strings in args longer than this (UTF-8 bytes) are replaced by their SHA-256. Default 2048. */
  maxArgValueBytes?: number;
  /** HMAC key for redaction fingerprints; set the deployment's MCP_AUDIT_REDACTION_KEY. */
  redactionKey?: string;
  /** A redactor to share (takes precedence over redactionKey). */
  redactor?: EventRedactor;
  /** Identity of the drop-report events. Default client `mcp-audit:<source id>`, server `<source id>` over stdio. */
  reportAs?: { client?: EventClient; server?: EventServer };
  /** The host's logger (pino fits; see AuditLogger). Default: JSON lines on stderr at MCP_AUDIT_LOG_LEVEL (warn). */
  logger?: AuditLogger;
  /** Clock, for tests. */
  now?: () => number;
}

/** The method of the event that reports dropped events. */
export const DROPPED_METHOD = 'notifications/mcp_audit/dropped';
export const DROPPED_ERROR_CODE = 'AUDIT_ERR_EVENTS_DROPPED';

interface Entry {
  event: AuditEvent;
  bytes: number;
}

/** A FIFO with O(1) amortised shift. */
class Queue {
  private items: Entry[] = [];
  private head = 0;
  bytes = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(e: Entry): void {
    this.items.push(e);
    this.bytes += e.bytes;
  }
  peek(n: number): Entry[] {
    return this.items.slice(this.head, this.head + n);
  }
  drop(n: number): void {
    for (let i = 0; i < n && this.head < this.items.length; i++) {
      this.bytes -= this.items[this.head]!.bytes;
      this.items[this.head] = undefined as unknown as Entry;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/** Warn on the first occurrence, then every `every`th, so a flood of one problem cannot flood logs. */
const logEvery = (n: number, every: number) => n === 1 || n % every === 0;

export function createAuditEmitter(opts: AuditEmitterOptions): AuditEmitter {
  const capacity = positive(opts.capacity, 10_000, 'capacity');
  const maxBufferBytes = positive(opts.maxBufferBytes, 32 * 1024 * 1024, 'maxBufferBytes');
  const maxBatch = positive(opts.maxBatch, 500, 'maxBatch');
  const flushIntervalMs = positive(opts.flushIntervalMs, 200, 'flushIntervalMs');
  const backoff = opts.retryBackoffMs ?? { min: 200, max: 10_000 };
  if (!(backoff.min > 0 && backoff.max >= backoff.min)) {
    throw new RangeError('createAuditEmitter: retryBackoffMs needs 0 < min <= max');
  }
  const closeTimeoutMs = positive(opts.closeTimeoutMs, 10_000, 'closeTimeoutMs');
  const maxArgValueBytes = positive(opts.maxArgValueBytes, DEFAULT_MAX_ARG_VALUE_BYTES, 'maxArgValueBytes');
  const now = opts.now ?? Date.now;
  const redactor =
    opts.redactor ??
    createRedactor(opts.redactionKey === undefined ? {} : { fingerprintKey: opts.redactionKey });
  const log = sdkLog(opts.logger ?? stderrLogger('mcp-audit-sdk', redactor), {
    component: 'audit-emitter',
    source_id: opts.source.id,
  });
  const source = { type: opts.source.type, id: opts.source.id, version: opts.source.version };
  const reportClient: EventClient = opts.reportAs?.client ?? { id: `mcp-audit:${opts.source.id}` };
  const reportServer: EventServer = opts.reportAs?.server ?? { name: opts.source.id, transport: 'stdio' };

  const queue = new Queue();
  const counters = { sent: 0, dropped: 0, invalid: 0, failedAttempts: 0, rejected: 0, dropReports: 0 };
  // Drops since the last report was created: count, first and last time, why.
  let unreported = { count: 0, first: 0, last: 0, reasons: new Set<string>() };
  let report: Entry | undefined;
  let sending = false;
  let closed = false;
  let closing = false;
  let failing = false;
  let delayMs = backoff.min;
  let retryAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let waiters: Array<() => void> = [];
  let droppedAtClose = 0;

  function countDrop(reason: string, n = 1): void {
    counters.dropped += n;
    const t = now();
    if (unreported.count === 0) unreported.first = t;
    unreported.count += n;
    unreported.last = t;
    unreported.reasons.add(reason);
    if (logEvery(counters.dropped, 1000) || n > 1) {
      log.warn(
        { dropped: counters.dropped, buffered: queue.length, bufferedBytes: queue.bytes, reason },
        'audit events dropped',
      );
    }
  }

  function schedule(at: number): void {
    if (closed) return;
    if (timer !== undefined && timerAt <= at) return;
    if (timer !== undefined) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(
      () => {
        timer = undefined;
        timerAt = Infinity;
        void pump();
      },
      Math.max(0, at - now()),
    );
    // The buffer never keeps a process alive: close() is the way to deliver everything.
    timer.unref();
  }

  function makeReport(): void {
    if (report !== undefined || unreported.count === 0) return;
    const { count, first, last, reasons } = unreported;
    unreported = { count: 0, first: 0, last: 0, reasons: new Set() };
    const event: AuditEvent = {
      schema_version: SCHEMA_VERSION as 1,
      event_id: uuidv7(now()),
      ts: new Date(now()).toISOString(),
      kind: 'session',
      source,
      client: reportClient,
      server: reportServer,
      method: DROPPED_METHOD,
      outcome: 'error',
      error: {
        code: DROPPED_ERROR_CODE,
        message: `${count} audit events were dropped at the source between ${new Date(first).toISOString()} and ${new Date(last).toISOString()} (${[...reasons].sort().join(', ')})`,
      },
      duration_ms: Math.max(0, last - first),
      request_bytes: 0,
      response_bytes: 0,
      labels: {
        'mcp_audit.dropped_count': String(count),
        'mcp_audit.dropped_first_ts': new Date(first).toISOString(),
        'mcp_audit.dropped_last_ts': new Date(last).toISOString(),
        'mcp_audit.dropped_reason': [...reasons].sort().join(','),
      },
    };
    report = { event, bytes: utf8ByteLength(JSON.stringify(event)) };
  }

  function settleWaiters(): void {
    if (queue.length === 0 && report === undefined) {
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve();
    }
  }

  async function pump(): Promise<void> {
    if (sending) return;
    sending = true;
    try {
      while (queue.length > 0 || report !== undefined) {
        const t = now();
        if (t < retryAt) {
          schedule(retryAt);
          return;
        }
        const entries = queue.peek(report === undefined ? maxBatch : maxBatch - 1);
        const batch = report === undefined ? entries : [report, ...entries];
        const withReport = report !== undefined;
        let result: void | { rejected?: number };
        try {
          result = await opts.sink.send(batch.map((e) => e.event));
        } catch (err) {
          counters.failedAttempts++;
          retryAt = now() + delayMs * (0.5 + Math.random() / 2);
          delayMs = Math.min(backoff.max, delayMs * 2);
          if (!failing || logEvery(counters.failedAttempts, 20)) {
            log.warn(
              {
                err,
                buffered: queue.length,
                failedAttempts: counters.failedAttempts,
                retryInMs: retryAt - now(),
              },
              'audit delivery failed; retrying with backoff',
            );
          }
          failing = true;
          if (!closed) schedule(retryAt);
          return;
        }
        counters.sent += entries.length;
        if (closed) {
          // close() gave up waiting and counted this batch as dropped; it made it after all.
          const late = Math.min(entries.length, droppedAtClose);
          counters.dropped -= late;
          droppedAtClose -= late;
          return;
        }
        // Entries are only ever added at the tail, so the head still holds this batch.
        queue.drop(entries.length);
        if (withReport) {
          report = undefined;
          counters.dropReports++;
        }
        if (result && typeof result.rejected === 'number') counters.rejected += result.rejected;
        if (failing) {
          log.info({ sent: entries.length, buffered: queue.length }, 'audit delivery recovered');
          failing = false;
        }
        delayMs = backoff.min;
        retryAt = 0;
        // Delivery works: whatever was dropped meanwhile is reported now, as an event of its own.
        makeReport();
        settleWaiters();
        // Partial batches wait for the interval unless someone is flushing or closing.
        if (queue.length < maxBatch && report === undefined && waiters.length === 0 && !closing) {
          if (queue.length > 0) schedule(now() + flushIntervalMs);
          return;
        }
      }
    } finally {
      sending = false;
      settleWaiters();
    }
  }

  function flush(o: { timeoutMs?: number } = {}): Promise<void> {
    if (queue.length === 0 && report === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        waiters = waiters.filter((w) => w !== done);
        resolve();
      }, o.timeoutMs ?? closeTimeoutMs);
      // Not unref'd: someone awaits this, so the process stays up until delivery or the deadline.
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      waiters.push(done);
      if (now() >= retryAt) schedule(now());
    });
  }

  function build(draft: AuditEventDraft): Record<string, unknown> {
    const ev: Record<string, unknown> = {
      ...draft,
      schema_version: SCHEMA_VERSION,
      event_id: uuidv7(now()),
      ts: draft.ts ?? new Date(now()).toISOString(),
      source,
    };
    const { event } = redactor.redactEvent(ev);
    if (event.args !== undefined && event.args !== null && typeof event.args === 'object') {
      event.args = capArgs(event.args as Record<string, unknown>, maxArgValueBytes).args;
    }
    const error = event.error as { message?: unknown } | undefined;
    if (error && typeof error.message === 'string' && error.message.length > MAX_ERROR_MESSAGE_LENGTH) {
      // Never between the halves of a surrogate pair: a lone one would make the event invalid.
      error.message = `${cutText(error.message, MAX_ERROR_MESSAGE_LENGTH - 1)}…`;
    }
    return event;
  }

  return {
    emit(draft: AuditEventDraft): void {
      try {
        if (closed || closing) {
          countDrop('closed');
          return;
        }
        const result = validateEvent(build(draft), { now: now() });
        if (!result.ok) {
          counters.invalid++;
          if (logEvery(counters.invalid, 100)) {
            log.warn(
              {
                code: result.code,
                reason: redactor.redactString(result.reason).value,
                invalid: counters.invalid,
              },
              'invalid audit event not emitted',
            );
          }
          return;
        }
        const bytes = utf8ByteLength(result.raw);
        if (queue.length >= capacity) return countDrop('buffer_full');
        if (queue.bytes + bytes > maxBufferBytes) return countDrop('buffer_bytes');
        queue.push({ event: result.event, bytes });
        if (queue.length >= maxBatch) schedule(now());
        else schedule(now() + flushIntervalMs);
      } catch (err) {
        // Never into the server: a bug here costs an event, counted and logged, not a tool call.
        counters.invalid++;
        log.error({ err }, 'audit emit failed');
      }
    },

    countDropped(reason: string, count = 1): void {
      try {
        const n = Math.floor(count);
        if (!(n > 0)) return;
        countDrop(reason, n);
        // Nothing may be buffered to carry the report (these drops are not a full buffer): while
        // delivery works, report now rather than with some later batch.
        if (!failing && !closed && !closing) {
          makeReport();
          schedule(now() + flushIntervalMs);
        }
      } catch (err) {
        log.error({ err }, 'audit drop count failed');
      }
    },

    flush,

    async close(): Promise<void> {
      if (closed || closing) return;
      closing = true;
      await flush({ timeoutMs: closeTimeoutMs });
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const left = queue.length;
      if (left > 0) {
        queue.drop(left);
        droppedAtClose = left;
        countDrop('close_timeout', left);
        log.error({ dropped: left }, 'audit events still undelivered at close; dropped');
      }
      if (unreported.count > 0 || report !== undefined) {
        log.error(
          { unreported: unreported.count + Number(report?.event.labels?.['mcp_audit.dropped_count'] ?? 0) },
          'dropped audit events could not be reported before close',
        );
      }
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        opts.sink.close().catch((err: unknown) => log.warn({ err }, 'audit sink close failed')),
        new Promise<void>((resolve) => {
          t = setTimeout(resolve, closeTimeoutMs);
          t.unref();
        }),
      ]);
      clearTimeout(t);
    },

    redactor: { redactString: (s: string) => redactor.redactString(s) },

    stats(): AuditEmitterStats {
      const pendingReport = Number(report?.event.labels?.['mcp_audit.dropped_count'] ?? 0);
      return {
        buffered: queue.length,
        bufferedBytes: queue.bytes,
        unreportedDrops: unreported.count + pendingReport,
        ...counters,
      };
    },
  };
}

function positive(v: number | undefined, def: number, name: string): number {
  if (v === undefined) return def;
  if (!Number.isFinite(v) || v <= 0)
    throw new RangeError(`createAuditEmitter: ${name} must be a positive number`);
  return v;
}
