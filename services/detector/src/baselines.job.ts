import cron from 'node-cron';
import { clickHouseErrorCode, dbIdent, sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Logger } from '@mcp-audit/service-kit';
import {
  aggregateAll,
  aggregateBasis,
  baselineWindow,
  buildGrid,
  chDateTime,
  computeClientBaseline,
  fromRow,
  toRow,
  type Baseline,
  type BaselineRow,
  type Grid,
} from './baseline.js';
import { readHistories } from './baseline.history.js';
import { clientBaselinesInsert } from './baseline.sql.js';
import { profileTimeZone, type DetectorConfig } from './config.js';
import { DAY_MS, HOUR_MS } from './time.js';

export interface BaselineJobDeps {
  /** Reads events_hourly (the analyst or the writer). */
  reader: ClickHouse;
  /** Inserts into baselines and client_state (insertTables must allow them). */
  writer: ClickHouse;
  config: DetectorConfig;
  log: Logger;
  now?: () => number;
  /** Called after each as_of version is written (the detector refreshes its cache). */
  onVersion?: (asOf: number) => void;
}

export interface BaselineRunResult {
  asOf: number;
  version: string;
  clients: number;
  learning: number;
  cohorts: number;
  ms: number;
}

/** Clients per INSERT … SELECT: bounds ClickHouse's memory (a client's 28 days is at most 672 hourly rows). */
const CHUNK_CLIENTS = 2_500;
const INSERT_ROWS = 1_000;
const IN_CHUNK = 1_000;
/** The statements carry the window's layout and, with several time zones, client lists. */
const MAX_QUERY_SIZE = 16 * 1024 * 1024;
/** ClickHouse's ACCESS_DENIED (a 25.8 grant missing). */
const ACCESS_DENIED = 497;

/**
 * Computes the per-client baselines inside ClickHouse (baseline.sql.ts: one INSERT … SELECT per time
 * zone and chunk of clients, nothing per client passes through Node), then the per-cohort and global
 * ones in Node from the client rows read back (the full profiles only of the members they sample).
 */
