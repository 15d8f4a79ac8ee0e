import { createHash } from 'node:crypto';
import type { ClientState } from './model.js';
import { quantileOf, medianOf, round, summarize, type Summary } from './stats.js';
import { DAY_MS, HOUR_MS, dayType, localTime, pooledCell, weekCell } from './time.js';

/**
 * Per-client baselines, computed from hourly rollups (pure: the job does the I/O).
 *
 * Why pooling: an hour-of-week cell over 28 days holds 4 samples, too few for a median and MAD that
 * mean anything. Each profile cell therefore pools the same local hour ±1 over every day of the same
 * day type (weekday / weekend): 20 weekdays × 3 hours = 60 samples, 8 weekend days × 3 = 24. Idle
 * hours count as zeros. The exact hour-of-week maximum (`cellMax`) is kept beside it, so a job that
 * runs only on Mondays at 02:00 is still normal on Mondays at 02:00.
 */

export const ALGORITHM = 1;
export const POOLED_CELLS = 48;
export const WEEK_CELLS = 168;
export const METRICS = ['calls', 'bytes', 'tools', 'servers', 'auth_failures'] as const;
export type Metric = (typeof METRICS)[number];

/** Hours with fewer calls do not take part in the error-share summary (a share of 1/2 is noise). */
export const ERROR_SHARE_MIN_CALLS = 5;

export interface HourlyRow {
  hour: number;
  calls: number;
  errors: number;
  authFailures: number;
  tools: number;
  servers: number;
  bytes: number;
}

export interface ClientHistory {
  clientId: string;
  hours: HourlyRow[];
  /** Tool name → hours in which the client used it. */
  tools: Map<string, number>;
  servers: Map<string, number>;
}

export interface MetricProfile {
  median: number[];
  mad: number[];
  q95: number[];
  cellMax: number[];
}

export type BaselineKind = 'client' | 'cohort' | 'global';

export interface Baseline {
  clientId: string;
  kind: BaselineKind;
  asOf: number;
  version: string;
  state: ClientState;
  windowDays: number;
  activeDays: number;
  activeHours: number;
  firstSeen: number;
  lastSeen: number;
  timeZone: string;
  cohort: string;
  members: number;
  metrics: Record<Metric, MetricProfile>;
  activeShare: number[];
  errorShare: { median: number; mad: number; q95: number; hours: number };
  authFailuresHourMax: number;
  /** Name → hours used (client rows) or number of clients that used it (cohort/global rows). */
  tools: Map<string, number>;
  servers: Map<string, number>;
}

export const versionOf = (asOf: number): string =>
  `b${ALGORITHM}-${new Date(asOf).toISOString().slice(0, 13).replace(/[-:]/g, '')}`;

export const GLOBAL_ID = '*';
const MAX_AGGREGATE_BASIS = 1_000;
export const cohortId = (key: string): string => `cohort:${key}`;

/** Clients that use the same set of servers form a cohort; the key is a short digest of the set. */
export function cohortKey(servers: Iterable<string>): string {
  const names = [...servers].sort();
  if (names.length === 0) return 'none';
  return createHash('sha256').update(names.join('\n')).digest('hex').slice(0, 12);
}

/** The local-time layout of a window, shared by every client in one time zone. */
export interface Grid {
  from: number;
  hours: number;
  tz: string;
  pooled: Int16Array;
  week: Int16Array;
  dates: string[];
  /** Hour indices of each pooled cell's samples (±1 h, same day type) and activity samples (±2 h). */
  pool1: number[][];
  pool2: number[][];
  /** Hour index at which each local date starts (first grid hour of that date). */
  dateStart: Map<string, number>;
}

const hourDistance = (a: number, b: number) => Math.min(Math.abs(a - b), 24 - Math.abs(a - b));

export function buildGrid(from: number, windowDays: number, tz: string): Grid {
  const hours = windowDays * 24;
  const pooled = new Int16Array(hours);
  const week = new Int16Array(hours);
  const dates: string[] = [];
  const dateStart = new Map<string, number>();
  const pool1: number[][] = Array.from({ length: POOLED_CELLS }, () => []);
  const pool2: number[][] = Array.from({ length: POOLED_CELLS }, () => []);
  for (let i = 0; i < hours; i++) {
    const lt = localTime(from + i * HOUR_MS, tz);
    pooled[i] = pooledCell(lt);
    week[i] = weekCell(lt);
    dates.push(lt.date);
    if (!dateStart.has(lt.date)) dateStart.set(lt.date, i);
    const dt = dayType(lt.isoDow);
    for (let h = 0; h < 24; h++) {
      const d = hourDistance(h, lt.hour);
      if (d <= 1) pool1[dt * 24 + h]!.push(i);
      if (d <= 2) pool2[dt * 24 + h]!.push(i);
    }
  }
  return { from, hours, tz, pooled, week, dates, pool1, pool2, dateStart };
}

