import { Counter, Gauge, Histogram, type Registry } from '@mcp-audit/service-kit';

export function createIngesterMetrics(registry: Registry) {
  return {
    consumed: new Counter({
      name: 'mcp_audit_ingester_consumed_total',
      help: 'Messages read from the events topic',
      registers: [registry],
    }),
    written: new Counter({
      name: 'mcp_audit_ingester_written_total',
      help: 'Event rows acknowledged by ClickHouse',
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'mcp_audit_ingester_dead_lettered_total',
      help: 'Messages sent to the dead-letter topic, by reason code',
      labelNames: ['code'],
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'mcp_audit_ingester_duplicates_total',
      help: 'Copies not written again: same event_id and content as a stored or in-flight copy',
      registers: [registry],
    }),
    lookupSeconds: new Histogram({
      name: 'mcp_audit_ingester_event_id_lookup_seconds',
      help: 'Time to check one chunk of event ids against mcp_audit.event_ids',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    batchRows: new Histogram({
      name: 'mcp_audit_ingester_insert_rows',
      help: 'Rows per ClickHouse insert',
      buckets: [1, 10, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000],
      registers: [registry],
    }),
    flushSeconds: new Histogram({
      name: 'mcp_audit_ingester_insert_seconds',
      help: 'Time to insert a batch into ClickHouse, retries included',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    insertRetries: new Counter({
      name: 'mcp_audit_ingester_insert_retries_total',
      help: 'ClickHouse insert attempts that failed with a transient error',
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'mcp_audit_ingester_lag_messages',
      help: 'High watermark minus the last consumed offset, per partition',
      labelNames: ['partition'],
      registers: [registry],
    }),
    bufferedRows: new Gauge({
      name: 'mcp_audit_ingester_buffered_rows',
      help: 'Rows waiting for the next ClickHouse insert',
      registers: [registry],
    }),
  };
}

export type IngesterMetrics = ReturnType<typeof createIngesterMetrics>;
