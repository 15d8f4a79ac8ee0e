import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';

export interface ProgressEntry {
  detector: string;
  windowMs: number;
  /** End (epoch ms, exclusive) of the last window evaluated and handed to the lifecycle. */
  lastEnd: number;
}

/** Where the runner remembers the last evaluated window per detector and window length. */
export interface ProgressStore {
  load(): Promise<ProgressEntry[]>;
  save(entries: readonly ProgressEntry[]): Promise<void>;
}

export const PERIODIC_PROGRESS_TABLE = 'periodic_progress';

/**
 * mcp_audit.periodic_progress (schemas/clickhouse/005_periodic_progress.sql). Rows only ever move
 * forward, so reading max(last_end_ms) is right before and after merges.
 * `reader` may be the analyst; `writer` needs INSERT on the table (create it with
 * `insertTables: [PERIODIC_PROGRESS_TABLE]`).
 */
export function clickHouseProgressStore(deps: { reader: ClickHouse; writer: ClickHouse }): ProgressStore {
  const table = sql`${dbIdent(deps.reader.database)}.periodic_progress`;
  return {
    async load() {
      const rows = await deps.reader.query<{ detector: string; window_ms: string; last_end_ms: string }>(sql`
        SELECT detector, window_ms, max(last_end_ms) AS last_end_ms
        FROM ${table} GROUP BY detector, window_ms ORDER BY detector, window_ms`);
      return rows.map((r) => ({
        detector: r.detector,
        windowMs: Number(r.window_ms),
        lastEnd: Number(r.last_end_ms),
      }));
    },
    async save(entries) {
      const now = Math.floor(Date.now() / 1000);
      await deps.writer.insert(
        PERIODIC_PROGRESS_TABLE,
        entries.map((e) => ({
          detector: e.detector,
          window_ms: e.windowMs,
          last_end_ms: e.lastEnd,
          updated_at: now,
        })),
      );
    },
  };
}

/** In-process store (tests, and replay, which must not move the live progress). */
export function memoryProgressStore(initial: readonly ProgressEntry[] = []): ProgressStore & {
  entries: ProgressEntry[];
} {
  const entries = [...initial];
  return {
    entries,
    async load() {
      const best = new Map<string, ProgressEntry>();
      for (const e of entries) {
        const k = `${e.detector}\u0000${e.windowMs}`;
        const b = best.get(k);
        if (!b || e.lastEnd > b.lastEnd) best.set(k, e);
      }
      return [...best.values()].map((e) => ({ ...e }));
    },
    async save(list) {
      entries.push(...list.map((e) => ({ ...e })));
    },
  };
}
