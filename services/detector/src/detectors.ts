import type { AlertSeverity } from '@mcp-audit/schema';
import { severityRank, ALERT_SEVERITIES } from '@mcp-audit/schema';
import type { Baseline, Metric } from './baseline.js';
import type { DetectorSettings, ResolvedClientConfig } from './config.js';
import type { Contributor, DetectorName, Finding } from './model.js';
import { robustScore, round, upperBand, type Band } from './stats.js';
import { inBusinessHours, localTime, pooledCell, weekCell, windowLabel, type LocalTime } from './time.js';

/**
 * The streaming detectors, as pure functions of one client's window and the baseline it is judged
 * against. The engine (stream.engine.ts) calls the `check…` functions after every event (monotonic
 * signals: they fire as soon as the running value leaves its band) and `closeChecks` when a window
 * closes (error share, which can go down again, is judged only on the complete window).
 */

/** One client's 1 h window (or 5 min auth window): what the detectors look at. */
export interface WindowAcc {
  start: number;
  end: number;
  calls: number;
  errors: number;
  authFailures: number;
  bytes: number;
  tools: Map<string, number>;
  servers: Map<string, number>;
  addresses: Map<string, number>;
  sessions: Map<string, number>;
  /** Tools / servers this client had not used in its baseline window (name → calls). */
  newTools: Map<string, number>;
  newServers: Map<string, number>;
  sampleEventIds: string[];
  /** Detectors that already fired in this window (a window raises each detector once). */
  fired: Set<DetectorName>;
}

export const MAX_SAMPLES = 20;
export const MAX_CONTRIBUTORS = 10;

export function newWindow(start: number, end: number): WindowAcc {
  return {
    start,
    end,
    calls: 0,
    errors: 0,
    authFailures: 0,
    bytes: 0,
    tools: new Map(),
    servers: new Map(),
    addresses: new Map(),
    sessions: new Map(),
    newTools: new Map(),
    newServers: new Map(),
    sampleEventIds: [],
    fired: new Set(),
  };
}

/**
 * What a window is judged against. `own` is the client's own active baseline; a learning or unknown
 * client gets its cohort's (or the global) profile with `learning` set, which caps the severity of
 * detectors that need history (config `learningSeverityCap`).
 */
export interface Judge {
  profile: Baseline | undefined;
  /** The client's own row (learning or active), for its known tools; undefined for a new client. */
  own: Baseline | undefined;
  global: Baseline | undefined;
  learning: boolean;
  config: ResolvedClientConfig;
  learningCap: 'suppress' | 'info' | 'low' | 'medium';
  clientId: string;
}

export const top = (m: Map<string, number>, n = MAX_CONTRIBUTORS): Contributor[] =>
  [...m]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, n)
    .map(([value, count]) => ({ value: value.slice(0, 512), count }));

export function bump(s: AlertSeverity, by = 1): AlertSeverity {
  return ALERT_SEVERITIES[Math.min(ALERT_SEVERITIES.length - 1, severityRank(s) + by)]!;
}

/** Applies the learning cap to detectors that need history; undefined = suppressed. */
function capped(j: Judge, s: AlertSeverity, needsHistory: boolean): AlertSeverity | undefined {
  if (!needsHistory || !j.learning) return s;
  if (j.learningCap === 'suppress') return undefined;
  return severityRank(s) > severityRank(j.learningCap) ? j.learningCap : s;
}

