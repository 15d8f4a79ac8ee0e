import { clickhouseFor } from '@mcp-audit/clickhouse';
import {
  createKafka,
  ensureDeclaredTopics,
  kafkaConfigFromEnv,
  leaseEnv,
  leaseFromEnv,
} from '@mcp-audit/kafka';
import { boot, defineService, serviceOptionsFromEnv } from '@mcp-audit/service-kit';
import { buildDetector, DETECTOR_TABLES } from './app.js';
import { detectorEnvSchema, loadDetectorConfig, type DetectorConfig } from './config.js';

const { env, log, registry } = boot('detector', detectorEnvSchema.extend(leaseEnv('DETECTOR').shape));

let config: DetectorConfig;
try {
  config = loadDetectorConfig(env.MCP_AUDIT_DETECTOR_CONFIG);
} catch (err) {
  process.stderr.write(`detector: ${(err as Error).message}\n`);
  process.exit(1);
}

const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-detector'), log);
const application = 'mcp-audit-detector';
const writer = clickhouseFor(env, 'WRITER', { application, logger: log, insertTables: DETECTOR_TABLES });
const reader = clickhouseFor(env, 'ANALYST', {
  application,
  logger: log,
  insertTables: [],
  requestTimeoutMs: 120_000,
});

const detector = buildDetector(
  {
    groupId: env.MCP_AUDIT_DETECTOR_GROUP_ID,
    eventsTopic: env.MCP_AUDIT_EVENTS_TOPIC,
    alertsTopic: env.MCP_AUDIT_ALERTS_TOPIC,
    fromBeginning: env.MCP_AUDIT_DETECTOR_FROM_BEGINNING,
    periodic: env.MCP_AUDIT_DETECTOR_PERIODIC,
    baselineJob: env.MCP_AUDIT_DETECTOR_BASELINE_JOB,
    partitionsConsumedConcurrently: env.MCP_AUDIT_DETECTOR_PARTITIONS_CONCURRENTLY,
    leased: env.MCP_AUDIT_DETECTOR_LEASE,
  },
  {
    kafka,
    writer,
    reader,
    config,
    log,
    registry,
    baselineWorker: {
      url: env.MCP_AUDIT_CLICKHOUSE_URL,
      database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
      writer: {
        username: env.MCP_AUDIT_CLICKHOUSE_WRITER_USER,
        password: env.MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD,
      },
      reader: {
        username: env.MCP_AUDIT_CLICKHOUSE_ANALYST_USER,
        password: env.MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD,
      },
      insertTables: DETECTOR_TABLES,
      logLevel: env.MCP_AUDIT_LOG_LEVEL,
    },
  },
);

// The periodic detectors, the watchdog and the baseline job run on the instance holding the lease.
const lease = leaseFromEnv('DETECTOR', env, {
  kafka,
  defaultGroupId: `${env.MCP_AUDIT_DETECTOR_GROUP_ID}-lease`,
  log,
  onAcquire: () => detector.duties.start(),
  onRelease: () => detector.duties.stop(),
});

const service = defineService({ name: 'detector', log, registry, ...serviceOptionsFromEnv(env, 'DETECTOR') })
  // Its stop(): cron and periodic runner, the consumer's batch in hand, alerts flushed, producer disconnected.
  .part('detector', detector)
  // Stopped before the consumer (intake): the work ends, then leaving the group hands the lease over.
  .part(
    'lease',
    lease ?? { start: async () => undefined, stop: async () => undefined, health: () => ({ ok: true }) },
    'intake',
  )
  .onStop('close', 'close clickhouse', () => Promise.all([writer.close(), reader.close()]));

await service.run(() => ensureDeclaredTopics(kafka, env, log));
