import { createHash } from 'node:crypto';
import { dbIdent, sql, type ClickHouse } from '@mcp-audit/clickhouse';
import type { AuditProducer } from '@mcp-audit/kafka';
import type { Logger } from '@mcp-audit/service-kit';
import {
  alertMessageSchema,
  type Alert,
  type AlertMessage,
  type AlertSeverity,
  type AlertStateChange,
} from '@mcp-audit/schema';
import { chDateTime } from './baseline.js';
import type { AlertLifecycle, DetectorName, Finding } from './model.js';
import { IncidentGrouper, type IncidentOutputs } from './incident.grouper.js';

/**
 * Dedup, suppress, resolve, record, publish. An alert opens under its dedup key; while it is open
 * (or acknowledged) further findings under that key are suppressed; `resolve` closes it. State
 * changes apply at once in memory (so the engine's next decision sees them) and are queued; `flush`
 * makes the queue durable (ClickHouse rows first, then the Kafka messages, both awaited), and the
 * consumer commits its offsets only after that. Ids are derived from the dedup key and event time,
 * so a replay of the same events produces the same alert ids.
 */

export interface OpenAlert {
  alertId: string;
  dedupKey: string;
  detector: string;
  clientId: string;
  title: string;
  severity: AlertSeverity;
  windowStart: number;
  windowEnd: number;
  openedAt: number;
  clientLabels?: Record<string, string>;
}

export interface AlertRow {
  alert_id: string;
  dedup_key: string;
  detector: string;
  client_id: string;
  title: string;
  summary: string;
  severity: string;
  window_start_ms: number;
  window_end_ms: number;
  observed: number;
  expected_low: number;
  expected_high: number;
  score: number;
  baseline_version: string;
  contributor_tools: string;
  contributor_addresses: string;
  contributor_sessions: string;
  sample_event_ids: string[];
  created_at: string;
  created_at_ms: number;
  written_at: string;
  origin: string;
  message: string;
  incident_id: string;
}

export interface TransitionRow {
  transition_id: string;
  alert_id: string;
  dedup_key: string;
  detector: string;
  client_id: string;
  severity: string;
  from_status: string;
  to_status: string;
  changed_at: string;
  changed_at_ms: number;
  actor: string;
  note: string;
  written_at: string;
}

export interface Outputs extends IncidentOutputs {
  alerts: AlertRow[];
  transitions: TransitionRow[];
  messages: AlertMessage[];
}

const emptyOutputs = (): Outputs => ({
  alerts: [],
  transitions: [],
  messages: [],
  incidents: [],
  incidentTransitions: [],
});

/** Where durable outputs go: ClickHouse + Kafka live, a file (or also the tables) in replay. */
export interface AlertSink {
  write(out: Outputs): Promise<void>;
}

export interface LifecycleMetrics {
  opened(detector: string, severity: string): void;
  suppressed(detector: string): void;
  resolved(detector: string): void;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// eslint-disable-next-line no-control-regex -- titles travel to Slack and logs
const CONTROL = /[\u0000-\u001f\u007f]/g;
const clean = (s: string, max: number) => s.replace(CONTROL, ' ').slice(0, max) || '-';

/** A UUID (version 8, RFC 9562 "custom") derived from the name: same input, same id. */
export function stableUuid(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export class Lifecycle implements AlertLifecycle {
  readonly #open = new Map<string, OpenAlert>();
  /** Alerts a human resolved through the analyst API: never reopened, never resolved again. */
  readonly #closedByHuman = new Set<string>();
  /** Alerts a previous leader already raised (and maybe resolved): re-evaluated windows do not repeat them. */
  readonly #raisedBefore = new Set<string>();
  #pending: Outputs = emptyOutputs();
  readonly incidents: IncidentGrouper;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      sink: AlertSink;
      log: Logger;
      origin: 'live' | 'replay';
      metrics?: LifecycleMetrics;
      /** Wall clock for written_at only (never part of what replay compares). */
      now?: () => number;
      /** Groups alerts into incidents; one is made when none is given. */
      incidents?: IncidentGrouper;
    },
  ) {
    this.incidents =
      deps.incidents ?? new IncidentGrouper({ origin: deps.origin, ...(deps.now ? { now: deps.now } : {}) });
  }

  get openCount(): number {
    return this.#open.size;
  }

  get pendingCount(): number {
    return this.#pending.messages.length;
  }

  isOpen(dedupKey: string): boolean {
    return this.#open.has(dedupKey);
  }

  openAlert(dedupKey: string): OpenAlert | undefined {
    return this.#open.get(dedupKey);
  }

