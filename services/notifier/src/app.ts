import Fastify from 'fastify';
import type { AuditProducer, Kafka } from '@mcp-audit/kafka';
import { createBatchConsumer, createProducer } from '@mcp-audit/kafka';
import type { Logger, Registry } from '@mcp-audit/observability';
import { createAlertsHandler } from './alerts.consumer.js';
import type { RoutesFile } from './alerts.router.js';
import { DeliveriesWriter } from './deliveries.writer.js';
import { DeliveryEngine, type DeliveryRow } from './delivery.engine.js';
import type { DeliveryJob, Destination, SendOutcome } from './destinations.js';
import { createNotifierMetrics } from './metrics.js';
import type { Outbox } from './outbox.js';

export interface NotifierConfig {
  groupId: string;
  alertsTopic: string;
  dlqTopic: string;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
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

export function buildNotifier(cfg: NotifierConfig, deps: NotifierDeps): Notifier {
  const log = deps.log.child({ component: 'notifier' });
  const metrics = createNotifierMetrics(deps.registry);
  const producer = deps.producer ?? createProducer(deps.kafka);
  const writer = new DeliveriesWriter({
    insert: deps.insertDeliveries,
    log,
    onBuffered: (n) => metrics.recordRowsBuffered.set(n),
  });
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
  const engine = new DeliveryEngine(
    {
      groupId: cfg.groupId,
      maxAttempts: cfg.maxAttempts,
      backoffBaseMs: cfg.backoffBaseMs,
      backoffMaxMs: cfg.backoffMaxMs,
      maxPending: cfg.maxPending,
    },
    { destinations: deps.destinations, record, deadLetter, log, metrics },
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
    log,
    metrics,
  });
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: cfg.groupId,
    topic: cfg.alertsTopic,
    fromBeginning: cfg.fromBeginning ?? true,
    handler,
    log,
    chunkSize: 500,
    partitionsConsumedConcurrently: 3,
  });
  let started = false;
  let stopping = false;

  return {
    engine,
    async start() {
      await producer.connect();
      // Jobs parked by an earlier run that never reached a final state go first, in topic order.
      for (let attempt = 1; ; attempt++) {
        try {
          const jobs = await deps.outbox.unfinished(cfg.groupId);
          const unknown = engine.enqueue(jobs);
          for (const j of unknown)
            log.error(
              { jobId: j.jobId, destination: j.destinationId },
              'parked job for a destination no longer configured',
            );
          log.info({ reloaded: jobs.length - unknown.length }, 'outbox reloaded');
          break;
        } catch (err) {
          if (stopping) return;
          log.warn({ err, attempt }, 'outbox reload failed (ClickHouse unavailable?); retrying');
          await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))));
        }
      }
      engine.start();
      await consumer.start();
      started = true;
      log.info(
        { topic: cfg.alertsTopic, groupId: cfg.groupId, destinations: deps.destinations.size },
        'notifier started',
      );
    },
    async stop() {
      stopping = true;
      if (started) await consumer.stop();
      started = false;
      await engine.stop();
      await writer.stop();
      await producer.disconnect();
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
        },
      };
    },
  };
}

/** /health and /metrics; listen only in main.ts. */
export function buildOpsServer(deps: {
  health: () => { ok: boolean; details: Record<string, unknown> };
  registry: Registry;
  log: Logger;
}) {
  const app = Fastify({ loggerInstance: deps.log.child({ component: 'http' }), bodyLimit: 1024 });
  app.get('/health', async (_req, reply) => {
    const h = deps.health();
    return reply.code(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'unhealthy', ...h.details });
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', deps.registry.contentType).send(await deps.registry.metrics());
  });
  return app;
}
