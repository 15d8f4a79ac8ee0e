import { randomBytes } from 'node:crypto';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * The SSE events of one client session, kept so a client whose stream broke can resume it with
 * `Last-Event-ID` (the SDK's server transport replays what followed that event on the same stream).
 *
 * Why the gateway keeps its own: it terminates MCP on both sides (an SDK server transport facing the
 * client, an SDK client transport facing the upstream), so an upstream's event ids end inside the
 * gateway's upstream transport, which resumes the upstream stream itself when that one breaks, and
 * a stdio upstream has no ids at all. The client's stream is the gateway's; this store makes it as
 * resumable as a direct connection to a server with an event store.
 *
 * Bounded per session: at most `maxEvents` events and `maxBytes` of their JSON (the newest event is
 * kept even when it alone is larger). A client whose Last-Event-ID was evicted, or belongs to another
 * session or an earlier gateway process, cannot resume (the transport answers 500).
 */
export interface SessionEventStoreLimits {
  maxEvents: number;
  maxBytes: number;
}

interface Stored {
  seq: number;
  streamId: string;
  /** Undefined once evicted, so an evicted message is not held until the array is compacted. */
  message: JSONRPCMessage | undefined;
  bytes: number;
}

export class SessionEventStore implements EventStore {
  /** Ids are `<nonce>.<seq>`: the nonce tells this store's ids from any other's. */
  private readonly nonce = randomBytes(6).toString('hex');
  private readonly events: Stored[] = [];
  /** Index of the oldest kept event in `events` (evicted ones are cut off in batches). */
  private head = 0;
  private next = 1;
  private bytes = 0;

  constructor(private readonly limits: SessionEventStoreLimits) {}

  /** Events kept now, and the JSON bytes they hold (for tests and health). */
  get size(): { events: number; bytes: number } {
    return { events: this.events.length - this.head, bytes: this.bytes };
  }

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const seq = this.next++;
    // NOTE: priming events are `{}`; their size barely counts, but they take a slot.
    const bytes = JSON.stringify(message).length;
    this.events.push({ seq, streamId, message, bytes });
    this.bytes += bytes;
    this.evict();
    return `${this.nonce}.${seq}`;
  }

  /**
   * The stream an id of this store belongs to, if it is still kept. NOTE: deliberately not named
   * `getStreamIdForEventId`: with that method the transport answers 409 to a resume while it still
   * holds the broken connection (it learns of the disconnect later than the client), and the
   * SDK client does not retry a resumption-token request; without it the resume replaces the stale
   * connection, as a reconnect should.
   */
  streamOf(eventId: string): string | undefined {
    return this.find(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const last = this.find(lastEventId);
    // Evicted, another session's or another process's id: the transport answers 500 and the client
    // has to start over (its call is lost, as with a server that forgot the event).
    if (!last) throw new Error('the event to resume after is not kept');
    // Copy first: sending yields, and new events of the same stream may be stored meanwhile (the
    // transport skips those it already replayed).
    const after = this.events.slice(this.indexOf(last.seq) + 1).filter((e) => e.streamId === last.streamId);
    for (const e of after) {
      // Priming events carry no message: the client already has its id.
      if (e.message === undefined || Object.keys(e.message).length === 0) continue;
      await send(`${this.nonce}.${e.seq}`, e.message);
    }
    return last.streamId;
  }

  private find(eventId: string): Stored | undefined {
    const dot = eventId.lastIndexOf('.');
    if (dot < 0 || eventId.slice(0, dot) !== this.nonce) return undefined;
    const seq = Number(eventId.slice(dot + 1));
    if (!Number.isSafeInteger(seq)) return undefined;
    const i = this.indexOf(seq);
    return i < 0 ? undefined : this.events[i];
  }

  /** Position of `seq` in `events` (seqs are consecutive from the oldest kept), -1 if not kept. */
  private indexOf(seq: number): number {
    if (this.head >= this.events.length) return -1;
    const i = this.head + (seq - this.events[this.head]!.seq);
    return i >= this.head && i < this.events.length ? i : -1;
  }

  private evict(): void {
    const { maxEvents, maxBytes } = this.limits;
    while (
      this.events.length - this.head > 1 &&
      (this.events.length - this.head > maxEvents || this.bytes > maxBytes)
    ) {
      const old = this.events[this.head]!;
      this.bytes -= old.bytes;
      old.message = undefined;
      this.head++;
    }
    // Drop the evicted prefix once it is as long as what is kept (amortised O(1) per event).
    if (this.head > 64 && this.head * 2 >= this.events.length) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
  }
}
