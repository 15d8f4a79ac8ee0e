import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import type { Logger } from '@mcp-audit/service-kit';

// NOTE: kafkajs is CommonJS and its enums are not detectable named exports under ESM.
const { ConfigResourceTypes, ConfigSource } = kafkajs;

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

/** A declared topic's replication factor on this deployment: the declared one capped by the env's. */
export const replicationFor = (d: TopicDef, maxReplicationFactor: number): number =>
  Math.min(d.replicationFactor, maxReplicationFactor);

/** The topic-level settings a declared topic should carry at replication factor `rf`. */
export function desiredTopicConfig(d: TopicDef, rf: number): Record<string, string> {
  const out = { ...d.config };
  // min.insync.replicas above the replication factor would refuse every acks=-1 write.
  if (out['min.insync.replicas'] !== undefined)
    out['min.insync.replicas'] = String(Math.min(Number(out['min.insync.replicas']), rf));
  return out;
}

export interface TopicConfigChange {
  name: string;
  from: string | undefined;
  to: string;
}

/** What differs between the desired settings and a topic's current topic-level overrides. */
export function topicConfigChanges(
  desired: Record<string, string>,
  current: Record<string, string>,
): TopicConfigChange[] {
  return Object.entries(desired)
    .filter(([name, value]) => current[name] !== value)
    .map(([name, to]) => ({ name, from: current[name], to }));
}

/** Thrown before asking Kafka for a topic it cannot place: the error says which setting to change. */
export class ReplicationFactorError extends Error {
  readonly code = 'AUDIT_ERR_KAFKA_REPLICATION';
  constructor(topics: string[], rf: number, brokers: number) {
    super(
      `topic(s) ${topics.join(', ')} need replication factor ${rf} but the cluster has ${brokers} broker(s) ` +
        `available: lower MCP_AUDIT_KAFKA_REPLICATION_FACTOR to at most ${brokers}, or start the missing brokers`,
    );
    this.name = 'ReplicationFactorError';
  }
}

/**
 * Create the declared topics that are missing; existing ones are left alone (idempotent, safe
 * from several services at once: a concurrent "already exists" is success).
 * `maxReplicationFactor` caps replication (and min.insync.replicas) for small clusters; a replication
 * factor above the available brokers is refused with a ReplicationFactorError naming the setting.
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
    const rf = (d: TopicDef) => replicationFor(d, opts.maxReplicationFactor);
    const maxRf = Math.max(...missing.map(rf));
    if (maxRf > 1) {
      const { brokers } = await admin.describeCluster();
      if (brokers.length < maxRf)
        throw new ReplicationFactorError(
          missing.filter((d) => rf(d) > brokers.length).map((d) => d.name),
          maxRf,
          brokers.length,
        );
    }
    try {
      await admin.createTopics({
        // NOTE: kafkajs's own wait asks one broker and fails on UNKNOWN_TOPIC_OR_PARTITION when that
        // broker has not yet heard of the topic (a cluster); waitForLeaders below retries instead.
        waitForLeaders: false,
        topics: missing.map((d) => ({
          topic: d.name,
          numPartitions: d.partitions,
          replicationFactor: rf(d),
          configEntries: Object.entries(desiredTopicConfig(d, rf(d))).map(([name, value]) => ({
            name,
            value,
          })),
        })),
      });
    } catch (err) {
      // Another process created it between listTopics and createTopics.
      if (!/already exists/i.test(String((err as Error).message))) throw err;
    }
    await waitForLeaders(
      admin,
      missing.map((d) => d.name),
    );
    opts.log?.info({ topics: missing.map((d) => d.name) }, 'kafka topics created');
    return missing.map((d) => d.name);
  } finally {
    await admin.disconnect();
  }
}

/** Until every partition of the topics has a leader, as the broker asked knows it (30 s at most). */
async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: unknown;
    try {
      const meta = await admin.fetchTopicMetadata({ topics });
      if (meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)))
        return;
    } catch (err) {
      last = err; // UNKNOWN_TOPIC_OR_PARTITION while the creation spreads
    }
    if (Date.now() > deadline)
      throw new Error(
        `kafka topics ${topics.join(', ')} have no leader after ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`,
      );
    await new Promise((ok) => setTimeout(ok, 200));
  }
}