export function createBaselineJob(deps: BaselineJobDeps) {
  const log = deps.log.child({ component: 'baseline-job' });
  const cfg = deps.config.baseline;
  // The reader's database (mcp_audit in production; tests use their own).
  const db = dbIdent(deps.reader.database);
  let task: ReturnType<typeof cron.schedule> | undefined;
  let running: Promise<unknown> | undefined;
  let last: BaselineRunResult | undefined;
  let lastError: string | undefined;

  async function clientIds(from: number, to: number): Promise<string[]> {
    const rows = await deps.reader.query<{ client_id: string }>(sql`
      SELECT DISTINCT client_id FROM ${db}.events_hourly
      WHERE hour >= ${new Date(from)} AND hour < ${new Date(to)}`);
    return rows.map((r) => r.client_id).sort();
  }

  /**
   * Writes every client row of the version with INSERT … SELECT (baseline.sql.ts): one statement per
   * time zone and chunk of clients; the clients of the commonest time zone are named by exclusion.
   */
  async function writeClientRows(ids: string[], from: number, asOf: number, computedAt: number) {
    const byTz = new Map<string, string[]>();
    for (const id of ids) {
      const tz = profileTimeZone(deps.config, id);
      const list = byTz.get(tz) ?? [];
      list.push(id);
      byTz.set(tz, list);
    }
    const groups = [...byTz].sort((a, b) => b[1].length - a[1].length);
    for (const [gi, [tz, members]] of groups.entries()) {
      const others = groups.filter((_, j) => j !== gi).flatMap(([, m]) => m);
      const inTz =
        others.length === 0
          ? sql`1`
          : gi === 0
            ? sql`client_id NOT IN ${tuple(others)}`
            : sql`client_id IN ${tuple(members)}`;
      const parts = Math.max(1, Math.ceil(members.length / CHUNK_CLIENTS));
      const grid = buildGrid(from, cfg.windowDays, tz);
      for (let part = 0; part < parts; part++) {
        await deps.writer.command(
          clientBaselinesInsert({
            db,
            grid,
            asOf,
            windowDays: cfg.windowDays,
            learningActiveDays: cfg.learningActiveDays,
            computedAt,
            clientFilter: sql`${inTz} AND cityHash64(client_id) % ${parts} = ${part}`,
          }),
          { settings: { max_query_size: String(MAX_QUERY_SIZE) } },
        );
      }
    }
  }

  /** The same client rows as `writeClientRows`, computed in Node (baseline.ts) from the hours read. */
  async function writeClientRowsInNode(
    clients: number,
    from: number,
    to: number,
    asOf: number,
    computedAt: number,
  ) {
    const opts = { asOf, windowDays: cfg.windowDays, learningActiveDays: cfg.learningActiveDays };
    const grids = new Map<string, Grid>();
    const gridFor = (tz: string) => {
      let g = grids.get(tz);
      if (!g) grids.set(tz, (g = buildGrid(from, cfg.windowDays, tz)));
      return g;
    };
    const parts = Math.max(1, Math.ceil(clients / CHUNK_CLIENTS));
    for (let part = 0; part < parts; part++) {
      const histories = await readHistories(
        deps.reader,
        db,
        from,
        to,
        sql`cityHash64(client_id) % ${parts} = ${part}`,
      );
      const rows = histories.map((h) =>
        toRow(computeClientBaseline(h, gridFor(profileTimeZone(deps.config, h.clientId)), opts), computedAt),
      );
      await insertRows('baselines', rows);
    }
  }

  /**
   * The client rows just written, as the aggregates need them: every member's state, cohort, first
   * and last hour, tools and servers; the full profiles only of the members each aggregate's basis
   * samples (baseline.ts aggregateBasis), read in chunks.
   */
  async function readClientRows(asOf: number, computedAt: number): Promise<Baseline[]> {
    const version = sql`as_of = ${new Date(asOf)} AND kind = 'client' AND computed_at = ${new Date(computedAt)}`;
    const light = (
      await deps.reader.query<BaselineRow>(sql`
        SELECT client_id, as_of, version, kind, state, window_days, active_days, active_hours, first_seen,
               last_seen, time_zone, cohort, members, tools, tool_counts, servers, server_counts
        FROM ${db}.baselines FINAL WHERE ${version} ORDER BY client_id`)
    ).map(fromRow);
    const byCohort = new Map<string, Baseline[]>();
    for (const b of light) byCohort.set(b.cohort, [...(byCohort.get(b.cohort) ?? []), b]);
    const wanted = new Set<string>();
    for (const members of [light, ...byCohort.values()])
      for (const b of aggregateBasis(members)) wanted.add(b.clientId);
    const full = new Map<string, Baseline>();
    const ids = [...wanted];
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const rows = await deps.reader.query<BaselineRow>(sql`
        SELECT * FROM ${db}.baselines FINAL
        WHERE ${version} AND client_id IN ${tuple(ids.slice(i, i + IN_CHUNK))}`);
      for (const r of rows) full.set(String(r.client_id), fromRow(r));
    }
    return light.map((b) => full.get(b.clientId) ?? b);
  }

  async function insertRows(table: 'baselines' | 'client_state', rows: Record<string, unknown>[]) {
    for (let i = 0; i < rows.length; i += INSERT_ROWS)
      await deps.writer.insert(table, rows.slice(i, i + INSERT_ROWS));
  }

  /** Computes (idempotently) the version as of `asOf` (floored to the hour) for every client. */
  async function computeAsOf(asOfInput: number): Promise<BaselineRunResult> {
    const t0 = Date.now();
    const asOf = Math.floor(asOfInput / HOUR_MS) * HOUR_MS;
    const { from, to } = baselineWindow(asOf, cfg.windowDays);
    const opts = { asOf, windowDays: cfg.windowDays, learningActiveDays: cfg.learningActiveDays };
    const computedAt = deps.now?.() ?? Date.now();
    const ids = await clientIds(from, to);
    if (ids.length > 0) {
      try {
        await writeClientRows(ids, from, asOf, computedAt);
      } catch (err) {
        // The writer may not read events_hourly (25.8 grants: INSERT on the detector's tables
        // only). Then the rows are computed in Node as before: the same rows, slower.
        if (clickHouseErrorCode(err) !== ACCESS_DENIED) throw err;
        log.warn({ err }, 'baselines: the writer cannot read events_hourly; computing in Node');
        await writeClientRowsInNode(ids.length, from, to, asOf, computedAt);
      }
    }
    const clients = ids.length > 0 ? await readClientRows(asOf, computedAt) : [];
    const aggregates = aggregateAll(clients, opts);
    await insertRows(
      'client_state',
      clients.map((b) => ({
        client_id: b.clientId,
        as_of: chDateTime(asOf),
        state: b.state,
        active_days: b.activeDays,
        required_days: cfg.learningActiveDays,
        baseline_version: b.version,
        cohort: b.cohort,
        computed_at: chDateTime(computedAt),
      })),
    );
    // The global row goes last: its presence marks the version complete (readers wait for it).
    await insertRows(
      'baselines',
      aggregates.map((b) => toRow(b, computedAt)),
    );
    const result: BaselineRunResult = {
      asOf,
      version: aggregates.at(-1)?.version ?? '',
      clients: clients.length,
      learning: clients.filter((b) => b.state === 'learning').length,
      cohorts: aggregates.length - (clients.length > 0 ? 1 : 0),
      ms: Date.now() - t0,
    };
    log.info({ ...result, asOf: new Date(asOf).toISOString() }, 'baselines computed');
    last = result;
    deps.onVersion?.(asOf);
    return result;
  }

  /** Daily versions (00:00 UTC) for every day in [from, to] (backfill). */
  async function computeRange(
    fromMs: number,
    toMs: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<BaselineRunResult[]> {
    const first = Math.ceil(fromMs / DAY_MS) * DAY_MS;
    const days: number[] = [];
    for (let d = first; d <= toMs; d += DAY_MS) days.push(d);
    const out: BaselineRunResult[] = [];
    for (const [i, d] of days.entries()) {
      out.push(await computeAsOf(d));
      onProgress?.(i + 1, days.length);
    }
    return out;
  }

  /** The version the cron run computes: as of the start of the current UTC day. */
  const scheduledAsOf = () => Math.floor((deps.now?.() ?? Date.now()) / DAY_MS) * DAY_MS;

  return {
    computeAsOf,
    computeRange,
    start() {
      task = cron.schedule(
        cfg.cron,
        () => {
          if (running) return;
          running = computeAsOf(scheduledAsOf())
            .then(() => (lastError = undefined))
            .catch((err: unknown) => {
              lastError = (err as Error).message;
              log.error({ err }, 'baseline job failed; the previous version stays in use');
            })
            .finally(() => (running = undefined));
        },
        { timezone: 'UTC', name: 'baselines', noOverlap: true },
      );
    },
    /** Runs once now unless today's version exists (start-up catch-up). */
    async ensureCurrent(): Promise<void> {
      const asOf = scheduledAsOf();
      const rows = await deps.reader.query<{ n: string }>(sql`
        SELECT count() AS n FROM ${db}.baselines WHERE as_of = ${new Date(asOf)} AND kind = 'global'`);
      if (Number(rows[0]?.n ?? 0) === 0) await computeAsOf(asOf);
    },
    async stop() {
      await task?.stop();
      task = undefined;
      await running;
    },
    health() {
      return {
        ok: lastError === undefined,
        details: {
          lastVersion: last?.version ?? null,
          lastClients: last?.clients ?? null,
          lastMs: last?.ms ?? null,
          lastError: lastError ?? null,
        },
      };
    },
  };
}

export type BaselineJob = ReturnType<typeof createBaselineJob>;
