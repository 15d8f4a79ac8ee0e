import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Kafka } from 'kafkajs';
import type { Logger } from '@mcp-audit/service-kit';

export const TOPIC_EVENTS = 'mcp.audit.events.v1';
export const TOPIC_EVENTS_DLQ = 'mcp.audit.events.dlq';
export const TOPIC_ALERTS = 'mcp.audit.alerts.v1';

const topicDefSchema = z.object({
  name: z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/),
  description: z.string().optional(),
  partitions: z.number().int().min(1).max(1000),
  replicationFactor: z.number().int().min(1).max(7),
  config: z.record(z.string(), z.string()).default({}),
});
const topicsFileSchema = z.object({ topics: z.array(topicDefSchema).min(1) });
export type TopicDef = z.infer<typeof topicDefSchema>;

/** packages/kafka/dist/src → repo root schemas/kafka/topics.json */
export const DEFAULT_TOPICS_FILE = fileURLToPath(
  new URL('../../../../schemas/kafka/topics.json', import.meta.url),
);

export function loadTopicDefs(file = DEFAULT_TOPICS_FILE): TopicDef[] {
  return topicsFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).topics;
}

/**
 * Create the declared topics that are missing; existing ones are left alone (idempotent, safe
 * from several services at once: a concurrent "already exists" is success).
 * `maxReplicationFactor` caps replication (and min.insync.replicas) for small clusters.
 */
export async function ensureTopics(
  kafka: Kafka,
  defs: TopicDef[],
  opts: { maxReplicationFactor: number; rename?: (name: string) => string; log?: Logger },
): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = defs.map((d) => ({ ...d, name: opts.rename ? opts.rename(d.name) : d.name }));
    const missing = wanted.filter((d) => !existing.has(d.name));
    if (missing.length === 0) return [];
    const rf = (d: TopicDef) => Math.min(d.replicationFactor, opts.maxReplicationFactor);
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((d) => ({
          topic: d.name,
          numPartitions: d.partitions,
          replicationFactor: rf(d),
          configEntries: Object.entries(d.config).map(([name, value]) => ({
            name,
            value: name === 'min.insync.replicas' ? String(Math.min(Number(value), rf(d))) : value,
          })),
        })),
      });
    } catch (err) {
      // Another process created it between listTopics and createTopics.
      if (!/already exists/i.test(String((err as Error).message))) throw err;
    }
    opts.log?.info({ topics: missing.map((d) => d.name) }, 'kafka topics created');
    return missing.map((d) => d.name);
  } finally {
    await admin.disconnect();
  }
}

/** Start-up step of every Kafka service: the declared topics exist (capped at the env's replication factor). */
export function ensureDeclaredTopics(
  kafka: Kafka,
  env: { MCP_AUDIT_KAFKA_REPLICATION_FACTOR: number },
  log?: Logger,
): Promise<string[]> {
  return ensureTopics(kafka, loadTopicDefs(), {
    maxReplicationFactor: env.MCP_AUDIT_KAFKA_REPLICATION_FACTOR,
    ...(log ? { log } : {}),
  });
}