export interface ComputeOptions {
  asOf: number;
  windowDays: number;
  learningActiveDays: number;
}

const emptyProfile = (): MetricProfile => ({
  median: new Array<number>(POOLED_CELLS).fill(0),
  mad: new Array<number>(POOLED_CELLS).fill(0),
  q95: new Array<number>(POOLED_CELLS).fill(0),
  cellMax: new Array<number>(WEEK_CELLS).fill(0),
});

/** One client's baseline over [asOf − windowDays, asOf) in its time zone (grid built for it). */
export function computeClientBaseline(h: ClientHistory, grid: Grid, opts: ComputeOptions): Baseline {
  const n = grid.hours;
  const series: Record<Metric, Float64Array> = {
    calls: new Float64Array(n),
    bytes: new Float64Array(n),
    tools: new Float64Array(n),
    servers: new Float64Array(n),
    auth_failures: new Float64Array(n),
  };
  const errors = new Float64Array(n);
  let first = Infinity;
  let last = -Infinity;
  for (const r of h.hours) {
    const i = Math.floor((r.hour - grid.from) / HOUR_MS);
    if (i < 0 || i >= n) continue;
    // Failed logins are not calls (see the stream engine): the volume profile leaves them out.
    series.calls[i]! += Math.max(0, r.calls - r.authFailures);
    series.bytes[i]! += r.bytes;
    series.tools[i]! += r.tools;
    series.servers[i]! += r.servers;
    series.auth_failures[i]! += r.authFailures;
    errors[i]! += r.errors;
    if (r.calls > 0 || r.authFailures > 0) {
      first = Math.min(first, i);
      last = Math.max(last, i);
    }
  }
  // Days before the client first appeared are not "idle days": start at the local day it appeared.
  const start = Number.isFinite(first) ? (grid.dateStart.get(grid.dates[first]!) ?? first) : n;
  const activeDates = new Set<string>();
  let activeHours = 0;
  const shares: number[] = [];
  let authMax = 0;
  for (let i = start; i < n; i++) {
    const c = series.calls[i]!;
    if (c > 0) {
      activeHours++;
      activeDates.add(grid.dates[i]!);
    }
    if (c >= ERROR_SHARE_MIN_CALLS) shares.push(errors[i]! / c);
    authMax = Math.max(authMax, series.auth_failures[i]!);
  }
  const metrics = {} as Record<Metric, MetricProfile>;
  const vals: number[] = [];
  for (const m of METRICS) {
    const p = emptyProfile();
    const s = series[m];
    for (let c = 0; c < POOLED_CELLS; c++) {
      vals.length = 0;
      for (const i of grid.pool1[c]!) if (i >= start) vals.push(s[i]!);
      const sum: Summary = summarize(vals);
      p.median[c] = round(sum.median);
      p.mad[c] = round(sum.mad);
      p.q95[c] = round(sum.q95);
    }
    for (let i = start; i < n; i++) {
      const w = grid.week[i]!;
      if (s[i]! > p.cellMax[w]!) p.cellMax[w] = s[i]!;
    }
    metrics[m] = p;
  }
  const activeShare = new Array<number>(POOLED_CELLS).fill(0);
  for (let c = 0; c < POOLED_CELLS; c++) {
    let total = 0;
    let active = 0;
    for (const i of grid.pool2[c]!) {
      if (i < start) continue;
      total++;
      if (series.calls[i]! > 0) active++;
    }
    activeShare[c] = total === 0 ? 0 : round(active / total);
  }
  const es = summarize(shares);
  return {
    clientId: h.clientId,
    kind: 'client',
    asOf: opts.asOf,
    version: versionOf(opts.asOf),
    state: activeDates.size >= opts.learningActiveDays ? 'active' : 'learning',
    windowDays: opts.windowDays,
    activeDays: activeDates.size,
    activeHours,
    firstSeen: Number.isFinite(first) ? grid.from + first * HOUR_MS : 0,
    lastSeen: Number.isFinite(last) ? grid.from + last * HOUR_MS : 0,
    timeZone: grid.tz,
    cohort: cohortKey(h.servers.keys()),
    members: 1,
    metrics,
    activeShare,
    errorShare: { median: round(es.median), mad: round(es.mad), q95: round(es.q95), hours: es.n },
    authFailuresHourMax: authMax,
    tools: new Map(h.tools),
    servers: new Map(h.servers),
  };
}