  openAlerts(): OpenAlert[] {
    return [...this.#open.values()];
  }

  /** Restores the open set (start-up reload); emits nothing. */
  restore(alerts: OpenAlert[]): void {
    for (const a of alerts) this.#open.set(a.dedupKey, a);
  }

  /**
   * Replaces the open alerts of the detectors `owned` says are this instance's with `alerts` (the
   * stored open set, reloaded when the leader lease is acquired: the previous leader may have opened
   * or resolved some since start-up); emits nothing.
   */
  replaceOpen(alerts: OpenAlert[], owned: (detector: string) => boolean): void {
    for (const [key, a] of this.#open) if (owned(a.detector)) this.#open.delete(key);
    for (const a of alerts) if (owned(a.detector)) this.#open.set(a.dedupKey, a);
  }

  /**
   * Alert ids already stored (raised by a previous leader): a window it evaluated but whose progress
   * it had not saved yet is evaluated again, and its findings must not open the same alert twice.
   */
  markRaised(alertIds: Iterable<string>): void {
    for (const id of alertIds) this.#raisedBefore.add(id);
  }

  /**
   * A human resolved this alert (services/api wrote the transition and published the message): it
   * leaves the open set without a message of ours, so the detector neither resolves it again nor keeps
   * suppressing its key; the next anomaly under the key opens a NEW alert. Returns whether it was open.
   */
  closeByHuman(alertId: string): boolean {
    this.#closedByHuman.add(alertId);
    for (const [key, a] of this.#open) {
      if (a.alertId !== alertId) continue;
      this.#open.delete(key);
      // NOTE: its incident's timeline records the end; the human's own message already went out.
      this.incidents.alertEnded(alertId, a.windowEnd, 'resolved by a human');
      return true;
    }
    return false;
  }

  /** Opens an alert unless one is open under the key. Returns whether it opened. */
  raiseNow(f: Finding): boolean {
    if (this.#open.has(f.dedupKey)) {
      this.deps.metrics?.suppressed(f.detector);
      return false;
    }
    const alertId = stableUuid(`alert|${f.dedupKey}|${f.windowStart}`);
    // The same window again (ids derive from it): the human already judged this anomaly.
    if (this.#closedByHuman.has(alertId) || this.#raisedBefore.has(alertId)) {
      this.deps.metrics?.suppressed(f.detector);
      return false;
    }
    const createdAt = new Date(f.detectedAt).toISOString();
    const msg: Alert = {
      schema_version: 1,
      type: 'alert',
      alert_id: alertId,
      dedup_key: clean(f.dedupKey, 255),
      detector: f.detector,
      client_id: clean(f.clientId, 256),
      ...(f.clientLabels ? { client_labels: labelsFor(f.clientLabels) } : {}),
      title: clean(f.title, 200),
      summary: f.summary.slice(0, 2000),
      severity: f.severity,
      status: 'open',
      window: { start: new Date(f.windowStart).toISOString(), end: new Date(f.windowEnd).toISOString() },
      observed: f.observed,
      expected: f.expected,
      score: f.score,
      baseline_version: f.baselineVersion.slice(0, 64),
      contributors: {
        tools: f.contributors.tools.slice(0, 20).map((c) => ({ value: clean(c.value, 512), count: c.count })),
        addresses: f.contributors.addresses
          .slice(0, 20)
          .map((c) => ({ value: clean(c.value, 512), count: c.count })),
        sessions: f.contributors.sessions
          .slice(0, 20)
          .map((c) => ({ value: clean(c.value, 512), count: c.count })),
      },
      sample_event_ids: f.sampleEventIds.filter((id) => UUID_RE.test(id)).slice(0, 50),
      created_at: createdAt,
    };
    const parsed = alertMessageSchema.safeParse(msg);
    if (!parsed.success) {
      // A bug in a detector, not bad input: log it loudly and keep the stream going.
      this.deps.log.error(
        { dedupKey: f.dedupKey, issues: parsed.error.issues.slice(0, 3) },
        'finding does not fit the alert contract',
      );
      return false;
    }
    const incident = this.incidents.join({
      alertId,
      detector: f.detector,
      clientId: msg.client_id,
      title: msg.title,
      severity: f.severity,
      windowStart: f.windowStart,
      windowEnd: f.windowEnd,
      detectedAt: f.detectedAt,
      contributors: parsed.data.type === 'alert' ? parsed.data.contributors : { addresses: [], sessions: [] },
    });
    msg.incident_id = incident.id;
    msg.incident = incident;
    const open: OpenAlert = {
      alertId,
      dedupKey: msg.dedup_key,
      detector: f.detector,
      clientId: msg.client_id,
      title: msg.title,
      severity: f.severity,
      windowStart: f.windowStart,
      windowEnd: f.windowEnd,
      openedAt: f.detectedAt,
      ...(msg.client_labels ? { clientLabels: msg.client_labels } : {}),
    };
    this.#open.set(f.dedupKey, open);
    const written = chDateTime(this.deps.now?.() ?? Date.now());
    this.#pending.alerts.push({
      alert_id: alertId,
      dedup_key: msg.dedup_key,
      detector: f.detector,
      client_id: msg.client_id,
      title: msg.title,
      summary: msg.summary,
      severity: f.severity,
      window_start_ms: f.windowStart,
      window_end_ms: f.windowEnd,
      observed: f.observed,
      expected_low: f.expected.low,
      expected_high: f.expected.high,
      score: f.score,
      baseline_version: msg.baseline_version,
      contributor_tools: JSON.stringify(msg.contributors.tools),
      contributor_addresses: JSON.stringify(msg.contributors.addresses),
      contributor_sessions: JSON.stringify(msg.contributors.sessions),
      sample_event_ids: msg.sample_event_ids,
      created_at: chDateTime(f.detectedAt),
      created_at_ms: f.detectedAt,
      written_at: written,
      origin: this.deps.origin,
      message: JSON.stringify(msg),
      incident_id: incident.id,
    });
    this.#pending.transitions.push(this.#transition(open, '', 'open', f.detectedAt, 'opened', written));
    this.#pending.messages.push(msg);
    this.deps.metrics?.opened(f.detector, f.severity);
    return true;
  }

