import { createKafka, ensureDeclaredTopics, dlqSealerFromEnv, kafkaConfigFromEnv } from '@mcp-audit/kafka';
import { clickhouseFor, isRetryableClickHouseError } from '@mcp-audit/clickhouse';
import { createEventRedactor } from '@mcp-audit/redaction';
import { boot, defineService, serviceOptionsFromEnv } from '@mcp-audit/service-kit';
import { ingesterEnvSchema } from './config.js';
import { buildIngester } from './app.js';
import { clickHouseEventIdStore } from './event-ids.store.js';

const { env, log, registry } = boot('ingester', ingesterEnvSchema);
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-ingester'), log);
const clickhouse = clickhouseFor(env, 'WRITER', {
  logger: log,
  insertTables: ['events', 'event_ids', 'event_id_conflicts'],
});
const dlqSealer = dlqSealerFromEnv(env);
if (dlqSealer) log.info({ key_id: dlqSealer.keyId }, 'dead-lettered originals are sealed to the replay key');
else log.warn('MCP_AUDIT_DLQ_PUBLIC_KEY_FILE is not set: dead letters keep only a redacted preview');

const ingester = buildIngester(
  {
    groupId: env.MCP_AUDIT_INGESTER_GROUP_ID,
    eventsTopic: env.MCP_AUDIT_EVENTS_TOPIC,
    dlqTopic: env.MCP_AUDIT_DLQ_TOPIC,
    batchRows: env.MCP_AUDIT_INGESTER_BATCH_ROWS,
    flushMs: env.MCP_AUDIT_INGESTER_FLUSH_MS,
    maxBufferedRows: env.MCP_AUDIT_INGESTER_MAX_BUFFERED_ROWS,
    lanes: env.MCP_AUDIT_INGESTER_LANES,
    fetchBytesPerPartition: env.MCP_AUDIT_INGESTER_FETCH_BYTES_PER_PARTITION,
  },
  {
    kafka,
    insertEvents: (rows) => clickhouse.insert('events', rows),
    insertEventIds: (rows) => clickhouse.insert('event_ids', rows),
    insertConflicts: (rows) => clickhouse.insert('event_id_conflicts', rows),
    eventIds: clickHouseEventIdStore(clickhouse),
    isRetryableInsertError: isRetryableClickHouseError,
    redactor: createEventRedactor({ fingerprintKey: env.MCP_AUDIT_REDACTION_KEY }),
    ...(dlqSealer ? { dlqSealer } : {}),
    log,
    registry,
  },
);

const service = defineService({ name: 'ingester', log, registry, ...serviceOptionsFromEnv(env, 'INGESTER') })
  // Its stop() finishes the batch in hand, flushes the writer, then commits the offsets.
  .part('ingester', ingester)
  .onStop('close', 'close clickhouse', () => clickhouse.close());

await service.run(() => ensureDeclaredTopics(kafka, env, log));
