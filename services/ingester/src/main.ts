import { createKafka, ensureTopics, kafkaConfigFromEnv, loadTopicDefs } from '@mcp-audit/kafka';
import { clickhouseFor, isRetryableClickHouseError } from '@mcp-audit/clickhouse';
import { createEventRedactor } from '@mcp-audit/redaction';
import { createLogger, createRegistry, defineService, loadConfigOrExit } from '@mcp-audit/service-kit';
import { ingesterEnvSchema } from './config.js';
import { buildIngester } from './app.js';

const env = loadConfigOrExit(ingesterEnvSchema);
const log = createLogger('ingester', { level: env.MCP_AUDIT_LOG_LEVEL });
const registry = createRegistry('ingester');
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-ingester'), log);
const clickhouse = clickhouseFor(env, 'WRITER', { logger: log });

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

const service = defineService({
  name: 'ingester',
  log,
  registry,
  ops: { host: env.MCP_AUDIT_INGESTER_HOST, port: env.MCP_AUDIT_INGESTER_PORT },
  deadlineMs: env.MCP_AUDIT_INGESTER_SHUTDOWN_MS,
})
  .health(() => ingester.health())
  // The ingester's stop() finishes the batch in hand, flushes the writer, then commits its offsets.
  .onStop('drain', 'stop consumer, flush, commit', () => ingester.stop())
  .onStop('close', 'close clickhouse', () => clickhouse.close());

await service.run(async () => {
  await ensureTopics(kafka, loadTopicDefs(), {
    maxReplicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
    log,
  });
  await ingester.start();
});
