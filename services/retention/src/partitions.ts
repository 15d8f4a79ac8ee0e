import {
  dbIdent,
  ident,
  LOCAL_SUFFIX,
  sql,
  tuple,
  createClickHouse,
  type ClickHouse,
  type ClickHouseOptions,
  type SqlFragment,
} from '@mcp-audit/clickhouse';

/** Active rows of one day partition of one table, over the whole data set (every shard once). */
export interface PartitionRows {
  table: string;
  partition: string;
  rows: number;
}

/**
 * Where retention reads partitions and removes them: one server, or every shard of a cluster laid
 * out by the migrations (packages/clickhouse/src/cluster.ts: `t_local` replicated per shard, `t` a
 * Distributed table that refuses partition operations).
 */
export interface Partitions {
  readonly mode: 'single' | 'cluster';
  list(tables: readonly string[]): Promise<PartitionRows[]>;
  /** Removes one day partition of `table` everywhere it is stored. */
  drop(table: string, partition: string): Promise<void>;
  /** `ALTER TABLE table DELETE WHERE …` everywhere it is stored (a mutation, asynchronous). */
  deleteWhere(table: string, where: SqlFragment): Promise<void>;
}

/** Tables retention touches (identifiers from this allowlist only). */
export const PARTITION_TABLES = [
  'events',
  'alerts',
  'alert_transitions',
  'alert_deliveries',
  'incidents',
  'incident_transitions',
  'access_log',
  'integrity_leaves',
  'events_by_time',
  'event_ids',
] as const;
const localName = (table: string) => table + LOCAL_SUFFIX;
const LOCAL_TABLES = PARTITION_TABLES.map(localName);

export function singleServerPartitions(ch: ClickHouse, database: string): Partitions {
  const db = dbIdent(database);
  return {
    mode: 'single',
    async list(tables) {
      const rows = await ch.query<{ table: string; partition: string; rows: string }>(sql`
        SELECT table, partition, sum(rows) AS rows FROM system.parts
        WHERE database = ${database} AND active AND table IN ${tuple([...tables])}
        GROUP BY table, partition ORDER BY table, partition`);
      return rows.map((r) => ({ table: r.table, partition: r.partition, rows: Number(r.rows) }));
    },
    async drop(table, partition) {
      await ch.command(
        sql`ALTER TABLE ${db}.${ident(table, PARTITION_TABLES)} DROP PARTITION ${Number(partition)}`,
      );
    },
    async deleteWhere(table, where) {
      await ch.command(sql`ALTER TABLE ${db}.${ident(table, PARTITION_TABLES)} DELETE WHERE ${where}`);
    },
  };
}

export interface ClusterNodeClient {
  /** How the node is named in errors (its URL). */
  name: string;
  /** An admin client of that node. */
  ch: ClickHouse;
}

export class ClusterRetentionError extends Error {
  readonly code = 'AUDIT_ERR_RETENTION_CLUSTER';
}

interface NodeState {
  node: ClusterNodeClient;
  shard: string;
  replica: string;
}

/**
 * The cluster layout. Each shard holds part of every day, and each shard's replicas hold the same
 * data, so:
 * - `list` reads system.parts of `<t>_local` on every node and counts each shard once (its most
 *   complete replica: one that is behind on fetches holds fewer rows), summed over the shards;
 * - `drop` runs `ALTER TABLE <t>_local DROP PARTITION` on the LEADER replica of every shard (the
 *   Replicated engine logs it in ZooKeeper and the other replicas apply it; when the leader is dead,
 *   after a survivor is elected), then waits until no replica that answers still holds the partition. NOTE: on 18.16 a non-leader forwards the drop to
 *   the leader as the user `default`, which these servers do not have (code 192).
 * - `deleteWhere` runs the mutation on one replica of every shard (mutations replicate).
 * A shard none of whose replicas answers makes every call fail (a partial picture is never used):
 * the next run retries. The nodes must be every replica of the cluster, as for the migrations.
 */
