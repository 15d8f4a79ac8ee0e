import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { timeBounds } from './events.queries.js';
import type { Range } from './query.params.js';

/**
 * The client page. State from client_state (newest row), the baseline band from the newest
 * `baselines` version at or before the range's end (its 48 pooled cells: day type × 24 + local hour
 * in the baseline's time zone, as services/detector/src/time.ts indexes them), hourly activity from
 * events_hourly (never raw events), servers and tools with first/last use from the events: one scan of
 * the client's rows in the range (the primary key starts with client_id), grouped by (server, tool),
 * events counted once per event_id (uniqExact, not FINAL: redelivered copies count once).
 */

const HOUR = 3_600_000;
const toMs = (s: string) => Date.parse(`${s.replace(' ', 'T')}Z`);
const chSec = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

export async function clientState(ch: ClickHouse, clientId: string) {
  const db = dbIdent(ch.database);
  const rows = await ch.query<{
    cur_state: string;
    cur_active_days: number;
    cur_required_days: number;
    active_since: string;
  }>(sql`
    SELECT argMax(state, (as_of, computed_at)) AS cur_state,
           argMax(active_days, (as_of, computed_at)) AS cur_active_days,
           argMax(required_days, (as_of, computed_at)) AS cur_required_days,
           minIf(as_of, state = 'active') AS active_since
    FROM ${db}.client_state WHERE client_id = ${clientId}
    HAVING count() > 0`);
  const row = rows[0];
  if (!row) return { state: 'unknown', since: null, active_days: 0, required_days: 0 };
  const r = {
    state: row.cur_state,
    since: row.active_since,
    active_days: row.cur_active_days,
    required_days: row.cur_required_days,
  };
  const since = r.state === 'active' ? toMs(r.since) : NaN;
  return {
    state: r.state === 'active' || r.state === 'learning' ? r.state : 'unknown',
    since: Number.isFinite(since) && since > 0 ? new Date(since).toISOString() : null,
    active_days: Number(r.active_days),
    required_days: Number(r.required_days),
  };
}

interface BaselineBand {
  time_zone: string;
  calls_median: number[];
  calls_mad: number[];
  calls_q95: number[];
}

async function baseline(ch: ClickHouse, clientId: string, at: number): Promise<BaselineBand | undefined> {
  const db = dbIdent(ch.database);
  const rows = await ch.query<BaselineBand>(sql`
    SELECT time_zone, calls_median, calls_mad, calls_q95 FROM ${db}.baselines
    WHERE client_id = ${clientId} AND kind = 'client' AND as_of <= ${chSec(at)}
    ORDER BY as_of DESC, computed_at DESC LIMIT 1`);
  return rows[0];
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAY: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

/** The detector's pooled cell of an instant: (ISO weekday ≥ 6) × 24 + local hour. */
export function pooledCellAt(ms: number, tz: string): number {
  let f = formatters.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz || 'UTC',
        hourCycle: 'h23',
        weekday: 'short',
        hour: '2-digit',
      });
    } catch {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: 'UTC',
        hourCycle: 'h23',
        weekday: 'short',
        hour: '2-digit',
      });
    }
    formatters.set(tz, f);
  }
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(ms))) parts[p.type] = p.value;
  const dow = WEEKDAY[parts.weekday!] ?? 1;
  return (dow >= 6 ? 24 : 0) + (Number(parts.hour) % 24);
}

// Robust band: median ± 3 scaled MADs, widened to the 95th percentile.
function band(b: BaselineBand, cell: number): { low: number; high: number } {
  const med = b.calls_median[cell] ?? 0;
  const mad = (b.calls_mad[cell] ?? 0) * 1.4826;
  const q95 = b.calls_q95[cell] ?? 0;
  return { low: Math.max(0, med - 3 * mad), high: Math.max(q95, med + 3 * mad) };
}

interface Use {
  first_s: number;
  last_s: number;
  calls: number;
}
const byCalls = <T extends Use & { name: string }>(a: T, b: T) =>
  b.calls - a.calls || (a.name < b.name ? -1 : 1);

/**
 * Servers (top 200) and tools (top 500) by calls from the (server, tool) groups: an event has one
 * server and one tool, so a server's distinct events are the sum over its tools'.
 */
