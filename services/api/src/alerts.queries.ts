import { z } from 'zod';
import { dbIdent, join, sql, tuple, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import { ALERT_SEVERITIES, ALERT_STATUSES } from '@mcp-audit/schema';
import { decodeCursor, encodeCursor, list, many, rangeQuery, UUID_RE, type Range } from './query.params.js';

/**
 * Alerts: rows of mcp_audit.alerts (one per opened alert; LIMIT 1 BY alert_id because a retried
 * detector flush may write one twice) with their state folded from the append-only alert_transitions:
 * resolved if any transition resolved it, else acknowledged if any acknowledged it, else open; the
 * assignee of the newest assign; the resolution of the resolve.
 */

export const alertFilterQuery = {
  ...rangeQuery,
  status: many(z.enum(ALERT_STATUSES)),
  severity: many(z.enum(ALERT_SEVERITIES)),
  detector: many(),
  client: many(),
};
export const alertFilterSchema = z.object(alertFilterQuery);
export type AlertFilter = z.infer<typeof alertFilterSchema>;

const STATE = (db: SqlFragment, ids: SqlFragment) => sql`
  SELECT alert_id AS s_alert_id,
         multiIf(max(to_status = 'resolved') = 1, 'resolved', max(to_status = 'acknowledged') = 1, 'acknowledged', 'open') AS status,
         argMaxIf(assignee, changed_at_ms, action = 'assign') AS assignee,
         argMaxIf(resolution, changed_at_ms, to_status = 'resolved' AND resolution != '') AS resolution,
         max(changed_at_ms) AS updated_ms
  FROM ${db}.alert_transitions
  WHERE alert_id IN (${ids})
  GROUP BY alert_id`;

const ALERT_COLUMNS = sql`alert_id, dedup_key, detector, client_id, title, summary, severity, window_start_ms,
  window_end_ms, observed, expected_low, expected_high, score, baseline_version, contributor_tools,
  contributor_addresses, contributor_sessions, sample_event_ids, created_at_ms`;

export interface AlertRow {
  alert_id: string;
  dedup_key: string;
  detector: string;
  client_id: string;
  title: string;
  summary: string;
  severity: string;
  window_start_ms: string;
  window_end_ms: string;
  observed: number;
  expected_low: number;
  expected_high: number;
  score: number;
  baseline_version: string;
  contributor_tools: string;
  contributor_addresses: string;
  contributor_sessions: string;
  sample_event_ids: string[];
  created_at_ms: string;
  status: string;
  assignee: string;
  resolution: string;
  updated_ms: string;
}

const iso = (ms: string | number) => new Date(Number(ms)).toISOString();

export function toAlertSummary(r: AlertRow) {
  return {
    alert_id: r.alert_id,
    dedup_key: r.dedup_key,
    detector: r.detector,
    client_id: r.client_id,
    title: r.title,
    summary: r.summary,
    severity: r.severity,
    // An alert without transitions (written, transition not yet) is open.
    status: (r.status || 'open') as 'open' | 'acknowledged' | 'resolved',
    assignee: r.assignee || null,
    resolution: r.resolution || null,
    created_at: iso(r.created_at_ms),
    updated_at: iso(Math.max(Number(r.updated_ms) || 0, Number(r.created_at_ms))),
    window: { start: iso(r.window_start_ms), end: iso(r.window_end_ms) },
  };
}
export type AlertSummary = ReturnType<typeof toAlertSummary>;

const contributors = (s: string): Array<{ value: string; count: number }> => {
  try {
    const v = JSON.parse(s) as unknown;
    return Array.isArray(v) ? (v as Array<{ value: string; count: number }>) : [];
  } catch {
    return [];
  }
};

export function toAlertDetail(r: AlertRow) {
  return {
    ...toAlertSummary(r),
    observed: r.observed,
    expected: { low: r.expected_low, high: r.expected_high },
    score: r.score,
    baseline_version: r.baseline_version,
    contributors: {
      tools: contributors(r.contributor_tools),
      addresses: contributors(r.contributor_addresses),
      sessions: contributors(r.contributor_sessions),
    },
    sample_event_ids: r.sample_event_ids,
  };
}

function alertWhere(f: AlertFilter, range: Range | undefined): SqlFragment {
  const parts: SqlFragment[] = [sql`1`];
  if (range) {
    parts.push(sql`created_at >= ${new Date(Math.floor(range.from / 1000) * 1000)}
      AND created_at_ms >= ${range.from} AND created_at_ms < ${range.to}`);
  }
  const sev = list(f.severity);
  if (sev.length) parts.push(sql`severity IN ${tuple(sev)}`);
  const det = list(f.detector);
  if (det.length) parts.push(sql`detector IN ${tuple(det)}`);
  const cl = list(f.client);
  if (cl.length) parts.push(sql`client_id IN ${tuple(cl)}`);
  return join(parts, sql` AND `);
}

const alertCursor = z.tuple([z.number().int(), z.string().max(64)]);

/** Alerts matching a filter, newest first, keyset over (created_at_ms, alert_id). */
export async function listAlerts(
  ch: ClickHouse,
  f: AlertFilter,
  range: Range | undefined,
  opts: { limit: number; cursor?: string | undefined; ids?: string[] },
): Promise<{ items: AlertRow[]; next_cursor: string | null }> {
  const db = dbIdent(ch.database);
  const parts = [alertWhere(f, range)];
  const c = decodeCursor(opts.cursor, alertCursor);
  if (c) parts.push(sql`(created_at_ms < ${c[0]} OR (created_at_ms = ${c[0]} AND alert_id < ${c[1]}))`);
  if (opts.ids) parts.push(opts.ids.length ? sql`alert_id IN ${tuple(opts.ids)}` : sql`0`);
  const where = join(parts, sql` AND `);
  const statuses = list(f.status);
  // NOTE: 18.16 needs an explicit join strictness (and a readonly user cannot set a default).
  const rows = await ch.query<AlertRow>(sql`
    SELECT * FROM (
      SELECT ${ALERT_COLUMNS} FROM ${db}.alerts WHERE ${where}
      ORDER BY created_at_ms DESC, alert_id DESC LIMIT 1 BY alert_id
    ) AS a
    ANY LEFT JOIN (${STATE(db, sql`SELECT alert_id FROM ${db}.alerts WHERE ${where}`)}) AS s
    ON a.alert_id = s.s_alert_id
    WHERE ${statuses.length ? sql`if(status = '', 'open', status) IN ${tuple(statuses)}` : sql`1`}
    ORDER BY created_at_ms DESC, alert_id DESC
    LIMIT ${opts.limit + 1}`);
  const more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return {
    items: page,
    next_cursor: more && last ? encodeCursor([Number(last.created_at_ms), last.alert_id]) : null,
  };
}

export async function alertById(ch: ClickHouse, id: string): Promise<AlertRow | undefined> {
  const r = await listAlerts(ch, {}, undefined, { limit: 1, ids: [id] });
  return r.items[0];
}

export interface TransitionRow {
  transition_id: string;
  alert_id: string;
  from_status: string;
  to_status: string;
  action: string;
  actor: string;
  note: string;
  assignee: string;
  resolution: string;
  changed_at_ms: string;
}

/** The action of a transition; the detector's rows predate the column and are derived. */
export function actionOf(t: Pick<TransitionRow, 'action' | 'to_status' | 'actor' | 'note'>): string {
  if (t.action) return t.action;
  if (t.to_status === 'open') return 'open';
  if (t.to_status === 'acknowledged') return 'acknowledge';
  if (t.to_status === 'resolved') return /expire/i.test(t.note) ? 'expire' : 'auto_resolve';
  return t.to_status;
}

export function toTransition(t: TransitionRow) {
  return {
    transition_id: t.transition_id,
    alert_id: t.alert_id,
    action: actionOf(t),
    from_status: t.from_status || null,
    to_status: t.to_status,
    actor: t.actor,
    note: t.note || null,
    assignee: t.assignee || null,
    resolution: t.resolution || null,
    changed_at: iso(t.changed_at_ms),
  };
}
export type Transition = ReturnType<typeof toTransition>;

export async function transitionsOf(ch: ClickHouse, alertId: string): Promise<TransitionRow[]> {
  const db = dbIdent(ch.database);
  return ch.query<TransitionRow>(sql`
    SELECT transition_id, alert_id, from_status, to_status, action, actor, note, assignee, resolution,
           changed_at_ms
    FROM ${db}.alert_transitions WHERE alert_id = ${alertId}
    ORDER BY changed_at_ms, written_at LIMIT 1 BY transition_id LIMIT 1000`);
}

export async function deliveriesOf(ch: ClickHouse, alertId: string) {
  const db = dbIdent(ch.database);
  const rows = await ch.query<{
    destination_id: string;
    destination_kind: string;
    action: string;
    attempt: number;
    status: string;
    http_status: number;
    error: string;
    at_s: number;
    at_ms: number;
  }>(sql`
    SELECT destination_id, destination_kind, action, attempt, status, http_status, error,
           toUInt32(at) AS at_s, at_ms
    FROM ${db}.alert_deliveries WHERE alert_id = ${alertId}
    ORDER BY at, at_ms LIMIT 1000`);
  return rows.map((r) => ({
    destination: r.destination_id,
    kind: r.destination_kind,
    action: r.action,
    attempt: r.attempt,
    status: r.status,
    http_status: r.http_status || null,
    error: r.error || null,
    at: new Date(Number(r.at_s) * 1000 + Number(r.at_ms)).toISOString(),
  }));
}

export const isUuid = (s: string) => UUID_RE.test(s);
