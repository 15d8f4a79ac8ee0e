import type { AuditEventV1 } from '@mcp-audit/schema';
import type { Baseline } from './baseline.js';
import type { BaselineStore } from './baseline.store.js';
import {
  profileTimeZone,
  resolveClientConfig,
  type DetectorConfig,
  type ResolvedClientConfig,
} from './config.js';
import {
  checkAuthBurst,
  checkBreadth,
  checkErrorRate,
  checkNewTool,
  checkOffHours,
  checkVolume,
  inBand,
  MAX_SAMPLES,
  newWindow,
  type Judge,
  type WindowAcc,
} from './detectors.js';
import type { DetectorName, Finding } from './model.js';
import {
  BUCKET_MS,
  BurstWindow,
  burstKey,
  checkErrorBurst,
  fellBack,
  judgeBurst,
} from './error-burst.detector.js';
import { HOUR_MS, windowLabel, windowStartOf } from './time.js';

/**
 * The streaming engine: per-client event-time windows, a watermark per partition, allowed
 * lateness. Pure and synchronous (baselines are prepared before a batch), so the same per-client
 * event sequence always yields the same findings and resolutions: the consumer feeds it live, the
 * replay feeds it stored events in ts order, and both get the same alerts.
 *
 * - Hour windows [h, h+1h) carry volume, tool breadth, new tool, off-hours (fast: they fire on the
 *   event that crosses the band) and error rate (at close). Auth-failure bursts use short windows.
 * - The watermark of a partition is the largest event ts seen on it minus the allowed lateness. A
 *   window closes once the watermark passes its end; an event whose window is already closed is
 *   late: it is counted (metric + log) but not added, and it is in ClickHouse for the baselines.
 * - An open alert resolves at the end of the first later closed window of its kind that is back in
 *   band (an idle window is in band), so resolution is also event time.
 */

/** The fields the detectors read, from a live event or a stored row. */
export interface DetectorEvent {
  eventId: string;
  ts: number;
  clientId: string;
  server: string;
  tool: string;
  isError: boolean;
  authFailed: boolean;
  bytes: number;
  ip: string;
  session: string;
  labels?: Record<string, string>;
}

export function fromAuditEvent(e: AuditEventV1): DetectorEvent {
  return {
    eventId: e.event_id,
    ts: Date.parse(e.ts),
    clientId: e.client.id,
    server: e.server?.name ?? '',
    tool: e.tool?.name ?? '',
    isError: e.outcome === 'error' || e.outcome === 'denied' || e.tool_is_error === true,
    authFailed: e.outcome === 'auth_failed' || e.auth?.result === 'failure',
    bytes: (e.request_bytes ?? 0) + (e.response_bytes ?? 0),
    ip: e.client.ip ?? '',
    session: e.client.session_id ?? '',
    ...(e.labels ? { labels: e.labels } : {}),
  };
}

export interface EngineActions {
  raise(f: Finding): boolean;
  resolve(dedupKey: string, at: number, reason: string): boolean;
  isOpen(dedupKey: string): { windowEnd: number } | undefined;
}

export interface EngineStats {
  events: number;
  late: number;
  duplicates: number;
  findings: number;
}

interface ClientRt {
  id: string;
  partition: number;
  labelsKey: string;
  /** The labels of the client's latest event: alerts carry them, so routing can use them. */
  labels: Record<string, string> | undefined;
  config: ResolvedClientConfig;
  tz: string;
  hours: WindowAcc[];
  auth: WindowAcc[];
  /** End of the last closed hour / auth window (event time). */
  hourClosedEnd: number;
  authClosedEnd: number;
  lastTs: number;
  judges: Map<number, Judge>;
  /** Sub-hour error bursts: the sliding window's minute buckets (error-burst.detector.ts). */
  burst: BurstWindow;
}

const HOUR_DETECTORS: DetectorName[] = ['volume', 'tool_breadth', 'new_tool', 'off_hours', 'error_rate'];
/**
 * Event ids remembered for dedup, over all clients of this instance, oldest dropped first. An id is
 * one event (the first copy seen counts: the topic delivers in the order the ingester stores, so
 * that is the first ingested copy, the one every query sees). A Kafka redelivery after a rebalance
 * resends whole batches, and a forged copy may carry another client or time, so the set is neither
 * per client nor a handful. 250k ids ≈ 25 MB; older copies are the periodic event_id_reuse's job.
 */
const SEEN_IDS = 250_000;
/** A client with nothing pending is forgotten after this much event time without events. */
const IDLE_EVICT_MS = 6 * HOUR_MS;

