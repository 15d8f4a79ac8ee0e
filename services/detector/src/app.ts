import type { ClickHouse } from '@mcp-audit/clickhouse';
import { createBatchConsumer, createProducer, type AuditProducer, type Kafka } from '@mcp-audit/kafka';
import type { Logger, Registry } from '@mcp-audit/service-kit';
import { Lifecycle, liveSink, loadOpenAlerts } from './alert.lifecycle.js';
import { loadIncidents } from './incident.grouper.js';
import { createHumanTriageWatcher } from './human-triage.watcher.js';
import { BaselineStore, clickHouseBaselineSource } from './baseline.store.js';
import { createBaselineJob, type BaselineJob } from './baselines.job.js';
import type { DetectorConfig } from './config.js';
import { createEventsHandler } from './events.consumer.js';
import { createDetectorMetrics } from './metrics.js';
import {
  clickHouseProgressStore,
  createEventsWatermark,
  createPeriodicDetectors,
  createPeriodicMetrics,
  createPeriodicRunner,
  type PeriodicRunner,
} from './periodic/index.js';
import { StreamEngine } from './stream.engine.js';
import {
  createPipelineWatchdog,
  kafkaGroupOffsets,
  type PipelineWatchdog,
} from './watchdog/pipeline.watchdog.js';
import { createWatchdogMetrics } from './watchdog/watchdog.metrics.js';

export interface DetectorServiceConfig {
  groupId: string;
  eventsTopic: string;
  alertsTopic: string;
  fromBeginning: boolean;
  periodic: boolean;
  baselineJob: boolean;
  partitionsConsumedConcurrently?: number;
}

export interface DetectorServiceDeps {
  kafka: Kafka;
  /** Writer: alerts, alert_transitions, baselines, client_state, periodic_progress. */
  writer: ClickHouse;
  /** Reader (analyst): events, events_hourly, baselines, alerts. */
  reader: ClickHouse;
  config: DetectorConfig;
  log: Logger;
  registry: Registry;
  producer?: AuditProducer;
}

/** Tables the detector's writer inserts into (its insert allowlist). */
export const DETECTOR_TABLES = [
  'alerts',
  'alert_transitions',
  'baselines',
  'client_state',
  'periodic_progress',
  'incidents',
  'incident_transitions',
];

/**
 * The detector service: streaming consumer + engine, alert lifecycle, baseline cron job and the
 * periodic runner. No side effects until `start`.
 */
