import type { DetectorSettings } from './config.js';
import type { Judge } from './detectors.js';
import type { Contributor, Finding } from './model.js';
import { round } from './stats.js';
import { iso, windowLabel } from './time.js';

/**
 * Sub-hour error spikes (`error_burst`). The hourly `error_rate` judges a closed hour, so a burst that
 * fills half an hour is diluted by the quiet half and reported only when the hour closes. This one
 * keeps a client's calls in one-minute buckets and judges the sliding window of the last `windowMs`
 * (30 min) on every failed call:
 *
 * - at least `minCalls` calls and `minErrors` failures in the window;
 * - a share above the client's usual rate by `minDeltaShare`, and above its usual worst hour (q95 of
 *   its hourly error share, so a client whose errors always come in clumps stays quiet);
 * - and improbable under that usual rate: the binomial tail P(X ≥ errors | calls, p0) below `alpha`,
 *   where p0 is the larger of the client's median error share and `priorShare` (a learning client is
 *   judged against its cohort or everyone, capped like every detector that needs history; with no
 *   baseline at all, `priorShare` alone). The test is made once per failed call, a few times a day on
 *   an ordinary client, so 1e-5 keeps chance alarms far below one per 500 client-days.
 *
 * It fires on the failed call that makes the window significant, with the window [end of that
 * call's minute - windowMs, end of that minute), so the alert id and the delay are event-time
 * deterministic. It resolves at the first minute boundary (reached by the watermark) at which the
 * window ending there has fallen back: fewer than half of `minErrors` failures, or a share under half
 * the distance between the usual rate and the alert threshold.
 */

export const BUCKET_MS = 60_000;

interface Bucket {
  start: number;
  calls: number;
  errors: number;
  tools: Map<string, number>;
  ids: string[];
}

export interface BurstEvent {
  eventId: string;
  ts: number;
  tool: string;
  isError: boolean;
  authFailed: boolean;
}

export interface BurstVerdict {
  calls: number;
  errors: number;
  share: number;
  /** Rate the window is judged against. */
  p0: number;
  threshold: number;
  pValue: number;
  significant: boolean;
}

type Settings = DetectorSettings['error_burst'];

/** ln Γ(x) for x > 0 (Lanczos, g = 7): enough for binomial coefficients of a window's counts. */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** P(X ≥ k) for X ~ Binomial(n, p). Sums terms from k up until they stop mattering. */
export function binomialTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lnC = lnGamma(n + 1);
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  let sum = 0;
  for (let i = k; i <= n; i++) {
    const term = Math.exp(lnC - lnGamma(i + 1) - lnGamma(n - i + 1) + i * lp + (n - i) * lq);
    sum += term;
    // Past the mode the terms fall geometrically: stop once they no longer change the sum.
    if (i > n * p && term < sum * 1e-12) break;
  }
  return Math.min(1, sum);
}

/** The window's verdict against the judge's usual error rate. */
export function judgeBurst(s: Settings, j: Judge | undefined, calls: number, errors: number): BurstVerdict {
  const e = j?.profile?.errorShare;
  const p0 = Math.min(0.95, Math.max(s.priorShare, e?.median ?? 0));
  const threshold = Math.min(1, Math.max(p0 + s.minDeltaShare, e?.q95 ?? 0));
  const share = calls > 0 ? errors / calls : 0;
  const enough = calls >= s.minCalls && errors >= s.minErrors && share > threshold;
  const pValue = enough ? binomialTail(errors, calls, p0) : 1;
  return { calls, errors, share, p0, threshold, pValue, significant: enough && pValue < s.alpha };
}

/**
 * Whether a window that raised has fallen back. Hysteresis on both counts: half of `minErrors`, and
 * half-way between the usual rate and the threshold. NOTE: a burst that fails at a steady pace keeps
 * the sliding window near `minErrors` while it lasts; falling back at `minErrors` itself closed and
 * reopened one burst as two alerts in the scenario.
 */
export function fellBack(v: BurstVerdict, s: Settings): boolean {
  return v.errors < Math.ceil(s.minErrors / 2) || v.share <= (v.p0 + v.threshold) / 2;
}

/** One client's minute buckets of the last window (plus the minute in progress). */
export class BurstWindow {
  readonly #buckets: Bucket[] = [];
  /** The last minute boundary at which an open alert was checked for resolution. */
  checkedTo = -Infinity;
  /** The minute of the first event this engine saw for the client (what it knows starts there). */
  since = Infinity;

