import { createClickHouse } from '@mcp-audit/clickhouse';
import { createKafka, ensureTopics, kafkaConfigFromEnv, loadTopicDefs } from '@mcp-audit/kafka';
import { createLogger, createRegistry, installShutdown, loadConfigOrExit } from '@mcp-audit/service-kit';
import { buildDetector, buildOpsServer, DETECTOR_TABLES } from './app.js';
import { detectorEnvSchema } from './config.js';
import { loadDetectorConfig, type DetectorConfig } from './detector.config.js';

const env = loadConfigOrExit(detectorEnvSchema);
const log = createLogger('detector', { level: env.MCP_AUDIT_LOG_LEVEL });

let config: DetectorConfig;
try {
  config = loadDetectorConfig(env.MCP_AUDIT_DETECTOR_CONFIG);
} catch (err) {
  process.stderr.write(`detector: ${(err as Error).message}\n`);
  process.exit(1);
}

const registry = createRegistry('detector');
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-detector'), log);
const common = {
  url: env.MCP_AUDIT_CLICKHOUSE_URL,
  database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
  application: 'mcp-audit-detector',
  logger: log,
};
const writer = createClickHouse({
  ...common,
  username: env.MCP_AUDIT_CLICKHOUSE_WRITER_USER,
  password: env.MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD,
  insertTables: DETECTOR_TABLES,
});
const reader = createClickHouse({
  ...common,
  username: env.MCP_AUDIT_CLICKHOUSE_ANALYST_USER,
  password: env.MCP_AUDIT_CLICKHOUSE_ANALYST_PASSWORD,
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
  },
  { kafka, writer, reader, config, log, registry },
);
let healthy = true;
const http = buildOpsServer({
  health: () => {
    const h = detector.health();
    return { ok: healthy && h.ok, details: h.details };
  },
  registry,
  log,
});

installShutdown(
  log,
  [
    ['mark unhealthy', () => void (healthy = false)],
    ['close http', () => http.close()],
    ['stop cron, periodic runner and consumer; flush alerts; disconnect producer', () => detector.stop()],
    ['close clickhouse', async () => void (await Promise.all([writer.close(), reader.close()]))],
  ],
  { deadlineMs: env.MCP_AUDIT_DETECTOR_SHUTDOWN_MS },
);

await ensureTopics(kafka, loadTopicDefs(), {
  maxReplicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
  log,
});
await http.listen({ host: env.MCP_AUDIT_DETECTOR_HOST, port: env.MCP_AUDIT_DETECTOR_PORT });
await detector.start();