  /** Resolves the open alert under the key at event time `at` (no-op when none is open). */
  resolveNow(dedupKey: string, at: number, reason: string): boolean {
    const open = this.#open.get(dedupKey);
    if (!open) return false;
    this.#open.delete(dedupKey);
    const written = chDateTime(this.deps.now?.() ?? Date.now());
    const t = this.#transition(open, 'open', 'resolved', at, reason, written);
    this.#pending.transitions.push(t);
    const incident = this.incidents.alertEnded(open.alertId, at, reason);
    const msg: AlertStateChange = {
      schema_version: 1,
      type: 'state_change',
      transition_id: t.transition_id,
      alert_id: open.alertId,
      dedup_key: open.dedupKey,
      detector: open.detector,
      client_id: open.clientId,
      ...(open.clientLabels ? { client_labels: open.clientLabels } : {}),
      title: open.title,
      severity: open.severity,
      from: 'open',
      status: 'resolved',
      changed_at: new Date(at).toISOString(),
      actor: 'detector',
      note: reason.slice(0, 1000),
      ...(incident ? { incident_id: incident.id, incident } : {}),
    };
    this.#pending.messages.push(msg);
    this.deps.metrics?.resolved(open.detector);
    return true;
  }

  #transition(
    a: OpenAlert,
    from: string,
    to: string,
    at: number,
    note: string,
    written: string,
  ): TransitionRow {
    return {
      transition_id: stableUuid(`transition|${a.alertId}|${to}|${at}`),
      alert_id: a.alertId,
      dedup_key: a.dedupKey,
      detector: a.detector,
      client_id: a.clientId,
      severity: a.severity,
      from_status: from,
      to_status: to,
      changed_at: chDateTime(at),
      changed_at_ms: at,
      actor: this.deps.origin === 'live' ? 'detector' : 'replay',
      note: note.slice(0, 1000),
      written_at: written,
    };
  }

  async raise(f: Finding): Promise<void> {
    this.raiseNow(f);
    await this.flush();
  }

  async resolve(dedupKey: string, at: number, reason: string): Promise<void> {
    this.resolveNow(dedupKey, at, reason);
    await this.flush();
  }

  /**
   * Makes everything queued so far durable. Flushes are serialized; a failed flush puts its outputs
   * back at the head of the queue (ids are stable, so a retried write duplicates nothing that readers
   * cannot dedup by id) and rethrows.
   */
  flush(): Promise<void> {
    const run = this.#flushing.then(async () => {
      const out = { ...this.#pending, ...this.incidents.take() };
      if (out.messages.length === 0 && out.transitions.length === 0 && out.incidentTransitions.length === 0)
        return;
      this.#pending = emptyOutputs();
      try {
        await this.deps.sink.write(out);
      } catch (err) {
        this.#pending = {
          ...this.#pending,
          alerts: [...out.alerts, ...this.#pending.alerts],
          transitions: [...out.transitions, ...this.#pending.transitions],
          messages: [...out.messages, ...this.#pending.messages],
        };
        this.incidents.putBack(out);
        throw err;
      }
    });
    this.#flushing = run.catch(() => undefined);
    return run;
  }
}

