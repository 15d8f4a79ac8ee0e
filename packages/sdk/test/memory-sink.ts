import type { AuditEvent, AuditSink } from '../src/index.js';

/**
 * An in-memory sink that really fails while `down` is set and can hang a call until released:
 * what the emitter tests drive. Every successful batch is kept, in order.
 */
export class MemorySink implements AuditSink {
  down = false;
  /** When set, send() waits on it before doing anything. */
  gate: Promise<void> | undefined;
  readonly batches: AuditEvent[][] = [];
  calls = 0;
  failures = 0;
  closed = false;
  /** Fails a call whose batch matches, like a broker that times out on one request. */
  failIf: ((events: AuditEvent[]) => boolean) | undefined;

  get events(): AuditEvent[] {
    return this.batches.flat();
  }

  async send(events: AuditEvent[]): Promise<void> {
    this.calls++;
    if (this.gate) await this.gate;
    if (this.closed) throw new Error('sink closed');
    if (this.down || this.failIf?.(events)) {
      this.failures++;
      throw new Error('sink down');
    }
    // Copy: the emitter must not rely on the sink keeping its array.
    this.batches.push(events.map((e) => structuredClone(e)));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
