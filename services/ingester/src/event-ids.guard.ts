import { createHash } from 'node:crypto';
import { remainderOfRow } from '@mcp-audit/schema';
import type { EventRow } from './events.row.js';

/**
 * One event per event_id (DESIGN: "the same id twice is one event"). Before a batch is written, its
 * ids are looked up in mcp_audit.event_ids; the ids nobody holds are reserved there (their event_ids
 * rows are inserted before the events rows) and read back. A copy whose id is held with other content
 * is refused (dead-lettered and recorded as a conflict for the event_id_reuse alert), whoever reserved
 * first; a copy identical to the stored one is a redelivery and is not written again; a new id is
 * written. So at most one content per id ever reaches mcp_audit.events, even from two ingesters at
 * once (they both see both reservations and both refuse), and every reader and rollup sees one event
 * per id by construction. Per chunk: a lookup, a reservation insert and its read-back; one more query
 * (the events rows) only for ids already held or held with other content.
 */

const LOOKUP_IDS = 4_000;
const STORED_ROWS_IDS = 1_000;

/** Columns that are not the event's content: its key and the ingestion bookkeeping. */
const NOT_CONTENT = new Set(['event_id', 'ver', 'ingested_at', 'kafka_partition', 'kafka_offset']);

/** An id as mcp_audit.event_ids stores it (digest '' = backfilled from events, content unknown). */
export interface StoredId {
  event_id: string;
  digest: string;
  /** Event time, epoch seconds. */
  ts: number;
  client_id: string;
  ver: number;
  /** Epoch seconds: when the copy behind this row was ingested (tells a reservation from another). */
  ingested_at: number;
}

/** A stored copy of an event: its content columns plus where it came from. */
export interface StoredCopy {
  eventId: string;
  digest: string;
  columns: string[];
  ts: number;
  clientId: string;
  sourceId: string;
  /** Epoch seconds. */
  ingestedAt: number;
  ver: number;
  partition: number;
  offset: string;
}

export interface EventIdStore {
  /** The stored ids among `ids` (one query). */
  lookup(ids: string[]): Promise<StoredId[]>;
  /**
   * The events rows behind `keys` (one query): every column by name, DateTime columns as epoch
   * seconds, as EventRow holds them.
   */
  storedRows(keys: StoredId[]): Promise<Array<Record<string, unknown>>>;
}

export type Verdict =
  | { kind: 'new' }
  /** Same content as a stored (or in-flight, or earlier in the batch) copy: written once already. */
  | { kind: 'duplicate' }
  | { kind: 'conflict'; fields: string[]; stored: StoredCopy };

export interface GuardResult {
  verdicts: Verdict[];
  /** Call once the batch's rows are durable (or refused): frees this batch's in-flight ids. */
  release(): void;
}

/** Canonical text of one column value: the same for an EventRow and the row ClickHouse returns. */
function canon(v: unknown): string {
  if (v === null || v === undefined) return '\u0000';
  if (Array.isArray(v)) return JSON.stringify(v.map(String));
  return String(v);
}

/** The content columns, in the row's own order (toEventRow): every column but key and bookkeeping. */
export function contentColumns(row: EventRow): string[] {
  return Object.keys(row).filter((k) => !NOT_CONTENT.has(k));
}

export function contentOf(row: Record<string, unknown>, columns: readonly string[]): string[] {
  return columns.map((c) => canon(row[c]));
}

export function digestOf(content: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}

function copyOfRow(row: Record<string, unknown>, columns: readonly string[]): StoredCopy {
  const c = contentOf(row, columns);
  return {
    eventId: String(row.event_id),
    digest: digestOf(c),
    columns: c,
    ts: Number(row.ts),
    clientId: String(row.client_id),
    sourceId: String(row.source_id),
    ingestedAt: Number(row.ingested_at),
    ver: Number(row.ver),
    partition: Number(row.kafka_partition),
    offset: String(row.kafka_offset),
  };
}

/**
 * A copy of a row this process is about to write. Its canonical content is needed for the digest,
 * and again only to name the fields of a conflict, so it is not held (40 strings a row, for every row
 * of every chunk in flight until it is durable) but made again from the row when asked for.
 */
