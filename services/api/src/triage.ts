import { randomUUID } from 'node:crypto';
import type { ClickHouse } from '@mcp-audit/clickhouse';
import type { AuditProducer } from '@mcp-audit/kafka';
import { alertStateChangeSchema, type AlertStateChange, type AlertStatus } from '@mcp-audit/schema';
import { ApiError } from './errors.js';
import { toAlertSummary, toTransition, type AlertRow, type TransitionRow } from './alerts.queries.js';

export const TRIAGE_ACTIONS = ['acknowledge', 'assign', 'note', 'resolve'] as const;
export type TriageAction = (typeof TRIAGE_ACTIONS)[number];
export const RESOLUTIONS = ['true_positive', 'benign', 'false_positive', 'duplicate'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

export interface TriageRequest {
  action: TriageAction;
  actor: string;
  note?: string | undefined;
  assignee?: string | undefined;
  reason?: Resolution | undefined;
}

/**
 * What a triage action does to an alert in a given state: the target status, or a conflict.
 * acknowledge: open → acknowledged; resolve: open|acknowledged → resolved (final: a human resolve is
 * never undone, and the detector learns of it and raises a new alert next time); assign: any state but
 * resolved, status unchanged; note: any state, status unchanged.
 */
export function nextStatus(from: AlertStatus, action: TriageAction): AlertStatus | { conflict: string } {
  switch (action) {
    case 'acknowledge':
      return from === 'open' ? 'acknowledged' : { conflict: `the alert is already ${from}` };
    case 'resolve':
      return from === 'resolved' ? { conflict: 'the alert is already resolved' } : 'resolved';
    case 'assign':
      return from === 'resolved' ? { conflict: 'the alert is resolved' } : from;
    case 'note':
      return from;
  }
}

/** An alert_transitions row as the detector writes it, plus the triage columns of migration 006. */
export interface TransitionInsert {
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
  action: string;
  assignee: string;
  resolution: string;
}

const chDateTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

export function buildTransition(
  alert: AlertRow,
  from: AlertStatus,
  to: AlertStatus,
  req: TriageRequest,
  now: number,
): { row: TransitionInsert; message: AlertStateChange } {
  const id = randomUUID();
  const row: TransitionInsert = {
    transition_id: id,
    alert_id: alert.alert_id,
    dedup_key: alert.dedup_key,
    detector: alert.detector,
    client_id: alert.client_id,
    severity: alert.severity,
    from_status: from,
    to_status: to,
    changed_at: chDateTime(now),
    changed_at_ms: now,
    actor: req.actor,
    note: req.note ?? '',
    written_at: chDateTime(now),
    action: req.action,
    assignee: req.action === 'assign' ? (req.assignee ?? '') : '',
    resolution: req.action === 'resolve' ? (req.reason ?? '') : '',
  };
  const message = alertStateChangeSchema.parse({
    schema_version: 1,
    type: 'state_change',
    transition_id: id,
    alert_id: alert.alert_id,
    dedup_key: alert.dedup_key,
    detector: alert.detector,
    client_id: alert.client_id,
    title: alert.title,
    severity: alert.severity,
    from,
    status: to,
    changed_at: new Date(now).toISOString(),
    actor: req.actor,
    ...(req.note ? { note: req.note } : {}),
    action: req.action,
    ...(req.action === 'assign' && req.assignee ? { assignee: req.assignee } : {}),
    ...(req.action === 'resolve' && req.reason ? { resolution: req.reason } : {}),
  });
  return { row, message };
}

export interface TriageDeps {
  writer: ClickHouse;
  producer: AuditProducer;
  alertsTopic: string;
  now?: () => number;
}

/**
 * Applies one triage action: the transition row first (the record of truth, which the detector
 * re-reads), then the message on the alerts topic (what the notifier acts on), both awaited. Actions
 * on one alert are serialized in this process so two clicks cannot both resolve it.
 */
export function createTriage(deps: TriageDeps) {
  const locks = new Map<string, Promise<unknown>>();
  const now = deps.now ?? Date.now;
  async function apply(
    load: () => Promise<AlertRow | undefined>,
    alertId: string,
    req: TriageRequest,
  ): Promise<{ alert: ReturnType<typeof toAlertSummary>; transition: ReturnType<typeof toTransition> }> {
    const prev = locks.get(alertId) ?? Promise.resolve();
    const run = prev
      .catch(() => undefined)
      .then(async () => {
        const alert = await load();
        if (!alert) throw new ApiError('AUDIT_ERR_NOT_FOUND', `alert ${alertId} not found`);
        const from = (alert.status || 'open') as AlertStatus;
        const to = nextStatus(from, req.action);
        if (typeof to === 'object') throw new ApiError('AUDIT_ERR_CONFLICT', `${req.action}: ${to.conflict}`);
        const t = now();
        const { row, message } = buildTransition(alert, from, to, req, t);
        await deps.writer.insert('alert_transitions', [row]);
        await deps.producer.send(deps.alertsTopic, [
          { key: alert.dedup_key, value: JSON.stringify(message) },
        ]);
        const updated: AlertRow = {
          ...alert,
          status: to,
          assignee: req.action === 'assign' ? row.assignee : alert.assignee,
          resolution: req.action === 'resolve' ? row.resolution : alert.resolution,
          updated_ms: String(t),
        };
        const tr: TransitionRow = { ...row, changed_at_ms: String(t) };
        return { alert: toAlertSummary(updated), transition: toTransition(tr) };
      });
    locks.set(alertId, run);
    try {
      return await run;
    } finally {
      if (locks.get(alertId) === run) locks.delete(alertId);
    }
  }
  return { apply };
}
export type Triage = ReturnType<typeof createTriage>;