export function clusterPartitions(opts: {
  cluster: string;
  database: string;
  nodes: readonly ClusterNodeClient[];
  /** How long `drop` waits for the other replicas to apply it (default 60 s). */
  replicaWaitMs?: number;
  /** How long `drop` waits for a shard's leader to be elected (default 30 s). */
  leaderWaitMs?: number;
}): Partitions {
  const { cluster, database } = opts;
  const db = dbIdent(database);
  const local = (table: string) => ident(localName(table), LOCAL_TABLES);

  /** The nodes that answer, each with its shard and replica; refuses when a whole shard is silent. */
  async function live(): Promise<NodeState[]> {
    const answers = await Promise.all(
      opts.nodes.map(async (node) => {
        try {
          const [r] = await node.ch.query<{
            shard: string;
            replica: string;
            shards: string;
            replicas: string;
          }>(sql`
            SELECT
              (SELECT anyIf(substitution, macro = 'shard') FROM system.macros) AS shard,
              (SELECT anyIf(substitution, macro = 'replica') FROM system.macros) AS replica,
              (SELECT uniqExact(shard_num) FROM system.clusters WHERE cluster = ${cluster}) AS shards,
              (SELECT count() FROM system.clusters WHERE cluster = ${cluster}) AS replicas`);
          return { node, r, err: undefined };
        } catch (err) {
          return { node, r: undefined, err: err as Error };
        }
      }),
    );
    const up: NodeState[] = [];
    let shards = 0;
    let replicas = 0;
    for (const a of answers) {
      if (!a.r) continue;
      if (Number(a.r.shards) === 0)
        throw new ClusterRetentionError(`${a.node.name}: no cluster ${cluster} in its remote_servers`);
      if (!a.r.shard || !a.r.replica)
        throw new ClusterRetentionError(`${a.node.name}: no {shard} and {replica} macros`);
      shards = Number(a.r.shards);
      replicas = Number(a.r.replicas);
      up.push({ node: a.node, shard: a.r.shard, replica: a.r.replica });
    }
    const down = answers.filter((a) => a.err).map((a) => `${a.node.name} (${a.err!.message.split('\n')[0]})`);
    if (up.length === 0)
      throw new ClusterRetentionError(`no node of cluster ${cluster} answers: ${down.join('; ')}`);
    if (replicas !== opts.nodes.length)
      throw new ClusterRetentionError(
        `cluster ${cluster} has ${replicas} replicas, ${opts.nodes.length} node(s) given: ` +
          'MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS must list every node',
      );
    const seen = new Set(up.map((s) => s.shard));
    if (seen.size < shards)
      throw new ClusterRetentionError(
        `${shards - seen.size} of ${shards} shards of cluster ${cluster} have no replica answering ` +
          `(down: ${down.join('; ')}): retention needs every shard`,
      );
    return up;
  }

  async function partsOn(n: NodeState, tables: readonly string[]) {
    return n.node.ch.query<{ table: string; partition: string; rows: string }>(sql`
      SELECT table, partition, sum(rows) AS rows FROM system.parts
      WHERE database = ${database} AND active AND table IN ${tuple(tables.map(localName))}
      GROUP BY table, partition`);
  }

  return {
    mode: 'cluster',
    async list(tables) {
      const nodes = await live();
      // shard -> table/partition -> rows of its most complete replica
      const perShard = new Map<string, Map<string, number>>();
      for (const n of nodes) {
        const rows = await partsOn(n, tables);
        const m = perShard.get(n.shard) ?? new Map<string, number>();
        perShard.set(n.shard, m);
        for (const r of rows) {
          const k = `${r.table.slice(0, -LOCAL_SUFFIX.length)}\t${r.partition}`;
          m.set(k, Math.max(m.get(k) ?? 0, Number(r.rows)));
        }
      }
      const total = new Map<string, number>();
      for (const m of perShard.values()) for (const [k, v] of m) total.set(k, (total.get(k) ?? 0) + v);
      return [...total]
        .map(([k, rows]) => {
          const [table, partition] = k.split('\t') as [string, string];
          return { table, partition, rows };
        })
        .sort((a, b) => a.table.localeCompare(b.table) || a.partition.localeCompare(b.partition));
    },
    async drop(table, partition) {
      const nodes = await live();
      for (const shard of new Set(nodes.map((n) => n.shard))) {
        const replicas = nodes.filter((n) => n.shard === shard);
        // A leader that died keeps its ZooKeeper session (and leadership) until the session times
        // out; a survivor is elected then.
        const leaderDeadline = Date.now() + (opts.leaderWaitMs ?? 30_000);
        let leader: NodeState | undefined;
        while (!leader) {
          for (const n of replicas) {
            const [r] = await n.node.ch.query<{ leader: number }>(sql`
              SELECT is_leader AS leader FROM system.replicas
              WHERE database = ${database} AND table = ${localName(table)}`);
            if (Number(r?.leader ?? 0) === 1) {
              leader = n;
              break;
            }
          }
          if (leader) break;
          if (Date.now() > leaderDeadline)
            throw new ClusterRetentionError(
              `shard ${shard}: no answering replica of ${table}${LOCAL_SUFFIX} is its leader ` +
                `(${replicas.map((n) => n.replica).join(', ')}); partition ${partition} not dropped there`,
            );
          await new Promise((res) => setTimeout(res, 500));
        }
        await leader.node.ch.command(
          sql`ALTER TABLE ${db}.${local(table)} DROP PARTITION ${Number(partition)}`,
        );
      }
      // The other replicas apply the drop from the replication log; wait until they have.
      const deadline = Date.now() + (opts.replicaWaitMs ?? 60_000);
      for (const n of nodes) {
        for (;;) {
          const left = (await partsOn(n, [table])).filter((r) => r.partition === partition);
          if (left.length === 0) break;
          if (Date.now() > deadline)
            throw new ClusterRetentionError(
              `${n.node.name} (shard ${n.shard}, replica ${n.replica}) still holds ${table} ${partition} ` +
                `after the drop on its shard's leader; it applies it from the replication log when it catches up`,
            );
          await new Promise((res) => setTimeout(res, 200));
        }
      }
    },
    async deleteWhere(table, where) {
      const nodes = await live();
      for (const shard of new Set(nodes.map((n) => n.shard))) {
        const n = nodes.find((x) => x.shard === shard)!;
        await n.node.ch.command(sql`ALTER TABLE ${db}.${local(table)} DELETE WHERE ${where}`);
      }
    },
  };
}

