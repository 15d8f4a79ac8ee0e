import { Counter, Gauge, Histogram, type Registry } from '@mcp-audit/service-kit';

/** Metrics of the pipeline watchdog; create once per registry. */
export function createWatchdogMetrics(registry: Registry) {
  const p = 'mcp_audit_detector_watchdog_';
  return {
    checks: new Counter({
      name: `${p}checks_total`,
      help: 'Wall-clock watchdog checks, by result (ok, failed; stall_failed: the Kafka group position could not be read)',
      labelNames: ['result'],
      registers: [registry],
    }),
    checkSeconds: new Histogram({
      name: `${p}check_seconds`,
      help: 'Time of one watchdog check (ClickHouse queries, Kafka admin calls, alerts made durable)',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    busySources: new Gauge({
      name: `${p}busy_sources`,
      help: 'Sources normally busy at this time (expected at least minExpected events in the window)',
      registers: [registry],
    }),
    silentSources: new Gauge({
      name: `${p}silent_sources`,
      help: 'Busy sources with nothing stored in the last window (wall clock)',
      registers: [registry],
    }),
    ingesterLag: new Gauge({
      name: `${p}ingester_lag_messages`,
      help: "Messages waiting for the ingester's consumer group (Kafka admin API: end minus committed offsets)",
      registers: [registry],
    }),
  };
}
export type WatchdogMetrics = ReturnType<typeof createWatchdogMetrics>;