/**
 * The members whose profiles an aggregate is computed from: the active ones (all when none is),
 * at most 1,000 of them. Medians and a p90 over 1,000 members are as good as over 10,000 and ten
 * times cheaper: an even, deterministic stride (members arrive in a stable order).
 */
export function aggregateBasis(members: Baseline[]): Baseline[] {
  const active = members.filter((m) => m.state === 'active');
  const eligible = active.length > 0 ? active : members;
  const stride = Math.max(1, Math.ceil(eligible.length / MAX_AGGREGATE_BASIS));
  return stride === 1 ? eligible : eligible.filter((_, i) => i % stride === 0);
}

/**
 * A cohort's (or everyone's) typical client: per cell, the median of the members' medians and MADs
 * and the 90th percentile of their q95 and cell maxima, so a learning client is held to what most
 * comparable clients do, not to the busiest one's worst hour. Only `active` members count (learning
 * members have too little history), unless there are none. Tools and servers carry how many members
 * (of all, learning included) used each, which is the rarity the new-tool detector reports.
 */
export function aggregateBaselines(
  id: string,
  kind: 'cohort' | 'global',
  cohort: string,
  members: Baseline[],
  opts: ComputeOptions,
): Baseline {
  const basis = aggregateBasis(members);
  const metrics = {} as Record<Metric, MetricProfile>;
  const col = (pick: (b: Baseline) => number) => basis.map(pick);
  for (const m of METRICS) {
    const p = emptyProfile();
    for (let c = 0; c < POOLED_CELLS; c++) {
      p.median[c] = round(medianOf(col((b) => b.metrics[m].median[c]!)));
      p.mad[c] = round(medianOf(col((b) => b.metrics[m].mad[c]!)));
      p.q95[c] = round(
        quantileOf(
          col((b) => b.metrics[m].q95[c]!),
          0.9,
        ),
      );
    }
    for (let w = 0; w < WEEK_CELLS; w++)
      p.cellMax[w] = round(
        quantileOf(
          col((b) => b.metrics[m].cellMax[w]!),
          0.9,
        ),
      );
    metrics[m] = p;
  }
  const activeShare = new Array<number>(POOLED_CELLS).fill(0);
  for (let c = 0; c < POOLED_CELLS; c++) activeShare[c] = round(medianOf(col((b) => b.activeShare[c]!)));
  const tools = new Map<string, number>();
  const servers = new Map<string, number>();
  for (const b of members) {
    for (const t of b.tools.keys()) tools.set(t, (tools.get(t) ?? 0) + 1);
    for (const s of b.servers.keys()) servers.set(s, (servers.get(s) ?? 0) + 1);
  }
  return {
    clientId: id,
    kind,
    asOf: opts.asOf,
    version: versionOf(opts.asOf),
    state: 'active',
    windowDays: opts.windowDays,
    activeDays: Math.round(medianOf(col((b) => b.activeDays))),
    activeHours: Math.round(medianOf(col((b) => b.activeHours))),
    firstSeen: Math.min(...members.map((b) => b.firstSeen || Infinity).concat([opts.asOf])),
    lastSeen: Math.max(0, ...members.map((b) => b.lastSeen)),
    timeZone: '',
    cohort,
    members: members.length,
    metrics,
    activeShare,
    errorShare: {
      median: round(medianOf(col((b) => b.errorShare.median))),
      mad: round(medianOf(col((b) => b.errorShare.mad))),
      q95: round(
        quantileOf(
          col((b) => b.errorShare.q95),
          0.9,
        ),
      ),
      hours: Math.round(medianOf(col((b) => b.errorShare.hours))),
    },
    authFailuresHourMax: quantileOf(
      col((b) => b.authFailuresHourMax),
      0.9,
    ),
    tools,
    servers,
  };
}

/** Every client, its cohorts (at least 3 members) and the global row for one as_of. */
export function computeAll(
  histories: Iterable<{ history: ClientHistory; grid: Grid }>,
  opts: ComputeOptions,
  minCohortMembers = 3,
): Baseline[] {
  const clients: Baseline[] = [];
  for (const { history, grid } of histories) clients.push(computeClientBaseline(history, grid, opts));
  return [...clients, ...aggregateAll(clients, opts, minCohortMembers)];
}