export function serversAndTools(
  rows: ReadonlyArray<{ server: string; tool: string; first_s: number; last_s: number; calls: string }>,
) {
  const servers = new Map<string, Use & { name: string }>();
  const tools: Array<Use & { name: string; server: string }> = [];
  for (const r of rows) {
    const u = { first_s: Number(r.first_s), last_s: Number(r.last_s), calls: Number(r.calls) };
    if (r.tool !== '') tools.push({ ...u, name: r.tool, server: r.server });
    if (r.server === '') continue;
    const s = servers.get(r.server);
    if (!s) servers.set(r.server, { ...u, name: r.server });
    else {
      s.first_s = Math.min(s.first_s, u.first_s);
      s.last_s = Math.max(s.last_s, u.last_s);
      s.calls += u.calls;
    }
  }
  return {
    servers: [...servers.values()].sort(byCalls).slice(0, 200),
    tools: tools.sort(byCalls).slice(0, 500),
  };
}

interface UseRow {
  server: string;
  tool: string;
  first_s: number;
  last_s: number;
  calls: string;
  newest_ms: string;
  label_keys: string[];
  label_values: string[];
}

/** The (server, tool) group holding the newest row first. */
function newestFirst(rows: readonly UseRow[]): UseRow[] {
  return [...rows].sort((a, b) => Number(b.newest_ms) - Number(a.newest_ms)).slice(0, 1);
}

// 2024-01-01 00:00 UTC was a Monday.
const MONDAY = Date.UTC(2024, 0, 1);

export async function clientPage(ch: ClickHouse, clientId: string, range: Range) {
  const db = dbIdent(ch.database);
  const hFrom = Math.floor(range.from / HOUR) * HOUR;
  const [state, b, hourly, used] = await Promise.all([
    clientState(ch, clientId),
    baseline(ch, clientId, range.to),
    ch.query<{ hour_s: number; calls: string }>(sql`
      SELECT toUInt32(hour) AS hour_s, uniqExactMerge(calls) AS calls FROM ${db}.events_hourly
      WHERE client_id = ${clientId} AND hour >= ${chSec(hFrom)} AND hour <= ${chSec(range.to)}
      GROUP BY hour ORDER BY hour`),
    // One scan of the client's rows: per (server, tool) its use, and the labels of its newest row
    // (the page's labels are those of the client's newest event; '' groups are skipped in Node).
    ch.query<UseRow>(sql`
      SELECT server_name AS server, tool_name AS tool, toUInt32(min(ts)) AS first_s, toUInt32(max(ts)) AS last_s,
             uniqExact(event_id) AS calls, max(toUInt64(ts) * 1000 + ts_ms) AS newest_ms,
             argMax(label_keys, (ts, ts_ms)) AS label_keys, argMax(label_values, (ts, ts_ms)) AS label_values
      FROM ${db}.events
      WHERE client_id = ${clientId} AND ${timeBounds(range)}
      GROUP BY server, tool
      LIMIT 100000`),
  ]);
  const { servers, tools } = serversAndTools(used.filter((u) => u.server !== '' || u.tool !== ''));
  const labels = newestFirst(used);
  const byHour = new Map(hourly.map((h) => [Number(h.hour_s) * 1000, Number(h.calls)]));
  const activity: Array<{
    hour: string;
    calls: number;
    expected_low: number | null;
    expected_high: number | null;
  }> = [];
  for (let h = hFrom; h < range.to && activity.length < 24 * 400; h += HOUR) {
    const e = b ? band(b, pooledCellAt(h, b.time_zone)) : undefined;
    activity.push({
      hour: new Date(h).toISOString(),
      calls: byHour.get(h) ?? 0,
      expected_low: e ? e.low : null,
      expected_high: e ? e.high : null,
    });
  }
  const hourOfWeek: number[] = [];
  for (let w = 0; w < 168; w++) {
    hourOfWeek.push(b ? (b.calls_median[pooledCellAt(MONDAY + w * HOUR, b.time_zone)] ?? 0) : 0);
  }
  const l = labels[0];
  const labelMap: Record<string, string> = {};
  l?.label_keys.forEach((k, i) => (labelMap[k] = l.label_values[i] ?? ''));
  const iso = (s: number) => new Date(Number(s) * 1000).toISOString();
  return {
    client_id: clientId,
    state,
    labels: labelMap,
    servers: servers.map((s) => ({
      name: s.name,
      first_seen: iso(s.first_s),
      last_seen: iso(s.last_s),
      calls: Number(s.calls),
    })),
    tools: tools.map((t) => ({
      server: t.server,
      name: t.name,
      first_seen: iso(t.first_s),
      last_seen: iso(t.last_s),
      calls: Number(t.calls),
    })),
    activity,
    hour_of_week: hourOfWeek,
    baseline_time_zone: b?.time_zone ?? null,
  };
}

