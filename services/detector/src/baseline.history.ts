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

/**
 * Histories of the clients `filter` selects, over [from, to), by merging events_hourly's states (the
 * reference the finalized counts are checked against; the baseline job reads `readFinalHistories`).
 */
export async function readHistories(
  reader: ClickHouse,
  db: SqlFragment,
  from: number,
  to: number,
  filter: SqlFragment = sql`1`,
): Promise<ClientHistory[]> {
  const where = sql`hour >= ${new Date(from)} AND hour < ${new Date(to)} AND ${filter}`;
  const readSets = (column: 'tool_set' | 'server_set') => {
    // NOTE: the column name comes from the two-value union above, never from input.
    const col =
      column === 'tool_set' ? sql`groupUniqArrayMerge(tool_set)` : sql`groupUniqArrayMerge(server_set)`;
    return reader.query<SetAgg>(sql`
      SELECT client_id, groupArray(name) AS names, groupArray(n) AS counts
      FROM (
        SELECT client_id, name, count() AS n
        FROM (
          SELECT client_id, hour, ${col} AS names_in_hour
          FROM ${db}.events_hourly WHERE ${where}
          GROUP BY client_id, hour
        )
        ARRAY JOIN names_in_hour AS name
        GROUP BY client_id, name
      )
      GROUP BY client_id`);
  };
  const [hourly, tools, servers] = await Promise.all([
    reader.query<HourlyAgg>(sql`
      SELECT client_id, groupArray(toUInt32(hour)) AS h, groupArray(c) AS c, groupArray(e) AS e,
             groupArray(a) AS a, groupArray(t) AS t, groupArray(s) AS s, groupArray(b) AS b
      FROM (
        SELECT client_id, hour, uniqExactMerge(calls) AS c, uniqExactIfMerge(errors) AS e,
               uniqExactIfMerge(auth_failures) AS a, uniqExactMerge(tools) AS t,
               uniqExactMerge(servers) AS s, sumMerge(request_bytes) + sumMerge(response_bytes) AS b
        FROM ${db}.events_hourly WHERE ${where}
        GROUP BY client_id, hour
      )
      GROUP BY client_id`),
    readSets('tool_set'),
    readSets('server_set'),
  ]);
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

interface FinalAgg {
  client_id: string;
  h: Array<number | string>;
  c: Array<number | string>;
  e: Array<number | string>;
  a: Array<number | string>;
  t: Array<number | string>;
  s: Array<number | string>;
  b: Array<number | string>;
  tool_names: string[];
  server_names: string[];
}

/** Name → number of the client's hours whose set holds it (each hour's set has a name once). */
function hoursPerName(names: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of names) out.set(n, (out.get(n) ?? 0) + 1);
  return out;
}

/**
 * The same histories as `readHistories`, from the finalized per-hour counts (events_hourly_final,
 * written by hourly.finalizer.ts; the caller runs the finalizer up to `to` first): plain numbers,
 * no state merges. The latest finalization of each (client, hour) wins.
 */
export async function readFinalHistories(
  reader: ClickHouse,
  db: SqlFragment,
  from: number,
  to: number,
  filter: SqlFragment = sql`1`,
): Promise<ClientHistory[]> {
  const rows = await reader.query<FinalAgg>(sql`
    SELECT client_id, groupArray(toUInt32(hour)) AS h, groupArray(c) AS c, groupArray(e) AS e,
           groupArray(a) AS a, groupArray(t) AS t, groupArray(s) AS s, groupArray(b) AS b,
           groupArrayArray(ts) AS tool_names, groupArrayArray(ss) AS server_names
    FROM (
      SELECT client_id, hour, argMax(calls, finalized_at) AS c, argMax(errors, finalized_at) AS e,
             argMax(auth_failures, finalized_at) AS a, argMax(tools, finalized_at) AS t,
             argMax(servers, finalized_at) AS s, argMax(bytes, finalized_at) AS b,
             argMax(tool_set, finalized_at) AS ts, argMax(server_set, finalized_at) AS ss
      FROM ${db}.events_hourly_final
      WHERE hour >= ${new Date(from)} AND hour < ${new Date(to)} AND ${filter}
      GROUP BY client_id, hour
    )
    GROUP BY client_id`);
  return rows.map((r) => ({
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
    tools: hoursPerName(r.tool_names),
    servers: hoursPerName(r.server_names),
  }));
}