export interface TopicReconciliation {
  /** Topic-level settings changed to the declared ones. */
  altered: Array<{ topic: string; changes: TopicConfigChange[] }>;
  /** Partitions added up to the declared count (never removed: Kafka cannot). */
  partitionsAdded: Array<{ topic: string; from: number; to: number }>;
  /** Topics whose partitions have fewer replicas than wanted: only a reassignment raises that. */
  underReplicated: Array<{ topic: string; replicas: number; wanted: number }>;
  /** Topics with more partitions than declared (Kafka cannot remove partitions). */
  morePartitions: Array<{ topic: string; partitions: number; declared: number }>;
}

/**
 * Bring existing declared topics to their declaration: topic-level settings (min.insync.replicas
 * capped at the replication factor, retention, …) and partition count; report what it cannot change
 * (replication factor, fewer partitions). Needs DESCRIBE_CONFIGS and ALTER_CONFIGS on the topics: the
 * admin's CLI (ensure-topics), not a service's start-up.
 */
export async function reconcileTopics(
  kafka: Kafka,
  defs: TopicDef[],
  opts: { maxReplicationFactor: number; rename?: (name: string) => string; log?: Logger },
): Promise<TopicReconciliation> {
  const out: TopicReconciliation = {
    altered: [],
    partitionsAdded: [],
    underReplicated: [],
    morePartitions: [],
  };
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = defs
      .map((d) => ({ ...d, name: opts.rename ? opts.rename(d.name) : d.name }))
      .filter((d) => existing.has(d.name));
    if (wanted.length === 0) return out;
    const { topics } = await admin.fetchTopicMetadata({ topics: wanted.map((d) => d.name) });
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: wanted.map((d) => ({ type: ConfigResourceTypes.TOPIC, name: d.name })),
    });
    const alter: Array<{ name: string; configEntries: Array<{ name: string; value: string }> }> = [];
    const grow: Array<{ topic: string; count: number }> = [];
    for (const d of wanted) {
      const rf = replicationFor(d, opts.maxReplicationFactor);
      const meta = topics.find((t) => t.name === d.name);
      const partitions = meta?.partitions.length ?? 0;
      const replicas = Math.min(...(meta?.partitions ?? []).map((p) => p.replicas.length));
      if (replicas < rf) out.underReplicated.push({ topic: d.name, replicas, wanted: rf });
      if (partitions < d.partitions) {
        grow.push({ topic: d.name, count: d.partitions });
        out.partitionsAdded.push({ topic: d.name, from: partitions, to: d.partitions });
      }
      if (partitions > d.partitions)
        out.morePartitions.push({ topic: d.name, partitions, declared: d.partitions });
      // Only the topic's own overrides: the rest are broker defaults, not this topic's settings.
      const overrides = Object.fromEntries(
        (resources.find((r) => r.resourceName === d.name)?.configEntries ?? [])
          .filter((e) => e.configSource === ConfigSource.TOPIC_CONFIG)
          .map((e) => [e.configName, e.configValue]),
      );
      const changes = topicConfigChanges(desiredTopicConfig(d, rf), overrides);
      if (changes.length === 0) continue;
      out.altered.push({ topic: d.name, changes });
      // NOTE: AlterConfigs (kafkajs has no incremental variant) replaces the topic's whole override
      // set: undeclared overrides an operator set are sent back unchanged.
      const merged = { ...overrides, ...Object.fromEntries(changes.map((c) => [c.name, c.to])) };
      alter.push({
        name: d.name,
        configEntries: Object.entries(merged).map(([name, value]) => ({ name, value })),
      });
    }
    if (alter.length > 0)
      await admin.alterConfigs({
        validateOnly: false,
        resources: alter.map((r) => ({ type: ConfigResourceTypes.TOPIC, ...r })),
      });
    if (grow.length > 0) await admin.createPartitions({ topicPartitions: grow });
    if (out.altered.length + grow.length > 0) opts.log?.info(out, 'kafka topics reconciled');
    return out;
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
