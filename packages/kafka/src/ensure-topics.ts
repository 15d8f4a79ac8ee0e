/**
 * CLI: create the topics declared in schemas/kafka/topics.json that are missing, and bring existing
 * ones to their declaration (settings, partitions); report what only an operator can change
 * (replication factor). Idempotent. With ACLs on, run it as the admin (it alters topic configs).
 */
import { createLogger, loadConfigOrExit } from '@mcp-audit/service-kit';
import { kafkaEnvSchema, kafkaConfigFromEnv } from './config.js';
import { createKafka } from './client.js';
import { ensureTopics, loadTopicDefs, reconcileTopics } from './topics.js';

const env = loadConfigOrExit(kafkaEnvSchema);
const log = createLogger('ensure-topics');
const kafka = createKafka(kafkaConfigFromEnv(env, 'mcp-audit-ensure-topics'), log);
const say = (line: string) => process.stdout.write(`${line}\n`);
try {
  const defs = loadTopicDefs();
  const opts = { maxReplicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR, log };
  const created = await ensureTopics(kafka, defs, opts);
  // NOTE: not the topics just created: another broker may not know them yet (UNKNOWN_TOPIC_OR_PARTITION).
  const r = await reconcileTopics(
    kafka,
    defs.filter((d) => !created.includes(d.name)),
    opts,
  );
  if (created.length > 0) say(`created topics: ${created.join(', ')}`);
  for (const a of r.altered)
    say(`${a.topic}: ${a.changes.map((c) => `${c.name} ${c.from ?? '(default)'} -> ${c.to}`).join(', ')}`);
  for (const p of r.partitionsAdded) say(`${p.topic}: partitions ${p.from} -> ${p.to}`);
  for (const p of r.morePartitions)
    say(
      `${p.topic}: has ${p.partitions} partitions, ${p.declared} declared (Kafka cannot remove partitions)`,
    );
  for (const u of r.underReplicated)
    process.stderr.write(
      `${u.topic}: ${u.replicas} replica(s) per partition, ${u.wanted} wanted ` +
        `(MCP_AUDIT_KAFKA_REPLICATION_FACTOR): raise it with kafka-reassign-partitions\n`,
    );
  say(`kafka topics up to date (${defs.length} declared)`);
} catch (err) {
  process.stderr.write(`could not create kafka topics: ${(err as Error).message}\n`);
  process.exit(1);
}
