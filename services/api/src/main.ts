import { fileURLToPath } from 'node:url';
import { clickhouseFor } from '@mcp-audit/clickhouse';
import { createKafka, createProducer, kafkaConfigFromEnv } from '@mcp-audit/kafka';
import { createLogger, createRegistry, defineService, loadConfigOrExit } from '@mcp-audit/service-kit';
import { fileKeyRing } from './api-keys.js';
import { clickHouseAccessLog } from './access-log.js';
import { buildApi } from './app.js';
import { apiConfigFromEnv, apiEnvSchema } from './config.js';

const env = loadConfigOrExit(apiEnvSchema);
const log = createLogger('api', { level: env.MCP_AUDIT_LOG_LEVEL });
const registry = createRegistry('api');
const reader = clickhouseFor(env, 'API_READER', { logger: log, application: 'mcp-audit-api' });
const writer = clickhouseFor(env, 'API', {
  logger: log,
  application: 'mcp-audit-api',
  insertTables: ['access_log', 'alert_transitions'],
});
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-api'), log);
const producer = createProducer(kafka);
// The console's build sits next to the compiled API: services/api/dist/console.
const consoleDir = fileURLToPath(new URL('../console/', import.meta.url));

const app = await buildApi(apiConfigFromEnv(env, consoleDir), {
  reader,
  writer,
  producer,
  keys: fileKeyRing(env.MCP_AUDIT_API_KEYS_FILE!, log),
  accessLog: clickHouseAccessLog(writer),
  log,
});

const service = defineService({
  name: 'api',
  log,
  registry,
  ops: { host: env.MCP_AUDIT_API_OPS_HOST, port: env.MCP_AUDIT_API_OPS_PORT },
  deadlineMs: env.MCP_AUDIT_API_SHUTDOWN_MS,
})
  .health(() => ({ ok: producer.isConnected(), details: { kafka: producer.isConnected() } }))
  .onStop('intake', 'close http', () => app.close())
  .onStop('commit', 'disconnect producer', () => producer.disconnect())
  .onStop('close', 'close clickhouse', async () => {
    await reader.close();
    await writer.close();
  });

await service.run(async () => {
  await producer.connect();
  await app.listen({ host: env.MCP_AUDIT_API_HOST, port: env.MCP_AUDIT_API_PORT });
});
