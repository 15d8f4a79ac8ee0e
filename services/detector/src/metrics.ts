import { Counter, Gauge, Histogram, type Registry } from '@mcp-audit/service-kit';
import type { LifecycleMetrics } from './alert.lifecycle.js';

/** The detector's Prometheus metrics, defined once. */
export function createDetectorMetrics(registry: Registry) {
  const p = 'mcp_audit_detector_';
  const m = {
    events: new Counter({
      name: `${p}events_total`,
      help: 'Events fed to the streaming engine',
      registers: [registry],
    }),
    late: new Counter({
      name: `${p}late_events_total`,
      help: 'Events whose window had already closed (beyond allowed lateness): counted, not judged',
      registers: [registry],
    }),
    invalid: new Counter({
      name: `${p}invalid_events_total`,
      help: 'Messages that are not valid events (the ingester dead-letters them)',
      registers: [registry],
    }),
    duplicates: new Counter({
      name: `${p}duplicate_events_total`,
      help: 'Redelivered events skipped',
      registers: [registry],
    }),
    alertsOpened: new Counter({
      name: `${p}alerts_opened_total`,
      help: 'Alerts opened',
      labelNames: ['detector', 'severity'],
      registers: [registry],
    }),
    alertsSuppressed: new Counter({
      name: `${p}alerts_suppressed_total`,
      help: 'Findings suppressed because an alert with the same dedup key is open',
      labelNames: ['detector'],
      registers: [registry],
    }),
    alertsResolved: new Counter({
      name: `${p}alerts_resolved_total`,
      help: 'Alerts resolved (signal back in band)',
      labelNames: ['detector'],
      registers: [registry],
    }),
    clients: new Gauge({
      name: `${p}clients`,
      help: 'Clients tracked by the streaming engine',
      registers: [registry],
    }),
    windows: new Gauge({
      name: `${p}open_windows`,
      help: 'Event-time windows not yet closed',
      registers: [registry],
    }),
    openAlerts: new Gauge({
      name: `${p}open_alerts`,
      help: 'Alerts open in this instance',
      registers: [registry],
    }),
    watermarkLag: new Gauge({
      name: `${p}watermark_lag_seconds`,
      help: 'Wall clock minus the event-time watermark, per partition',
      labelNames: ['partition'],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: `${p}batch_seconds`,
      help: 'Time to handle a chunk of events, alerts made durable included',
      buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: `${p}batch_size`,
      help: 'Events per handled chunk',
      buckets: [1, 10, 50, 100, 500, 1000, 5000],
      registers: [registry],
    }),
  };
  const lifecycle: LifecycleMetrics = {
    opened: (detector, severity) => m.alertsOpened.inc({ detector, severity }),
    suppressed: (detector) => m.alertsSuppressed.inc({ detector }),
    resolved: (detector) => m.alertsResolved.inc({ detector }),
  };
  return { ...m, lifecycle };
}
export type DetectorMetrics = ReturnType<typeof createDetectorMetrics>;
