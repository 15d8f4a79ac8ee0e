import { dbIdent, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Logger } from '@mcp-audit/service-kit';
import {
  cohortId,
  fromRow,
  GLOBAL_ID,
  parseChDateTime,
  type Baseline,
  type BaselineRow,
} from './baseline.js';

/**
 * Baselines by event time: a window is judged against the newest complete version (one with a
 * global row) whose as_of is at or before the window's start. Loads are batched: the engine asks for
 * every (version, client) a batch of events needs in one `prepare`, which is a few queries, and then
 * judges synchronously from the cache.
 */
export interface BaselineSource {
  /** as_of (epoch ms) of every complete version, ascending. */
  versions(): Promise<number[]>;
  /** Client rows of one version (missing clients are simply absent). */
  clients(asOf: number, ids: string[]): Promise<Baseline[]>;
  /** Cohort and global rows of one version. */
  aggregates(asOf: number): Promise<Baseline[]>;
}

const IN_CHUNK = 1_000;

export function clickHouseBaselineSource(ch: ClickHouse): BaselineSource {
  const db = dbIdent(ch.database);
  return {
    async versions() {
      const rows = await ch.query<{ as_of: string }>(
        sql`SELECT DISTINCT as_of FROM ${db}.baselines WHERE kind = 'global' ORDER BY as_of`,
      );
      return rows.map((r) => parseChDateTime(r.as_of));
    },
    async clients(asOf, ids) {
      const out: Baseline[] = [];
      for (let i = 0; i < ids.length; i += IN_CHUNK) {
        const rows = await ch.query<BaselineRow>(sql`
          SELECT * FROM ${db}.baselines FINAL
          WHERE as_of = ${new Date(asOf)} AND kind = 'client' AND client_id IN ${tuple(ids.slice(i, i + IN_CHUNK))}`);
        out.push(...rows.map(fromRow));
      }
      return out;
    },
    async aggregates(asOf) {
      const rows = await ch.query<BaselineRow>(sql`
        SELECT * FROM ${db}.baselines FINAL
        WHERE as_of = ${new Date(asOf)} AND kind IN ('cohort', 'global')`);
      return rows.map(fromRow);
    },
  };
}

export class BaselineStore {
  #versions: number[] = [];
  #clients = new Map<string, Baseline | null>();
  #aggregates = new Map<number, Map<string, Baseline>>();
  #refreshedAt = 0;
  readonly #maxEntries: number;

  constructor(
    private readonly source: BaselineSource,
    private readonly log: Logger,
    opts: { maxEntries?: number } = {},
  ) {
    this.#maxEntries = opts.maxEntries ?? 50_000;
  }

  get versions(): readonly number[] {
    return this.#versions;
  }

  async refresh(): Promise<void> {
    this.#versions = await this.source.versions();
    this.#refreshedAt = Date.now();
  }

  /** Refreshes the version list when older than `maxAgeMs` (wall clock: it is only a cache). */
  async refreshIfOlder(maxAgeMs: number): Promise<void> {
    if (Date.now() - this.#refreshedAt >= maxAgeMs) await this.refresh();
  }

  /** The version a window starting at `windowStart` is judged against. */
  asOfFor(windowStart: number): number | undefined {
    const v = this.#versions;
    let lo = 0;
    let hi = v.length - 1;
    let found: number | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (v[mid]! <= windowStart) {
        found = v[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Loads what `get`/`aggregate` will be asked for (idempotent; cached). */
  async prepare(needs: Map<number, Set<string>>): Promise<void> {
    for (const [asOf, ids] of needs) {
      if (!this.#aggregates.has(asOf)) {
        const rows = await this.source.aggregates(asOf);
        this.#aggregates.set(asOf, new Map(rows.map((b) => [b.clientId, b])));
        if (this.#aggregates.size > 8) this.#aggregates.delete(this.#aggregates.keys().next().value!);
      }
      const missing = [...ids].filter((id) => !this.#clients.has(key(asOf, id)));
      if (missing.length === 0) continue;
      const rows = await this.source.clients(asOf, missing);
      const got = new Map(rows.map((b) => [b.clientId, b]));
      for (const id of missing) this.#clients.set(key(asOf, id), got.get(id) ?? null);
      this.log.debug(
        { asOf: new Date(asOf).toISOString(), asked: missing.length, found: rows.length },
        'baselines loaded',
      );
      // Map keeps insertion order: drop the oldest entries past the cap.
      for (const k of this.#clients.keys()) {
        if (this.#clients.size <= this.#maxEntries) break;
        this.#clients.delete(k);
      }
    }
  }

  isPrepared(asOf: number, id: string): boolean {
    return this.#clients.has(key(asOf, id)) && this.#aggregates.has(asOf);
  }

  client(asOf: number, id: string): Baseline | undefined {
    return this.#clients.get(key(asOf, id)) ?? undefined;
  }

  global(asOf: number): Baseline | undefined {
    return this.#aggregates.get(asOf)?.get(GLOBAL_ID);
  }

  cohort(asOf: number, cohort: string): Baseline | undefined {
    return this.#aggregates.get(asOf)?.get(cohortId(cohort));
  }

  get size(): number {
    return this.#clients.size;
  }
}

const key = (asOf: number, id: string) => `${asOf}|${id}`;
