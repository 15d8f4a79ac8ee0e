import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import { severityRank, type AlertSeverity, type IncidentRef, INCIDENT_TRANSITIONS } from '@mcp-audit/schema';
import { chDateTime } from './baseline.js';
import type { Contributor } from './model.js';
import { stableUuid } from './alert.lifecycle.js';

/**
 * Related alerts form one incident: it is what pages a human. An alert joins an open (or recently
 * resolved) incident when they share a grouping key and overlap in event time, widened by `windowMs`
 * on both sides. Keys:
 * - `client:` the client the alert is about (streaming detectors, session misuse, fail→success);
 * - `addr:` the address of an address-keyed detector (spraying) and the addresses of the
 *   authentication-related ones (bursts, spraying, fail→success, session misuse): so a spray, the
 *   victims' auth bursts and the misuse of the sessions it opened are one attack;
 * - `session:` every session an alert names (spraying names the sessions it opened, misuse the one
 *   it saw twice);
 * - `source:` / `tool:` / `pipeline:` / `event:` for the other subjects.
 * Addresses of non-authentication detectors are not keys: a shared egress address (office NAT)
 * would otherwise merge unrelated clients' volume alerts.
 * One alert causing another later: the address a password spray came from stays linked to its
 * incident for `attackLinkMs` (24 h) after the spray's window, whatever the gap, so the misuse of a
 * victim's session from that address hours later (seen when the victim comes back) joins the spray's
 * incident, reopening it if it had resolved, instead of paging again. Another spray from the address
 * after the window is a new wave, a new incident.
 * The incident's severity is the highest of its alerts; it resolves when its last open alert ends,
 * and reopens when a related alert arrives within the window after that.
 * Pure and deterministic (ids derive from the first alert's id; time is event time), so a replay
 * groups the same way; the rows it queues go out with the lifecycle's flush.
 */

export type IncidentTransitionKind = (typeof INCIDENT_TRANSITIONS)[number];

export interface IncidentRow {
  incident_id: string;
  title: string;
  first_alert_id: string;
  opened_at: string;
  opened_at_ms: number;
  origin: string;
  written_at: string;
}

export interface IncidentTransitionRow {
  transition_id: string;
  incident_id: string;
  seq: number;
  kind: IncidentTransitionKind;
  alert_id: string;
  detector: string;
  client_id: string;
  alert_severity: string;
  alert_title: string;
  severity: string;
  status: 'open' | 'resolved';
  alerts: number;
  open_alerts: number;
  title: string;
  keys: string[];
  window_start_ms: number;
  window_end_ms: number;
  at: string;
  at_ms: number;
  note: string;
  origin: string;
  written_at: string;
}

export interface IncidentOutputs {
  incidents: IncidentRow[];
  incidentTransitions: IncidentTransitionRow[];
}

/** What the grouper needs of an alert. */
export interface GroupedAlert {
  alertId: string;
  detector: string;
  clientId: string;
  title: string;
  severity: AlertSeverity;
  windowStart: number;
  windowEnd: number;
  detectedAt: number;
  contributors: { addresses: Contributor[]; sessions: Contributor[] };
}

interface Member {
  detector: string;
  clientId: string;
  severity: AlertSeverity;
  title: string;
  open: boolean;
}

interface Incident {
  id: string;
  seq: number;
  status: 'open' | 'resolved';
  keys: Set<string>;
  /** Attacker addresses (`addr:` keys of its sprays) and until when (event time) they link alerts. */
  attackKeys: Map<string, number>;
  start: number;
  end: number;
  members: Map<string, Member>;
}

/** Default grouping window: alerts up to 30 minutes apart in event time still belong together. */
export const INCIDENT_WINDOW_MS = 30 * 60_000;
/** How long after a spray's window an alert naming the spraying address still joins its incident. */
export const ATTACK_LINK_MS = 24 * 60 * 60_000;

/** The attacker address keys an alert brings: the subject of an address-keyed spray. */
function attackKeysOf(a: Pick<GroupedAlert, 'detector' | 'clientId'>): string[] {
  return a.detector === 'auth_spray' ? [`addr:${a.clientId}`] : [];
}