class OwnCopy implements StoredCopy {
  readonly eventId: string;
  readonly digest: string;
  readonly ts: number;
  readonly clientId: string;
  readonly sourceId: string;
  readonly ingestedAt: number;
  readonly ver: number;
  readonly partition: number;
  readonly offset: string;

  constructor(
    private readonly row: EventRow,
    private readonly names: readonly string[],
  ) {
    this.eventId = row.event_id;
    this.digest = digestOf(this.columns);
    this.ts = row.ts;
    this.clientId = row.client_id;
    this.sourceId = row.source_id;
    this.ingestedAt = row.ingested_at;
    this.ver = row.ver;
    this.partition = row.kafka_partition;
    this.offset = String(row.kafka_offset);
  }

  get columns(): string[] {
    return contentOf(this.row as unknown as Record<string, unknown>, this.names);
  }
}

const differing = (columns: readonly string[], a: readonly string[], b: readonly string[]): string[] =>
  columns.filter((_, i) => a[i] !== b[i]);

/** A row of mcp_audit.event_ids (schemas/clickhouse/009_event_ids.sql). */
export interface EventIdRow {
  event_id: string;
  digest: string;
  ts: number;
  client_id: string;
  ingested_at: number;
  ver: number;
}

/**
 * The event_ids row of an events row: the ingester inserts it before the events row (its reservation),
 * the history import after it.
 */
export function eventIdRow(row: EventRow, digest?: string): EventIdRow {
  return {
    event_id: row.event_id,
    digest: digest ?? digestOf(contentOf(row as unknown as Record<string, unknown>, contentColumns(row))),
    ts: row.ts,
    client_id: row.client_id,
    ingested_at: row.ingested_at,
    ver: row.ver,
  };
}

/** Inserts reservations into mcp_audit.event_ids (the ingester's insert; resolves once acknowledged). */
export type ReserveIds = (rows: EventIdRow[]) => Promise<void>;

const byId = (found: StoredId[]): Map<string, StoredId[]> => {
  const m = new Map<string, StoredId[]>();
  for (const s of found) {
    const list = m.get(s.event_id) ?? [];
    list.push(s);
    m.set(s.event_id, list);
  }
  return m;
};

interface Waiting {
  rows: EventRow[];
  resolve(result: GuardResult): void;
  reject(err: unknown): void;
}

/** A round's verdicts (in row order) and the copies it put in flight, by row index (ascending). */
interface RoundResult {
  verdicts: Verdict[];
  owned: Array<{ index: number; copy: StoredCopy }>;
}

/** How long an id this process reserved is checked against events before it is written again. */
const RECENT_MS = 3_000;

export class EventIdGuard {
  /** Ids of rows accepted by a batch of this process and not yet durable, by id. */
  private readonly inFlight = new Map<string, StoredCopy>();
  /**
   * Ids a batch of this process reserved in the last RECENT_MS (released: written or not), with when
   * they leave. A reservation is told from this chunk's own by digest and ingestion SECOND, so an
   * identical redelivery in a later chunk of the same second would take an earlier batch's reservation
   * for its own and write the event again; an id seen here is checked against events instead.
   */
  private readonly recent = new Map<string, number>();
  private readonly digests = new WeakMap<EventRow, string>();
  /** Chunks waiting for the next round, and whether a round is in flight. */
  private waiting: Waiting[] = [];
  private inRound = false;

  constructor(
    private readonly store: EventIdStore,
    private readonly reserve: ReserveIds,
  ) {}

  /** The event_ids row for a row this guard accepted. */
  idRow(row: EventRow): EventIdRow {
    return eventIdRow(row, this.digests.get(row));
  }

  private async lookup(ids: string[]): Promise<StoredId[]> {
    // NOTE: 4,000 quoted ids are ~160 kB of SQL, under ClickHouse's 256 kB max_query_size. A round
    // holds every chunk that waited for the one before (up to a whole fetch, 6 partitions × ~4,000
    // events): its slices are asked at once, not one after the other.
    const slices: string[][] = [];
    for (let i = 0; i < ids.length; i += LOOKUP_IDS) slices.push(ids.slice(i, i + LOOKUP_IDS));
    return (await Promise.all(slices.map((q) => this.store.lookup(q)))).flat();
  }