/**
 * Live: rows into mcp_audit.alerts / alert_transitions / incidents / incident_transitions, then the
 * messages on the alerts topic. The four inserts go at once (one round trip, not four, before the
 * message: most of an alert's delay on a busy server); the message still waits for all of them.
 */
export function liveSink(deps: { writer: ClickHouse; producer: AuditProducer; topic: string }): AlertSink {
  return {
    async write(out) {
      const inserts: Promise<void>[] = [];
      if (out.alerts.length > 0) inserts.push(deps.writer.insert('alerts', out.alerts));
      if (out.transitions.length > 0) inserts.push(deps.writer.insert('alert_transitions', out.transitions));
      if (out.incidents.length > 0) inserts.push(deps.writer.insert('incidents', out.incidents));
      if (out.incidentTransitions.length > 0)
        inserts.push(deps.writer.insert('incident_transitions', out.incidentTransitions));
      // allSettled: a failed insert fails the flush only once the others are done (no write of this
      // flush is still in flight when it is retried).
      const failed = (await Promise.allSettled(inserts)).find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      if (out.messages.length > 0) {
        await deps.producer.send(
          deps.topic,
          out.messages.map((m) => ({ key: m.dedup_key, value: JSON.stringify(m) })),
        );
      }
    },
  };
}

/**
 * Open alerts of the live detector at start-up: the newest transition per dedup key is not
 * `resolved`. Their window tells the engine which later window may resolve them.
 */
/**
 * Ids of the live alerts the given detectors opened for windows starting at or after `sinceMs`
 * (what a new leader must not open again, see `markRaised`).
 */
export async function loadRaisedAlertIds(
  ch: ClickHouse,
  detectors: readonly string[],
  sinceMs: number,
): Promise<string[]> {
  if (detectors.length === 0) return [];
  const rows = await ch.query<{ alert_id: string }>(sql`
    SELECT DISTINCT alert_id FROM ${dbIdent(ch.database)}.alerts
    WHERE origin = 'live' AND has(${[...detectors]}, detector) AND window_start_ms >= ${Math.max(0, sinceMs)}`);
  return rows.map((r) => r.alert_id);
}

export async function loadOpenAlerts(ch: ClickHouse): Promise<OpenAlert[]> {
  const db = dbIdent(ch.database);
  const rows = await ch.query<{
    alert_id: string;
    dedup_key: string;
    detector: string;
    client_id: string;
    title: string;
    severity: string;
    window_start_ms: string;
    window_end_ms: string;
    created_at_ms: string;
    message: string;
  }>(sql`
    SELECT alert_id, dedup_key, detector, client_id, title, severity, window_start_ms, window_end_ms,
           created_at_ms, message
    FROM ${db}.alerts
    WHERE origin = 'live' AND alert_id IN (
      SELECT alert_id FROM (
        SELECT dedup_key, argMax(alert_id, changed_at_ms) AS alert_id,
               argMax(to_status, (changed_at_ms, to_status = 'resolved')) AS status
        FROM ${db}.alert_transitions
        WHERE actor != 'replay'
        GROUP BY dedup_key
      ) WHERE status != 'resolved'
    )
    LIMIT 1 BY alert_id`);
  return rows.map((r) => ({
    alertId: r.alert_id,
    dedupKey: r.dedup_key,
    detector: r.detector as DetectorName,
    clientId: r.client_id,
    title: r.title,
    severity: r.severity as AlertSeverity,
    windowStart: Number(r.window_start_ms),
    windowEnd: Number(r.window_end_ms),
    openedAt: Number(r.created_at_ms),
    ...storedLabels(r.message),
  }));
}

/** The client labels of a stored alert message (older rows and unparsable ones have none). */
function storedLabels(message: string): { clientLabels?: Record<string, string> } {
  try {
    const m = alertMessageSchema.safeParse(JSON.parse(message));
    return m.success && m.data.client_labels ? { clientLabels: m.data.client_labels } : {};
  } catch {
    return {};
  }
}

/**
 * Labels as the alert contract takes them: at most 32, keys of at most 128 characters (ids), values of
 * at most 256. They came through ingest redaction already; an odd key is dropped, not the alert.
 */
export function labelsFor(labels: Record<string, string>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let n = 0;
  for (const k of Object.keys(labels).sort()) {
    if (n >= 32) break;
    const v = labels[k];
    if (typeof v !== 'string' || k.length === 0 || k.length > 128 || k === '__proto__' || clean(k, 128) !== k)
      continue;
    out[k] = v.slice(0, 256);
    n++;
  }
  return n > 0 ? out : undefined;
}
