import type { AuditProducer, Kafka, OutgoingMessage } from '@mcp-audit/kafka';
import { createBatchConsumer, createProducer } from '@mcp-audit/kafka';
import type { Logger, Registry } from '@mcp-audit/service-kit';
import { createAlertsHandler } from './alerts.consumer.js';
import type { RoutesFile } from './alerts.router.js';
import { DeliveriesWriter } from './deliveries.writer.js';
import { DeliveryEngine, type DeliveryRow } from './delivery.engine.js';
import type { DeliveryJob, Destination, SendOutcome } from './destinations.js';
import { createNotifierMetrics } from './metrics.js';
import type { Outbox, UnreadableJob } from './outbox.js';
import type { AssignmentListener } from '@mcp-audit/kafka';

export interface NotifierConfig {
  groupId: string;
  alertsTopic: string;
  dlqTopic: string;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Jobs held in memory at most, shared equally among the destinations. */
  maxPending: number;
  fromBeginning?: boolean;
}

export interface NotifierDeps {
  kafka: Kafka;
  routes: RoutesFile;
  destinations: Map<string, Destination>;
  outbox: Outbox;
  /** Appends rows to mcp_audit.alert_deliveries as the writer user. */
  insertDeliveries: (rows: DeliveryRow[]) => Promise<void>;
  log: Logger;
  registry: Registry;
  producer?: AuditProducer;
}

export interface Notifier {
  start(): Promise<void>;
  /** Stop consuming, finish the requests in flight, write the attempt rows, disconnect. */
  stop(): Promise<void>;
  health(): { ok: boolean; details: Record<string, unknown> };
  engine: DeliveryEngine;
}

/** The dead-letter message of a parked job whose message no longer parses: kept as stored, with why. */
export function unreadableDeadLetter(
  job: UnreadableJob,
  alertsTopic: string,
  now = new Date(),
): OutgoingMessage {
  return {
    key: job.dedupKey || null,
    value: job.raw,
    headers: {
      'mcp-audit-dlq-code': 'AUDIT_ERR_UNREADABLE_PARKED',
      'mcp-audit-dlq-reason': job.reason.slice(0, 500),
      'mcp-audit-destination-id': job.destinationId,
      'mcp-audit-job-id': job.jobId,
      'mcp-audit-source-topic': alertsTopic,
      'mcp-audit-source-partition': String(job.source.partition),
      'mcp-audit-source-offset': job.source.offset,
      'mcp-audit-dlq-at': now.toISOString(),
    },
  };
}

export function buildNotifier(cfg: NotifierConfig, deps: NotifierDeps): Notifier {
  const log = deps.log.child({ component: 'notifier' });
  const metrics = createNotifierMetrics(deps.registry);
  const producer = deps.producer ?? createProducer(deps.kafka);
  const writer = new DeliveriesWriter({
    insert: deps.insertDeliveries,
    log,
    onBuffered: (n) => metrics.recordRowsBuffered.set(n),
    onPaused: (paused) => metrics.recordPaused.set(paused ? 1 : 0),
  });
  const recordPaused = () => writer.paused();
  const record = (rows: DeliveryRow[]) => writer.add(rows);
  const deadLetter = async (job: DeliveryJob, last: SendOutcome) => {
    await producer.send(cfg.dlqTopic, [
      {
        key: job.message.dedup_key,
        value: JSON.stringify(job.message),
        headers: {
          'mcp-audit-dlq-code': 'AUDIT_ERR_DELIVERY_EXHAUSTED',
          'mcp-audit-dlq-reason': (last.error ?? 'delivery failed').slice(0, 500),
          'mcp-audit-destination-id': job.destinationId,
          'mcp-audit-job-id': job.jobId,
          'mcp-audit-attempts': String(job.attempts),
          'mcp-audit-http-status': String(last.httpStatus),
          'mcp-audit-dlq-at': new Date().toISOString(),
        },
      },
    ]);
  };
  const deadLetterUnreadable = (job: UnreadableJob) =>
    producer.send(cfg.dlqTopic, [unreadableDeadLetter(job, cfg.alertsTopic)]);
  const engine = new DeliveryEngine(
    {
      groupId: cfg.groupId,
      topic: cfg.alertsTopic,
      maxAttempts: cfg.maxAttempts,
      backoffBaseMs: cfg.backoffBaseMs,
      backoffMaxMs: cfg.backoffMaxMs,
      maxPending: cfg.maxPending,
    },
    {
      destinations: deps.destinations,
      record,
      deadLetter,
      deadLetterUnreadable,
      recordPaused,
      outbox: deps.outbox,
      log,
      metrics,
    },
  );
  const handler = createAlertsHandler({
    groupId: cfg.groupId,
    dlqTopic: cfg.dlqTopic,
    routes: deps.routes,
    destinations: deps.destinations,
    outbox: deps.outbox,
    engine,
    producer,
    record,
    recordPaused,
    log,
    metrics,
  });
  // Parked jobs follow their partition: loaded by whoever is assigned it, dropped on revocation.
  let memberId: string | undefined;
  const assignments: AssignmentListener = {
    joined(partitions, member) {
      // A new member id means the group forgot this member in between: what it held may have been
      // someone else's meanwhile, so start over rather than trust the jobs in memory.
      if (memberId !== undefined && memberId !== member) engine.revokeAll();
      memberId = member;
      const { assigned, revoked } = engine.assign(partitions);
      log.info({ partitions, assigned, revoked }, 'partitions assigned');
      // The new owner skips jobs with a final row: write this instance's rows now, not in 250 ms.
      if (revoked.length > 0) void writer.flush();
    },
    left(reason) {
      memberId = undefined;
      const { revoked } = engine.revokeAll();
      if (revoked.length > 0) {
        log.info({ reason, revoked }, 'partitions released');
        void writer.flush();
      }
    },
  };
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    assignments,
    groupId: cfg.groupId,
    topic: cfg.alertsTopic,
    fromBeginning: cfg.fromBeginning ?? true,
    handler,
    log,
    chunkSize: 500,
    partitionsConsumedConcurrently: 3,
  });
  let started = false;
  let consuming = false;
  let stopped: Promise<void> | undefined;

  return {
    engine,
    async start() {
      await producer.connect();
      engine.start();
      // Set before the join completes: a stop during start-up must still stop the consumer.
      consuming = true;
      await consumer.start();
      started = true;
      log.info(
        { topic: cfg.alertsTopic, groupId: cfg.groupId, destinations: deps.destinations.size },
        'notifier started',
      );
    },
    stop() {
      stopped ??= (async () => {
        started = false;
        // The batch in hand only parks (it never waits for delivery), so this returns promptly.
        if (consuming) await consumer.stop();
        await engine.stop();
        await writer.stop();
        await producer.disconnect();
      })();
      return stopped;
    },
    health() {
      const c = consumer.health();
      const e = engine.health();
      return {
        ok: started && c.ok && e.ok,
        details: {
          consumer: c.details,
          engine: e.details,
          producer: producer.isConnected(),
          deliveryRowsBuffered: writer.buffered,
          deliveryPaused: writer.paused() !== undefined,
        },
      };
    },
  };
}
