import { readFileSync } from 'node:fs';
import { createKafka, ensureTopics, kafkaConfigFromEnv, loadTopicDefs } from '@mcp-audit/kafka';
import { createClickHouse } from '@mcp-audit/clickhouse';
import { createLogger, createRegistry, installShutdown, loadConfigOrExit } from '@mcp-audit/service-kit';
import { notifierEnvSchema } from './config.js';
import { parseRoutes, type RoutesFile } from './alerts.router.js';
import { buildDestinations, type Destination } from './destinations.js';
import { postJson } from './http.sender.js';
import { clickHouseOutbox } from './outbox.js';
import { buildNotifier, buildOpsServer } from './app.js';

const env = loadConfigOrExit(notifierEnvSchema);
const log = createLogger('notifier', { level: env.MCP_AUDIT_LOG_LEVEL });

let routes: RoutesFile;
let destinations: Map<string, Destination>;
try {
  routes = parseRoutes(JSON.parse(readFileSync(env.MCP_AUDIT_NOTIFIER_ROUTES_FILE, 'utf8')));
  destinations = buildDestinations(routes, {
    postJson,
    consoleUrl: env.MCP_AUDIT_CONSOLE_URL,
    timeoutMs: env.MCP_AUDIT_NOTIFIER_TIMEOUT_MS,
    env: process.env,
    readFile: (p) => readFileSync(p, 'utf8'),
  });
} catch (err) {
  // Messages name env vars and files, never secret values.
  process.stderr.write(`notifier: ${(err as Error).message}\n`);
  process.exit(1);
}

const registry = createRegistry('notifier');
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-notifier'), log);
const clickhouse = createClickHouse({
  url: env.MCP_AUDIT_CLICKHOUSE_URL,
  username: env.MCP_AUDIT_CLICKHOUSE_WRITER_USER,
  password: env.MCP_AUDIT_CLICKHOUSE_WRITER_PASSWORD,
  database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
  insertTables: ['alert_deliveries', 'alert_outbox'],
  application: 'mcp-audit-notifier',
  logger: log,
});

const notifier = buildNotifier(
  {
    groupId: env.MCP_AUDIT_NOTIFIER_GROUP_ID,
    alertsTopic: env.MCP_AUDIT_ALERTS_TOPIC,
    dlqTopic: env.MCP_AUDIT_NOTIFIER_DLQ_TOPIC,
    maxAttempts: env.MCP_AUDIT_NOTIFIER_MAX_ATTEMPTS,
    backoffBaseMs: env.MCP_AUDIT_NOTIFIER_BACKOFF_BASE_MS,
    backoffMaxMs: env.MCP_AUDIT_NOTIFIER_BACKOFF_MAX_MS,
    maxPending: env.MCP_AUDIT_NOTIFIER_MAX_PENDING,
  },
  {
    kafka,
    routes,
    destinations,
    outbox: clickHouseOutbox(clickhouse),
    insertDeliveries: (rows) => clickhouse.insert('alert_deliveries', rows),
    log,
    registry,
  },
);
let healthy = true;
const http = buildOpsServer({
  health: () => {
    const h = notifier.health();
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
    ['stop consumer and deliveries, write attempt rows', () => notifier.stop()],
    ['close clickhouse', () => clickhouse.close()],
  ],
  { deadlineMs: env.MCP_AUDIT_NOTIFIER_SHUTDOWN_MS },
);

await ensureTopics(kafka, loadTopicDefs(), {
  maxReplicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
  log,
});
await http.listen({ host: env.MCP_AUDIT_NOTIFIER_HOST, port: env.MCP_AUDIT_NOTIFIER_PORT });
await notifier.start();
