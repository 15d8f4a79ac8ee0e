import { sql, tuple, type ClickHouse } from '@mcp-audit/clickhouse';
import type { Finding } from '../model.js';
import type { PeriodicConfig } from './periodic.config.js';
import { eventsTable, iso, makeFinding, num, sampleIds, T_MS, tsBetween } from './shared.js';
import type { PeriodicDetector, Resolution } from './types.js';
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
}

export interface SilenceVerdict {
  silent: Array<{ a: SourceActivity; present: number; reference: number; others: number }>;
  back: SourceActivity[];
}

/**
 * Pure core of silent_source at the window end `end`:
 * - reference buckets: the `steadyBuckets` most recent buckets (complete before the silence began) in
 *   which any source reported; a source is steady if it reported in at least minShare of that many;
 * - silent: steady, nothing for silenceMs, while some other source did report in that time (a quiet
 *   whole system is not a silent source);
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
  const need = Math.ceil(cfg.minShare * cfg.steadyBuckets - 1e-9);
  const quietSince = end - cfg.silenceMs;
  const alive = activity.filter((a) => a.last >= quietSince);
  const silent: SilenceVerdict['silent'] = [];
  for (const a of activity) {
    const present = a.buckets.filter((b) => refSet.has(b)).length;
    if (present < need || a.last >= quietSince) continue;
    const others = alive.filter((o) => o.source !== a.source).length;
    if (others === 0) continue;
    silent.push({ a, present, reference: reference.length, others });
  }
  const back = activity.filter(
    (a) => a.inWindow > 0 && (a.lastBefore === 0 || a.lastBefore < start - cfg.silenceMs),
  );
  return { silent, back };
}

/**
 * silent_source: a gateway or SDK source that reported steadily and has sent nothing for silenceMs of
 * event time while other sources kept reporting. Resolves when the source reports again.
 */
export function silentSourceDetector(ch: ClickHouse, cfg: PeriodicConfig['silentSource']): PeriodicDetector {
  const windowMs = cfg.windowMs;
  const bucketSec = cfg.bucketMs / 1000;
  return {
    name: 'silent_source',
    windowMs,
    async evaluate(start, end) {
      // Reference buckets end where the silence begins (the bucket holding its start is incomplete).
      const refEnd = alignDown(end - cfg.silenceMs, cfg.bucketMs);
      const from = Math.min(start, end - cfg.lookbackMs);
      const rows = await ch.query<{
        source: string;
        type: string;
        buckets: number[];
        last: string;
        last_before: string;
        in_window: string;
      }>(sql`
        SELECT source_id AS source, any(source_type) AS type,
               groupUniqArrayIf(intDiv(toUInt32(ts), ${bucketSec}), ts < ${new Date(refEnd)}) AS buckets,
               max(${T_MS}) AS last,
               maxIf(${T_MS}, ts < ${new Date(start)}) AS last_before,
               countIf(ts >= ${new Date(start)}) AS in_window
        FROM ${eventsTable(ch)}
        WHERE ${tsBetween(from, end)} AND source_id != ''
        GROUP BY source
        ORDER BY source`);
      const activity: SourceActivity[] = rows.map((r) => ({
        source: r.source,
        type: r.type,
        buckets: r.buckets.map(Number),
        last: num(r.last),
        lastBefore: num(r.last_before),
        inWindow: num(r.in_window),
      }));
      const verdict = judgeSilence(activity, start, end, cfg);
      const resolved: Resolution[] = verdict.back.map((a) => ({
        dedupKey: dedupKeyOf('silent_source', a.source, windowMs),
        reason: `source ${a.source} reported again in the window ending ${iso(end)}`,
      }));
      if (verdict.silent.length === 0) return { findings: [], resolved };

      const silentIds = verdict.silent.map((s) => s.a.source);
      const samples = await sampleIds(
        ch,
        'source',
        sql`${tsBetween(from, end)} AND source_id IN ${tuple(silentIds)}`,
        { limit: 10, newest: true },
      );
      const findings: Finding[] = verdict.silent.map(({ a, present, reference, others }) => {
        const quietMs = end - a.last;
        const minutes = Math.floor(quietMs / 60_000);
        return makeFinding({
          detector: 'silent_source',
          subject: a.source,
          windowMs,
          windowStart: start,
          windowEnd: end,
          severity: quietMs >= 4 * cfg.silenceMs ? 'high' : 'medium',
          title: `Source ${a.source} stopped reporting`,
          summary:
            `${a.type || 'Source'} ${a.source} reported in ${present} of the last ${reference} active ` +
            `${cfg.bucketMs / 60_000}-minute buckets, but nothing since ${iso(a.last)} (${minutes} minutes ` +
            `of event time by ${iso(end)}; raises after ${cfg.silenceMs / 60_000}), while ${others} other ` +
            'source(s) kept reporting. A gateway that stops sending audit events is either down or ' +
            'bypassed: check its health and whether MCP traffic still flows around it.',
          observed: round1(quietMs / 60_000),
          expected: { low: 0, high: cfg.silenceMs / 60_000 },
          score: quietMs / cfg.silenceMs,
          sampleEventIds: samples.get(a.source) ?? [],
        });
      });
      return { findings, resolved };
    },
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
