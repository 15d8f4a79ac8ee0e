import { z } from 'zod';
import { dbIdent, join, sql, tuple, type ClickHouse, type SqlFragment } from '@mcp-audit/clickhouse';
import { ALERT_SEVERITIES, INCIDENT_STATUSES } from '@mcp-audit/schema';
import { decodeCursor, encodeCursor, list, many, rangeQuery, type Range } from './query.params.js';

/**
 * Incidents (services/detector groups related alerts into one): rows of mcp_audit.incidents (one per
 * opened incident) with their state folded from the append-only incident_transitions timeline: the
 * row with the highest `seq` holds the incident's current severity, status, title and counts. LIMIT 1
 * BY transition_id because a retried detector flush may write a row twice.
 */

export const incidentFilterQuery = {
  ...rangeQuery,
  status: many(z.enum(INCIDENT_STATUSES)),
  severity: many(z.enum(ALERT_SEVERITIES)),
  detector: many(),
  client: many(),
};
export const incidentFilterSchema = z.object(incidentFilterQuery);
export type IncidentFilter = z.infer<typeof incidentFilterSchema>;

export interface IncidentRow {
  incident_id: string;
  title: string;
  severity: string;
  status: string;
  alerts: string;
  open_alerts: string;
  opened_ms: string;
  updated_ms: string;
  start_ms: string;
  end_ms: string;
  clients: string[];
  detectors: string[];
}

const iso = (ms: string | number) => new Date(Number(ms)).toISOString();

export function toIncidentSummary(r: IncidentRow) {
  return {
    incident_id: r.incident_id,
    title: r.title,
    severity: r.severity,
    status: r.status as 'open' | 'resolved',
    alerts: Number(r.alerts),
    open_alerts: Number(r.open_alerts),
    clients: [...r.clients].sort().slice(0, 50),
    detectors: [...r.detectors].sort(),
    opened_at: iso(r.opened_ms),
    updated_at: iso(r.updated_ms),
    window: { start: iso(r.start_ms), end: iso(r.end_ms) },
  };
}
export type IncidentSummary = ReturnType<typeof toIncidentSummary>;

const incidentCursor = z.tuple([z.number().int(), z.string().max(64)]);

/** Incidents opened in the range (newest first), keyset over (opened_ms, incident_id). */
export async function listIncidents(
  ch: ClickHouse,
  f: IncidentFilter,
  range: Range | undefined,
  opts: { limit: number; cursor?: string | undefined; ids?: string[] },
): Promise<{ items: IncidentRow[]; next_cursor: string | null }> {
  const db = dbIdent(ch.database);
  const opened: SqlFragment[] = [sql`1`];
  if (range)
    opened.push(sql`opened_at >= ${new Date(Math.floor(range.from / 1000) * 1000)}
      AND opened_at_ms >= ${range.from} AND opened_at_ms < ${range.to}`);
  if (opts.ids) opened.push(opts.ids.length ? sql`incident_id IN ${tuple(opts.ids)}` : sql`0`);
  const outer: SqlFragment[] = [sql`1`];
  const st = list(f.status);
  if (st.length) outer.push(sql`status IN ${tuple(st)}`);
  const sev = list(f.severity);
  if (sev.length) outer.push(sql`severity IN ${tuple(sev)}`);
  const det = list(f.detector);
  if (det.length)
    outer.push(
      sql`hasAny(detectors, ${sql`[${join(
        det.map((d) => sql`${d}`),
        sql`, `,
      )}]`})`,
    );
  const cl = list(f.client);
  if (cl.length)
    outer.push(
      sql`hasAny(clients, ${sql`[${join(
        cl.map((c) => sql`${c}`),
        sql`, `,
      )}]`})`,
    );
  const c = decodeCursor(opts.cursor, incidentCursor);
  if (c) outer.push(sql`(opened_ms < ${c[0]} OR (opened_ms = ${c[0]} AND incident_id < ${c[1]}))`);
  const rows = await ch.query<IncidentRow>(sql`
    SELECT * FROM (
      SELECT incident_id, argMax(title, seq) AS title, argMax(severity, seq) AS severity,
             argMax(status, seq) AS status, argMax(alerts, seq) AS alerts,
             argMax(open_alerts, seq) AS open_alerts, min(at_ms) AS opened_ms, max(at_ms) AS updated_ms,
             min(window_start_ms) AS start_ms, max(window_end_ms) AS end_ms,
             groupUniqArray(client_id) AS clients, groupUniqArray(detector) AS detectors
      FROM (
        SELECT * FROM ${db}.incident_transitions
        WHERE incident_id IN (SELECT incident_id FROM ${db}.incidents WHERE ${join(opened, sql` AND `)})
        LIMIT 1 BY transition_id
      )
      GROUP BY incident_id
    )
    WHERE ${join(outer, sql` AND `)}
    ORDER BY opened_ms DESC, incident_id DESC
    LIMIT ${opts.limit + 1}`);
  const more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit);
  const last = page[page.length - 1];
  return {
    items: page,
    next_cursor: more && last ? encodeCursor([Number(last.opened_ms), last.incident_id]) : null,
  };
}

export async function incidentById(ch: ClickHouse, id: string): Promise<IncidentRow | undefined> {
  return (await listIncidents(ch, {}, undefined, { limit: 1, ids: [id] })).items[0];
}

export interface IncidentTimelineRow {
  transition_id: string;
  seq: string;
  kind: string;
  alert_id: string;
  detector: string;
  client_id: string;
  alert_severity: string;
  alert_title: string;
  severity: string;
  status: string;
  alerts: string;
  open_alerts: string;
  at_ms: string;
  note: string;
}

export async function timelineOf(ch: ClickHouse, incidentId: string): Promise<IncidentTimelineRow[]> {
  const db = dbIdent(ch.database);
  return ch.query<IncidentTimelineRow>(sql`
    SELECT transition_id, seq, kind, alert_id, detector, client_id, alert_severity, alert_title, severity,
           status, alerts, open_alerts, at_ms, note
    FROM ${db}.incident_transitions WHERE incident_id = ${incidentId}
    ORDER BY seq, at_ms LIMIT 1 BY transition_id LIMIT 2000`);
}

export function toTimelineEntry(t: IncidentTimelineRow) {
  return {
    seq: Number(t.seq),
    kind: t.kind,
    at: iso(t.at_ms),
    alert_id: t.alert_id,
    alert_title: t.alert_title,
    detector: t.detector,
    client_id: t.client_id,
    alert_severity: t.alert_severity,
    severity: t.severity,
    status: t.status,
    alerts: Number(t.alerts),
    open_alerts: Number(t.open_alerts),
    note: t.note || null,
  };
}