  /**
   * Checks `rows` (a chunk) in the next round. A round is one reservation insert and one read-back
   * for every chunk that asked while the round before was in flight: a fetch's 6 partition chunks
   * (and the other lanes' chunks) share two ClickHouse round trips instead of two each, and event_ids
   * gets a part per round instead of one per chunk. The first chunk goes at once; parsing the next
   * ones overlaps its round trips. NOTE: measured, this did not change bench:ingest's throughput
   * either way (BENCHMARKS.md, issue 15 second pass); more, smaller checks did slow it down.
   */
  check(rows: EventRow[]): Promise<GuardResult> {
    if (rows.length === 0) return Promise.resolve({ verdicts: [], release: () => undefined });
    return new Promise((resolve, reject) => {
      this.waiting.push({ rows, resolve, reject });
      this.nextRound();
    });
  }

  private nextRound(): void {
    if (this.inRound || this.waiting.length === 0) return;
    const callers = this.waiting.splice(0);
    this.inRound = true;
    void this.round(callers).finally(() => {
      this.inRound = false;
      this.nextRound();
    });
  }

  private async round(callers: Waiting[]): Promise<void> {
    const rows = callers.length === 1 ? callers[0]!.rows : callers.flatMap((c) => c.rows);
    let result: RoundResult;
    try {
      result = await this.checkRound(rows);
    } catch (err) {
      for (const c of callers) c.reject(err);
      return;
    }
    // Each chunk frees only its own in-flight ids, when ITS rows are durable (lanes write apart).
    let start = 0;
    let k = 0;
    for (const c of callers) {
      const end = start + c.rows.length;
      const mine: StoredCopy[] = [];
      for (; k < result.owned.length && result.owned[k]!.index < end; k++) mine.push(result.owned[k]!.copy);
      c.resolve({ verdicts: result.verdicts.slice(start, end), release: () => this.release(mine) });
      start = end;
    }
  }

  /** The copies leave the in-flight set; their ids are checked against events for RECENT_MS. */
  private release(owned: readonly StoredCopy[]): void {
    const until = Date.now() + RECENT_MS;
    for (const o of owned) {
      if (this.inFlight.get(o.eventId) === o) this.inFlight.delete(o.eventId);
      this.recent.delete(o.eventId);
      this.recent.set(o.eventId, until);
    }
  }