const SUBJECT_KIND: Record<string, string> = {
  auth_spray: 'addr',
  silent_source: 'source',
  tool_drift: 'tool',
  event_id_reuse: 'event',
  pipeline_silence: 'pipeline',
  pipeline_stall: 'pipeline',
};
const ADDRESS_LINKED = new Set(['auth_burst', 'auth_spray', 'auth_fail_then_success', 'session_misuse']);

/** The grouping keys of an alert (see the module comment). */
export function incidentKeys(a: Pick<GroupedAlert, 'detector' | 'clientId' | 'contributors'>): string[] {
  const keys = new Set<string>([`${SUBJECT_KIND[a.detector] ?? 'client'}:${a.clientId}`]);
  if (ADDRESS_LINKED.has(a.detector)) for (const c of a.contributors.addresses) keys.add(`addr:${c.value}`);
  for (const c of a.contributors.sessions) keys.add(`session:${c.value}`);
  return [...keys];
}

export class IncidentGrouper {
  readonly #incidents = new Map<string, Incident>();
  readonly #byAlert = new Map<string, string>();
  #pending: IncidentOutputs = { incidents: [], incidentTransitions: [] };
  /** Newest event time seen: resolved incidents older than it by the window are forgotten. */
  #clock = 0;

  constructor(
    private readonly o: {
      origin: 'live' | 'replay';
      windowMs?: number;
      attackLinkMs?: number;
      /** Wall clock for written_at only. */
      now?: () => number;
    },
  ) {}

  get windowMs(): number {
    return this.o.windowMs ?? INCIDENT_WINDOW_MS;
  }

  get attackLinkMs(): number {
    return this.o.attackLinkMs ?? ATTACK_LINK_MS;
  }

  incidentOf(alertId: string): string | undefined {
    return this.#byAlert.get(alertId);
  }

  /** The rows queued since the last call (the lifecycle flushes them with its own). */
  take(): IncidentOutputs {
    const out = this.#pending;
    this.#pending = { incidents: [], incidentTransitions: [] };
    return out;
  }

