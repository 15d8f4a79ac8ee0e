import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Finding } from '../model.js';
import type { PeriodicConfig } from '../config.js';
import { eventsTable, iso, makeFinding, num, sampleIds, T_MS, firstCopies } from './shared.js';
import { windowStarts, type Evaluation, type PeriodicDetector, type Resolution } from './types.js';
import { alignDown, dedupKeyOf } from './windows.js';

export interface SourceActivity {
  source: string;
  type: string;
  /** Indices (epoch ms / bucketMs) of the reference-period buckets in which the source reported. */
  buckets: number[];
  /** Last event time (ms) up to the window end; 0 when none in the lookback. */
  last: number;
  /** Last event time before the window start; 0 when none in the lookback. */
  lastBefore: number;
  inWindow: number;
  /**
   * The source's gaps between consecutive events (at least the ones longer than a few minutes),
   * each as the time of the event ending it and its length (ms). Absent: no gap statistics, only
   * silenceMs counts.
   */
  gaps?: ReadonlyArray<{ end: number; ms: number }>;
}

export interface SilenceVerdict {
  silent: Array<{
    a: SourceActivity;
    present: number;
    reference: number;
    others: number;
    /** The source's own gapQuantile gap over the reference period (ms; 0 when it had none). */
    usualGapMs: number;
    /** The silence that raises for this source: max(silenceMs, gapFactor × usualGapMs). */
    thresholdMs: number;
  }>;
  back: SourceActivity[];
}

/** Nearest-rank quantile of a non-empty list. */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Pure core of silent_source at the window end `end`:
 * - reference buckets: the `steadyBuckets` most recent buckets (complete before the silence began) in
 *   which any source reported; a source is steady if it reported in at least minShare of that many;
 * - silent: steady, and nothing for longer than both silenceMs and gapFactor times the source's own
 *   usual gap (its gapQuantile inter-arrival gap over the reference period: a sparse or bursty source
 *   is not silent during gaps it has every day), while some other source did report within silenceMs
 *   (a quiet whole system is not a silent source);
 * - back: reported in the window after a gap of at least silenceMs (resolves an open alert).
 */
export function judgeSilence(
  activity: readonly SourceActivity[],
  start: number,
  end: number,
  cfg: PeriodicConfig['silentSource'],
): SilenceVerdict {
  const all = new Set<number>();
  for (const a of activity) for (const b of a.buckets) all.add(b);
  const reference = [...all].sort((x, y) => y - x).slice(0, cfg.steadyBuckets);
  const refSet = new Set(reference);
  const refStart = reference.length ? Math.min(...reference) * cfg.bucketMs : end;
  const refEnd = alignDown(end - cfg.silenceMs, cfg.bucketMs);
  const need = Math.ceil(cfg.minShare * cfg.steadyBuckets - 1e-9);
  const quietSince = end - cfg.silenceMs;
  const alive = activity.filter((a) => a.last >= quietSince);
  const silent: SilenceVerdict['silent'] = [];
  for (const a of activity) {
    const present = a.buckets.filter((b) => refSet.has(b)).length;
    if (present < need || a.last >= quietSince) continue;
    const gaps = (a.gaps ?? []).filter((g) => g.end - g.ms >= refStart && g.end < refEnd).map((g) => g.ms);
    const usualGapMs = gaps.length ? quantile(gaps, cfg.gapQuantile) : 0;
    const thresholdMs = Math.max(cfg.silenceMs, cfg.gapFactor * usualGapMs);
    if (a.last >= end - thresholdMs) continue;
    if (quietAtThisHourBefore(a, end, cfg.lookbackMs)) continue;
    const others = alive.filter((o) => o.source !== a.source).length;
    if (others === 0) continue;
    silent.push({ a, present, reference: reference.length, others, usualGapMs, thresholdMs });
  }
  const back = activity.filter(
    (a) => a.inWindow > 0 && (a.lastBefore === 0 || a.lastBefore < start - cfg.silenceMs),
  );
  return { silent, back };
}

const DAY_MS = 24 * 3_600_000;

/**
 * Whether the source was just as quiet at this time of day on an earlier day of the lookback: a gap
 * of its own covered the same stretch (the current silence, less a tolerance of half of it, at most
 * an hour, for jobs that end a little earlier or later) a whole number of days before, ±1 h for
 * daylight-saving shifts. NOTE: a source that serves clients in a few time zones goes quiet every
 * night for the hours nobody works; that is its habit, not an outage, however steady its days are.
 */
