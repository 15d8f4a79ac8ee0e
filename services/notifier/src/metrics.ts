import { Counter, Gauge, Histogram, type Registry } from '@mcp-audit/service-kit';

export function createNotifierMetrics(registry: Registry) {
  return {
    consumed: new Counter({
      name: 'mcp_audit_notifier_consumed_total',
      help: 'Messages read from the alerts topic',
      registers: [registry],
    }),
    invalid: new Counter({
      name: 'mcp_audit_notifier_invalid_total',
      help: 'Alert messages that failed the contract and went to the dead-letter topic',
      registers: [registry],
    }),
    parked: new Counter({
      name: 'mcp_audit_notifier_parked_total',
      help: 'Delivery jobs written to the outbox',
      registers: [registry],
    }),
    suppressed: new Counter({
      name: 'mcp_audit_notifier_suppressed_total',
      help: 'Deliveries not sent by policy (minimum severity, quiet hours)',
      labelNames: ['destination', 'reason'],
      registers: [registry],
    }),
    attempts: new Counter({
      name: 'mcp_audit_notifier_attempts_total',
      help: 'Delivery requests by result (ok, retry, error)',
      labelNames: ['destination', 'result'],
      registers: [registry],
    }),
    delivered: new Counter({
      name: 'mcp_audit_notifier_delivered_total',
      help: 'Alert messages delivered (each alert folded into a digest counts once)',
      labelNames: ['destination'],
      registers: [registry],
    }),
    digests: new Counter({
      name: 'mcp_audit_notifier_digests_total',
      help: 'Slack digest messages sent because alerts arrived faster than the webhook rate',
      labelNames: ['destination'],
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'mcp_audit_notifier_dead_lettered_total',
      help: 'Deliveries that exhausted their retry budget and were kept in the dead-letter topic',
      labelNames: ['destination'],
      registers: [registry],
    }),
    unreadable: new Counter({
      name: 'mcp_audit_notifier_unreadable_parked_total',
      help: 'Parked jobs whose stored message no longer parses, kept in the dead-letter topic instead',
      labelNames: ['destination'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'mcp_audit_notifier_request_seconds',
      help: 'Time of one delivery request',
      labelNames: ['destination'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    pending: new Gauge({
      name: 'mcp_audit_notifier_pending_jobs',
      help: 'Parked delivery jobs not yet delivered or dead-lettered',
      registers: [registry],
    }),
    recordRowsBuffered: new Gauge({
      name: 'mcp_audit_notifier_delivery_rows_buffered',
      help: 'alert_deliveries rows waiting for ClickHouse',
      registers: [registry],
    }),
    recordPaused: new Gauge({
      name: 'mcp_audit_notifier_delivery_paused',
      help: '1 while alert_deliveries rows are over their bound in memory and no new delivery attempt starts',
      registers: [registry],
    }),
  };
}

export type NotifierMetrics = ReturnType<typeof createNotifierMetrics>;
