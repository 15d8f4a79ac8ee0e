import { sql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import type { ClientHistory } from './baseline.js';

/** events_hourly as per-client histories for `computeClientBaseline` (baseline.ts). */
interface HourlyAgg {
  client_id: string;
  h: Array<number | string>;
  c: Array<number | string>;
  e: Array<number | string>;
  a: Array<number | string>;
  t: Array<number | string>;
  s: Array<number | string>;
  b: Array<number | string>;
}
interface SetAgg {
  client_id: string;
  names: string[];
  counts: Array<number | string>;
}

/** Where histories come from: events_hourly's states, or the finalized counts of migration 014. */
export type HistorySource = 'states' | 'final';

/** Per (client, hour): the table and the expression of each column. NOTE: fixed text, never input. */
function columnsOf(db: SqlFragment, source: HistorySource) {
  if (source === 'states')
    return {
      table: sql`${db}.events_hourly`,
      hourly: sql`uniqExactMerge(calls) AS c, uniqExactIfMerge(errors) AS e,
        uniqExactIfMerge(auth_failures) AS a, uniqExactMerge(tools) AS t,
        uniqExactMerge(servers) AS s, sumMerge(request_bytes) + sumMerge(response_bytes) AS b`,
      tool_set: sql`groupUniqArrayMerge(tool_set)`,
      server_set: sql`groupUniqArrayMerge(server_set)`,
    };
  // The latest finalization of each (client, hour) wins (older rows wait for a merge).
  return {
    table: sql`${db}.events_hourly_final`,
    hourly: sql`argMax(calls, finalized_at) AS c, argMax(errors, finalized_at) AS e,
      argMax(auth_failures, finalized_at) AS a, argMax(tools, finalized_at) AS t,
      argMax(servers, finalized_at) AS s, argMax(bytes, finalized_at) AS b`,
    tool_set: sql`argMax(tool_set, finalized_at)`,
    server_set: sql`argMax(server_set, finalized_at)`,
  };
}

/**
 * Histories of the clients `filter` selects, over [from, to): by merging events_hourly's states
 * (`states`: the reference the finalized counts are checked against) or from the finalized per-hour
 * counts (`final`: events_hourly_final, written by hourly.finalizer.ts; the caller runs the finalizer
 * up to `to` first; plain numbers, no merges). The baseline job reads `final`.
 */
export async function readHistories(
  reader: ClickHouse,
  db: SqlFragment,
  from: number,
  to: number,
  filter: SqlFragment = sql`1`,
  source: HistorySource = 'states',
): Promise<ClientHistory[]> {
  const cols = columnsOf(db, source);
  const where = sql`hour >= ${new Date(from)} AND hour < ${new Date(to)} AND ${filter}`;
  // Names are counted in ClickHouse (one row per client and name), not sent once per hour.
  const readSets = (col: SqlFragment) =>
    reader.query<SetAgg>(sql`
      SELECT client_id, groupArray(name) AS names, groupArray(n) AS counts
      FROM (
        SELECT client_id, name, count() AS n
        FROM (
          SELECT client_id, hour, ${col} AS names_in_hour
          FROM ${cols.table} WHERE ${where}
          GROUP BY client_id, hour
        )
        ARRAY JOIN names_in_hour AS name
        GROUP BY client_id, name
      )
      GROUP BY client_id`);
  // bytes as Float64: a JSON number (exact below 2^53) instead of a quoted UInt64, one string less
  // per client-hour in memory.
  const [hourly, tools, servers] = await Promise.all([
    reader.query<HourlyAgg>(sql`
      SELECT client_id, groupArray(toUInt32(hour)) AS h, groupArray(c) AS c, groupArray(e) AS e,
             groupArray(a) AS a, groupArray(t) AS t, groupArray(s) AS s,
             groupArray(toFloat64(b)) AS b
      FROM (
        SELECT client_id, hour, ${cols.hourly}
        FROM ${cols.table} WHERE ${where}
        GROUP BY client_id, hour
      )
      GROUP BY client_id`),
    readSets(cols.tool_set),
    readSets(cols.server_set),
  ]);
  return toHistories(hourly, tools, servers);
}

function toHistories(hourly: HourlyAgg[], tools: SetAgg[], servers: SetAgg[]): ClientHistory[] {
  const toolMap = new Map(tools.map((r) => [r.client_id, r]));
  const serverMap = new Map(servers.map((r) => [r.client_id, r]));
  const pairs = (r: SetAgg | undefined) =>
    new Map<string, number>(r ? r.names.map((n, i) => [n, Number(r.counts[i])]) : []);
  return hourly.map((r) => ({
    clientId: r.client_id,
    hours: r.h.map((hour, i) => ({
      hour: Number(hour) * 1000,
      calls: Number(r.c[i]),
      errors: Number(r.e[i]),
      authFailures: Number(r.a[i]),
      tools: Number(r.t[i]),
      servers: Number(r.s[i]),
      bytes: Number(r.b[i]),
    })),
    tools: pairs(toolMap.get(r.client_id)),
    servers: pairs(serverMap.get(r.client_id)),
  }));
}
