import type { ClickHouse } from '@mcp-audit/clickhouse';
import { createBatchConsumer, createProducer, type AuditProducer, type Kafka } from '@mcp-audit/kafka';
import type { Logger, Registry } from '@mcp-audit/service-kit';
import { Lifecycle, liveSink, loadOpenAlerts, loadRaisedAlertIds } from './alert.lifecycle.js';
import { loadIncidents } from './incident.grouper.js';
import { createHumanTriageWatcher } from './human-triage.watcher.js';
import { BaselineStore, clickHouseBaselineSource } from './baseline.store.js';
import { createBaselineJob, type BaselineJob } from './baselines.job.js';
import { baselinesInWorker, type BaselineWorkerOptions } from './baselines.worker.js';
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
  /**
   * The once-only work (periodic detectors, watchdog, baseline job) waits for `duties.start()`,
   * called by the leader lease (packages/kafka lease.ts), instead of starting with the service.
   */
  leased?: boolean;
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
  /**
   * Where the baseline job's scheduled and start-up runs connect from a worker thread
   * (baselines.worker.ts, heap limit `baseline.workerHeapMb`); without it they run in this thread.
   */
  baselineWorker?: BaselineWorkerOptions;
}

const DAY_MS = 86_400_000;

/** Tables the detector's writer inserts into (its insert allowlist). */
export const DETECTOR_TABLES = [
  'alerts',
  'alert_transitions',
  'baselines',
  'client_state',
  'periodic_progress',
  'incidents',
  'incident_transitions',
  // hourly.finalizer.ts (FINAL_TABLE, RUNS_TABLE)
  'events_hourly_final',
  'events_hourly_final_runs',
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
    ...(deps.baselineWorker && deps.config.baseline.workerHeapMb > 0
      ? {
          compute: baselinesInWorker(deps.baselineWorker, deps.config, deps.config.baseline.workerHeapMb),
        }
      : {}),
  });
  const pcfg = deps.config.periodic;
  const periodicDetectors = cfg.periodic
    ? createPeriodicDetectors({ ch: deps.reader, config: pcfg, log })
    : [];
  const periodicMetrics = cfg.periodic ? createPeriodicMetrics(deps.registry) : undefined;
  const progressStore = clickHouseProgressStore({ reader: deps.reader, writer: deps.writer });
  // A fresh runner per leader term: it resumes from the stored progress, not from its own cursors.
  const newRunner = (): PeriodicRunner =>
    createPeriodicRunner({
      detectors: periodicDetectors,
      lifecycle,
      watermark: createEventsWatermark(deps.reader),
      lateMs: deps.config.allowedLatenessMs,
      log: log.child({ component: 'periodic' }),
      progress: progressStore,
      ...(periodicMetrics ? { metrics: periodicMetrics } : {}),
      tickMs: pcfg.tickMs,
      maxWindowsPerTick: pcfg.maxWindowsPerTick,
    });
  let periodic: PeriodicRunner | undefined = cfg.periodic ? newRunner() : undefined;
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
  let catchUp: Promise<void> | undefined;
  /** Detectors whose alerts the once-only work raises and resolves. */
  const onceOnly = new Set<string>([
    ...periodicDetectors.map((d) => d.name),
    ...(watchdog ? ['pipeline_silence', 'pipeline_stall'] : []),
  ]);
  let dutiesRunning = false;
  const duties = {
    /** Starts the once-only work. Under a lease: after reloading what the previous leader left. */
    async start(): Promise<void> {
      if (dutiesRunning) return;
      if (cfg.leased) {
        // What the previous leader left: its open alerts, and the alerts of windows after its last
        // saved progress (evaluated again now; a finding there must not open the same alert twice).
        lifecycle.replaceOpen(await loadOpenAlerts(deps.reader), (d) => onceOnly.has(d));
        lifecycle.incidents.restore(await loadIncidents(deps.reader));
        const saved = await progressStore.load();
        const since = saved.length ? Math.min(...saved.map((e) => e.lastEnd)) - DAY_MS : 0;
        lifecycle.markRaised(await loadRaisedAlertIds(deps.reader, [...onceOnly], since));
        if (cfg.periodic) periodic = newRunner();
      }
      dutiesRunning = true;
      if (cfg.baselineJob) {
        job.start();
        // Catch up today's version in the background (start-up is not blocked on it).
        catchUp = job
          .ensureCurrent()
          .catch((err: unknown) => log.error({ err }, 'start-up baseline run failed'));
      }
      periodic?.start();
      watchdog?.start();
    },
    /** Stops it: nothing of it is in flight when this resolves, and its alerts are flushed. */
    async stop(): Promise<void> {
      if (!dutiesRunning) return;
      dutiesRunning = false;
      await job.stop();
      await catchUp;
      await periodic?.stop();
      await watchdog?.stop();
      await lifecycle
        .flush()
        .catch((err: unknown) => log.error({ err }, 'alert flush after the duties failed'));
    },
    get running() {
      return dutiesRunning;
    },
  };

  return {
    engine,
    lifecycle,
    watchdog,
    store,
    job,
    duties,
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
      await consumer.start();
      if (!cfg.leased) await duties.start();
      humans.start();
      started = true;
      log.info({ topic: cfg.eventsTopic, groupId: cfg.groupId, periodic: cfg.periodic }, 'detector started');
    },
    async stop() {
      stopping = true;
      clearInterval(gauges);
      await humans.stop();
      await duties.stop();
      if (started) await consumer.stop();
      started = false;
      await lifecycle.flush().catch((err: unknown) => log.error({ err }, 'final alert flush failed'));
      await producer.disconnect();
    },
    health() {
      const c = consumer.health();
      const j = job.health();
      const p = dutiesRunning ? periodic?.health() : undefined;
      const w = watchdog?.health();
      return {
        ok: started && c.ok && (p?.ok ?? true) && (w?.ok ?? true),
        details: {
          consumer: c.details,
          baselineJob: j.details,
          onceOnlyWork: cfg.leased ? (dutiesRunning ? 'leader' : 'standby') : 'always',
          // Standby (another instance holds the lease): configured, not running here.
          periodic: p?.details ?? (periodic ? { running: false, standby: true } : null),
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
