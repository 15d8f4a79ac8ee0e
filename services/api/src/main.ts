import { fileURLToPath } from 'node:url';
import { clickhouseFor } from '@mcp-audit/clickhouse';
import { createKafka, createProducer, kafkaConfigFromEnv } from '@mcp-audit/kafka';
import {
  createExportJobs,
  createLegalHolds,
  createRowStream,
  loadPublicKeys,
  loadSigningKey,
  PRODUCT_VERSION,
  retiredHours,
  verifyRange,
} from '@mcp-audit/retention';
import { boot, defineService } from '@mcp-audit/service-kit';
import { fileKeyRing } from './api-keys.js';
import { clickHouseAccessLog } from './access-log.js';
import { buildApi } from './app.js';
import { apiConfigFromEnv, apiEnvSchema } from './config.js';

const { env, log, registry } = boot('api', apiEnvSchema);
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

// Compliance: holds through mcp_api (its legal_holds grant), verify and exports read as mcp_api_reader.
const holdsCh = clickhouseFor(env, 'API', {
  logger: log,
  application: 'mcp-audit-api',
  insertTables: ['legal_holds'],
});
const keysDir = env.MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR;
const ledgerDb = {
  ch: reader,
  database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
  stream: createRowStream({
    url: env.MCP_AUDIT_CLICKHOUSE_URL,
    username: env.MCP_AUDIT_CLICKHOUSE_API_READER_USER,
    password: env.MCP_AUDIT_CLICKHOUSE_API_READER_PASSWORD,
    database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
  }),
};
const exportJobs = env.MCP_AUDIT_API_EXPORT_SIGNING_KEY_FILE
  ? createExportJobs(
      {
        db: ledgerDb,
        key: loadSigningKey(env.MCP_AUDIT_API_EXPORT_SIGNING_KEY_FILE),
        productVersion: PRODUCT_VERSION,
      },
      env.MCP_AUDIT_API_EXPORT_DIR,
    )
  : undefined;
const compliance = keysDir
  ? {
      holds: createLegalHolds({ ch: holdsCh, database: env.MCP_AUDIT_CLICKHOUSE_DATABASE }),
      exports: exportJobs,
      maxRangeDays: env.MCP_AUDIT_API_MAX_RANGE_DAYS,
      async verify(from: number, to: number) {
        const publicKeys = loadPublicKeys(keysDir);
        const retired = await retiredHours(reader, ledgerDb.database, publicKeys);
        // The retention service's defaults: 10 min sealing delay + its 5 min period, 7-day addenda.
        return verifyRange(
          { db: ledgerDb, publicKeys, dir: env.MCP_AUDIT_LEDGER_DIR, retiredHours: retired },
          from,
          to,
          { sealGraceMs: 25 * 60_000, addendumWindowMs: 7 * 86_400_000 },
        );
      },
    }
  : undefined;

const app = await buildApi(apiConfigFromEnv(env, consoleDir), {
  reader,
  writer,
  producer,
  keys: fileKeyRing(env.MCP_AUDIT_API_KEYS_FILE!, log),
  accessLog: clickHouseAccessLog(writer),
  log,
  ...(compliance ? { compliance } : {}),
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
  .onStop('drain', 'finish export jobs', () => exportJobs?.stop())
  .onStop('commit', 'disconnect producer', () => producer.disconnect())
  .onStop('close', 'close clickhouse', async () => {
    await reader.close();
    await writer.close();
    await holdsCh.close();
  });

await service.run(async () => {
  await producer.connect();
  await app.listen({ host: env.MCP_AUDIT_API_HOST, port: env.MCP_AUDIT_API_PORT });
});
