import type { ClickHouse } from './client.js';
import { clusterStatements } from './cluster.js';
import { MigrationError } from './errors.js';
import { sql } from './literal.js';
import {
  loadMigrations,
  runMigrations,
  type MigrationResult,
  type RunMigrationsOptions,
} from './migrations.js';

export interface ClusterNode {
  /** How the node is named in errors and results (its URL). */
  name: string;
  /** An admin client of that node, without a `database`. */
  client: ClickHouse;
}

export interface RunClusterMigrationsOptions extends Omit<RunMigrationsOptions, 'client' | 'cluster'> {
  /** The cluster's name in the servers' remote_servers. */
  cluster: string;
  /** Every node of the cluster (every replica of every shard), each exactly once. */
  nodes: ClusterNode[];
}

export interface ClusterMigrationResult {
  cluster: string;
  nodes: Array<{ node: string; shard: string; replica: string; result: MigrationResult }>;
}

/**
 * Applies the migrations in the cluster layout (cluster.ts) on every node, one node after the other.
 * Refuses before touching anything when a statement has no cluster rule, a node is not a member of
 * the cluster, or the nodes given are not all of its replicas (a node left out would have no local
 * tables, and every Distributed query touching its shard would fail).
 */
export async function runClusterMigrations(
  opts: RunClusterMigrationsOptions,
): Promise<ClusterMigrationResult> {
  const { cluster, nodes } = opts;
  const database = opts.database ?? 'mcp_audit';
  for (const f of loadMigrations(opts.dir)) {
    for (const s of f.statements) clusterStatements(s, { cluster, database }, f.file);
  }
  if (nodes.length === 0) {
    throw new MigrationError('AUDIT_ERR_MIGRATION_CLUSTER', `no node given for cluster ${cluster}`);
  }

  // A node is named by its {shard} and {replica} macros (the ones the replicated tables' paths use).
  // NOTE: not by system.clusters.is_local: 18.16 marks every replica of a shard local on loopback.
  const members: Array<{ shard: string; replica: string }> = [];
  let total = 0;
  for (const node of nodes) {
    const [r] = await node.client.query<{ total: string; local: string; shard: string; replica: string }>(sql`
      SELECT
        (SELECT count() FROM system.clusters WHERE cluster = ${cluster}) AS total,
        (SELECT countIf(is_local = 1) FROM system.clusters WHERE cluster = ${cluster}) AS local,
        (SELECT anyIf(substitution, macro = 'shard') FROM system.macros) AS shard,
        (SELECT anyIf(substitution, macro = 'replica') FROM system.macros) AS replica`);
    if (!r || Number(r.total) === 0 || Number(r.local) === 0) {
      throw new MigrationError(
        'AUDIT_ERR_MIGRATION_CLUSTER',
        `${node.name} is not a member of cluster ${cluster} (${Number(r?.total ?? 0) === 0 ? 'no such cluster' : 'no replica of it is this node'} in its remote_servers)`,
      );
    }
    if (r.shard === '' || r.replica === '') {
      throw new MigrationError(
        'AUDIT_ERR_MIGRATION_CLUSTER',
        `${node.name} has no {shard} and {replica} macros: the replicated tables' paths need them`,
      );
    }
    const twin = members.findIndex((m) => m.shard === r.shard && m.replica === r.replica);
    if (twin >= 0) {
      throw new MigrationError(
        'AUDIT_ERR_MIGRATION_CLUSTER',
        `${node.name} and ${nodes[twin]!.name} are the same replica (shard ${r.shard}, replica ${r.replica})`,
      );
    }
    members.push({ shard: r.shard, replica: r.replica });
    total = Number(r.total);
  }
  if (total !== nodes.length) {
    throw new MigrationError(
      'AUDIT_ERR_MIGRATION_CLUSTER',
      `cluster ${cluster} has ${total} replicas in its remote_servers, ${nodes.length} node(s) given: ` +
        'migrate every node (MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS)',
    );
  }

  // File by file, each on every node before the next: a replicated ALTER (010) reaches the shard's
  // other replicas at once, and a replica created later from an older file would no longer match
  // the table's structure in ZooKeeper (code 122).
  const results = nodes.map((): MigrationResult => ({ database, applied: [], alreadyApplied: [] }));
  const known = nodes.map(() => new Set<number>());
  for (const version of loadMigrations(opts.dir).map((f) => f.version)) {
    for (const [i, node] of nodes.entries()) {
      if (known[i]!.has(version)) continue; // applied before, as the node's last run reported
      const res = await runMigrations({ ...opts, client: node.client, cluster, upTo: version });
      if (known[i]!.size === 0) results[i]!.alreadyApplied = res.alreadyApplied;
      results[i]!.applied.push(...res.applied);
      for (const v of [...res.alreadyApplied, ...res.applied.map((a) => a.version)]) known[i]!.add(v);
    }
  }
  return {
    cluster,
    nodes: nodes.map((node, i) => ({ node: node.name, ...members[i]!, result: results[i]! })),
  };
}
