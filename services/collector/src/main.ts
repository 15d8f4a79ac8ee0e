import {
  createKafka,
  createProducer,
  ensureDeclaredTopics,
  dlqSealerFromEnv,
  kafkaConfigFromEnv,
} from '@mcp-audit/kafka';
import { createEventRedactor } from '@mcp-audit/redaction';
import { boot, defineService } from '@mcp-audit/service-kit';
import { collectorEnvSchema } from './config.js';
import { buildCollector } from './app.js';
import { loadTokenStore } from './source-tokens.js';

const { env, log, registry } = boot('collector', collectorEnvSchema);
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-collector'), log);
const producer = createProducer(kafka);
const dlqSealer = dlqSealerFromEnv(env);
if (dlqSealer) log.info({ key_id: dlqSealer.keyId }, 'dead-lettered originals are sealed to the replay key');
else log.warn('MCP_AUDIT_DLQ_PUBLIC_KEY_FILE is not set: dead letters keep only a redacted preview');

const app = buildCollector(
  {
    eventsTopic: env.MCP_AUDIT_EVENTS_TOPIC,
    dlqTopic: env.MCP_AUDIT_DLQ_TOPIC,
    bodyLimitBytes: env.MCP_AUDIT_COLLECTOR_BODY_LIMIT_BYTES,
    maxEventsPerRequest: env.MCP_AUDIT_COLLECTOR_MAX_EVENTS_PER_REQUEST,
    rateLimitPerMinute: env.MCP_AUDIT_COLLECTOR_RATE_LIMIT_PER_MINUTE,
    authFailuresPerMinute: env.MCP_AUDIT_COLLECTOR_AUTH_FAILURES_PER_MINUTE,
    requestTimeoutMs: env.MCP_AUDIT_COLLECTOR_REQUEST_TIMEOUT_MS,
  },
  {
    producer,
    tokens: loadTokenStore(env.MCP_AUDIT_COLLECTOR_TOKENS_FILE),
    redactor: createEventRedactor({ fingerprintKey: env.MCP_AUDIT_REDACTION_KEY }),
    ...(dlqSealer ? { dlqSealer } : {}),
    log,
    registry,
  },
);

// The collector's one port serves intake and its ops routes (/healthz, /readyz, /metrics).
const service = defineService({
  name: 'collector',
  log,
  registry,
  deadlineMs: env.MCP_AUDIT_COLLECTOR_SHUTDOWN_MS,
})
  .onStop('intake', 'close http', () => app.close())
  .onStop('commit', 'disconnect producer', () => producer.disconnect());

await service.run(async () => {
  await ensureDeclaredTopics(kafka, env, log);
  await producer.connect();
  await app.listen({ host: env.MCP_AUDIT_COLLECTOR_HOST, port: env.MCP_AUDIT_COLLECTOR_PORT });
});
