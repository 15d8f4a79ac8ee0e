import { readFileSync } from 'node:fs';
import { createKafka, ensureDeclaredTopics, kafkaConfigFromEnv } from '@mcp-audit/kafka';
import { clickhouseFor } from '@mcp-audit/clickhouse';
import { boot, defineService, serviceOptionsFromEnv } from '@mcp-audit/service-kit';
import { notifierEnvSchema } from './config.js';
import { parseRoutes, type RoutesFile } from './alerts.router.js';
import { buildDestinations, type Destination } from './destinations.js';
import { postJson } from './http.sender.js';
import { clickHouseOutbox } from './outbox.js';
import { buildNotifier } from './app.js';

const { env, log, registry } = boot('notifier', notifierEnvSchema);

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

const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-notifier'), log);
const clickhouse = clickhouseFor(env, 'WRITER', {
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

const service = defineService({ name: 'notifier', log, registry, ...serviceOptionsFromEnv(env, 'NOTIFIER') })
  // Its stop() ends the consumer and the attempts in hand, then writes their attempt rows.
  .part('notifier', notifier)
  .onStop('close', 'close clickhouse', () => clickhouse.close());

await service.run(() => ensureDeclaredTopics(kafka, env, log));