export class StreamEngine {
  readonly #clients = new Map<string, ClientRt>();
  readonly #byPartition = new Map<number, Set<ClientRt>>();
  readonly #maxTs = new Map<number, number>();
  /** Tools already reported as new, per client, for one baseline version (so they fire once). */
  readonly #reported = new Map<string, { asOf: number; names: Set<string> }>();
  readonly stats: EngineStats = { events: 0, late: 0, duplicates: 0, findings: 0 };
  readonly #authMs: number;
  readonly #lateness: number;
  readonly #configCache = new Map<string, ResolvedClientConfig>();
  readonly #seen = new Set<string>();

  constructor(
    private readonly deps: {
      store: BaselineStore;
      config: DetectorConfig;
      actions: EngineActions;
      onLate?: (e: DetectorEvent, partition: number) => void;
    },
  ) {
    this.#authMs = deps.config.detectors.auth_burst.windowMs;
    this.#lateness = deps.config.allowedLatenessMs;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  get openWindows(): number {
    let n = 0;
    for (const c of this.#clients.values()) n += c.hours.length + c.auth.length;
    return n;
  }

  watermark(partition: number): number {
    return (this.#maxTs.get(partition) ?? -Infinity) - this.#lateness;
  }

  /** The (version → clients) a batch of events needs loaded before `process`. */
  needs(events: Iterable<DetectorEvent>): Map<number, Set<string>> {
    const out = new Map<number, Set<string>>();
    for (const e of events) {
      const asOf = this.deps.store.asOfFor(windowStartOf(e.ts, HOUR_MS));
      if (asOf === undefined) continue;
      let s = out.get(asOf);
      if (!s) out.set(asOf, (s = new Set()));
      s.add(e.clientId);
    }
    return out;
  }

  #client(e: DetectorEvent, partition: number): ClientRt {
    let c = this.#clients.get(e.clientId);
    const labelsKey = e.labels ? JSON.stringify(e.labels) : '';
    if (!c) {
      c = {
        id: e.clientId,
        partition,
        labelsKey: '\u0000',
        labels: undefined,
        config: undefined as unknown as ResolvedClientConfig,
        tz: profileTimeZone(this.deps.config, e.clientId),
        hours: [],
        auth: [],
        hourClosedEnd: -Infinity,
        authClosedEnd: -Infinity,
        lastTs: e.ts,
        judges: new Map(),
        burst: new BurstWindow(this.deps.config.detectors.error_burst.windowMs),
      };
      this.#clients.set(e.clientId, c);
    }
    if (c.partition !== partition) {
      this.#byPartition.get(c.partition)?.delete(c);
      c.partition = partition;
    }
    let set = this.#byPartition.get(partition);
    if (!set) this.#byPartition.set(partition, (set = new Set()));
    set.add(c);
    if (c.labelsKey !== labelsKey) {
      c.labelsKey = labelsKey;
      c.labels = e.labels;
      const ck = `${e.clientId}\u0000${labelsKey}`;
      let cfg = this.#configCache.get(ck);
      if (!cfg) {
        cfg = resolveClientConfig(this.deps.config, e.clientId, e.labels);
        if (this.#configCache.size > 50_000) this.#configCache.clear();
        this.#configCache.set(ck, cfg);
      }
      c.config = cfg;
      c.judges.clear();
    }
    return c;
  }

  #judge(c: ClientRt, windowStart: number): Judge {
    const asOf = this.deps.store.asOfFor(windowStart);
    const k = asOf ?? -1;
    let j = c.judges.get(k);
    if (j) return j;
    const store = this.deps.store;
    const own: Baseline | undefined = asOf === undefined ? undefined : store.client(asOf, c.id);
    const global = asOf === undefined ? undefined : store.global(asOf);
    const learning = !own || own.state === 'learning';
    const profile = !learning ? own : ((own && store.cohort(asOf!, own.cohort)) ?? global);
    j = {
      profile,
      own,
      global,
      learning,
      config: c.config,
      learningCap: this.deps.config.learningSeverityCap,
      clientId: c.id,
    };
    if (c.judges.size > 4) c.judges.clear();
    c.judges.set(k, j);
    return j;
  }

  #emit(f: Finding | undefined, w: WindowAcc, c: ClientRt): void {
    if (!f) return;
    if (c.labels && Object.keys(c.labels).length > 0) f.clientLabels = c.labels;
    w.fired.add(f.detector);
    this.stats.findings++;
    this.deps.actions.raise(f);
  }