export function aggregateAll(clients: Baseline[], opts: ComputeOptions, minCohortMembers = 3): Baseline[] {
  const byCohort = new Map<string, Baseline[]>();
  for (const b of clients) {
    const list = byCohort.get(b.cohort) ?? [];
    list.push(b);
    byCohort.set(b.cohort, list);
  }
  const out: Baseline[] = [];
  for (const [key, members] of [...byCohort].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (key === 'none' || members.length < minCohortMembers) continue;
    out.push(aggregateBaselines(cohortId(key), 'cohort', key, members, opts));
  }
  // Global last: the job writes rows in this order, and a global row marks a complete version.
  if (clients.length > 0) out.push(aggregateBaselines(GLOBAL_ID, 'global', '', clients, opts));
  return out;
}

/** The window a baseline as of `asOf` covers. */
export const baselineWindow = (asOf: number, windowDays: number) => ({
  from: asOf - windowDays * DAY_MS,
  to: asOf,
});

// ---- ClickHouse row shape (mcp_audit.baselines) ------------------------------------------------

export const chDateTime = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
export const parseChDateTime = (s: string): number => Date.parse(`${s.replace(' ', 'T')}Z`);

export type BaselineRow = Record<string, unknown>;

export function toRow(b: Baseline, computedAt: number): BaselineRow {
  const row: BaselineRow = {
    client_id: b.clientId,
    as_of: chDateTime(b.asOf),
    version: b.version,
    kind: b.kind,
    computed_at: chDateTime(computedAt),
    state: b.state,
    window_days: b.windowDays,
    active_days: b.activeDays,
    active_hours: b.activeHours,
    first_seen: chDateTime(b.firstSeen),
    last_seen: chDateTime(b.lastSeen),
    time_zone: b.timeZone,
    cohort: b.cohort,
    members: b.members,
    active_share: b.activeShare,
    error_share_median: b.errorShare.median,
    error_share_mad: b.errorShare.mad,
    error_share_q95: b.errorShare.q95,
    error_hours: b.errorShare.hours,
    auth_failures_hour_max: b.authFailuresHourMax,
    tools: [...b.tools.keys()],
    tool_counts: [...b.tools.values()],
    servers: [...b.servers.keys()],
    server_counts: [...b.servers.values()],
  };
  for (const m of METRICS) {
    row[`${m}_median`] = b.metrics[m].median;
    row[`${m}_mad`] = b.metrics[m].mad;
    row[`${m}_q95`] = b.metrics[m].q95;
    row[`${m}_cell_max`] = b.metrics[m].cellMax;
  }
  return row;
}

const nums = (v: unknown): number[] => (Array.isArray(v) ? v.map(Number) : []);
const num = (v: unknown): number => Number(v ?? 0);

export function fromRow(r: BaselineRow): Baseline {
  const metrics = {} as Record<Metric, MetricProfile>;
  for (const m of METRICS) {
    metrics[m] = {
      median: nums(r[`${m}_median`]),
      mad: nums(r[`${m}_mad`]),
      q95: nums(r[`${m}_q95`]),
      cellMax: nums(r[`${m}_cell_max`]),
    };
  }
  const pairs = (names: unknown, counts: unknown) => {
    const n = Array.isArray(names) ? (names as string[]) : [];
    const c = nums(counts);
    return new Map(n.map((x, i) => [x, c[i] ?? 0]));
  };
  return {
    clientId: String(r.client_id),
    kind: String(r.kind) as BaselineKind,
    asOf: parseChDateTime(String(r.as_of)),
    version: String(r.version),
    state: String(r.state) as ClientState,
    windowDays: num(r.window_days),
    activeDays: num(r.active_days),
    activeHours: num(r.active_hours),
    firstSeen: parseChDateTime(String(r.first_seen)),
    lastSeen: parseChDateTime(String(r.last_seen)),
    timeZone: String(r.time_zone ?? ''),
    cohort: String(r.cohort ?? ''),
    members: num(r.members),
    metrics,
    activeShare: nums(r.active_share),
    errorShare: {
      median: num(r.error_share_median),
      mad: num(r.error_share_mad),
      q95: num(r.error_share_q95),
      hours: num(r.error_hours),
    },
    authFailuresHourMax: num(r.auth_failures_hour_max),
    tools: pairs(r.tools, r.tool_counts),
    servers: pairs(r.servers, r.server_counts),
  };
}