function finding(
  j: Judge,
  w: WindowAcc,
  detector: DetectorName,
  f: Omit<
    Finding,
    | 'detector'
    | 'clientId'
    | 'dedupKey'
    | 'windowStart'
    | 'windowEnd'
    | 'baselineVersion'
    | 'contributors'
    | 'sampleEventIds'
    | 'severity'
  > & {
    severity: AlertSeverity;
    needsHistory: boolean;
    contributors?: Partial<Finding['contributors']>;
  },
): Finding | undefined {
  const severity = capped(j, f.severity, f.needsHistory);
  if (!severity) return undefined;
  const learningNote =
    j.learning && f.needsHistory ? ' (client still learning: judged against its cohort)' : '';
  return {
    detector,
    clientId: j.clientId,
    dedupKey: `${detector}:${j.clientId}:${windowLabel(w.end - w.start)}`,
    severity,
    title: f.title.slice(0, 200),
    summary: (f.summary + learningNote).slice(0, 2000),
    windowStart: w.start,
    windowEnd: w.end,
    observed: round(f.observed),
    expected: { low: round(f.expected.low), high: round(f.expected.high) },
    score: round(f.score, 2),
    baselineVersion: j.profile?.version ?? j.global?.version ?? '',
    contributors: {
      tools: f.contributors?.tools ?? top(w.tools),
      addresses: f.contributors?.addresses ?? top(w.addresses),
      sessions: f.contributors?.sessions ?? top(w.sessions),
    },
    sampleEventIds: w.sampleEventIds.slice(0, MAX_SAMPLES),
    detectedAt: f.detectedAt,
  };
}

export function bandFor(
  profile: Baseline,
  metric: Metric,
  lt: LocalTime,
  p: { k: number; q95Multiplier: number; cellMaxMultiplier: number; maxMultiplier: number; minDelta: number },
): Band {
  const m = profile.metrics[metric];
  const c = pooledCell(lt);
  const isBytes = metric === 'bytes';
  let clientMax = 0;
  for (const v of m.cellMax) if (v > clientMax) clientMax = v;
  return upperBand(
    {
      median: m.median[c] ?? 0,
      mad: m.mad[c] ?? 0,
      q95: m.q95[c] ?? 0,
      cellMax: m.cellMax[weekCell(lt)] ?? 0,
      clientMax,
    },
    { ...p, poisson: !isBytes, relative: 0.1, absolute: isBytes ? 1024 : 1 },
  );
}

const fmtBytes = (b: number) =>
  b >= 1e9
    ? `${(b / 1e9).toFixed(2)} GB`
    : b >= 1e6
      ? `${(b / 1e6).toFixed(1)} MB`
      : `${(b / 1e3).toFixed(0)} kB`;

/** Ratio above the band → severity: a clear excess is `medium`, three times the band `high`. */
const bySize = (observed: number, high: number, base: AlertSeverity): AlertSeverity =>
  high > 0 && observed >= 3 * high ? bump(base) : base;

export function checkVolume(j: Judge, w: WindowAcc, at: number, tz: string): Finding | undefined {
  const s = j.config.detectors.volume;
  if (!s.enabled || !j.profile || w.fired.has('volume')) return undefined;
  const lt = localTime(w.start, tz);
  const calls = bandFor(j.profile, 'calls', lt, { ...s, minDelta: s.minDeltaCalls });
  if (w.calls >= s.minCalls && w.calls > calls.high) {
    return finding(j, w, 'volume', {
      severity: bySize(w.calls, calls.high, 'medium'),
      needsHistory: true,
      title: `Unusual call volume for ${j.clientId}`,
      summary: `${w.calls} calls in the hour from ${new Date(w.start).toISOString()}; normal for this hour of the week is up to ${Math.round(calls.high)} (median ${calls.median}).`,
      observed: w.calls,
      expected: { low: 0, high: calls.high },
      score: robustScore(w.calls, calls),
      detectedAt: at,
    });
  }
  const bytes = bandFor(j.profile, 'bytes', lt, {
    ...s,
    maxMultiplier: s.bytesMaxMultiplier,
    minDelta: s.minDeltaBytes,
  });
  if (w.bytes >= s.minBytes && w.bytes > bytes.high) {
    return finding(j, w, 'volume', {
      severity: bySize(w.bytes, bytes.high, 'medium'),
      needsHistory: true,
      title: `Unusual data volume for ${j.clientId}`,
      summary: `${fmtBytes(w.bytes)} transferred in the hour from ${new Date(w.start).toISOString()}; normal for this hour of the week is up to ${fmtBytes(bytes.high)} (median ${fmtBytes(bytes.median)}). Large responses can mean exfiltration.`,
      observed: w.bytes,
      expected: { low: 0, high: bytes.high },
      score: robustScore(w.bytes, bytes),
      detectedAt: at,
    });
  }
  return undefined;
}

