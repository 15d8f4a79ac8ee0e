import { alertSchema, type Alert } from '@mcp-audit/schema';

/**
 * A valid `volume` alert numbered `n` (alert id, dedup key and client follow it), for the notifier's
 * unit tests. `idPrefix` keeps the alert ids of different test files apart.
 */
export function sampleAlert(n: number, over: Partial<Alert> = {}, idPrefix = '0190a000'): Alert {
  return alertSchema.parse({
    schema_version: 1,
    type: 'alert',
    alert_id: `${idPrefix}-0000-7000-8000-${String(n).padStart(12, '0')}`,
    dedup_key: `volume:c-${n}`,
    detector: 'volume',
    client_id: `c-${n}`,
    title: 'Unusual volume',
    summary: 'More calls than usual',
    severity: 'high',
    status: 'open',
    window: { start: '2024-01-01T00:00:00.000Z', end: '2024-01-01T01:00:00.000Z' },
    observed: 412,
    expected: { low: 10, high: 40 },
    score: 8,
    baseline_version: 'b1',
    created_at: '2024-01-01T01:00:00.000Z',
    ...over,
  });
}