  /** Feeds one event; closes what the advanced watermark closes for this client. */
  process(e: DetectorEvent, partition: number): void {
    this.stats.events++;
    if (this.#seen.has(e.eventId)) {
      this.stats.duplicates++;
      return;
    }
    this.#seen.add(e.eventId);
    if (this.#seen.size > SEEN_IDS) this.#seen.delete(this.#seen.values().next().value!);
    const c = this.#client(e, partition);
    const wmBefore = this.watermark(partition);
    if (e.ts > (this.#maxTs.get(partition) ?? -Infinity)) this.#maxTs.set(partition, e.ts);
    c.lastTs = Math.max(c.lastTs, e.ts);
    // Close first (with the watermark before this event), so this event never lands in a closed window.
    this.#closeClient(c, wmBefore);

    const hs = windowStartOf(e.ts, HOUR_MS);
    if (hs + HOUR_MS <= Math.max(wmBefore, c.hourClosedEnd)) {
      this.stats.late++;
      this.deps.onLate?.(e, partition);
      return;
    }
    const w = this.#window(c.hours, hs, HOUR_MS);
    const j = this.#judge(c, hs);
    this.#add(w, e, j, c);
    if (e.authFailed) {
      const as = windowStartOf(e.ts, this.#authMs);
      if (as + this.#authMs > Math.max(wmBefore, c.authClosedEnd)) {
        const aw = this.#window(c.auth, as, this.#authMs);
        this.#add(aw, e, j, c);
        this.#emit(checkAuthBurst(j, aw, e.ts), aw, c);
      }
    }
    const nt = checkNewTool(j, w, e.ts);
    if (nt) {
      const rep = this.#reported.get(c.id);
      for (const n of w.newTools.keys()) rep?.names.add(`t:${n}`);
      for (const n of w.newServers.keys()) rep?.names.add(`s:${n}`);
    }
    this.#emit(nt, w, c);
    this.#emit(checkVolume(j, w, e.ts, c.tz), w, c);
    this.#emit(checkBreadth(j, w, e.ts, c.tz), w, c);
    this.#emit(checkOffHours(j, w, e.ts, c.tz), w, c);
    this.#burst(c, e, j);
  }

  /** Sub-hour error bursts: the failed call that makes the sliding window significant raises. */
  #burst(c: ClientRt, e: DetectorEvent, j: Judge): void {
    const s = c.config.detectors.error_burst;
    if (!s.enabled) return;
    c.burst.add(e);
    if (!e.isError || e.authFailed || this.deps.actions.isOpen(burstKey(c.id, c.burst.windowMs))) return;
    const f = checkErrorBurst(s, j, c.id, c.burst, e.ts);
    if (!f) return;
    if (c.labels && Object.keys(c.labels).length > 0) f.clientLabels = c.labels;
    this.stats.findings++;
    // Checked for resolution from the minute after the one that raised.
    c.burst.checkedTo = f.windowEnd;
    this.deps.actions.raise(f);
  }

  /** An open burst alert resolves at the first minute boundary ≤ wm whose window has fallen back. */
  #burstClose(c: ClientRt, wm: number): void {
    const s = c.config.detectors.error_burst;
    const k = burstKey(c.id, c.burst.windowMs);
    const open = this.deps.actions.isOpen(k);
    const last = wm - (wm % BUCKET_MS);
    if (open) {
      // After a restart only the minutes since the first event seen again are known (like the hour).
      const from = Math.max(c.burst.checkedTo, open.windowEnd, c.burst.since);
      for (let b = from + BUCKET_MS; b <= last; b += BUCKET_MS) {
        const sum = c.burst.sum(b);
        const v = judgeBurst(s, this.#judge(c, windowStartOf(b - 1, HOUR_MS)), sum.calls, sum.errors);
        if (fellBack(v, s)) {
          this.deps.actions.resolve(
            k,
            b,
            `the ${windowLabel(c.burst.windowMs)} to ${new Date(b).toISOString()} fell back (${sum.errors} of ${sum.calls} calls failed)`,
          );
          break;
        }
      }
    }
    if (last > c.burst.checkedTo) c.burst.checkedTo = last;
    c.burst.prune(last);
  }

  #window(list: WindowAcc[], start: number, len: number): WindowAcc {
    let w = list.find((x) => x.start === start);
    if (!w) {
      w = newWindow(start, start + len);
      list.push(w);
      list.sort((a, b) => a.start - b.start);
    }
    return w;
  }

  #add(w: WindowAcc, e: DetectorEvent, j: Judge, c: ClientRt): void {
    const isHour = w.end - w.start === HOUR_MS;
    // NOTE: a failed login belongs to the authentication detectors: counted as a call it made one
    // attack also a volume (and off-hours, error-rate) alert. The baseline's calls exclude them too.
    if (e.authFailed) w.authFailures++;
    else {
      w.calls++;
      w.bytes += e.bytes;
    }
    if (e.isError) w.errors++;
    if (e.ip) w.addresses.set(e.ip, (w.addresses.get(e.ip) ?? 0) + 1);
    if (e.session) w.sessions.set(e.session, (w.sessions.get(e.session) ?? 0) + 1);
    if (w.sampleEventIds.length < MAX_SAMPLES) w.sampleEventIds.push(e.eventId);
    if (!isHour) return;
    if (e.tool) w.tools.set(e.tool, (w.tools.get(e.tool) ?? 0) + 1);
    if (e.server) w.servers.set(e.server, (w.servers.get(e.server) ?? 0) + 1);
    // "New" = not in the client's own baseline window and not already reported under this version.
    const asOf = j.global?.asOf ?? -1;
    let rep = this.#reported.get(c.id);
    if (!rep || rep.asOf !== asOf) this.#reported.set(c.id, (rep = { asOf, names: new Set() }));
    if (e.tool && !j.own?.tools.has(e.tool) && !rep.names.has(`t:${e.tool}`))
      w.newTools.set(e.tool, (w.newTools.get(e.tool) ?? 0) + 1);
    if (e.server && !j.own?.servers.has(e.server) && !rep.names.has(`s:${e.server}`))
      w.newServers.set(e.server, (w.newServers.get(e.server) ?? 0) + 1);
  }

  /** Closes windows of every client on the partition up to its watermark. */
  advance(partition: number): void {
    const wm = this.watermark(partition);
    const set = this.#byPartition.get(partition);
    if (!set) return;
    for (const c of set) {
      this.#closeClient(c, wm);
      if (c.hours.length === 0 && c.auth.length === 0 && wm - c.lastTs > IDLE_EVICT_MS && !this.#hasOpen(c)) {
        set.delete(c);
        this.#clients.delete(c.id);
      }
    }
  }

  /** Replay end: close every window that ends at or before `until`. */
  closeAll(until: number): void {
    for (const c of this.#clients.values()) this.#closeClient(c, until);
  }

  #hasOpen(c: ClientRt): boolean {
    const a = this.deps.actions;
    return (
      HOUR_DETECTORS.some((d) => a.isOpen(key(d, c.id, HOUR_MS))) ||
      a.isOpen(key('auth_burst', c.id, this.#authMs)) !== undefined ||
      a.isOpen(burstKey(c.id, c.burst.windowMs)) !== undefined
    );
  }

  #closeClient(c: ClientRt, wm: number): void {
    this.#burstClose(c, wm);
    // Hour windows, in order; between them (and after), an idle hour is a closed in-band window.
    while (c.hours.length > 0 && c.hours[0]!.end <= wm) {
      const w = c.hours.shift()!;
      this.#resolveIdle(c, HOUR_DETECTORS, HOUR_MS, c.hourClosedEnd, w.start);
      const j = this.#judge(c, w.start);
      this.#emit(checkErrorRate(j, w, w.end), w, c);
      for (const d of HOUR_DETECTORS) {
        const k = key(d, c.id, HOUR_MS);
        const open = this.deps.actions.isOpen(k);
        if (open && open.windowEnd <= w.start && inBand(d, j, w, c.tz)) {
          this.deps.actions.resolve(k, w.end, `next window ${new Date(w.start).toISOString()} back in band`);
        }
      }
      c.hourClosedEnd = w.end;
    }
    this.#resolveIdle(
      c,
      HOUR_DETECTORS,
      HOUR_MS,
      c.hourClosedEnd,
      Math.min(wm, c.hours[0]?.start ?? Infinity),
    );
    while (c.auth.length > 0 && c.auth[0]!.end <= wm) {
      const w = c.auth.shift()!;
      this.#resolveIdle(c, ['auth_burst'], this.#authMs, c.authClosedEnd, w.start);
      const k = key('auth_burst', c.id, this.#authMs);
      const open = this.deps.actions.isOpen(k);
      if (open && open.windowEnd <= w.start && inBand('auth_burst', this.#judge(c, w.start), w, c.tz)) {
        this.deps.actions.resolve(k, w.end, `next window ${new Date(w.start).toISOString()} back in band`);
      }
      c.authClosedEnd = w.end;
    }
    this.#resolveIdle(
      c,
      ['auth_burst'],
      this.#authMs,
      c.authClosedEnd,
      Math.min(wm, c.auth[0]?.start ?? Infinity),
    );
  }

  /**
   * Open alerts whose window closed before `from`: if the window right after theirs has no events
   * and ends by `until`, it is an idle (in-band) window and resolves them at its end.
   */
  #resolveIdle(c: ClientRt, detectors: DetectorName[], len: number, from: number, until: number): void {
    for (const d of detectors) {
      const k = key(d, c.id, len);
      const open = this.deps.actions.isOpen(k);
      if (!open) continue;
      const next = Math.max(open.windowEnd, from);
      if (next === -Infinity || next + len > until) continue;
      // The window [next, next+len) had no events for this client (it is not pending).
      if ((len === HOUR_MS ? c.hours : c.auth).some((w) => w.start === next)) continue;
      this.deps.actions.resolve(k, next + len, `no activity in the next ${windowLabel(len)} window`);
    }
  }
}

const key = (d: DetectorName, client: string, len: number) => `${d}:${client}:${windowLabel(len)}`;