/** The variables configuredPartitions reads (retention's config.ts). */
export interface PartitionsEnv {
  MCP_AUDIT_CLICKHOUSE_DATABASE: string;
  MCP_AUDIT_CLICKHOUSE_ADMIN_USER: string;
  MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD: string;
  MCP_AUDIT_CLICKHOUSE_CLUSTER?: string | undefined;
  MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS: readonly string[];
}

/**
 * Partitions as configured: the cluster layout when MCP_AUDIT_CLICKHOUSE_CLUSTER is set (an admin
 * client per node of MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS, closed by `close`), else this server through `ch`.
 */
export function configuredPartitions(
  env: PartitionsEnv,
  ch: ClickHouse,
  client: Pick<ClickHouseOptions, 'application' | 'logger'>,
): { partitions: Partitions; close(): Promise<void> } {
  const database = env.MCP_AUDIT_CLICKHOUSE_DATABASE;
  const cluster = env.MCP_AUDIT_CLICKHOUSE_CLUSTER;
  const urls = env.MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS;
  if (!cluster) {
    if (urls.length > 0)
      throw new ClusterRetentionError(
        'MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS is set without MCP_AUDIT_CLICKHOUSE_CLUSTER (the cluster name)',
      );
    return { partitions: singleServerPartitions(ch, database), close: async () => {} };
  }
  if (urls.length === 0)
    throw new ClusterRetentionError(
      'MCP_AUDIT_CLICKHOUSE_CLUSTER is set: MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS must list every node',
    );
  const nodes = urls.map((url) => ({
    name: url,
    ch: createClickHouse({
      url,
      username: env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER,
      password: env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD,
      database,
      requestTimeoutMs: 600_000,
      ...client,
    }),
  }));
  return {
    partitions: clusterPartitions({ cluster, database, nodes }),
    close: async () => {
      await Promise.all(nodes.map((n) => n.ch.close()));
    },
  };
}
