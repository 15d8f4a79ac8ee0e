import { sql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import type { ClientHistory, HourlyRow } from './baseline.js';

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

/**
 * The (client, hour) rows [c, e, a, t, s, b] and the (client, name, hours) rows of one source.
 * NOTE: fixed text and the caller's fragments, never input.
 *
 * `final` reads events_hourly_final without deduplicating in ClickHouse (argMax or FINAL per
 * (client, hour) cost 3–5× more on 18.16): events_hourly only ever receives inserts, so a later
 * finalization of an hour has every count at least as high and every name set a superset of an
 * earlier one. The latest row of an hour is therefore the maximum of its rows (toHistories merges
 * duplicate hours that way), and a name is in the latest row of an hour iff it is in any row of it
 * (`uniqExact(hour)` counts the hours).
 */
function sourceOf(db: SqlFragment, source: HistorySource, where: SqlFragment) {
  if (source === 'states')
    return {
      hours: sql`(
        SELECT client_id, hour, uniqExactMerge(calls) AS c, uniqExactIfMerge(errors) AS e,
               uniqExactIfMerge(auth_failures) AS a, uniqExactMerge(tools) AS t,
               uniqExactMerge(servers) AS s, sumMerge(request_bytes) + sumMerge(response_bytes) AS b
        FROM ${db}.events_hourly WHERE ${where}
        GROUP BY client_id, hour)`,
      names: (set: 'tool_set' | 'server_set') => sql`(
        SELECT client_id, name, count() AS n
        FROM (
          SELECT client_id, hour,
                 ${set === 'tool_set' ? sql`groupUniqArrayMerge(tool_set)` : sql`groupUniqArrayMerge(server_set)`} AS names_in_hour
          FROM ${db}.events_hourly WHERE ${where}
          GROUP BY client_id, hour
        )
        ARRAY JOIN names_in_hour AS name
        GROUP BY client_id, name)`,
    };
  return {
    hours: sql`(
      SELECT client_id, hour, calls AS c, errors AS e, auth_failures AS a, tools AS t, servers AS s, bytes AS b
      FROM ${db}.events_hourly_final WHERE ${where})`,
    names: (set: 'tool_set' | 'server_set') => sql`(
      SELECT client_id, name, uniqExact(hour) AS n
      FROM ${db}.events_hourly_final
      ARRAY JOIN ${set === 'tool_set' ? sql`tool_set` : sql`server_set`} AS name
      WHERE ${where}
      GROUP BY client_id, name)`,
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
  const src = sourceOf(db, source, sql`hour >= ${new Date(from)} AND hour < ${new Date(to)} AND ${filter}`);
  // Names are counted in ClickHouse (one row per client and name), not sent once per hour.
  const readSets = (set: 'tool_set' | 'server_set') =>
    reader.query<SetAgg>(sql`
      SELECT client_id, groupArray(name) AS names, groupArray(n) AS counts
      FROM ${src.names(set)}
      GROUP BY client_id`);
  // bytes as Float64: a JSON number (exact below 2^53) instead of a quoted UInt64, one string less
  // per client-hour in memory.
  const [hourly, tools, servers] = await Promise.all([
    reader.query<HourlyAgg>(sql`
      SELECT client_id, groupArray(toUInt32(hour)) AS h, groupArray(c) AS c, groupArray(e) AS e,
             groupArray(a) AS a, groupArray(t) AS t, groupArray(s) AS s,
             groupArray(toFloat64(b)) AS b
      FROM ${src.hours}
      GROUP BY client_id`),
    readSets('tool_set'),
    readSets('server_set'),
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
    hours: oncePerHour(
      r.h.map((hour, i) => ({
        hour: Number(hour) * 1000,
        calls: Number(r.c[i]),
        errors: Number(r.e[i]),
        authFailures: Number(r.a[i]),
        tools: Number(r.t[i]),
        servers: Number(r.s[i]),
        bytes: Number(r.b[i]),
      })),
    ),
    tools: pairs(toolMap.get(r.client_id)),
    servers: pairs(serverMap.get(r.client_id)),
  }));
}

/** One row per hour: an hour finalized more than once keeps its latest row, the maximum (above). */
function oncePerHour(rows: HourlyRow[]): HourlyRow[] {
  const seen = new Map<number, HourlyRow>();
  let dup = false;
  for (const r of rows) {
    const prev = seen.get(r.hour);
    if (!prev) {
      seen.set(r.hour, r);
      continue;
    }
    dup = true;
    prev.calls = Math.max(prev.calls, r.calls);
    prev.errors = Math.max(prev.errors, r.errors);
    prev.authFailures = Math.max(prev.authFailures, r.authFailures);
    prev.tools = Math.max(prev.tools, r.tools);
    prev.servers = Math.max(prev.servers, r.servers);
    prev.bytes = Math.max(prev.bytes, r.bytes);
  }
  return dup ? [...seen.values()] : rows;
}
