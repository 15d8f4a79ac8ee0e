// The local Kafka cluster profile (deploy/local/cluster-kafka.sh) for tests and benches: bring it up,
// read its credentials, connect as one of its SASL principals, and grant a test's own topics the
// ACLs deploy/kafka/acls.json gives the real ones.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import kafkajs, { type AclEntry, type Admin, type Kafka } from 'kafkajs';
import { createKafka, kafkaConfigFromEnv, kafkaEnvSchema } from '@mcp-audit/kafka';
import { createLogger } from '@mcp-audit/service-kit';
import { REPO_ROOT } from './env.js';

const { AclOperationTypes: Op, AclPermissionTypes, AclResourceTypes: Res, ResourcePatternTypes } = kafkajs;

/** The tests' cluster sits beside the tests' stack, on ports of its own (24392-24394, 24492-24494, as scripts/test.sh sets them). */
export const clusterLocalDir = process.env.MCP_AUDIT_LOCAL_DIR ?? join(REPO_ROOT, '.local/test');
const scriptEnv = {
  ...process.env,
  MCP_AUDIT_LOCAL_DIR: clusterLocalDir,
  MCP_AUDIT_CLUSTER_KAFKA_PORT: process.env.MCP_AUDIT_TEST_CLUSTER_KAFKA_PORT ?? '24392',
  MCP_AUDIT_CLUSTER_KAFKA_CONTROLLER_PORT:
    process.env.MCP_AUDIT_TEST_CLUSTER_KAFKA_CONTROLLER_PORT ?? '24492',
};
const run = promisify(execFile);

/** deploy/local/cluster-kafka.sh with the tests' directory and ports. */
export const clusterKafka = (...args: string[]) =>
  run('bash', [join(REPO_ROOT, 'deploy/local/cluster-kafka.sh'), ...args], {
    env: scriptEnv,
    timeout: 240_000,
    maxBuffer: 1 << 20,
  });

/** The pid of node `n` (1-3) as the script recorded it. */
export const clusterNodePid = (n: number): number =>
  Number(readFileSync(join(clusterLocalDir, `cluster/kafka-${n}/kafka.pid`), 'utf8').trim());

/** Brokers and passwords from the cluster's kafka.env (written by `up`). */
export function clusterSecrets(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(clusterLocalDir, 'cluster/kafka.env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The Kafka part of a service's environment on the cluster, as `principal`. */
export function clusterClientEnv(principal: string): Record<string, string> {
  const s = clusterSecrets();
  const password = s[`MCP_AUDIT_KAFKA_PASSWORD_${principal.toUpperCase().replace(/-/g, '_')}`];
  if (!password) throw new Error(`no password for ${principal} in the cluster's kafka.env`);
  return {
    MCP_AUDIT_KAFKA_BROKERS: s.MCP_AUDIT_KAFKA_BROKERS!,
    MCP_AUDIT_KAFKA_REPLICATION_FACTOR: '3',
    MCP_AUDIT_KAFKA_SASL_MECHANISM: 'scram-sha-512',
    MCP_AUDIT_KAFKA_SASL_USERNAME: principal,
    MCP_AUDIT_KAFKA_SASL_PASSWORD: password,
  };
}

const quiet = createLogger('kafka-cluster', { level: 'silent' });
export const clusterClient = (principal: string): Kafka =>
  createKafka(
    kafkaConfigFromEnv(kafkaEnvSchema.parse(clusterClientEnv(principal)), `cluster-${principal}`),
    quiet,
  );

/**
 * A test's own events and dead-letter topics and ingester group get the ACLs acls.json gives the
 * real ones (collector writes both, ingester reads events in its group and writes dead letters).
 * Returns them for `admin.deleteAcls({ filters })` afterwards.
 */
export async function grantTestTopics(
  admin: Admin,
  topics: { events: string; dlq: string },
  group: string,
): Promise<AclEntry[]> {
  const acl = (
    principal: string,
    resourceType: number,
    resourceName: string,
    operation: number,
  ): AclEntry => ({
    principal: `User:${principal}`,
    host: '*',
    resourceType,
    resourceName,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    operation,
    permissionType: AclPermissionTypes.ALLOW,
  });
  const acls = [
    acl('collector', Res.TOPIC, topics.events, Op.WRITE),
    acl('collector', Res.TOPIC, topics.dlq, Op.WRITE),
    acl('ingester', Res.TOPIC, topics.events, Op.READ),
    acl('ingester', Res.GROUP, group, Op.READ),
    acl('ingester', Res.TOPIC, topics.dlq, Op.WRITE),
  ];
  await admin.createAcls({ acl: acls });
  return acls;
}

/** Replicas and in-sync replicas per partition of the topics. */
export async function replication(admin: Admin, topics: string[]) {
  const { topics: meta } = await admin.fetchTopicMetadata({ topics });
  return meta.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.name,
      partition: p.partitionId,
      leader: p.leader,
      replicas: p.replicas,
      isr: p.isr,
    })),
  );
}

export const allInSync = async (admin: Admin, topics: string[]) =>
  (await replication(admin, topics)).every((p) => p.replicas.length === 3 && p.isr.length === 3);
