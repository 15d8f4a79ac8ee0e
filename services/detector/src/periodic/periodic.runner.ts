import { sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { HealthReport, Logger } from '@mcp-audit/service-kit';
import type { AlertLifecycle } from '../model.js';
import type { PeriodicMetrics } from './periodic.metrics.js';
import { memoryProgressStore, type ProgressEntry, type ProgressStore } from './progress.store.js';
import { eventsTable, iso, num, T_MS } from './shared.js';
import type { Evaluation, PeriodicDetector } from './types.js';
import { dueWindows, rangeWindows, resumeAt, type Cursor, type WindowSlot } from './windows.js';

export interface PeriodicRunnerDeps {
  detectors: readonly PeriodicDetector[];
  lifecycle: AlertLifecycle;
  /**
   * Event-time high-water mark of the stored events (epoch ms), e.g. `createEventsWatermark(reader)`;
   * 0 or less while there are none.
   */
  watermark: () => Promise<number>;
  /** Allowed lateness: a window is evaluated once watermark - lateMs >= its end (+ the detector's lookahead). */
  lateMs: number;
  log: Logger;
  /** Where progress survives restarts (`clickHouseProgressStore`); in memory when absent. */
  progress?: ProgressStore;
  metrics?: PeriodicMetrics;
  /** Wall-clock pause between ticks when nothing is pending (default 30 s). */
  tickMs?: number;
  /** Windows per tick at most, over all detectors (default 480): catch-up after downtime in slices. */
  maxWindowsPerTick?: number;
  /** Windows of one detector per evaluation call at most (default 288: a day of 5-minute windows). */
  maxWindowsPerCall?: number;
  /** Pause between ticks while behind (default 250 ms), so catch-up yields to everything else. */
  catchUpDelayMs?: number;
}

export interface PassResult {
  windows: number;
  findings: number;
  resolved: number;
}

export interface TickResult extends PassResult {
  /** Event time closed by the watermark (watermark - lateMs), or null before any event. */
  closedUntil: number | null;
  /** More windows are already due (the tick hit its bound or a failure). */
  behind: boolean;
  failed: number;
}

export interface RangeOptions {
  /** Called after every window, for a progress bar. */
  onProgress?: (done: number, total: number, slot: { detector: string; start: number; end: number }) => void;
  signal?: AbortSignal;
}

export interface PeriodicRunner {
  start(): void;
  stop(): Promise<void>;
  /** One live pass: evaluates the windows due now (bounded), saves progress. `start` calls it on a timer. */
  tick(): Promise<TickResult>;
  /**
   * Replay: evaluates every whole window of every detector inside [from, to), in event-time order,
   * regardless of the watermark and without touching the live progress. Deterministic.
   */
  runRange(from: number, to: number, opts?: RangeOptions): Promise<PassResult>;
  health(): HealthReport;
}

/** The periodic runner: closed event-time windows, once each, in order, with progress that survives restarts. */
export function createPeriodicRunner(deps: PeriodicRunnerDeps): PeriodicRunner {
  const log = deps.log;
  const progress = deps.progress ?? memoryProgressStore();
  const maxPerTick = deps.maxWindowsPerTick ?? 480;
  const maxPerCall = deps.maxWindowsPerCall ?? 288;
  const tickMs = deps.tickMs ?? 30_000;
  const catchUpDelayMs = deps.catchUpDelayMs ?? 250;
  const detectors = deps.detectors;
  if (!(deps.lateMs >= 0)) throw new RangeError(`lateMs must be >= 0, got ${deps.lateMs}`);
  const names = new Set<string>();
  for (const d of detectors) {
    if (names.has(d.name)) throw new Error(`periodic detector ${d.name} is listed twice`);
    names.add(d.name);
    if (!(Number.isSafeInteger(d.windowMs) && d.windowMs > 0 && d.windowMs % 1000 === 0))
      throw new RangeError(`${d.name}: windowMs must be a positive whole number of seconds`);
  }

  let cursors: Cursor[] | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let stopping = false;
  let inFlight: Promise<TickResult> | undefined;
  let consecutiveFailures = 0;
  let lastTickAt: number | undefined;
  let lastError: string | undefined;
  let lastClosed: number | null = null;
  const totals = { windows: 0, findings: 0, resolved: 0 };

  /**
   * Evaluates consecutive windows of one detector in calls of at most maxPerCall windows (one range
   * query each when the detector has `evaluateRange`). Returns the evaluations obtained, in order, and
   * the error that stopped it (the windows after a failure are not evaluated: order matters).
   */
  async function evaluateSlots(
    slots: readonly WindowSlot[],
    signal?: AbortSignal,
  ): Promise<{ evals: Evaluation[]; error?: unknown }> {
    const evals: Evaluation[] = [];
    for (let i = 0; i < slots.length; i += maxPerCall) {
      if (signal?.aborted) break;
      const chunk = slots.slice(i, i + maxPerCall);
      const d = detectors[chunk[0]!.detector]!;
      const stopTimer = deps.metrics?.evaluateSeconds.startTimer({ detector: d.name });
      try {
        if (d.evaluateRange) {
          const got = await d.evaluateRange(chunk[0]!.start, chunk[chunk.length - 1]!.end);
          if (got.length !== chunk.length)
            throw new Error(
              `${d.name}: evaluateRange gave ${got.length} results for ${chunk.length} windows`,
            );
          evals.push(...got);
        } else {
          for (const slot of chunk) evals.push(await d.evaluate(slot.start, slot.end));
        }
      } catch (error) {
        return { evals, error };
      } finally {
        stopTimer?.();
      }
    }
    return { evals };
  }

  /**
   * Expiry by age: resolves the detector's open alerts that opened expireMs or more before `end`
   * (event time, so replay expires the same alerts at the same window). Returns how many.
   */
  async function expire(d: PeriodicDetector, end: number): Promise<number> {
    if (!d.expireMs || !deps.lifecycle.openAlerts) return 0;
    const due = deps.lifecycle
      .openAlerts()
      .filter((a) => a.detector === d.name && a.openedAt + d.expireMs! <= end);
    for (const a of due) {
      await deps.lifecycle.resolve(
        a.dedupKey,
        end,
        `expired: ${d.expireMs / 3_600_000} hours of event time since it opened at ${iso(a.openedAt)}`,
      );
    }
    return due.length;
  }

  /** Hands one window's result to the lifecycle (expiries first, then raises, then resolutions). */
  async function applySlot(slot: WindowSlot, ev: Evaluation, mode: 'live' | 'replay'): Promise<PassResult> {
    const d = detectors[slot.detector]!;
    const { findings, resolved } = ev;
    const expired = await expire(d, slot.end);
    for (const f of findings) {
      await deps.lifecycle.raise(f);
      deps.metrics?.findings.inc({ detector: d.name, severity: f.severity });
    }
    for (const r of resolved) await deps.lifecycle.resolve(r.dedupKey, slot.end, r.reason);
    deps.metrics?.windows.inc({ detector: d.name, mode });
    if (resolved.length) deps.metrics?.resolved.inc({ detector: d.name }, resolved.length);
    if (expired) deps.metrics?.expired.inc({ detector: d.name }, expired);
    const line = {
      detector: d.name,
      mode,
      window: { start: iso(slot.start), end: iso(slot.end) },
      findings: findings.length,
      resolved: resolved.length,
      expired,
      keys: findings.map((f) => f.dedupKey).slice(0, 20),
    };
    if (findings.length > 0) log.info(line, 'periodic findings');
    else log.debug(line, 'periodic window evaluated');
    return { windows: 1, findings: findings.length, resolved: resolved.length };
  }

  /**
   * Evaluates the slots (each detector's in order) detector by detector in range calls, then applies
   * the results in the slots' order (earliest end first): the same lifecycle sequence as one window
   * at a time. A detector whose evaluation failed stops at the failed window.
   */
  async function evaluateAll(
    slots: readonly WindowSlot[],
    signal?: AbortSignal,
  ): Promise<{
    results: Map<WindowSlot, Evaluation>;
    errors: Map<number, { slot: WindowSlot; error: unknown }>;
  }> {
    const perDetector = new Map<number, WindowSlot[]>();
    for (const slot of slots) {
      const list = perDetector.get(slot.detector) ?? [];
      list.push(slot);
      perDetector.set(slot.detector, list);
    }
    const results = new Map<WindowSlot, Evaluation>();
    const errors = new Map<number, { slot: WindowSlot; error: unknown }>();
    for (const [i, list] of perDetector) {
      const { evals, error } = await evaluateSlots(list, signal);
      evals.forEach((ev, j) => results.set(list[j]!, ev));
      if (error !== undefined) errors.set(i, { slot: list[evals.length]!, error });
    }
    return { results, errors };
  }

  async function loadCursors(closedUntil: number): Promise<Cursor[]> {
    const entries = await progress.load();
    return detectors.map((d) => {
      const lookaheadMs = d.lookaheadMs ?? 0;
      const same = entries.find((e) => e.detector === d.name && e.windowMs === d.windowMs);
      // A changed window length resumes after the furthest window evaluated under any length.
      const any = entries.filter((e) => e.detector === d.name).map((e) => e.lastEnd);
      const lastEnd = same?.lastEnd ?? (any.length ? Math.max(...any) : undefined);
      const next = resumeAt(lastEnd, d.windowMs, lookaheadMs, closedUntil);
      log.info(
        { detector: d.name, windowMs: d.windowMs, resumeAt: iso(next), fromProgress: lastEnd !== undefined },
        'periodic detector resumes',
      );
      return { windowMs: d.windowMs, lookaheadMs, next };
    });
  }

  async function tickOnce(): Promise<TickResult> {
    const started = Date.now();
    const result: TickResult = {
      windows: 0,
      findings: 0,
      resolved: 0,
      closedUntil: null,
      behind: false,
      failed: 0,
    };
    const wm = await deps.watermark();
    if (!(Number.isFinite(wm) && wm > 0)) return result; // no events yet: nothing is closed
    const closedUntil = wm - deps.lateMs;
    result.closedUntil = closedUntil;
    lastClosed = closedUntil;
    cursors ??= await loadCursors(closedUntil);
    const due = dueWindows(cursors, closedUntil, maxPerTick);
    const blocked = new Set<number>();
    const advanced = new Map<number, number>();
    const { results, errors } = await evaluateAll(due);
    const fail = (slot: WindowSlot, err: unknown) => {
      // The window is retried next tick; later windows of this detector wait (order matters).
      const name = detectors[slot.detector]!.name;
      blocked.add(slot.detector);
      result.failed += 1;
      deps.metrics?.failures.inc({ detector: name });
      lastError = err instanceof Error ? err.message : String(err);
      log.error(
        { err, detector: name, window: { start: iso(slot.start), end: iso(slot.end) } },
        'periodic window failed',
      );
    };
    for (const slot of due) {
      if (stopping) break;
      if (blocked.has(slot.detector)) continue;
      const ev = results.get(slot);
      if (!ev) {
        const e = errors.get(slot.detector);
        if (e) fail(slot, e.error);
        else blocked.add(slot.detector); // stopped before it (shutdown)
        continue;
      }
      const name = detectors[slot.detector]!.name;
      try {
        const r = await applySlot(slot, ev, 'live');
        result.windows += 1;
        result.findings += r.findings;
        result.resolved += r.resolved;
        cursors[slot.detector]!.next = slot.end;
        advanced.set(slot.detector, slot.end);
        deps.metrics?.lastWindowEnd.set({ detector: name }, slot.end / 1000);
      } catch (err) {
        fail(slot, err);
      }
    }
    if (advanced.size > 0) {
      const entries: ProgressEntry[] = [...advanced].map(([i, lastEnd]) => ({
        detector: detectors[i]!.name,
        windowMs: detectors[i]!.windowMs,
        lastEnd,
      }));
      await progress.save(entries);
    }
    cursors.forEach((c, i) => {
      const lag = Math.max(0, closedUntil - c.lookaheadMs - (c.next + c.windowMs));
      deps.metrics?.lagSeconds.set({ detector: detectors[i]!.name }, lag / 1000);
    });
    result.behind = dueWindows(cursors, closedUntil, 1).length > 0;
    totals.windows += result.windows;
    totals.findings += result.findings;
    totals.resolved += result.resolved;
    if (result.windows > 0 || result.failed > 0) {
      log.info({ ...result, closedUntil: iso(closedUntil), ms: Date.now() - started }, 'periodic tick');
    }
    return result;
  }

  function tick(): Promise<TickResult> {
    if (inFlight) return inFlight;
    inFlight = tickOnce()
      .then((r) => {
        lastTickAt = Date.now();
        if (r.failed === 0) {
          consecutiveFailures = 0;
          lastError = undefined;
        } else consecutiveFailures += 1;
        return r;
      })
      .catch((err: unknown) => {
        // watermark or progress store failed: nothing advanced, retry next tick
        consecutiveFailures += 1;
        lastError = err instanceof Error ? err.message : String(err);
        log.error({ err }, 'periodic tick failed');
        throw err;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  function schedule(delay: number): void {
    if (!running || stopping) return;
    timer = setTimeout(() => {
      timer = undefined;
      tick().then(
        (r) => schedule(r.behind ? catchUpDelayMs : tickMs),
        () => schedule(tickMs),
      );
    }, delay);
  }

  return {
    start() {
      if (running) return;
      running = true;
      stopping = false;
      log.info(
        {
          detectors: detectors.map((d) => `${d.name}/${d.windowMs / 1000}s`),
          lateMs: deps.lateMs,
          maxPerTick,
        },
        'periodic runner started',
      );
      schedule(0);
    },
    async stop() {
      if (!running) return;
      stopping = true;
      running = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight?.catch(() => undefined);
      log.info({ ...totals }, 'periodic runner stopped');
    },
    tick,
    async runRange(from, to, opts = {}) {
      const slots = rangeWindows(detectors, from, to);
      const out: PassResult = { windows: 0, findings: 0, resolved: 0 };
      const started = Date.now();
      // In event-time slices (bounded memory), each detector's windows of a slice in range calls.
      for (let i = 0; i < slots.length; i += maxPerTick) {
        if (opts.signal?.aborted) throw new Error('periodic replay aborted');
        const slice = slots.slice(i, i + maxPerTick);
        const { results, errors } = await evaluateAll(slice, opts.signal);
        if (opts.signal?.aborted) throw new Error('periodic replay aborted');
        const failed = [...errors.values()][0];
        if (failed) throw failed.error;
        for (const slot of slice) {
          const r = await applySlot(slot, results.get(slot)!, 'replay');
          out.windows += 1;
          out.findings += r.findings;
          out.resolved += r.resolved;
          opts.onProgress?.(out.windows, slots.length, {
            detector: detectors[slot.detector]!.name,
            start: slot.start,
            end: slot.end,
          });
        }
      }
      log.info({ from: iso(from), to: iso(to), ...out, ms: Date.now() - started }, 'periodic replay done');
      return out;
    },
    health() {
      return {
        ok: running && consecutiveFailures < 3,
        details: {
          running,
          consecutiveFailures,
          lastTickAt: lastTickAt === undefined ? null : new Date(lastTickAt).toISOString(),
          closedUntil: lastClosed === null ? null : iso(lastClosed),
          next: cursors ? Object.fromEntries(cursors.map((c, i) => [detectors[i]!.name, iso(c.next)])) : null,
          ...(lastError ? { lastError } : {}),
          ...totals,
        },
      };
    },
  };
}

/**
 * Event-time high-water mark of mcp_audit.events: max(ts), capped at the wall clock (an event
 * stamped in the future must not close windows early). After the first call it only scans the
 * last day before the previous mark, so it stays cheap on a large table.
 */
export function createEventsWatermark(
  ch: ClickHouse,
  opts: { now?: () => number } = {},
): () => Promise<number> {
  const now = opts.now ?? Date.now;
  let mark = 0;
  return async () => {
    const since = mark > 0 ? Math.max(0, mark - 86_400_000) : 0;
    const rows = await ch.query<{ t: string; n: string }>(sql`
      SELECT max(${T_MS}) AS t, count() AS n FROM ${eventsTable(ch)} WHERE ts >= ${new Date(since)}`);
    const row = rows[0];
    if (row && num(row.n) > 0) mark = Math.max(mark, Math.min(num(row.t), now()));
    return mark;
  };
}
