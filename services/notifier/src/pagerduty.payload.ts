import { createHash } from 'node:crypto';
import type { AlertMessage, AlertSeverity } from '@mcp-audit/schema';
import type { IncidentBook } from './incident.book.js';
import { alertUrl, truncate } from './slack.payload.js';

/**
 * PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
 * event_action trigger | acknowledge | resolve; payload.severity critical | error | warning | info;
 * payload.summary at most 1024 characters; dedup_key at most 255 characters; a whole event at most
 * 512 KB. Throughput is limited per routing (integration) key, hence one token bucket per key, shared
 * by the destinations that use it (destinations.ts).
 */
export const PD_LIMITS = { summary: 1024, dedupKey: 255, eventBytes: 512 * 1024 } as const;
export const PD_SEVERITY: Record<AlertSeverity, 'critical' | 'error' | 'warning' | 'info'> = {
  critical: 'critical',
  high: 'error',
  medium: 'warning',
  low: 'info',
  info: 'info',
};

/** The alert's dedup key if it fits, otherwise a stable digest of it. */
export function pdDedupKey(dedupKey: string): string {
  return dedupKey.length <= PD_LIMITS.dedupKey
    ? dedupKey
    : `sha256:${createHash('sha256').update(dedupKey).digest('hex')}`;
}

/** One PagerDuty incident per mcp-audit incident: its id is the dedup_key. */
export const incidentDedupKey = (incidentId: string): string => `mcp-audit-incident:${incidentId}`;

/**
 * The event for one message. An alert that belongs to an incident pages under the incident's key:
 * the first one triggers it, later ones are triggers with the same key (PagerDuty adds them to the
 * open incident's log instead of paging again), and the incident's end resolves it. A human's change
 * names only the alert: `book` maps it to its incident; resolving one alert of several acknowledges.
 */
export function buildPagerDutyEvent(
  m: AlertMessage,
  routingKey: string,
  consoleUrl: string,
  book?: IncidentBook,
): Record<string, unknown> {
  const incidentId = book ? book.note(m) : m.incident_id;
  const dedup_key = incidentId ? incidentDedupKey(incidentId) : pdDedupKey(m.dedup_key);
  if (m.type === 'state_change') {
    let resolve = m.status === 'resolved';
    if (incidentId && resolve)
      resolve = m.incident ? m.incident.status === 'resolved' : (book?.openAlerts(incidentId) ?? 0) === 0;
    return { routing_key: routingKey, event_action: resolve ? 'resolve' : 'acknowledge', dedup_key };
  }
  const href = alertUrl(consoleUrl, m.alert_id);
  const details: Record<string, unknown> = {
    summary: m.summary,
    detector: m.detector,
    client_id: m.client_id,
    observed: m.observed,
    expected: m.expected,
    score: m.score,
    window: m.window,
    baseline_version: m.baseline_version,
    alert_id: m.alert_id,
    console_url: href,
    client_labels: m.client_labels ?? {},
    contributors: m.contributors,
    sample_event_ids: m.sample_event_ids,
    ...(m.incident
      ? {
          incident_id: m.incident.id,
          incident_title: m.incident.title,
          incident_alerts: m.incident.alerts,
          incident_open_alerts: m.incident.open_alerts,
        }
      : {}),
  };
  const severity = m.incident?.severity ?? m.severity;
  const title = m.incident
    ? `${m.incident.title} (${m.incident.alerts} alert${m.incident.alerts === 1 ? '' : 's'}; latest: ${m.detector})`
    : m.title;
  const event = {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key,
    client: 'mcp-audit',
    client_url: href,
    links: [{ href, text: 'Open in mcp-audit' }],
    payload: {
      summary: truncate(`[${severity}] ${title} (client ${m.client_id})`, PD_LIMITS.summary),
      source: truncate(m.client_id, 255),
      severity: PD_SEVERITY[severity],
      timestamp: m.created_at,
      component: m.detector,
      class: m.detector,
      group: 'mcp-audit',
      custom_details: details,
    },
  };
  // Shed the bulkiest evidence first until the event fits (the schema's caps make this rare).
  for (const drop of ['sample_event_ids', 'contributors', 'client_labels', 'summary']) {
    if (Buffer.byteLength(JSON.stringify(event)) <= PD_LIMITS.eventBytes) break;
    delete details[drop];
    details.truncated = true;
  }
  return event;
}
