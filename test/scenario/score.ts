/**
 * Scores detector alerts against a scenario's labels (issue 5, "Quality, measured").
 *
 *   npm run scenario:score -- --dir .local/scenario/<prefix> [--alerts FILE.jsonl] [--tolerance-min 120] [--range eval|all]
 *
 * Inputs: labels.json and manifest.json written by the generator, and alerts as JSONL: either lines
 * `{ "received_at": <epoch ms>, "message": <alert message> }` (what run.ts collects from the alerts
 * topic) or bare alert messages (what `cli replay` writes). Only `type: "alert"` messages count;
 * state changes are tallied.
 *
 * Matching rule. An alert catches a label when
 * - its detector is the label's detector, or an equivalent (EQUIVALENT below: none except aliases of
 *   `volume`, whose calls and bytes variants are one detector in model.ts);
 * - its subject is the label's: alert.client_id, or the subject part of its dedup key
 *   (`detector:subject:window`), is one of label.subjects (the client, or for keyed-otherwise
 *   detectors the address / server / source);
 * - its event-time window overlaps [label.start - 1h, label.end + tolerance] (default 2h): windows
 *   are aligned (an hourly window that holds the first event starts up to an hour before it) and
 *   some detectors need the signal to last (a silence, a burst that completes).
 * An alert that catches nothing but concerns a client or subject an anomaly touched, in that
 * anomaly's interval (same tolerance), is "related" (a secondary signal of a labelled anomaly, e.g.
 * the volume alert of an enumeration): neither a catch nor a false alarm. Every other alert in the
 * scored range is a false alarm, counted against the client-days of normal traffic (client × UTC
 * day with at least one unlabelled event) of that range.
 *
 * Delay: event time = alert window end - the anomaly's first event (the earliest the window can
 * close; detectors that raise mid-window are charged the full window); wall clock = when the alert
 * reached the alerts topic consumer - when the anomaly's first event was acknowledged by Kafka
 * (needs produced.json from run.ts; absent for replay).
 *
 * Acceptance (exit code 1 when it fails): every label caught, and at most one false alarm per 500
 * client-days of normal traffic.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DETECTOR_KINDS, parseArgs, type Label, type Manifest } from './generate.js';

const HOUR = 3_600_000;

export interface AlertLike {
  type: 'alert';
  alert_id: string;
  dedup_key: string;
  detector: string;
  client_id: string;
  severity: string;
  title: string;
  window: { start: string; end: string };
  observed?: number;
  expected?: { low: number; high: number };
  score?: number;
  baseline_version?: string;
  created_at?: string;
  /** The incident the detector put it in (absent before incidents existed: then its own). */
  incident_id?: string;
}

export interface CollectedAlert {
  alert: AlertLike;
  /** Wall-clock ms at which the consumer received it (absent for replay output). */
  receivedAt?: number;
}

/** Alert detector name → the label detector names it may catch. */
export const EQUIVALENT: Record<string, string[]> = {
  volume: ['volume'],
  volume_calls: ['volume'],
  volume_bytes: ['volume'],
  exfiltration: ['volume'],
};

export interface LabelResult {
  label: Label;
  caught: boolean;
  alerts: string[];
  eventDelayMs: number | null;
  wallDelayMs: number | null;
}

export interface DetectorRow {
  detector: string;
  labelled: number;
  caught: number;
  missed: string[];
  alerts: number;
  falseAlarms: number;
  related: number;
  eventDelaysMs: number[];
  wallDelaysMs: number[];
}

export interface ScoreResult {
  range: { from: string; to: string };
  toleranceMs: number;
  labels: LabelResult[];
  rows: DetectorRow[];
  falseAlarms: AlertLike[];
  related: AlertLike[];
  outOfRange: AlertLike[];
  stateChanges: number;
  clientDays: number;
  falseAlarmsPer500ClientDays: number;
  /**
   * Alerts per incident over the scored range, and per label the incidents its catching and related
   * alerts fell into (an attack should be one incident, one page).
   */
  incidents: {
    alerts: number;
    incidents: number;
    perIncident: number;
    labels: Array<{ id: string; detector: string; alerts: number; incidents: number }>;
  };
  pass: boolean;
  failures: string[];
}

/** The subject part of `detector:subject:window` (subjects may contain ':', e.g. IPv6). */
export function dedupSubject(key: string): string {
  const first = key.indexOf(':');
  const last = key.lastIndexOf(':');
  return first >= 0 && last > first ? key.slice(first + 1, last) : key;
}

/** Does the alert concern this scenario (its clients, sources, servers, addresses, sessions)? */
export function inScenario(a: AlertLike, m: Pick<Manifest, 'prefix' | 'addressPrefix'>): boolean {
  const subject = dedupSubject(a.dedup_key);
  return [a.client_id, subject].some((s) => s.startsWith(`${m.prefix}-`) || s.startsWith(m.addressPrefix));
}