export function quietAtThisHourBefore(a: SourceActivity, end: number, lookbackMs: number): boolean {
  const gaps = a.gaps ?? [];
  if (gaps.length === 0 || a.last === 0) return false;
  const silence = end - a.last;
  const tol = Math.min(silence / 2, 3_600_000);
  for (let d = 1; d * DAY_MS <= lookbackMs; d++)
    for (const shift of [0, -3_600_000, 3_600_000]) {
      const from = a.last + tol - d * DAY_MS + shift;
      const to = end - d * DAY_MS + shift;
      if (gaps.some((g) => g.end - g.ms <= from && g.end >= to)) return true;
    }
  return false;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

interface Granule {
  /** Start (ms) of the granule: a slice that divides both the window and the bucket. */
  at: number;
  n: number;
  first: number;
  last: number;
  /** Latest `ts` in whole seconds, as ms (range filters compare `ts`). */
  lastTs: number;
}

/**
 * silent_source: a gateway or SDK source that reported steadily and has sent nothing for silenceMs of
 * event time (and for far longer than its own usual gaps) while other sources kept reporting.
 * Resolves when the source reports again.
 *
 * A range of windows is judged from one query: per source, per granule (a slice dividing both the
 * window and the reference bucket), the count and the first and last event time. Each window's
 * activity (buckets, last event, last event before the window, events in it) is exact from those,
 * and so are the gaps longer than a granule (the shorter ones never decide a silence).
 */
export function silentSourceDetector(ch: ClickHouse, cfg: PeriodicConfig['silentSource']): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const granuleMs = gcd(windowMs, cfg.bucketMs);
  const detector: PeriodicDetector = {
    name: 'silent_source',
    windowMs,
    async evaluate(start, end) {
      return (await detector.evaluateRange!(start, end))[0]!;
    },
    async evaluateRange(from, to) {
      const starts = windowStarts(from, to, windowMs);
      const qFrom = Math.min(from, from + windowMs - cfg.lookbackMs);
      const rows = await ch.query<{
        source: string;
        type: string;
        g: number;
        n: string;
        first: string;
        last: string;
        last_s: string;
      }>(sql`
        SELECT source_id AS source, any(source_type) AS type, intDiv(toUInt32(ts), ${granuleMs / 1000}) AS g,
               count() AS n, min(${T_MS}) AS first, max(${T_MS}) AS last, max(toUInt32(ts)) AS last_s
        FROM ${eventsTable(ch)}
        WHERE ${firstCopies(ch, qFrom, to)} AND source_id != ''
        GROUP BY source, g
        ORDER BY source, g`);
      const sources = new Map<
        string,
        { type: string; granules: Granule[]; gaps: Array<{ end: number; ms: number }> }
      >();
      for (const r of rows) {
        const s = sources.get(r.source) ?? { type: r.type, granules: [], gaps: [] };
        const gr: Granule = {
          at: num(r.g) * granuleMs,
          n: num(r.n),
          first: num(r.first),
          last: num(r.last),
          lastTs: num(r.last_s) * 1000,
        };
        const prev = s.granules[s.granules.length - 1];
        if (prev) s.gaps.push({ end: gr.first, ms: gr.first - prev.last });
        s.granules.push(gr);
        if (r.type) s.type = r.type;
        sources.set(r.source, s);
      }
      const out: Evaluation[] = [];
      for (const start of starts) {
        const end = start + windowMs;
        const activity = [...sources].flatMap(([source, s]) => {
          const a = activityAt(source, s.type, s.granules, s.gaps, start, end);
          return a ? [a] : [];
        });
        out.push(await judge(start, end, activity));
      }
      return out;
    },
  };
  return detector;

  /** What the source did in [min(start, end - lookback), end), from its granules. */
  function activityAt(
    source: string,
    type: string,
    granules: readonly Granule[],
    gaps: ReadonlyArray<{ end: number; ms: number }>,
    start: number,
    end: number,
  ): SourceActivity | undefined {
    // Reference buckets end where the silence begins (the bucket holding its start is incomplete).
    const refEnd = alignDown(end - cfg.silenceMs, cfg.bucketMs);
    const from = Math.min(start, end - cfg.lookbackMs);
    const buckets = new Set<number>();
    let last = 0;
    let lastBefore = 0;
    let inWindow = 0;
    let any = false;
    for (const g of granules) {
      if (g.at >= end) break;
      if (g.lastTs < from) continue; // nothing of it inside the lookback
      any = true;
      last = Math.max(last, g.last);
      if (g.at < start) lastBefore = Math.max(lastBefore, g.last);
      else inWindow += g.n;
      if (g.at < refEnd) buckets.add(Math.floor(g.at / cfg.bucketMs));
    }
    if (!any) return undefined;
    return { source, type, buckets: [...buckets], last, lastBefore, inWindow, gaps };
  }

  async function judge(start: number, end: number, activity: SourceActivity[]): Promise<Evaluation> {
    const verdict = judgeSilence(activity, start, end, cfg);
    const resolved: Resolution[] = verdict.back.map((a) => ({
      dedupKey: dedupKeyOf('silent_source', a.source, windowMs),
      reason: `source ${a.source} reported again in the window ending ${iso(end)}`,
    }));
    if (verdict.silent.length === 0) return { findings: [], resolved };

    const from = Math.min(start, end - cfg.lookbackMs);
    const silentIds = verdict.silent.map((s) => s.a.source);
    const samples = await sampleIds(
      ch,
      'source',
      sql`${firstCopies(ch, from, end)} AND source_id IN ${tuple(silentIds)}`,
      { limit: 10, newest: true },
    );
    const findings: Finding[] = verdict.silent.map(
      ({ a, present, reference, others, usualGapMs, thresholdMs }) => {
        const quietMs = end - a.last;
        const minutes = Math.floor(quietMs / 60_000);
        return makeFinding({
          detector: 'silent_source',
          subject: a.source,
          windowMs,
          windowStart: start,
          windowEnd: end,
          severity: quietMs >= 4 * thresholdMs ? 'high' : 'medium',
          title: `Source ${a.source} stopped reporting`,
          summary:
            `${a.type || 'Source'} ${a.source} reported in ${present} of the last ${reference} active ` +
            `${cfg.bucketMs / 60_000}-minute buckets, but nothing since ${iso(a.last)} (${minutes} minutes ` +
            `of event time by ${iso(end)}; raises after ${round1(thresholdMs / 60_000)}: ` +
            `${cfg.silenceMs / 60_000} minutes and ${cfg.gapFactor} times its usual gap of ` +
            `${round1(usualGapMs / 60_000)} minutes), while ${others} other ` +
            'source(s) kept reporting. A gateway that stops sending audit events is either down or ' +
            'bypassed: check its health and whether MCP traffic still flows around it.',
          observed: round1(quietMs / 60_000),
          expected: { low: 0, high: round1(thresholdMs / 60_000) },
          score: quietMs / thresholdMs,
          sampleEventIds: samples.get(a.source) ?? [],
        });
      },
    );
    return { findings, resolved };
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;