export function checkBreadth(j: Judge, w: WindowAcc, at: number, tz: string): Finding | undefined {
  const s = j.config.detectors.tool_breadth;
  if (!s.enabled || !j.profile || w.fired.has('tool_breadth')) return undefined;
  const lt = localTime(w.start, tz);
  for (const [metric, observed, what] of [
    ['tools', w.tools.size, 'tools'],
    ['servers', w.servers.size, 'servers'],
  ] as const) {
    const band = bandFor(j.profile, metric, lt, s);
    if (observed >= s.minDistinct && observed > band.high) {
      return finding(j, w, 'tool_breadth', {
        severity: bySize(observed, band.high, 'medium'),
        needsHistory: true,
        title: `Unusually many distinct ${what} for ${j.clientId}`,
        summary: `${observed} distinct ${what} in the hour from ${new Date(w.start).toISOString()}; normal for this hour of the week is up to ${Math.floor(band.high)} (median ${band.median}). Broad enumeration can mean reconnaissance.`,
        observed,
        expected: { low: 0, high: band.high },
        score: robustScore(observed, band),
        detectedAt: at,
      });
    }
  }
  return undefined;
}

/**
 * A tool or server the client never used in its baseline window. Rarity = share of all clients that
 * used it (global row): nobody → high, under 5% → medium, under `commonShare` → low, else `info`
 * (not raised unless `includeCommon`). A learning or brand-new client has no reliable "never": it
 * alerts only on a server no client at all has used (rarity needs no history: full severity). NOTE:
 * not on tools. A newcomer onboarding to servers the company already runs tries their tools, and
 * with a few dozen clients some tool of a known server is always unused so far; a server nobody has
 * ever called is new to the whole company. The server's unused tools are named in the alert.
 */
export function checkNewTool(j: Judge, w: WindowAcc, at: number): Finding | undefined {
  const s = j.config.detectors.new_tool;
  if (!s.enabled || w.fired.has('new_tool') || !j.global) return undefined;
  const clients = Math.max(1, j.global.members);
  const candidates: Array<{ kind: 'tool' | 'server'; name: string; calls: number; users: number }> = [];
  for (const [kind, map, known, globalSet] of [
    ['tool', w.newTools, j.own?.tools, j.global.tools],
    ['server', w.newServers, j.own?.servers, j.global.servers],
  ] as const) {
    if (j.learning && kind === 'tool') continue;
    for (const [name, calls] of map) {
      if (calls < s.minCalls) continue;
      const users = globalSet.get(name) ?? 0;
      if (j.learning && users > 0) continue;
      if (!j.learning && known?.has(name)) continue;
      candidates.push({ kind, name, calls, users });
    }
  }
  if (candidates.length === 0) return undefined;
  if (j.learning)
    for (const [name, calls] of w.newTools)
      if (calls >= s.minCalls && !(j.global.tools.get(name) ?? 0))
        candidates.push({ kind: 'tool', name, calls, users: 0 });
  const serverFirst = (x: { kind: string }) => (j.learning && x.kind === 'tool' ? 1 : 0);
  candidates.sort(
    (a, b) => a.users - b.users || serverFirst(a) - serverFirst(b) || (a.name < b.name ? -1 : 1),
  );
  const c = candidates[0]!;
  const share = c.users / clients;
  const severity: AlertSeverity =
    c.users === 0 ? 'high' : share < 0.05 ? 'medium' : share < s.commonShare ? 'low' : 'info';
  if (severity === 'info' && !s.includeCommon) return undefined;
  const rarity =
    c.users === 0
      ? 'no other client has used it'
      : `${c.users} of ${clients} clients used it (${(share * 100).toFixed(1)}%)`;
  return finding(j, w, 'new_tool', {
    severity,
    needsHistory: false,
    title: `${j.clientId} used a ${c.kind} it never used before: ${c.name}`.slice(0, 200),
    summary: `First use of ${c.kind} "${c.name}" by ${j.clientId} in its baseline window (${j.profile?.windowDays ?? 28} days); ${rarity}.${
      candidates.length > 1
        ? ` Also new: ${candidates
            .slice(1, 6)
            .map((x) => x.name)
            .join(', ')}.`
        : ''
    }`,
    observed: c.users,
    expected: { low: 1, high: clients },
    score: round(1 - share, 3),
    detectedAt: at,
    contributors: {
      tools: candidates
        .slice(0, MAX_CONTRIBUTORS)
        .map((x) => ({ value: `${x.kind}:${x.name}`, count: x.calls })),
    },
  });
}