  /** Puts rows of a failed flush back at the head of the queue. */
  putBack(out: IncidentOutputs): void {
    this.#pending = {
      incidents: [...out.incidents, ...this.#pending.incidents],
      incidentTransitions: [...out.incidentTransitions, ...this.#pending.incidentTransitions],
    };
  }

  /** Puts a new alert into an incident (an existing related one, or a new one) and returns it. */
  join(a: GroupedAlert): IncidentRef {
    const keys = incidentKeys(a);
    const end = Math.max(a.windowEnd, a.detectedAt);
    this.#advance(a.detectedAt);
    const w = this.windowMs;
    let target: Incident | undefined;
    for (const inc of this.#incidents.values()) {
      // A consequence (not another spray: a new wave hours later is a new attack) joins through the link.
      const caused =
        a.detector !== 'auth_spray' &&
        keys.some((k) => {
          const until = inc.attackKeys.get(k);
          return until !== undefined && a.windowStart <= until && end >= inc.start - w;
        });
      if (!caused) {
        if (a.windowStart > inc.end + w || end < inc.start - w) continue;
        if (!keys.some((k) => inc.keys.has(k))) continue;
      }
      // The oldest related incident wins (Map order is creation order): deterministic on replay.
      target = inc;
      break;
    }
    let kind: IncidentTransitionKind;
    if (!target) {
      target = {
        id: stableUuid(`incident|${a.alertId}`),
        seq: 0,
        status: 'open',
        keys: new Set(),
        attackKeys: new Map(),
        start: a.windowStart,
        end,
        members: new Map(),
      };
      this.#incidents.set(target.id, target);
      kind = 'opened';
      this.#pending.incidents.push({
        incident_id: target.id,
        title: a.title,
        first_alert_id: a.alertId,
        opened_at: chDateTime(a.detectedAt),
        opened_at_ms: a.detectedAt,
        origin: this.o.origin,
        written_at: this.#written(),
      });
    } else {
      kind = target.status === 'resolved' ? 'reopened' : 'joined';
    }
    for (const k of keys) target.keys.add(k);
    for (const k of attackKeysOf(a))
      target.attackKeys.set(k, Math.max(target.attackKeys.get(k) ?? 0, a.windowEnd + this.attackLinkMs));
    target.start = Math.min(target.start, a.windowStart);
    target.end = Math.max(target.end, end);
    target.status = 'open';
    target.members.set(a.alertId, {
      detector: a.detector,
      clientId: a.clientId,
      severity: a.severity,
      title: a.title,
      open: true,
    });
    this.#byAlert.set(a.alertId, target.id);
    return this.#record(target, kind, a.alertId, a.detectedAt, '');
  }

  /**
   * An alert of an incident ended (the detector resolved it, or a human did). Returns the incident
   * after the change, or undefined when the alert belongs to none this grouper knows.
   */
  alertEnded(alertId: string, at: number, note: string): IncidentRef | undefined {
    const id = this.#byAlert.get(alertId);
    const inc = id ? this.#incidents.get(id) : undefined;
    const m = inc?.members.get(alertId);
    if (!inc || !m || !m.open) return undefined;
    m.open = false;
    this.#advance(at);
    inc.end = Math.max(inc.end, at);
    const stillOpen = [...inc.members.values()].some((x) => x.open);
    if (!stillOpen) inc.status = 'resolved';
    return this.#record(inc, stillOpen ? 'alert_resolved' : 'resolved', alertId, at, note);
  }

  /**
   * Rebuilds incidents from their stored timelines (start-up, or a new leader taking over); emits
   * nothing. Rows an incident in memory already has (seq at or below its own) are skipped, so a reload
   * never rolls back what this process did since.
   */
  restore(rows: ReadonlyArray<StoredTransition>): void {
    const sorted = [...rows].sort((x, y) => (x.incident_id < y.incident_id ? -1 : 1) || x.seq - y.seq);
    const known = new Map([...this.#incidents].map(([id, inc]) => [id, inc.seq]));
    for (const r of sorted) {
      if (r.seq <= (known.get(r.incident_id) ?? 0)) continue;
      let inc = this.#incidents.get(r.incident_id);
      if (!inc) {
        inc = {
          id: r.incident_id,
          seq: 0,
          status: 'open',
          keys: new Set(),
          attackKeys: new Map(),
          start: r.window_start_ms,
          end: r.window_end_ms,
          members: new Map(),
        };
        this.#incidents.set(inc.id, inc);
      }
      // The spray's own window is not stored per row: the incident's end at that row bounds it.
      if (r.kind !== 'resolved' && r.kind !== 'alert_resolved')
        for (const k of attackKeysOf({ detector: r.detector, clientId: r.client_id }))
          inc.attackKeys.set(k, Math.max(inc.attackKeys.get(k) ?? 0, r.window_end_ms + this.attackLinkMs));
      inc.seq = Math.max(inc.seq, r.seq);
      inc.status = r.status;
      for (const k of r.keys) inc.keys.add(k);
      inc.start = Math.min(inc.start, r.window_start_ms);
      inc.end = Math.max(inc.end, r.window_end_ms);
      if (r.kind === 'opened' || r.kind === 'joined' || r.kind === 'reopened') {
        inc.members.set(r.alert_id, {
          detector: r.detector,
          clientId: r.client_id,
          severity: r.alert_severity as AlertSeverity,
          title: r.alert_title,
          open: true,
        });
        this.#byAlert.set(r.alert_id, inc.id);
      } else {
        const m = inc.members.get(r.alert_id);
        if (m) m.open = false;
      }
      this.#clock = Math.max(this.#clock, r.at_ms);
    }
  }

  #record(
    inc: Incident,
    kind: IncidentTransitionKind,
    alertId: string,
    at: number,
    note: string,
  ): IncidentRef {
    inc.seq += 1;
    const members = [...inc.members.values()];
    const top = members.reduce((a, b) => (severityRank(b.severity) > severityRank(a.severity) ? b : a));
    const openAlerts = members.filter((m) => m.open).length;
    const title = members.length > 1 ? `${top.title} (+${members.length - 1} related)` : top.title;
    const m = inc.members.get(alertId)!;
    this.#pending.incidentTransitions.push({
      transition_id: stableUuid(`incident-transition|${inc.id}|${kind}|${alertId}|${at}`),
      incident_id: inc.id,
      seq: inc.seq,
      kind,
      alert_id: alertId,
      detector: m.detector,
      client_id: m.clientId,
      alert_severity: m.severity,
      alert_title: m.title,
      severity: top.severity,
      status: inc.status,
      alerts: members.length,
      open_alerts: openAlerts,
      title: title.slice(0, 200),
      keys: [...inc.keys].slice(0, 200),
      window_start_ms: inc.start,
      window_end_ms: inc.end,
      at: chDateTime(at),
      at_ms: at,
      note: note.slice(0, 1000),
      origin: this.o.origin,
      written_at: this.#written(),
    });
    return {
      id: inc.id,
      title: title.slice(0, 200),
      severity: top.severity,
      status: inc.status,
      transition: kind,
      alerts: members.length,
      open_alerts: openAlerts,
    };
  }

  #advance(t: number): void {
    if (t <= this.#clock) return;
    this.#clock = t;
    // Forget resolved incidents no new alert can join any more (bounded memory on long runs).
    for (const [id, inc] of this.#incidents) {
      if (inc.status !== 'resolved' || inc.end + this.windowMs >= t) continue;
      if ([...inc.attackKeys.values()].some((until) => until >= t)) continue;
      this.#incidents.delete(id);
      for (const a of inc.members.keys()) this.#byAlert.delete(a);
    }
  }

  #written(): string {
    return chDateTime(this.o.now?.() ?? Date.now());
  }
}

