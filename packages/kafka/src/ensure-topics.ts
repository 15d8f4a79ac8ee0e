/** CLI: create the topics declared in schemas/kafka/topics.json that are missing (idempotent). */
import { createLogger, loadConfigOrExit } from '@mcp-audit/service-kit';
import { kafkaEnvSchema, kafkaConfigFromEnv } from './config.js';
import { createKafka } from './client.js';
import { ensureTopics, loadTopicDefs } from './topics.js';

const env = loadConfigOrExit(kafkaEnvSchema);
const log = createLogger('ensure-topics');
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-ensure-topics'), log);
try {
  const defs = loadTopicDefs();
  const created = await ensureTopics(kafka, defs, {
    maxReplicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
    log,
  });
  process.stdout.write(
    created.length > 0
      ? `created topics: ${created.join(', ')}\n`
      : `kafka topics up to date (${defs.length} declared)\n`,
  );
} catch (err) {
  process.stderr.write(`could not create kafka topics: ${(err as Error).message}\n`);
  process.exit(1);
}