  /**
   * Reserve-then-check (README "One event per event_id"): reserve the chunk's ids (insert their
   * event_ids rows BEFORE the events rows), then read every reservation of them back. A copy goes on to
   * events only if every reservation of its id carries its digest (and, unless it is in events already,
   * is written); so of two ingesters racing with two contents for one id at most one proceeds (in a
   * true tie both are refused).
   */
  private async checkRound(rows: EventRow[]): Promise<RoundResult> {
    const now = Date.now();
    // Insertion order is expiry order (a re-release moves the id to the end).
    for (const [id, until] of this.recent) {
      if (until > now) break;
      this.recent.delete(id);
    }
    const columns = contentColumns(rows[0]!);
    const copies: StoredCopy[] = rows.map((r) => new OwnCopy(r, columns));
    rows.forEach((r, i) => this.digests.set(r, copies[i]!.digest));

    // Reserve in this process first (synchronously), then in the store: of two concurrent batches of
    // this process, the one that reserved first wins without a round trip.
    const owned: Array<{ index: number; copy: StoredCopy }> = [];
    // NOTE: a set, not owned.some(): that was quadratic in the chunk (12.5M comparisons for 5,000 rows).
    const ownedIds = new Set<string>();
    const rowOf = new Map<StoredCopy, EventRow>();
    const earlier = new Map<string, StoredCopy>();
    copies.forEach((c, i) => {
      if (earlier.has(c.eventId) || ownedIds.has(c.eventId)) return;
      const other = this.inFlight.get(c.eventId);
      if (other) earlier.set(c.eventId, other);
      else {
        this.inFlight.set(c.eventId, c);
        owned.push({ index: i, copy: c });
        ownedIds.add(c.eventId);
        rowOf.set(c, rows[i]!);
      }
    });

    try {
      const ids = [...new Set(copies.map((c) => c.eventId))];
      // Reserve every id this chunk holds (its first copy), then read every reservation of the chunk's
      // ids back: the same two round trips as a lookup and the ids insert after the events, in the
      // other order. An identical copy reserved again merges with the earlier row.
      if (owned.length > 0)
        await this.reserve(owned.map(({ copy: c }) => eventIdRow(rowOf.get(c)!, c.digest)));
      const stored = byId(await this.lookup(ids));
      const mine = new Map(owned.map(({ copy: c }) => [c.eventId, c]));
      // Only this chunk's own reservation (its digest, its ingestion second): a new id, written.
      const onlyOurs = (id: string): boolean => {
        const c = mine.get(id);
        return (
          !!c &&
          !this.recent.has(id) &&
          (stored.get(id) ?? []).every((s) => s.digest === c.digest && s.ingested_at === c.ingestedAt)
        );
      };

      // Read the events rows where a reservation is not only this chunk's: an identical copy reserved
      // before (stored, or did its writer crash before its events insert?), another digest (the
      // conflict's fields), a backfilled id (digest unknown), an id in flight in this process. One query.
      const unresolved = ids.filter((id) => stored.has(id) && !onlyOurs(id));
      const storedCopies = new Map<string, StoredCopy[]>();
      // NOTE: a redelivered chunk sends all its ids here; the query names each id, event time and
      // client, so at most STORED_ROWS_IDS ids per query keep it under max_query_size (256 kB).
      for (let i = 0; i < unresolved.length; i += STORED_ROWS_IDS) {
        const keys = unresolved.slice(i, i + STORED_ROWS_IDS).flatMap((id) => stored.get(id)!);
        for (const r of await this.store.storedRows(keys)) {
          // A row stored before migration 013 holds the whole event in `raw`: compared as the remainder
          // today's ingester writes, so a redelivery across the upgrade is a duplicate, not a conflict.
          const sc = copyOfRow({ ...r, raw: remainderOfRow(r) }, columns);
          const list = storedCopies.get(sc.eventId) ?? [];
          list.push(sc);
          storedCopies.set(sc.eventId, list);
        }
      }

      // The content of each id that is (or will be) stored: a stored events row wins (the first
      // ingested, and among them the identical one); else the in-flight copy of another batch of this
      // process; else this chunk's first copy, if every reservation of the id carries its digest.
      const winner = new Map<string, StoredCopy>();
      const winnerOf = (c: StoredCopy): StoredCopy => {
        const known = (storedCopies.get(c.eventId) ?? []).sort(
          (a, b) => b.ver - a.ver || a.ingestedAt - b.ingestedAt,
        );
        const fromEvents = known.find((k) => k.digest === c.digest) ?? known[0];
        if (fromEvents) return fromEvents;
        const inFlight = earlier.get(c.eventId);
        if (inFlight) return inFlight;
        const others = (stored.get(c.eventId) ?? []).filter((s) => s.digest !== c.digest);
        // Held only with this content and not in events: new, or written by a batch that crashed
        // between its reservation and its events insert (redelivered now): written (again) either way.
        return others.length === 0 ? c : unreadable(others);
      };
      const verdicts: Verdict[] = copies.map((c) => {
        let w = winner.get(c.eventId);
        if (!w) {
          w = winnerOf(c);
          winner.set(c.eventId, w);
          if (w === c) return { kind: 'new' };
        }
        if (w.digest === c.digest) return { kind: 'duplicate' };
        return {
          kind: 'conflict',
          fields: w.columns.length > 0 ? differing(columns, w.columns, c.columns) : [],
          stored: w,
        };
      });
      // A refused or duplicate id reserved by this batch is not in flight.
      for (let i = 0; i < copies.length; i++) {
        const c = copies[i]!;
        if (
          verdicts[i]!.kind !== 'new' &&
          this.inFlight.get(c.eventId) === c &&
          winner.get(c.eventId) !== c
        ) {
          this.inFlight.delete(c.eventId);
        }
      }
      return { verdicts, owned };
    } catch (err) {
      this.release(owned.map((o) => o.copy));
      throw err;
    }
  }
}

/** A stored id whose events row could not be read (e.g. its day is being dropped): content unknown. */
function unreadable(s: StoredId[]): StoredCopy {
  const first = [...s].sort((a, b) => b.ver - a.ver)[0]!;
  return {
    eventId: first.event_id,
    digest: first.digest,
    columns: [],
    ts: first.ts,
    clientId: first.client_id,
    sourceId: '',
    ingestedAt: 0,
    ver: first.ver,
    partition: -1,
    offset: '-1',
  };
}