/** A stored timeline row, as `loadIncidents` reads it back. */
export interface StoredTransition {
  incident_id: string;
  seq: number;
  kind: IncidentTransitionKind;
  alert_id: string;
  detector: string;
  client_id: string;
  alert_severity: string;
  alert_title: string;
  status: 'open' | 'resolved';
  keys: string[];
  window_start_ms: number;
  window_end_ms: number;
  at_ms: number;
}

/**
 * The live detector's incidents a new alert may still join, for a restart: open ones, resolved ones
 * that ended within `windowMs` of the newest timeline row, and resolved sprays within `attackLinkMs`.
 * Their whole timelines come back.
 */
export async function loadIncidents(
  ch: ClickHouse,
  windowMs = INCIDENT_WINDOW_MS,
  attackLinkMs = ATTACK_LINK_MS,
): Promise<StoredTransition[]> {
  const db = dbIdent(ch.database);
  const rows = await ch.query<{
    incident_id: string;
    seq: string;
    kind: string;
    alert_id: string;
    detector: string;
    client_id: string;
    alert_severity: string;
    alert_title: string;
    status: string;
    keys: string[];
    window_start_ms: string;
    window_end_ms: string;
    at_ms: string;
  }>(sql`
    SELECT incident_id, seq, kind, alert_id, detector, client_id, alert_severity, alert_title, status,
           keys, window_start_ms, window_end_ms, at_ms
    FROM ${db}.incident_transitions
    WHERE origin = 'live' AND incident_id IN (
      SELECT incident_id FROM (
        SELECT incident_id, argMax(status, seq) AS st, max(window_end_ms) AS last_end,
               countIf(detector = 'auth_spray') AS sprays
        FROM ${db}.incident_transitions
        WHERE origin = 'live'
        GROUP BY incident_id
      )
      WHERE st = 'open'
         OR last_end + ${windowMs} >= (SELECT max(at_ms) FROM ${db}.incident_transitions WHERE origin = 'live')
         OR (sprays > 0
             AND last_end + ${attackLinkMs} >= (SELECT max(at_ms) FROM ${db}.incident_transitions WHERE origin = 'live'))
    )
    ORDER BY incident_id, seq
    LIMIT 1 BY transition_id`);
  return rows.map((r) => ({
    incident_id: r.incident_id,
    seq: Number(r.seq),
    kind: r.kind as IncidentTransitionKind,
    alert_id: r.alert_id,
    detector: r.detector,
    client_id: r.client_id,
    alert_severity: r.alert_severity,
    alert_title: r.alert_title || r.alert_id,
    status: r.status === 'resolved' ? 'resolved' : 'open',
    keys: r.keys,
    window_start_ms: Number(r.window_start_ms),
    window_end_ms: Number(r.window_end_ms),
    at_ms: Number(r.at_ms),
  }));
}
