import type { AuditEventV1 } from '@mcp-audit/schema';

/** The schema package's event type: what sinks carry. */
export type AuditEvent = AuditEventV1;

/** What a sink may report about a batch it delivered. */
export interface SinkSendResult {
  /**
   * Events the receiver refused for good (the collector dead-letters them with the reason), so
   * retrying cannot help. The emitter counts them in `stats().rejected`.
   */
  rejected?: number;
}

/**
 * Where an emitter delivers batches. `send` resolves once the receiver holds the batch durably
 * (Kafka acks=-1, or the collector's 2xx) and rejects on anything retryable; the emitter retries
 * the same batch (same event ids, so a partial success is deduplicated downstream).
 */
export interface AuditSink {
  send(events: AuditEvent[]): Promise<void | SinkSendResult>;
  close(): Promise<void>;
}

/** A failed delivery attempt; the emitter retries it with backoff. */
export class AuditDeliveryError extends Error {
  readonly code: 'AUDIT_ERR_COLLECTOR_UNAVAILABLE' | 'AUDIT_ERR_COLLECTOR_REFUSED';
  readonly retryable = true;
  /** HTTP status of the collector's answer, if there was one. */
  readonly status: number | undefined;
  constructor(
    code: AuditDeliveryError['code'],
    message: string,
    opts: { status?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AuditDeliveryError';
    this.code = code;
    this.status = opts.status;
  }
}
