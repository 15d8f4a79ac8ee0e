import cron from 'node-cron';
import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Logger } from '@mcp-audit/service-kit';
import {
  aggregateAll,
  baselineWindow,
  buildGrid,
  chDateTime,
  computeClientBaseline,
  toRow,
  type Baseline,
  type Grid,
} from './baseline.js';
import { readHistories } from './baseline.history.js';
import { createHourlyFinalizer, type FinalizeResult, type HourlyFinalizer } from './hourly.finalizer.js';
import { profileTimeZone, type DetectorConfig } from './config.js';
import { DAY_MS, HOUR_MS } from './time.js';

export interface BaselineJobDeps {
  /** Reads events_hourly, events_hourly_final and the finalizer's progress (the analyst or the writer). */
  reader: ClickHouse;
  /** Inserts into baselines, client_state and the finalizer's tables (insertTables must allow them). */
  writer: ClickHouse;
  config: DetectorConfig;
  log: Logger;
  now?: () => number;
  /** Called after each as_of version is written (the detector refreshes its cache). */
  onVersion?: (asOf: number) => void;
  /** Finalizes events_hourly into plain counts (default: reader + writer, 10-minute margin). */
  finalizer?: HourlyFinalizer;
  /**
   * Runs the scheduled and start-up versions elsewhere (baselines.worker.ts); `onVersion` is called
   * here when it resolves. Default: `computeAsOf` in this thread.
   */
  compute?: (asOf: number) => Promise<BaselineRunResult>;
}

export interface BaselineRunResult {
  asOf: number;
  version: string;
  clients: number;
  learning: number;
  cohorts: number;
  ms: number;
  /** The finalizer run that preceded the read. */
  finalized: Pick<FinalizeResult, 'pairs' | 'full' | 'ms'>;
}

/**
 * Clients per query chunk: bounds memory (a client's 28 days is at most 672 hourly rows; 1,000
 * clients ≈ 0.67 M rows, their JSON and objects ~100 MB while a chunk is computed). The job runs in
 * the detector, so this is part of its peak RSS.
 */
const CHUNK_CLIENTS = 1_000;
const INSERT_ROWS = 1_000;

/**
 * Finalizes the hours not yet final (hourly.finalizer.ts), reads the finalized per-hour counts for
 * every client in bulk (one statement per chunk of clients, never one per client), computes the
 * per-client, per-cohort and global baselines, writes them.
 *
 * NOTE (issue 15): reading events_hourly's states instead (readHistories' `states`, the reference) merges
 * ~6.7 M uniqExact states for 10,000 clients × 28 days on every run; the finalizer merges each
 * (client, hour) once, after it closes (and again only if a late event touches it). Computing the
 * client rows inside ClickHouse instead (one INSERT … SELECT, commit acf3cfc, equal to the last
 * bit) was measured 2× slower on 18.16 than this (500 clients ×
 * 28 days, same data, back to back: 12.1–12.9 s against 6.2–6.4 s): the array levels it needs
 * run on generic (Field-based) aggregate states. Both are dominated by merging events_hourly's
 * uniqExact states (≈ 4.8 s of the 6.2 s); Node's statistics take 0.4–0.7 s. See BENCHMARKS.md.
 */
export function createBaselineJob(deps: BaselineJobDeps) {
  const log = deps.log.child({ component: 'baseline-job' });
  const cfg = deps.config.baseline;
  // The reader's database (mcp_audit in production; tests use their own).
  const db = dbIdent(deps.reader.database);
  const finalizer =
    deps.finalizer ?? createHourlyFinalizer({ reader: deps.reader, writer: deps.writer, db, log });
  let task: ReturnType<typeof cron.schedule> | undefined;
  let finalizeTask: ReturnType<typeof cron.schedule> | undefined;
  let finalizing: Promise<void> | undefined;
  let running: Promise<unknown> | undefined;
  let last: BaselineRunResult | undefined;
  let lastError: string | undefined;

  async function chunkCount(from: number, to: number): Promise<number> {
    const rows = await deps.reader.query<{ n: string }>(sql`
      SELECT uniqExact(client_id) AS n FROM ${db}.events_hourly_final
      WHERE hour >= ${new Date(from)} AND hour < ${new Date(to)}`);
    return Math.max(1, Math.ceil(Number(rows[0]?.n ?? 0) / CHUNK_CLIENTS));
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
    const fin = await finalizer.run(to);
    const opts = { asOf, windowDays: cfg.windowDays, learningActiveDays: cfg.learningActiveDays };
    const grids = new Map<string, Grid>();
    const gridFor = (tz: string) => {
      let g = grids.get(tz);
      if (!g) grids.set(tz, (g = buildGrid(from, cfg.windowDays, tz)));
      return g;
    };
    const parts = await chunkCount(from, to);
    const computedAt = deps.now?.() ?? Date.now();
    const clients: Baseline[] = [];
    for (let part = 0; part < parts; part++) {
      const histories = await readHistories(
        deps.reader,
        db,
        from,
        to,
        sql`cityHash64(client_id) % ${parts} = ${part}`,
        'final',
      );
      const chunk = histories.map((h) =>
        computeClientBaseline(h, gridFor(profileTimeZone(deps.config, h.clientId)), opts),
      );
      await insertRows(
        'baselines',
        chunk.map((b) => toRow(b, computedAt)),
      );
      // Keep only what the aggregates need: the per-client rows are already written.
      clients.push(...chunk);
    }
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
      finalized: { pairs: fin.pairs, full: fin.full, ms: fin.ms },
    };
    log.info({ ...result, asOf: new Date(asOf).toISOString(), parts }, 'baselines computed');
    last = result;
    deps.onVersion?.(asOf);
    return result;
  }

  /** A scheduled or start-up run: in `deps.compute` when given (a worker), else here. */
  async function scheduled(asOf: number): Promise<BaselineRunResult> {
    if (!deps.compute) return computeAsOf(asOf);
    const result = await deps.compute(asOf);
    log.info({ ...result, asOf: new Date(result.asOf).toISOString() }, 'baselines computed (worker)');
    last = result;
    deps.onVersion?.(result.asOf);
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
          running = scheduled(scheduledAsOf())
            .then(() => (lastError = undefined))
            .catch((err: unknown) => {
              lastError = (err as Error).message;
              log.error({ err }, 'baseline job failed; the previous version stays in use');
            })
            .finally(() => (running = undefined));
        },
        { timezone: 'UTC', name: 'baselines', noOverlap: true },
      );
      finalizeTask = cron.schedule(
        cfg.finalizeCron,
        () => {
          finalizing = finalizer
            .run()
            .then(() => undefined)
            .catch((err: unknown) =>
              log.error({ err }, 'hour finalizer failed; the baseline job retries it'),
            );
        },
        { timezone: 'UTC', name: 'finalize-hours', noOverlap: true },
      );
    },
    /** Runs once now unless today's version exists (start-up catch-up). */
    async ensureCurrent(): Promise<void> {
      const asOf = scheduledAsOf();
      const rows = await deps.reader.query<{ n: string }>(sql`
        SELECT count() AS n FROM ${db}.baselines WHERE as_of = ${new Date(asOf)} AND kind = 'global'`);
      if (Number(rows[0]?.n ?? 0) === 0) await scheduled(asOf);
    },
    async stop() {
      await task?.stop();
      await finalizeTask?.stop();
      task = undefined;
      finalizeTask = undefined;
      await running;
      await finalizing;
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
