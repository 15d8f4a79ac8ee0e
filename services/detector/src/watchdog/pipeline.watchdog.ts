import { dbIdent, sql, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import type { Kafka } from '@mcp-audit/kafka';
import type { HealthReport, Logger } from '@mcp-audit/service-kit';
import type { WatchdogConfig } from '../config.js';
import { stableUuid } from '../alert.lifecycle.js';
import type { AlertLifecycle, Finding } from '../model.js';
import { windowLabel } from '../time.js';
import type { WatchdogMetrics } from './watchdog.metrics.js';

/**
 * The pipeline watchdog: total silence is an alarm. Everything else in the detector runs on event
 * time, so when nothing arrives at all nothing closes and nothing is judged (silent_source stays
 * quiet "when everything goes quiet"). This runs on the WALL CLOCK, every `intervalMs`:
 *
 * - silence: per source, the events stored (ingested_at) in the last `windowMs`, against what that
 *   source normally sends at this time (its events in `referenceSpanMs` around the same moment
 *   `periodMs`, 2·periodMs, … ago, in events_by_time; the median, scaled to the window). A busy source
 *   with nothing stored raises `pipeline_silence` (critical when every busy source is silent at once:
 *   the pipeline, not a gateway); it resolves at the first check that sees its events stored again,
 *   or once the source is no longer expected to be busy at that time.
 * - stall: the ingester's consumer group on the events topic, through the Kafka admin API (it works
 *   when the ingester is dead, unlike the ingester's own lag gauge): messages waiting, committed
 *   offsets unchanged for `stallMs` and no row stored in that time raise `pipeline_stall`; it
 *   resolves at the first check where the committed offsets moved or the backlog is gone.
 *
 * Alerts go through the same lifecycle (alert rows, transitions, the alerts topic, dedup). A restart
 * reloads the open ones like every alert; the stall state (since when nothing moved) is in memory, so after
 * a restart a stall is raised again only after another `stallMs` of no progress.
 */

export interface GroupOffsets {
  /** Sum over partitions of the group's committed offsets (the log start where it has none). */
  committed: number;
  /** Messages waiting: sum over partitions of end offset minus committed. */
  lag: number;
  partitions: number;
}

/** The group's position on its topic (the Kafka admin API live; anything in tests of the logic). */
export type OffsetsSource = () => Promise<GroupOffsets>;

/** Committed offsets and end offsets of `groupId` on `topic`, through the Kafka admin API. */
export function kafkaGroupOffsets(kafka: Kafka, groupId: string, topic: string): OffsetsSource {
  return async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [ends, groups] = await Promise.all([
        admin.fetchTopicOffsets(topic),
        admin.fetchOffsets({ groupId, topics: [topic] }),
      ]);
      const committed = new Map(
        (groups.find((g) => g.topic === topic)?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
      );
      let sum = 0;
      let lag = 0;
      for (const p of ends) {
        const low = Number(p.low);
        const c = committed.get(p.partition);
        const at = c !== undefined && c >= 0 ? c : low; // -1: the group never committed here
        sum += at;
        lag += Math.max(0, Number(p.high) - at);
      }
      return { committed: sum, lag, partitions: ends.length };
    } finally {
      await admin.disconnect();
    }
  };
}

export interface WatchdogDeps {
  /** Reader (analyst): events, events_by_time. */
  reader: ClickHouse;
  /** The detector's lifecycle (it needs `openAlerts`: what the watchdog has open after a restart). */
  lifecycle: Required<Pick<AlertLifecycle, 'openAlerts'>> & AlertLifecycle;
  config: WatchdogConfig;
  /** The ingester's group position; absent: no stall check. */
  offsets?: OffsetsSource;
  /** The group and topic named in stall alerts. */
  group?: { groupId: string; topic: string };
  log: Logger;
  metrics?: WatchdogMetrics;
  /** Wall clock (injectable for tests). */
  now?: () => number;
}

export interface CheckResult {
  at: number;
  busy: number;
  silent: string[];
  stalled: boolean;
  lag: number | null;
  raised: number;
  resolved: number;
}

/** Since when the group's committed offsets have not moved, and since when a backlog has waited. */
interface StallState {
  committed: number;
  unchangedSince: number;
  backlogSince: number | undefined;
  backlogThen: number;
}

const SILENCE = 'pipeline_silence' as const;
const STALL = 'pipeline_stall' as const;
const iso = (t: number) => new Date(t).toISOString();

