import { createKafka, ensureTopics, kafkaConfigFromEnv, loadTopicDefs } from '@mcp-audit/kafka';
import { createClickHouse, isRetryableClickHouseError } from '@mcp-audit/clickhouse';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry, installShutdown, loadConfigOrExit } from '@mcp-audit/service-kit';
import { ingesterEnvSchema } from './config.js';
import { buildIngester, buildOpsServer } from './app.js';

const env = loadConfigOrExit(ingesterEnvSchema);
const log = createLogger('ingester', { level: env.MCP_AUDIT_LOG_LEVEL });
const registry = createRegistry('ingester');
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-ingester'), log);
const clickhouse = createClickHouse({
  url: env.MCP_AUDIT_CLICKHOUSE_URL,
  username: env.MCP_AUDIT_CLICKHOUSE_WRITER_USER,
  password: env.MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD,
  database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
  logger: log,
});

const ingester = buildIngester(
  {
    groupId: env.MCP_AUDIT_INGESTER_GROUP_ID,
    eventsTopic: env.MCP_AUDIT_EVENTS_TOPIC,
    dlqTopic: env.MCP_AUDIT_DLQ_TOPIC,
    batchRows: env.MCP_AUDIT_INGESTER_BATCH_ROWS,
    flushMs: env.MCP_AUDIT_INGESTER_FLUSH_MS,
    maxBufferedRows: env.MCP_AUDIT_INGESTER_MAX_BUFFERED_ROWS,
  },
  {
    kafka,
    insertEvents: (rows) => clickhouse.insert('events', rows),
    isRetryableInsertError: isRetryableClickHouseError,
    redactor: createEventRedactor({ fingerprintKey: env.MCP_AUDIT_REDACTION_KEY }),
    log,
    registry,
  },
);
let healthy = true;
const http = buildOpsServer({
  health: () => {
    const h = ingester.health();
    return { ok: healthy && h.ok, details: h.details };
  },
  registry,
  log,
});

installShutdown(
  log,
  [
    ['mark unhealthy', () => void (healthy = false)],
    ['stop consumer, flush, commit', () => ingester.stop()],
    ['close http', () => http.close()],
    ['close clickhouse', () => clickhouse.close()],
  ],
  { deadlineMs: env.MCP_AUDIT_INGESTER_SHUTDOWN_MS },
);

await ensureTopics(kafka, loadTopicDefs(), {
  maxReplicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
  log,
});
await http.listen({ host: env.MCP_AUDIT_INGESTER_HOST, port: env.MCP_AUDIT_INGESTER_PORT });
await ingester.start();