/**
 * The overview: event rate per hour, outcome mix, top clients and tools, open alerts, ingestion. The
 * counts read the time-ordered copy events_by_time (008; narrower than events) with FINAL.
 */
export async function overview(ch: ClickHouse, range: Range) {
  const db = dbIdent(ch.database);
  const hFrom = Math.floor(range.from / HOUR) * HOUR;
  const where = timeBounds(range);
  const [rate, outcomes, topClients, topTools, sources] = await Promise.all([
    ch.query<{ hour_s: number; count: string }>(sql`
      SELECT toUInt32(hour) AS hour_s, uniqExactMerge(calls) AS count FROM ${db}.events_hourly
      WHERE hour >= ${chSec(hFrom)} AND hour <= ${chSec(range.to)} GROUP BY hour ORDER BY hour`),
    ch.query<{ value: string; count: string }>(sql`
      SELECT outcome AS value, count() AS count FROM ${db}.events_by_time FINAL WHERE ${where}
      GROUP BY value ORDER BY count DESC LIMIT 10`),
    ch.query<{ value: string; count: string }>(sql`
      SELECT client_id AS value, count() AS count FROM ${db}.events_by_time FINAL WHERE ${where}
      GROUP BY value ORDER BY count DESC LIMIT 10`),
    ch.query<{ value: string; count: string }>(sql`
      SELECT tool_name AS value, count() AS count FROM ${db}.events_by_time FINAL WHERE ${where} AND tool_name != ''
      GROUP BY value ORDER BY count DESC LIMIT 10`),
    // A source is silent when it sent events in the range but none in its last hour: how many, and
    // the 50 silent longest.
    ch.query<{ total: string; first: Array<[string, number]> }>(sql`
      SELECT count() AS total, arraySlice(arraySort(x -> tupleElement(x, 2), groupArray((source_id, last_s))), 1, 50) AS first
      FROM (
        SELECT source_id, toUInt32(max(ts)) AS last_s FROM ${db}.events_by_time WHERE ${where}
        GROUP BY source_id HAVING last_s < ${Math.floor(range.to / 1000) - 3600})`),
  ]);
  const vc = (r: { value: string; count: string }) => ({ value: r.value, count: Number(r.count) });
  return {
    event_rate: rate.map((r) => ({
      ts: new Date(Number(r.hour_s) * 1000).toISOString(),
      count: Number(r.count),
    })),
    outcomes: outcomes.map(vc),
    top_clients: topClients.map(vc),
    top_tools: topTools.map(vc),
    silent_sources: (sources[0]?.first ?? []).map(([source_id, last_s]) => ({
      source_id,
      last_seen: new Date(Number(last_s) * 1000).toISOString(),
    })),
    silent_sources_total: Number(sources[0]?.total ?? 0),
  };
}

export async function openAlertsBySeverity(ch: ClickHouse) {
  const db = dbIdent(ch.database);
  const rows = await ch.query<{ severity: string; n: string }>(sql`
    SELECT severity, count() AS n FROM (
      SELECT alert_id, any(severity) AS severity FROM ${db}.alert_transitions
      WHERE changed_at >= ${chSec(Date.now() - 90 * 86_400_000)}
      GROUP BY alert_id HAVING max(to_status = 'resolved') = 0
    ) GROUP BY severity`);
  const out: Record<string, number> = { info: 0, low: 0, medium: 0, high: 0, critical: 0 };
  for (const r of rows) if (r.severity in out) out[r.severity] = Number(r.n);
  return out;
}