/**
 * Activity in an hour this client is rarely active (its pooled activity share ≤ rareShare and never
 * active in this exact hour of week), or outside configured business hours (strict mode, or in
 * habitual mode when also rare; a learning client with business hours is judged by them alone).
 */
export function checkOffHours(j: Judge, w: WindowAcc, at: number, tz: string): Finding | undefined {
  const s = j.config.detectors.off_hours;
  if (!s.enabled || w.fired.has('off_hours') || w.calls < s.minCalls) return undefined;
  const lt = localTime(w.start, tz);
  const bh = j.config.businessHours;
  // Business hours are in the resolved time zone (a label may set it); the profile is in `tz`.
  const outsideBh = bh ? !inBusinessHours(localTime(w.start, j.config.timeZone), bh) : false;
  const share = j.profile?.activeShare[pooledCell(lt)] ?? 0;
  const cellMax = j.profile?.metrics.calls.cellMax[weekCell(lt)] ?? 0;
  // "Rarely active" is about this client's own habit: a learning client's cohort profile says nothing
  // about when it works, so while learning only configured business hours apply.
  const rare = !j.learning && j.profile !== undefined && share <= s.rareShare && cellMax === 0;
  let fire: 'rare' | 'business' | undefined;
  if (bh && outsideBh) {
    if (s.businessHoursMode === 'strict' || j.learning || !j.profile || rare) fire = 'business';
  } else if (!bh && rare) {
    fire = 'rare';
  }
  if (!fire) return undefined;
  const when = `${lt.date} ${String(lt.hour).padStart(2, '0')}:00 ${tz} (local)`;
  const why =
    fire === 'business'
      ? `outside its business hours (${bhText(bh!)})${rare ? ' and in an hour it is rarely active' : ''}`
      : `in an hour it is rarely active (active in ${(share * 100).toFixed(0)}% of comparable hours over ${j.profile?.windowDays ?? 28} days)`;
  return finding(j, w, 'off_hours', {
    severity: fire === 'business' && rare ? 'medium' : fire === 'business' ? 'low' : 'medium',
    // Business hours need no history; the "rarely active" judgement does.
    needsHistory: fire === 'rare',
    title: `Off-hours activity by ${j.clientId}`,
    summary: `${w.calls} calls at ${when}, ${why}.`,
    observed: w.calls,
    expected: { low: 0, high: s.minCalls - 1 },
    score: round(1 - share, 3),
    detectedAt: at,
  });
}

const hm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
const bhText = (bh: NonNullable<ResolvedClientConfig['businessHours']>) =>
  `days ${bh.days.join(',')} ${hm(bh.start)}-${hm(bh.end)}`;

/**
 * Failed authentications in one short window (default 5 min) above a fixed floor (needs no history)
 * and above the most this client ever failed in a whole hour of its baseline window, so a client
 * with a known-noisy credential rotation does not page every day.
 */
