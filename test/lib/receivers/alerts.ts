import { randomUUID } from 'node:crypto';
import { v7 } from './uuid7.js';

/** Alerts as the detector will produce them (the @mcp-audit/schema alert contract). */
export function makeAlert(i: number, tag: string, over: Record<string, unknown> = {}) {
  const now = new Date();
  const start = new Date(now.getTime() - 3_600_000);
  return {
    schema_version: 1,
    type: 'alert',
    alert_id: v7(),
    dedup_key: `${tag}:volume:client-${i}`,
    detector: 'volume',
    client_id: `client-${i}`,
    client_labels: { env: 'prod' },
    title: `Unusual call volume for client-${i}`,
    summary: `client-${i} made 412 tool calls in an hour; it usually makes 10 to 40.`,
    severity: 'high',
    status: 'open',
    window: { start: start.toISOString(), end: now.toISOString() },
    observed: 412,
    expected: { low: 10, high: 40 },
    score: 8.25,
    baseline_version: 'b-2024-01',
    contributors: {
      tools: [
        { value: 'fs.read', count: 300 },
        { value: 'http.post', count: 112 },
      ],
      addresses: [{ value: '203.0.113.7', count: 412 }],
      sessions: [{ value: 's-1', count: 412 }],
    },
    sample_event_ids: [randomUUID(), randomUUID()],
    created_at: now.toISOString(),
    ...over,
  };
}

export function makeStateChange(
  alert: ReturnType<typeof makeAlert>,
  status: 'acknowledged' | 'resolved',
  from = 'open',
) {
  return {
    schema_version: 1,
    type: 'state_change',
    transition_id: v7(),
    alert_id: alert.alert_id,
    dedup_key: alert.dedup_key,
    detector: alert.detector,
    client_id: alert.client_id,
    client_labels: alert.client_labels,
    title: alert.title,
    severity: alert.severity,
    from,
    status,
    changed_at: new Date().toISOString(),
    actor: 'analyst@example.com',
  };
}

/** The alert ids a Slack message names (its console links), and whether it is a digest or a resolve. */
export function slackNames(body: Record<string, unknown>): {
  ids: string[];
  digest: boolean;
  resolved: boolean;
} {
  const raw = JSON.stringify(body);
  const ids = [...raw.matchAll(/\/alerts\/([0-9a-f-]{36})/g)].map((m) => m[1]!);
  return {
    ids: [...new Set(ids)],
    digest: /mcp-audit digest/.test(String(body.text)),
    resolved: /^Resolved/.test(String(body.text)),
  };
}
