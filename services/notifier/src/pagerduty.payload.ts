import { createHash } from 'node:crypto';
import type { AlertMessage, AlertSeverity } from '@mcp-audit/schema';
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

export function buildPagerDutyEvent(
  m: AlertMessage,
  routingKey: string,
  consoleUrl: string,
): Record<string, unknown> {
  const dedup_key = pdDedupKey(m.dedup_key);
  if (m.type === 'state_change') {
    return {
      routing_key: routingKey,
      event_action: m.status === 'resolved' ? 'resolve' : 'acknowledge',
      dedup_key,
    };
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
  };
  const event = {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key,
    client: 'mcp-audit',
    client_url: href,
    links: [{ href, text: 'Open in mcp-audit' }],
    payload: {
      summary: truncate(`[${m.severity}] ${m.title} (client ${m.client_id})`, PD_LIMITS.summary),
      source: truncate(m.client_id, 255),
      severity: PD_SEVERITY[m.severity],
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