export function authBurstThreshold(j: Judge): number {
  const s = j.config.detectors.auth_burst;
  const own = j.learning ? 0 : (j.profile?.authFailuresHourMax ?? 0);
  return Math.max(s.minFailures, Math.floor(own) + 1);
}

export function checkAuthBurst(j: Judge, w: WindowAcc, at: number): Finding | undefined {
  const s = j.config.detectors.auth_burst;
  if (!s.enabled || w.fired.has('auth_burst')) return undefined;
  const threshold = authBurstThreshold(j);
  if (w.authFailures < threshold) return undefined;
  return finding(j, w, 'auth_burst', {
    severity: w.authFailures >= 5 * threshold ? 'critical' : 'high',
    needsHistory: false,
    title: `Burst of failed authentications for ${j.clientId}`,
    summary: `${w.authFailures} failed authentications within ${windowLabel(w.end - w.start)} from ${new Date(w.start).toISOString()}; the alert threshold is ${threshold} (at least ${s.minFailures}, and more than the client's worst hour in its baseline).`,
    observed: w.authFailures,
    expected: { low: 0, high: threshold - 1 },
    score: round(w.authFailures / threshold, 2),
    detectedAt: at,
  });
}

export function errorBand(j: Judge, s: DetectorSettings['error_rate'], calls: number): Band | undefined {
  if (!j.profile) return undefined;
  const e = j.profile.errorShare;
  const m = e.median;
  // Binomial noise of a share over `calls` trials is sqrt(p(1-p)/n): a floor on the spread.
  const p = Math.min(0.99, Math.max(m, 0.01));
  const sigma = Math.max(1.4826 * e.mad, Math.sqrt((p * (1 - p)) / Math.max(1, calls)), 0.02);
  const high = Math.min(1, Math.max(m + s.k * sigma, e.q95 * s.q95Multiplier, m + s.minDeltaShare));
  return { low: 0, high, median: m, sigma };
}

/** Judged at window close: the share can fall again, so a half-window says little. */
export function checkErrorRate(j: Judge, w: WindowAcc, at: number): Finding | undefined {
  const s = j.config.detectors.error_rate;
  if (!s.enabled || w.fired.has('error_rate') || w.calls < s.minCalls || w.errors < s.minErrors)
    return undefined;
  const band = errorBand(j, s, w.calls);
  if (!band) return undefined;
  const share = w.errors / w.calls;
  if (share <= band.high) return undefined;
  return finding(j, w, 'error_rate', {
    severity: share >= 0.9 && band.high < 0.5 ? 'high' : 'medium',
    needsHistory: true,
    title: `Error-rate spike for ${j.clientId}`,
    summary: `${w.errors} of ${w.calls} calls failed (${(share * 100).toFixed(1)}%) in the hour from ${new Date(w.start).toISOString()}; normal is up to ${(band.high * 100).toFixed(1)}% (median ${(band.median * 100).toFixed(1)}%).`,
    observed: share,
    expected: { low: 0, high: band.high },
    score: robustScore(share, band),
    detectedAt: at,
  });
}

/** Whether a closed window is back in band for a detector (resolves its open alert). */
export function inBand(detector: DetectorName, j: Judge, w: WindowAcc, tz: string): boolean {
  const probe = { ...w, fired: new Set<DetectorName>() };
  switch (detector) {
    case 'volume':
      return checkVolume(j, probe, w.end, tz) === undefined;
    case 'tool_breadth':
      return checkBreadth(j, probe, w.end, tz) === undefined;
    case 'new_tool':
      return checkNewTool(j, probe, w.end) === undefined;
    case 'off_hours':
      return checkOffHours(j, probe, w.end, tz) === undefined;
    case 'auth_burst':
      return w.authFailures < authBurstThreshold(j);
    case 'error_rate':
      return checkErrorRate(j, probe, w.end) === undefined;
    default:
      return true;
  }
}
