import { sql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import type { Logger } from '@mcp-audit/service-kit';
import { chDateTime } from './baseline.js';
import { HOUR_MS } from './time.js';

/**
 * Finalizes events_hourly into plain per-hour counts (events_hourly_final, migration 014), so the
 * baseline job reads numbers instead of merging ~6.7 M uniqExact states per run (issue 15).
 *
 * Exactness: every insert into events stamps the (client, hour) pairs it touched with the server
 * time (events_hourly_touched, a materialized view beside events_hourly's). A run at server time
 * `ranAt` merges the states of every pair before `upTo` that was touched since the previous run's
 * `ranAt − marginMs`, or that lies at or after the previous run's `upTo`; so after a run, every pair
 * before `upTo` whose last touch is older than `ranAt − marginMs` holds the merge of all its states.
 * The margin covers an insert whose view rows become visible after its `now()` (commit time, clock
 * skew between nodes of a cluster). A late event touches its hour again: the next run finalizes it
 * again; rows are versioned by `finalized_at` and readers take the latest.
 *
 * Direct writers of events_hourly (only benchmarks seed it so) must touch what they write.
 */
export interface HourlyFinalizerDeps {
  /** Reads events_hourly, events_hourly_touched and events_hourly_final_runs (the analyst). */
  reader: ClickHouse;
  /** Inserts into events_hourly_final and events_hourly_final_runs (insertTables must allow them). */
  writer: ClickHouse;
  /** The database of the tables. */
  db: SqlFragment;
  log: Logger;
  /** Safety margin behind the previous run's start (default 10 minutes). */
  marginMs?: number;
  /** Pairs read and written per chunk (bounds the memory of a first run). */
  chunkPairs?: number;
}

export interface FinalizeResult {
  /** Hours before this (epoch ms) are final. */
  upTo: number;
  /** Server time of the run (epoch ms). */
  ranAt: number;
  /** (client, hour) pairs finalized by this run. */
  pairs: number;
  /** Whether it was a full run (no previous run). */
  full: boolean;
  ms: number;
}

/** The tables the finalizer inserts into (the writer's insertTables). */
export const FINAL_TABLE = 'events_hourly_final';
export const RUNS_TABLE = 'events_hourly_final_runs';

interface MergedHour {
  /** NOTE: not aliased `hour`: 18.16 would substitute the alias into the PREWHERE. */
  hour_utc: string;
  client_id: string;
  calls: string | number;
  errors: string | number;
  auth_failures: string | number;
  tools: string | number;
  servers: string | number;
  bytes: string | number;
  tool_set: string[];
  server_set: string[];
}

const DEFAULT_MARGIN_MS = 10 * 60_000;
const DEFAULT_CHUNK_PAIRS = 200_000;
const INSERT_ROWS = 20_000;

/** The merge of one (client, hour)'s states: the same expressions as the reference reader's. */
const MERGED = sql`
  uniqExactMerge(calls) AS calls, uniqExactIfMerge(errors) AS errors,
  uniqExactIfMerge(auth_failures) AS auth_failures, uniqExactMerge(tools) AS tools,
  uniqExactMerge(servers) AS servers, sumMerge(request_bytes) + sumMerge(response_bytes) AS bytes,
  groupUniqArrayMerge(tool_set) AS tool_set, groupUniqArrayMerge(server_set) AS server_set`;

export function createHourlyFinalizer(deps: HourlyFinalizerDeps) {
  const { reader, writer, db } = deps;
  const log = deps.log.child({ component: 'hourly-finalizer' });
  const marginS = Math.ceil((deps.marginMs ?? DEFAULT_MARGIN_MS) / 1000);
  const chunkPairs = deps.chunkPairs ?? DEFAULT_CHUNK_PAIRS;
  let queue: Promise<unknown> = Promise.resolve();

  async function once(atLeast: number): Promise<FinalizeResult> {
    const t0 = Date.now();
    const [clock] = await reader.query<{ now: string }>(sql`SELECT toUInt32(now()) AS now`);
    const ranAtS = Number(clock?.now ?? 0);
    // Hours before the current one are closed; a caller may ask for more (a baseline as of later).
    const upToS = Math.max(Math.floor(ranAtS / 3600) * 3600, Math.ceil(atLeast / HOUR_MS) * 3600);
    const [prev] = await reader.query<{ u: string; r: string }>(sql`
      SELECT toUInt32(up_to) AS u, toUInt32(ran_at) AS r FROM ${db}.events_hourly_final_runs
      ORDER BY ran_at DESC, up_to DESC LIMIT 1`);
    const upTo = sql`toDateTime(${upToS}, 'UTC')`;
    const pending = prev
      ? sql`hour < ${upTo} AND (touched_at >= toDateTime(${Number(prev.r) - marginS}, 'UTC')
              OR hour >= toDateTime(${Number(prev.u)}, 'UTC'))`
      : sql`hour < ${upTo}`;
    const [count] = await reader.query<{ n: string; lo: string }>(sql`
      SELECT count() AS n, toUInt32(min(hour)) AS lo FROM (
        SELECT DISTINCT client_id, hour FROM ${db}.events_hourly_touched WHERE ${pending})`);
    const pairs = Number(count?.n ?? 0);
    if (pairs > 0) {
      const from = sql`toDateTime(${Number(count?.lo ?? 0)}, 'UTC')`;
      const parts = Math.max(1, Math.ceil(pairs / chunkPairs));
      for (let part = 0; part < parts; part++) {
        const mine = sql`cityHash64(client_id) % ${parts} = ${part}`;
        // A first run takes every state before upTo; later runs only the pending pairs' (PREWHERE:
        // the states of other pairs are not read). Read as the analyst, written as the writer (the
        // writer has no SELECT grant on events_hourly: deploy/clickhouse/docker/users.xml).
        const which = prev
          ? sql`(client_id, hour) IN (SELECT DISTINCT client_id, hour FROM ${db}.events_hourly_touched
                                      WHERE ${pending} AND ${mine})`
          : mine;
        const rows = await reader.query<MergedHour>(sql`
          SELECT toString(hour) AS hour_utc, client_id, ${MERGED}
          FROM ${db}.events_hourly
          PREWHERE ${which} AND hour >= ${from} AND hour < ${upTo}
          GROUP BY client_id, hour`);
        const finalizedAt = chDateTime(ranAtS * 1000);
        const out = rows.map((r) => ({
          hour: r.hour_utc,
          client_id: r.client_id,
          calls: Number(r.calls),
          errors: Number(r.errors),
          auth_failures: Number(r.auth_failures),
          tools: Number(r.tools),
          servers: Number(r.servers),
          bytes: Number(r.bytes),
          tool_set: r.tool_set,
          server_set: r.server_set,
          finalized_at: finalizedAt,
        }));
        for (let i = 0; i < out.length; i += INSERT_ROWS)
          await writer.insert(FINAL_TABLE, out.slice(i, i + INSERT_ROWS));
      }
    }
    await writer.insert(RUNS_TABLE, [{ up_to: chDateTime(upToS * 1000), ran_at: chDateTime(ranAtS * 1000) }]);
    const result: FinalizeResult = {
      upTo: upToS * 1000,
      ranAt: ranAtS * 1000,
      pairs,
      full: !prev,
      ms: Date.now() - t0,
    };
    log.info({ ...result, upTo: new Date(result.upTo).toISOString() }, 'hours finalized');
    return result;
  }

  return {
    /**
     * Finalizes every pending closed hour (and every hour before `atLeast`, epoch ms, when later).
     * Runs one at a time: a call made during a run starts after it.
     */
    run(atLeast = 0): Promise<FinalizeResult> {
      const r = queue.then(() => once(atLeast));
      queue = r.catch(() => undefined);
      return r;
    },
  };
}

export type HourlyFinalizer = ReturnType<typeof createHourlyFinalizer>;
