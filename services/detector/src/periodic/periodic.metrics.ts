import { Counter, Gauge, Histogram, type Registry } from '@mcp-audit/service-kit';

/** Metrics of the periodic runner; create once per registry. */
export function createPeriodicMetrics(registry: Registry) {
  return {
    windows: new Counter({
      name: 'mcp_audit_detector_periodic_windows_total',
      help: 'Event-time windows evaluated by the periodic detectors',
      labelNames: ['detector', 'mode'],
      registers: [registry],
    }),
    findings: new Counter({
      name: 'mcp_audit_detector_periodic_findings_total',
      help: 'Findings handed to the alert lifecycle by the periodic detectors',
      labelNames: ['detector', 'severity'],
      registers: [registry],
    }),
    resolved: new Counter({
      name: 'mcp_audit_detector_periodic_resolutions_total',
      help: 'Back-in-band signals handed to the alert lifecycle (no-ops when nothing was open)',
      labelNames: ['detector'],
      registers: [registry],
    }),
    expired: new Counter({
      name: 'mcp_audit_detector_periodic_expired_total',
      help: 'Alerts resolved by age (expireMs after they opened, event time)',
      labelNames: ['detector'],
      registers: [registry],
    }),
    failures: new Counter({
      name: 'mcp_audit_detector_periodic_failures_total',
      help: 'Window evaluations that failed (retried on the next tick)',
      labelNames: ['detector'],
      registers: [registry],
    }),
    evaluateSeconds: new Histogram({
      name: 'mcp_audit_detector_periodic_evaluate_seconds',
      help: 'Time to evaluate one window (queries and lifecycle calls)',
      labelNames: ['detector'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    lagSeconds: new Gauge({
      name: 'mcp_audit_detector_periodic_lag_seconds',
      help: 'Event time closed by the watermark but not yet evaluated, per detector',
      labelNames: ['detector'],
      registers: [registry],
    }),
    lastWindowEnd: new Gauge({
      name: 'mcp_audit_detector_periodic_last_window_end_seconds',
      help: 'End (epoch seconds, event time) of the last window evaluated, per detector',
      labelNames: ['detector'],
      registers: [registry],
    }),
  };
}

export type PeriodicMetrics = ReturnType<typeof createPeriodicMetrics>;