export function buildDetector(cfg: DetectorServiceConfig, deps: DetectorServiceDeps) {
  const log = deps.log.child({ component: 'detector' });
  const metrics = createDetectorMetrics(deps.registry);
  const producer = deps.producer ?? createProducer(deps.kafka);
  const lifecycle = new Lifecycle({
    sink: liveSink({ writer: deps.writer, producer, topic: cfg.alertsTopic }),
    log,
    origin: 'live',
    metrics: metrics.lifecycle,
  });
  const store = new BaselineStore(clickHouseBaselineSource(deps.reader), log);
  const engine = new StreamEngine({
    store,
    config: deps.config,
    actions: {
      raise: (f) => lifecycle.raiseNow(f),
      resolve: (k, at, reason) => lifecycle.resolveNow(k, at, reason),
      isOpen: (k) => lifecycle.openAlert(k),
    },
  });
  const job: BaselineJob = createBaselineJob({
    reader: deps.reader,
    writer: deps.writer,
    config: deps.config,
    log,
    onVersion: () => void store.refresh().catch(() => undefined),
  });
  let periodic: PeriodicRunner | undefined;
  if (cfg.periodic) {
    const pcfg = deps.config.periodic;
    periodic = createPeriodicRunner({
      detectors: createPeriodicDetectors({ ch: deps.reader, config: pcfg, log }),
      lifecycle,
      watermark: createEventsWatermark(deps.reader),
      lateMs: deps.config.allowedLatenessMs,
      log: log.child({ component: 'periodic' }),
      progress: clickHouseProgressStore({ reader: deps.reader, writer: deps.writer }),
      metrics: createPeriodicMetrics(deps.registry),
      tickMs: pcfg.tickMs,
      maxWindowsPerTick: pcfg.maxWindowsPerTick,
    });
  }
  // The wall-clock watchdog runs where the periodic detectors run (one instance: one page per silence).
  let watchdog: PipelineWatchdog | undefined;
  const wcfg = deps.config.watchdog;
  if (cfg.periodic && wcfg.enabled) {
    const group = { groupId: wcfg.stall.groupId, topic: wcfg.stall.topic ?? cfg.eventsTopic };
    watchdog = createPipelineWatchdog({
      reader: deps.reader,
      lifecycle,
      config: wcfg,
      ...(wcfg.stall.enabled
        ? { group, offsets: kafkaGroupOffsets(deps.kafka, group.groupId, group.topic) }
        : {}),
      log,
      metrics: createWatchdogMetrics(deps.registry),
    });
  }
  const consumer = createBatchConsumer({
    kafka: deps.kafka,
    groupId: cfg.groupId,
    topic: cfg.eventsTopic,
    fromBeginning: cfg.fromBeginning,
    handler: createEventsHandler({ engine, store, lifecycle, log, metrics }),
    log,
    chunkSize: 2_000,
    partitionsConsumedConcurrently: cfg.partitionsConsumedConcurrently ?? 2,
  });
  // Human resolves from the analyst API: the lifecycle forgets those alerts (see the module).
  const humans = createHumanTriageWatcher({ reader: deps.reader, lifecycle, log });
  const gauges = setInterval(() => {
    metrics.clients.set(engine.clientCount);
    metrics.windows.set(engine.openWindows);
    metrics.openAlerts.set(lifecycle.openCount);
  }, 5_000);
  gauges.unref();
  let started = false;
  let stopping = false;

  return {
    engine,
    lifecycle,
    watchdog,
    store,
    job,
    async start() {
      await producer.connect();
      for (let attempt = 1; ; attempt++) {
        try {
          const open = await loadOpenAlerts(deps.reader);
          lifecycle.restore(open);
          lifecycle.incidents.restore(await loadIncidents(deps.reader));
          await store.refresh();
          log.info({ openAlerts: open.length, baselineVersions: store.versions.length }, 'state reloaded');
          break;
        } catch (err) {
          if (stopping) return;
          log.warn({ err, attempt }, 'start-up reload failed (ClickHouse unavailable?); retrying');
          await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))));
        }
      }
      if (cfg.baselineJob) {
        job.start();
        // Catch up today's version in the background (start-up is not blocked on it).
        void job.ensureCurrent().catch((err: unknown) => log.error({ err }, 'start-up baseline run failed'));
      }
      await consumer.start();
      periodic?.start();
      watchdog?.start();
      humans.start();
      started = true;
      log.info({ topic: cfg.eventsTopic, groupId: cfg.groupId, periodic: cfg.periodic }, 'detector started');
    },
    async stop() {
      stopping = true;
      clearInterval(gauges);
      await humans.stop();
      await job.stop();
      await periodic?.stop();
      await watchdog?.stop();
      if (started) await consumer.stop();
      started = false;
      await lifecycle.flush().catch((err: unknown) => log.error({ err }, 'final alert flush failed'));
      await producer.disconnect();
    },
    health() {
      const c = consumer.health();
      const j = job.health();
      const p = periodic?.health();
      const w = watchdog?.health();
      return {
        ok: started && c.ok && (p?.ok ?? true) && (w?.ok ?? true),
        details: {
          consumer: c.details,
          baselineJob: j.details,
          periodic: p?.details ?? null,
          watchdog: w?.details ?? null,
          clients: engine.clientCount,
          openWindows: engine.openWindows,
          openAlerts: lifecycle.openCount,
          pendingAlertMessages: lifecycle.pendingCount,
          baselineVersions: store.versions.length,
          lateEvents: engine.stats.late,
        },
      };
    },
  };
}
export type DetectorService = ReturnType<typeof buildDetector>;