  constructor(readonly windowMs: number) {}

  add(e: BurstEvent): void {
    // Failed logins are auth_burst's: they are not calls that could fail.
    if (e.authFailed) return;
    const start = e.ts - (e.ts % BUCKET_MS);
    if (start < this.since) this.since = start;
    let b = this.#buckets.find((x) => x.start === start);
    if (!b) {
      b = { start, calls: 0, errors: 0, tools: new Map(), ids: [] };
      this.#buckets.push(b);
      this.#buckets.sort((x, y) => x.start - y.start);
    }
    b.calls++;
    if (e.isError) {
      b.errors++;
      if (e.tool) b.tools.set(e.tool, (b.tools.get(e.tool) ?? 0) + 1);
      if (b.ids.length < 20) b.ids.push(e.eventId);
    }
  }

  /** Drops buckets that no window ending at or after `end` can hold. */
  prune(end: number): void {
    while (this.#buckets.length > 0 && this.#buckets[0]!.start < end - this.windowMs - BUCKET_MS)
      this.#buckets.shift();
  }

  get empty(): boolean {
    return this.#buckets.length === 0;
  }

  /** Counts of the window [end - windowMs, end). */
  sum(end: number): { calls: number; errors: number; tools: Map<string, number>; ids: string[] } {
    let calls = 0;
    let errors = 0;
    const tools = new Map<string, number>();
    const ids: string[] = [];
    for (const b of this.#buckets) {
      if (b.start < end - this.windowMs || b.start >= end) continue;
      calls += b.calls;
      errors += b.errors;
      for (const [t, n] of b.tools) tools.set(t, (tools.get(t) ?? 0) + n);
      for (const id of b.ids) if (ids.length < 20) ids.push(id);
    }
    return { calls, errors, tools, ids };
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export const burstKey = (clientId: string, windowMs: number) =>
  `error_burst:${clientId}:${windowLabel(windowMs)}`;

/**
 * Judges the window ending with the minute of a failed call `at`; a finding when it is significant.
 * `learningCap` undefined = suppressed for a learning client (the engine's cap, as for error_rate).
 */
export function checkErrorBurst(
  s: Settings,
  j: Judge | undefined,
  clientId: string,
  w: BurstWindow,
  at: number,
): Finding | undefined {
  const end = at - (at % BUCKET_MS) + BUCKET_MS;
  const sum = w.sum(end);
  const v = judgeBurst(s, j, sum.calls, sum.errors);
  if (!v.significant) return undefined;
  const learning = j?.learning ?? true;
  let severity: Finding['severity'] = v.share >= 0.9 && v.p0 < 0.5 ? 'high' : 'medium';
  if (learning) {
    const cap = j?.learningCap ?? 'low';
    if (cap === 'suppress') return undefined;
    const rank = ['info', 'low', 'medium', 'high', 'critical'];
    if (rank.indexOf(severity) > rank.indexOf(cap)) severity = cap;
  }
  const tools: Contributor[] = [...sum.tools]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 10)
    .map(([value, count]) => ({ value: value.slice(0, 512), count }));
  const basis = !j?.profile
    ? `the prior ${pct(s.priorShare)} (no baseline yet)`
    : learning
      ? `${pct(v.p0)} (client still learning: judged against its cohort)`
      : `${pct(v.p0)}, its usual worst hour ${pct(j.profile.errorShare.q95)}`;
  return {
    detector: 'error_burst',
    clientId,
    dedupKey: burstKey(clientId, w.windowMs),
    severity,
    title: `Burst of failed calls for ${clientId}`,
    summary:
      `${v.errors} of ${v.calls} calls failed (${pct(v.share)}) in the ${windowLabel(w.windowMs)} to ${iso(end)}; the client's usual error rate is ${basis}; alert threshold ${pct(v.threshold)}, chance of this many failures at the usual rate ${v.pValue.toExponential(1)}.`.slice(
        0,
        2000,
      ),
    windowStart: end - w.windowMs,
    windowEnd: end,
    observed: round(v.share),
    expected: { low: 0, high: round(v.threshold) },
    score: round(-Math.log10(Math.max(v.pValue, 1e-300)), 2),
    baselineVersion: j?.profile?.version ?? '',
    contributors: { tools, addresses: [], sessions: [] },
    sampleEventIds: sum.ids,
    detectedAt: at,
  };
}