/** Reads alert JSONL (collected `{received_at, message}` lines or bare messages). */
export function parseAlertsJsonl(text: string): { alerts: CollectedAlert[]; stateChanges: number } {
  const alerts: CollectedAlert[] = [];
  let stateChanges = 0;
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`alerts line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
    const msg = (v.message ?? v.alert ?? v) as Record<string, unknown>;
    if (msg.type === 'state_change') {
      stateChanges++;
      return;
    }
    if (msg.type !== 'alert') throw new Error(`alerts line ${i + 1} is neither an alert nor a state change`);
    for (const k of ['dedup_key', 'detector', 'client_id', 'window'] as const)
      if (msg[k] === undefined) throw new Error(`alerts line ${i + 1} has no ${k}`);
    const receivedAt = typeof v.received_at === 'number' ? v.received_at : undefined;
    alerts.push({ alert: msg as unknown as AlertLike, ...(receivedAt !== undefined ? { receivedAt } : {}) });
  });
  return { alerts, stateChanges };
}

const overlaps = (a0: number, a1: number, b0: number, b1: number) => a0 < b1 && b0 < a1;

export function score(input: {
  labels: Label[];
  manifest: Manifest;
  alerts: CollectedAlert[];
  stateChanges?: number;
  /** label id → wall ms at which its first event was acknowledged by Kafka. */
  producedAt?: Record<string, number>;
  toleranceMs?: number;
  range?: 'eval' | 'all';
}): ScoreResult {
  const { labels, manifest: m } = input;
  const tol = input.toleranceMs ?? 2 * HOUR;
  const from = Date.parse(input.range === 'all' ? m.start : m.evalStart);
  const to = Date.parse(m.end);
  const mine = input.alerts.filter((c) => inScenario(c.alert, m));
  const inRange: CollectedAlert[] = [];
  const outOfRange: AlertLike[] = [];
  for (const c of mine) {
    const ws = Date.parse(c.alert.window.start);
    const we = Date.parse(c.alert.window.end);
    if (overlaps(ws, we, from, to)) inRange.push(c);
    else outOfRange.push(c.alert);
  }
  const span = (l: Label): [number, number] => [Date.parse(l.start) - HOUR, Date.parse(l.end) + tol];
  const subjectsOf = (a: AlertLike) => [a.client_id, dedupSubject(a.dedup_key)];
  const matches = (a: AlertLike, l: Label) => {
    const kinds = EQUIVALENT[a.detector] ?? [a.detector];
    if (!kinds.includes(l.detector)) return false;
    if (!subjectsOf(a).some((s) => l.subjects.includes(s))) return false;
    const [s0, s1] = span(l);
    return overlaps(Date.parse(a.window.start), Date.parse(a.window.end), s0, s1);
  };

  const caughtBy = new Map<string, CollectedAlert[]>();
  const relatedTo = new Map<string, AlertLike[]>();
  const falseAlarms: AlertLike[] = [];
  const related: AlertLike[] = [];
  for (const c of inRange) {
    const hit = labels.filter((l) => matches(c.alert, l));
    if (hit.length > 0) {
      for (const l of hit) caughtBy.set(l.id, [...(caughtBy.get(l.id) ?? []), c]);
      continue;
    }
    const touchedBy = labels.filter((l) => {
      const [s0, s1] = span(l);
      return (
        subjectsOf(c.alert).some((s) => l.clients.includes(s) || l.subjects.includes(s)) &&
        overlaps(Date.parse(c.alert.window.start), Date.parse(c.alert.window.end), s0, s1)
      );
    });
    for (const l of touchedBy) relatedTo.set(l.id, [...(relatedTo.get(l.id) ?? []), c.alert]);
    (touchedBy.length > 0 ? related : falseAlarms).push(c.alert);
  }
  // An alert grouped into the incident of a labelled anomaly's catch pages nobody again: it is part of
  // that attack's incident (the acceptance counts "every alert outside an incident"), so related.
  const caughtIncidents = new Map<string, string[]>();
  for (const [labelId, cs] of caughtBy)
    for (const c of cs)
      if (c.alert.incident_id)
        caughtIncidents.set(c.alert.incident_id, [
          ...(caughtIncidents.get(c.alert.incident_id) ?? []),
          labelId,
        ]);
  for (let i = falseAlarms.length - 1; i >= 0; i--) {
    const a = falseAlarms[i]!;
    const owners = a.incident_id ? caughtIncidents.get(a.incident_id) : undefined;
    if (!owners) continue;
    falseAlarms.splice(i, 1);
    related.push(a);
    for (const id of new Set(owners)) relatedTo.set(id, [...(relatedTo.get(id) ?? []), a]);
  }

  const labelResults: LabelResult[] = labels.map((l) => {
    const hits = (caughtBy.get(l.id) ?? []).slice();
    hits.sort((a, b) => Date.parse(a.alert.window.end) - Date.parse(b.alert.window.end));
    const first = hits[0];
    const t0 = Date.parse(l.start);
    const produced = input.producedAt?.[l.id];
    const firstWall = hits
      .filter((h) => h.receivedAt !== undefined)
      .sort((a, b) => a.receivedAt! - b.receivedAt!)[0];
    return {
      label: l,
      caught: hits.length > 0,
      alerts: hits.map((h) => h.alert.dedup_key),
      eventDelayMs: first ? Math.max(0, Date.parse(first.alert.window.end) - t0) : null,
      wallDelayMs: firstWall && produced !== undefined ? firstWall.receivedAt! - produced : null,
    };
  });

  const detectors = [...new Set<string>([...DETECTOR_KINDS, ...inRange.map((c) => c.alert.detector)])];
  const rows: DetectorRow[] = detectors.map((d) => {
    const ls = labelResults.filter((r) => r.label.detector === d);
    return {
      detector: d,
      labelled: ls.length,
      caught: ls.filter((r) => r.caught).length,
      missed: ls.filter((r) => !r.caught).map((r) => r.label.id),
      alerts: inRange.filter((c) => c.alert.detector === d).length,
      falseAlarms: falseAlarms.filter((a) => a.detector === d).length,
      related: related.filter((a) => a.detector === d).length,
      eventDelaysMs: ls.flatMap((r) => (r.eventDelayMs === null ? [] : [r.eventDelayMs])),
      wallDelaysMs: ls.flatMap((r) => (r.wallDelayMs === null ? [] : [r.wallDelayMs])),
    };
  });

  const incidentOf = (a: AlertLike) => a.incident_id ?? `alert:${a.alert_id}`;
  const incidents = {
    alerts: inRange.length,
    incidents: new Set(inRange.map((c) => incidentOf(c.alert))).size,
    perIncident: 0,
    labels: labelResults.map((r) => {
      // A related alert that another anomaly also touches (a victim of the spray that has an anomaly
      // of its own in the same hours) is not attributed to this one: it would count the other
      // anomaly's incident as a split of this attack.
      const shared = new Set<AlertLike>();
      for (const [id, rs] of relatedTo) if (id !== r.label.id) for (const a of rs) shared.add(a);
      for (const [id, cs] of caughtBy) if (id !== r.label.id) for (const c of cs) shared.add(c.alert);
      const as = [
        ...(caughtBy.get(r.label.id) ?? []).map((c) => c.alert),
        ...(relatedTo.get(r.label.id) ?? []).filter((a) => !shared.has(a)),
      ];
      return {
        id: r.label.id,
        detector: r.label.detector,
        alerts: as.length,
        incidents: new Set(as.map(incidentOf)).size,
      };
    }),
  };
  incidents.perIncident = incidents.incidents > 0 ? incidents.alerts / incidents.incidents : 0;

  const clientDays =
    input.range === 'all' ? m.normalClientDays.history + m.normalClientDays.eval : m.normalClientDays.eval;
  const rate = clientDays > 0 ? (falseAlarms.length / clientDays) * 500 : 0;
  const failures: string[] = [];
  const missed = labelResults.filter((r) => !r.caught);
  if (missed.length > 0)
    failures.push(`${missed.length} labelled anomalies missed: ${missed.map((r) => r.label.id).join(', ')}`);
  // One attack, one page: a password spray (with the misuse of the sessions it opened and its victims'
  // bursts) must be a single incident.
  const split = incidents.labels.filter((x) => x.detector === 'auth_spray' && x.incidents > 1);
  if (split.length > 0)
    failures.push(
      `attacks split across incidents: ${split.map((x) => `${x.id} (${x.incidents})`).join(', ')}`,
    );
  if (rate > 1)
    failures.push(
      `${falseAlarms.length} false alarms in ${clientDays} client-days = ${rate.toFixed(2)} per 500 (limit 1)`,
    );
  return {
    range: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    toleranceMs: tol,
    labels: labelResults,
    rows,
    falseAlarms,
    related,
    outOfRange,
    stateChanges: input.stateChanges ?? 0,
    clientDays,
    falseAlarmsPer500ClientDays: rate,
    incidents,
    pass: failures.length === 0,
    failures,
  };
}

const quantile = (xs: number[], q: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};
const dur = (ms: number | null) =>
  ms === null
    ? '-'
    : ms >= 2 * HOUR
      ? `${(ms / HOUR).toFixed(1)}h`
      : ms >= 120_000
        ? `${Math.round(ms / 60_000)}m`
        : `${(ms / 1000).toFixed(1)}s`;

export function formatReport(r: ScoreResult): string {
  const lines: string[] = [];
  lines.push(`scored range ${r.range.from} .. ${r.range.to}, tolerance ${dur(r.toleranceMs)}`);
  const head = [
    'detector',
    'caught',
    'alerts',
    'false',
    'related',
    'delay(ev) p50/max',
    'delay(wall) p50/max',
    'missed',
  ];
  const rows = r.rows.map((x) => [
    x.detector,
    `${x.caught}/${x.labelled}`,
    String(x.alerts),
    String(x.falseAlarms),
    String(x.related),
    `${dur(quantile(x.eventDelaysMs, 0.5))}/${dur(quantile(x.eventDelaysMs, 1))}`,
    `${dur(quantile(x.wallDelaysMs, 0.5))}/${dur(quantile(x.wallDelaysMs, 1))}`,
    x.missed.join(' '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [head, ...rows])
    lines.push(
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  const caught = r.labels.filter((l) => l.caught).length;
  lines.push(
    `total: ${caught}/${r.labels.length} labelled anomalies caught; ${r.falseAlarms.length} false alarms over ${r.clientDays} client-days of normal traffic = ${r.falseAlarmsPer500ClientDays.toFixed(2)} per 500 client-days; ${r.related.length} related; ${r.outOfRange.length} alerts outside the range; ${r.stateChanges} state changes`,
  );
  lines.push(
    `incidents: ${r.incidents.alerts} alerts in ${r.incidents.incidents} incidents = ${r.incidents.perIncident.toFixed(2)} alerts per incident`,
  );
  for (const x of r.incidents.labels.filter((y) => y.alerts > 0))
    lines.push(
      `  ${x.id}: ${x.alerts} alert${x.alerts === 1 ? '' : 's'} in ${x.incidents} incident${x.incidents === 1 ? '' : 's'}`,
    );
  for (const l of r.labels.filter((x) => !x.caught))
    lines.push(`MISSED ${l.label.id} ${l.label.client_id} ${l.label.start}: ${l.label.description}`);
  for (const a of r.falseAlarms)
    lines.push(
      `FALSE ${a.dedup_key} ${a.window.start}..${a.window.end} ${a.severity} observed=${a.observed ?? '?'} expected=${a.expected ? `${a.expected.low}..${a.expected.high}` : '?'}: ${a.title}`,
    );
  lines.push(r.pass ? 'ACCEPTANCE: PASS' : `ACCEPTANCE: FAIL (${r.failures.join('; ')})`);
  return lines.join('\n');
}

export function scoreDir(
  dir: string,
  opts: { alertsFile?: string; toleranceMs?: number; range?: 'eval' | 'all' } = {},
) {
  const labels = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as Label[];
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const alertsFile = opts.alertsFile ?? join(dir, 'alerts.jsonl');
  if (!existsSync(alertsFile))
    throw new Error(`no alerts file ${alertsFile}: run test/scenario/run.ts or pass --alerts`);
  const { alerts, stateChanges } = parseAlertsJsonl(readFileSync(alertsFile, 'utf8'));
  const producedFile = join(dir, 'produced.json');
  const producedAt =
    opts.alertsFile === undefined && existsSync(producedFile)
      ? (JSON.parse(readFileSync(producedFile, 'utf8')) as Record<string, number>)
      : undefined;
  return score({
    labels,
    manifest,
    alerts,
    stateChanges,
    ...(producedAt ? { producedAt } : {}),
    ...(opts.toleranceMs !== undefined ? { toleranceMs: opts.toleranceMs } : {}),
    ...(opts.range ? { range: opts.range } : {}),
  });
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args.dir) {
    console.error(
      'usage: scenario:score --dir DIR [--alerts FILE.jsonl] [--tolerance-min 120] [--range eval|all] [--json]',
    );
    process.exit(2);
  }
  const tolMin = args['tolerance-min'] === undefined ? undefined : Number(args['tolerance-min']);
  if (tolMin !== undefined && !(tolMin >= 0))
    throw new Error(`--tolerance-min must be a non-negative number`);
  if (args.range && args.range !== 'eval' && args.range !== 'all')
    throw new Error('--range must be eval or all');
  const r = scoreDir(resolve(args.dir), {
    ...(args.alerts ? { alertsFile: resolve(args.alerts) } : {}),
    ...(tolMin !== undefined ? { toleranceMs: tolMin * 60_000 } : {}),
    ...(args.range ? { range: args.range as 'eval' | 'all' } : {}),
  });
  console.log(args.json === 'true' ? JSON.stringify(r, null, 2) : formatReport(r));
  process.exit(r.pass ? 0 : 1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  }
}