export function createPipelineWatchdog(deps: WatchdogDeps) {
  const cfg = deps.config;
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ component: 'watchdog' });
  const db = dbIdent(deps.reader.database);
  const silenceKey = (source: string) => `${SILENCE}:${source}:${windowLabel(cfg.windowMs)}`;
  const stallKey = (group: string) => `${STALL}:${group}:${windowLabel(cfg.stall.stallMs)}`;
  let position: StallState | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inFlight: Promise<CheckResult> | undefined;
  let last: CheckResult | undefined;
  let lastError: string | undefined;
  let failures = 0;
  let stallError: string | undefined;

  /**
   * Per source, the events stored in (t - ms, t] and when the last one was stored (epoch ms), among
   * the events stamped within arrivalSlackMs.
   */
  async function storedSince(t: number, ms: number): Promise<Map<string, { n: number; last: number }>> {
    const rows = await deps.reader.query<{ source: string; n: string; last: string }>(sql`
      SELECT source_id AS source, countIf(ingested_at > ${new Date(t - ms)}) AS n,
             toUInt32(max(ingested_at)) AS last
      FROM ${db}.events
      WHERE ts >= ${new Date(t - cfg.arrivalSlackMs)} AND ingested_at <= ${new Date(t)}
      GROUP BY source`);
    return new Map(rows.map((r) => [r.source, { n: Number(r.n), last: Number(r.last) * 1000 }]));
  }

  /** Whether a human resolved this alert (analyst API): final, even across restarts. */
  async function resolvedByHuman(alertId: string): Promise<boolean> {
    const rows = await deps.reader.query<{ n: string }>(sql`
      SELECT count() AS n FROM ${db}.alert_transitions
      WHERE alert_id = ${alertId} AND to_status = 'resolved' AND actor NOT IN ('detector', 'replay')`);
    return Number(rows[0]?.n ?? 0) > 0;
  }

  /** Per source, the events it normally sends in windowMs at this time (median of the samples). */
  async function expected(t: number): Promise<Map<string, number>> {
    const half = cfg.referenceSpanMs / 2;
    let ranges: SqlFragment | undefined;
    for (let k = 1; k <= cfg.periods; k++) {
      const c = t - k * cfg.periodMs;
      const r = sql`(ts >= ${new Date(c - half)} AND ts < ${new Date(c + half)})`;
      ranges = ranges ? sql`${ranges} OR ${r}` : r;
    }
    // k from the distance to now: the ranges are at most periodMs wide, so they never overlap.
    const rows = await deps.reader.query<{ source: string; k: string; n: string }>(sql`
      SELECT source_id AS source,
             toUInt32(round((${Math.floor(t / 1000)} - toUInt32(ts)) / ${cfg.periodMs / 1000})) AS k,
             uniqExact(event_id) AS n
      FROM ${db}.events_by_time WHERE ${ranges!}
      GROUP BY source, k`);
    const counts = new Map<string, number[]>();
    for (const r of rows) {
      const list = counts.get(r.source) ?? new Array<number>(cfg.periods).fill(0);
      const k = Number(r.k);
      if (k >= 1 && k <= cfg.periods) list[k - 1] = Number(r.n);
      counts.set(r.source, list);
    }
    const out = new Map<string, number>();
    for (const [source, list] of counts) out.set(source, (median(list) * cfg.windowMs) / cfg.referenceSpanMs);
    return out;
  }

  async function checkSilence(t: number, result: CheckResult): Promise<void> {
    const [seen, usual] = await Promise.all([storedSince(t, cfg.windowMs), expected(t)]);
    const busy = [...usual].filter(([, n]) => n >= cfg.minExpected).sort(([a], [b]) => (a < b ? -1 : 1));
    const silent = busy.filter(([s]) => !seen.get(s)?.n);
    result.busy = busy.length;
    result.silent = silent.map(([s]) => s);
    deps.metrics?.silentSources.set(silent.length);
    deps.metrics?.busySources.set(busy.length);
    const everything = silent.length === busy.length && busy.length > 1;
    const label = windowLabel(cfg.windowMs);
    for (const [source, exp] of silent) {
      const others = busy.length - silent.length;
      // The silence began when the source's last event was stored: one episode, one alert id.
      const last = seen.get(source)?.last;
      result.raised += (await raise({
        detector: SILENCE,
        key: silenceKey(source),
        subject: source,
        t,
        since: last ?? Math.floor((t - cfg.arrivalSlackMs) / cfg.arrivalSlackMs) * cfg.arrivalSlackMs,
        severity: everything ? 'critical' : 'high',
        title: everything
          ? `Nothing stored from any busy source for ${label} (${source} among ${busy.length})`
          : `No events stored from ${source} for ${label}`,
        summary:
          `No event from source ${source} was stored between ${iso(t - cfg.windowMs)} and ${iso(t)} ` +
          (last ? `(the last at ${iso(last)}) ` : '') +
          `(wall clock, ingestion time), while it normally sends about ${exp.toFixed(1)} events in ` +
          `${label} at this time (median of the same moment over the last ${cfg.periods} periods of ` +
          `${windowLabel(cfg.periodMs)}). ` +
          (everything
            ? `None of the ${busy.length} sources normally busy now sent anything: the pipeline itself ` +
              '(collector, Kafka, ingester, ClickHouse) or the audit configuration everywhere has stopped. '
            : `${others} other busy source${others === 1 ? '' : 's'} kept reporting: ${source} is down, ` +
              'disconnected, or its auditing was turned off. ') +
          'Audit logging that stops is what an attacker does first: find out why before anything else.',
        observed: 0,
        expected: { low: Math.max(1, Math.floor(exp / 4)), high: exp },
        score: exp,
      }))
        ? 1
        : 0;
    }
    // Open silence alerts whose source is back, or no longer expected to be busy now.
    const silentSet = new Set(result.silent);
    for (const a of deps.lifecycle.openAlerts()) {
      if (a.detector !== SILENCE || !a.dedupKey.startsWith(`${SILENCE}:`)) continue;
      const source = a.dedupKey.slice(SILENCE.length + 1, a.dedupKey.lastIndexOf(':'));
      if (silentSet.has(source)) continue;
      const n = seen.get(source)?.n ?? 0;
      const reason =
        n > 0
          ? `${n} events from ${source} stored in the ${label} before ${iso(t)}`
          : `${source} is not normally busy at ${iso(t)} (expected under ${cfg.minExpected} events in ${label})`;
      await deps.lifecycle.resolve(a.dedupKey, t, reason);
      result.resolved += 1;
    }
  }

  async function checkStall(t: number, result: CheckResult): Promise<void> {
    if (!deps.offsets || !deps.group) return;
    const o = await deps.offsets();
    result.lag = o.lag;
    deps.metrics?.ingesterLag.set(o.lag);
    const prev = position;
    const moved = prev !== undefined && o.committed !== prev.committed;
    const backlog = o.lag >= cfg.stall.minLag;
    position = {
      committed: o.committed,
      unchangedSince: !prev || moved ? t : prev.unchangedSince,
      backlogSince: backlog ? (prev?.backlogSince ?? t) : undefined,
      backlogThen: backlog && prev?.backlogSince !== undefined ? prev.backlogThen : o.lag,
    };
    const key = stallKey(deps.group.groupId);
    // A stall alert under another key (group or stallMs changed since it opened) is no longer watched.
    for (const a of deps.lifecycle.openAlerts()) {
      if (a.detector !== STALL || a.dedupKey === key) continue;
      await deps.lifecycle.resolve(a.dedupKey, t, 'no longer watched (watchdog configuration changed)');
      result.resolved += 1;
    }
    if (moved || !backlog) {
      const reason = moved
        ? `the group committed ${o.committed - prev.committed} more offsets by ${iso(t)}`
        : `no backlog at ${iso(t)} (${o.lag} messages waiting)`;
      if (deps.lifecycle.openAlerts().some((a) => a.dedupKey === key)) {
        await deps.lifecycle.resolve(key, t, reason);
        result.resolved += 1;
      }
      return;
    }
    // Stalled: no offset committed and a backlog waiting, both for stallMs (wall clock).
    const since = Math.max(position.unchangedSince, position.backlogSince!);
    if (t - since < cfg.stall.stallMs) return;
    const stored = [...(await storedSince(t, cfg.stall.stallMs)).values()].reduce((a, b) => a + b.n, 0);
    if (stored > 0) return;
    result.stalled = true;
    const { groupId, topic } = deps.group;
    const label = windowLabel(cfg.stall.stallMs);
    result.raised += (await raise({
      detector: STALL,
      key,
      subject: groupId,
      t,
      since,
      severity: 'critical',
      title: `Ingester stalled: ${o.lag} events waiting in Kafka, nothing stored for ${label}`,
      summary:
        `The consumer group ${groupId} has not committed any offset on ${topic} since ${iso(since)} ` +
        `(${o.partitions} partitions) while ${o.lag} messages wait (${position.backlogThen} then), and no event was ` +
        `stored in ClickHouse between ${iso(t - cfg.stall.stallMs)} and ${iso(t)}. Events are ` +
        'arriving but not reaching the audit log: check the ingester (is it running, its health and ' +
        'logs) and ClickHouse. Nothing is lost while the messages stay in Kafka (mind its retention).',
      observed: o.lag,
      expected: { low: 0, high: cfg.stall.minLag - 1 },
      score: o.lag,
    }))
      ? 1
      : 0;
  }

  async function raise(a: {
    detector: typeof SILENCE | typeof STALL;
    key: string;
    subject: string;
    t: number;
    /** Start of the episode (its alert id derives from it). */
    since: number;
    severity: Finding['severity'];
    title: string;
    summary: string;
    observed: number;
    expected: { low: number; high: number };
    score: number;
  }): Promise<boolean> {
    if (deps.lifecycle.openAlerts().some((o) => o.dedupKey === a.key)) return false;
    const start = Math.floor(Math.min(a.since, a.t) / 1000) * 1000;
    // A human resolved this very episode: not raised again until it ends and another begins.
    if (await resolvedByHuman(stableUuid(`alert|${a.key}|${start}`))) return false;
    await deps.lifecycle.raise({
      detector: a.detector,
      clientId: a.subject,
      dedupKey: a.key,
      severity: a.severity,
      title: a.title,
      summary: a.summary,
      windowStart: start,
      windowEnd: a.t,
      observed: a.observed,
      expected: a.expected,
      score: a.score,
      baselineVersion: '',
      contributors: { tools: [], addresses: [], sessions: [] },
      sampleEventIds: [],
      detectedAt: a.t,
    });
    log.warn({ detector: a.detector, key: a.key }, a.title);
    return true;
  }

  async function checkOnce(): Promise<CheckResult> {
    const t = now();
    const result: CheckResult = {
      at: t,
      busy: 0,
      silent: [],
      stalled: false,
      lag: null,
      raised: 0,
      resolved: 0,
    };
    await checkSilence(t, result);
    if (cfg.stall.enabled) {
      // NOTE: the Kafka admin calls need DESCRIBE on the ingester's group; without it (an ACL not
      // granted) the silence check still runs and the failure is reported, not fatal.
      try {
        await checkStall(t, result);
        stallError = undefined;
      } catch (err) {
        stallError = err instanceof Error ? err.message : String(err);
        deps.metrics?.checks.inc({ result: 'stall_failed' });
        log.warn({ err, group: deps.group }, 'watchdog: the ingester group position could not be read');
      }
    }
    return result;
  }

  /** One check now (serialised with the timer's). */
  function check(): Promise<CheckResult> {
    if (inFlight) return inFlight;
    const stop = deps.metrics?.checkSeconds.startTimer();
    inFlight = checkOnce()
      .then((r) => {
        last = r;
        failures = 0;
        lastError = undefined;
        deps.metrics?.checks.inc({ result: 'ok' });
        if (r.raised || r.resolved) log.info({ ...r, at: iso(r.at) }, 'watchdog check');
        return r;
      })
      .catch((err: unknown) => {
        failures += 1;
        lastError = err instanceof Error ? err.message : String(err);
        deps.metrics?.checks.inc({ result: 'failed' });
        log.error({ err }, 'watchdog check failed');
        throw err;
      })
      .finally(() => {
        stop?.();
        inFlight = undefined;
      });
    return inFlight;
  }

  return {
    check,
    start() {
      if (running || !cfg.enabled) return;
      running = true;
      const tick = () => {
        timer = setTimeout(() => {
          check().then(tick, tick);
        }, cfg.intervalMs);
        timer.unref();
      };
      tick();
      log.info(
        { intervalMs: cfg.intervalMs, windowMs: cfg.windowMs, stall: deps.group ?? null },
        'pipeline watchdog started',
      );
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight?.catch(() => undefined);
    },
    health(): HealthReport {
      return {
        ok: !cfg.enabled || failures < 3,
        details: {
          enabled: cfg.enabled,
          failures,
          lastCheck: last ? { ...last, at: iso(last.at) } : null,
          ...(lastError ? { lastError } : {}),
          ...(stallError ? { stallError } : {}),
        },
      };
    },
  };
}
export type PipelineWatchdog = ReturnType<typeof createPipelineWatchdog>;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
