// The local ClickHouse cluster profile (deploy/local/cluster-clickhouse.sh: ZooKeeper + ch1, ch2 =
// shard 1, ch3 = shard 2) for tests and benches: beside the tests' own stack, on ports of its own
// (MCP_AUDIT_TEST_CLUSTER_*, defaults as scripts/test.sh sets them: below the kernel's ephemeral
// port range, so one machine can run several), brought up by the script (reused when
// already up) and left running, like the tests' stack; migrated in the cluster layout.
// NOTE: database mcp_audit only: the profile's users, its inter-server user included, are allowed
// that database alone, so a Distributed query over another database fails on the remote shard (291).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createClickHouse, type ClickHouse } from '@mcp-audit/clickhouse';
import { need, REPO_ROOT } from './env.js';
import { env as stack } from './pipeline.js';

export const clickhouseClusterDir = process.env.MCP_AUDIT_LOCAL_DIR ?? `${REPO_ROOT}.local/test`;
const t = process.env;
const scriptEnv: Record<string, string> = {
  MCP_AUDIT_LOCAL_DIR: clickhouseClusterDir,
  MCP_AUDIT_CLUSTER_ZOOKEEPER_PORT: t.MCP_AUDIT_TEST_CLUSTER_ZOOKEEPER_PORT ?? '24181',
  MCP_AUDIT_CLUSTER_CLICKHOUSE_HTTP_PORT: t.MCP_AUDIT_TEST_CLUSTER_CLICKHOUSE_HTTP_PORT ?? '24123',
  MCP_AUDIT_CLUSTER_CLICKHOUSE_TCP_PORT: t.MCP_AUDIT_TEST_CLUSTER_CLICKHOUSE_TCP_PORT ?? '24200',
  MCP_AUDIT_CLUSTER_INTERSERVER_PORT: t.MCP_AUDIT_TEST_CLUSTER_INTERSERVER_PORT ?? '24210',
};

/** deploy/local/cluster-clickhouse.sh with the tests' directory and ports; returns its stdout. */
export function clickhouseCluster(cmd: 'up' | 'env' | 'down'): string {
  return execFileSync('bash', [`${REPO_ROOT}deploy/local/cluster-clickhouse.sh`, cmd], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...scriptEnv },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

export interface ClickHouseClusterInfo {
  /** Its name in remote_servers (MCP_AUDIT_CLICKHOUSE_CLUSTER). */
  name: string;
  /** Every node's HTTP URL, ch1 first. */
  urls: string[];
  /** The URL a service is given (MCP_AUDIT_CLICKHOUSE_URL: ch3). */
  serviceUrl: string;
}

/** The cluster's connection settings, as `cluster-clickhouse.sh env` prints them. */
export function clickhouseClusterInfo(): ClickHouseClusterInfo {
  const vars = Object.fromEntries(
    clickhouseCluster('env')
      .trim()
      .split('\n')
      .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
  );
  return {
    name: vars.MCP_AUDIT_CLICKHOUSE_CLUSTER!,
    urls: vars.MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS!.split(','),
    serviceUrl: vars.MCP_AUDIT_CLICKHOUSE_URL!,
  };
}

/** The project's migrations in the cluster layout on every node (idempotent: a reused cluster is up to date). */
export function migrateClickHouseCluster(c: ClickHouseClusterInfo): void {
  execFileSync('node', [`${REPO_ROOT}packages/clickhouse/dist/src/migrate.js`], {
    env: {
      PATH: process.env.PATH ?? '',
      MCP_AUDIT_CLICKHOUSE_ADMIN_USER: need(stack, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
      MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD: need(stack, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
      MCP_AUDIT_CLICKHOUSE_CLUSTER: c.name,
      MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS: c.urls.join(','),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Up (or reused) and migrated. */
export function startClickHouseCluster(): ClickHouseClusterInfo {
  const t0 = Date.now();
  clickhouseCluster('up');
  const c = clickhouseClusterInfo();
  migrateClickHouseCluster(c);
  console.log(`clickhouse cluster up and migrated in ${Date.now() - t0} ms`);
  return c;
}

/** One admin client per node (its local tables are `<table>_local`). */
export function clusterNodeClients(c: ClickHouseClusterInfo, requestTimeoutMs = 10_000): ClickHouse[] {
  return c.urls.map((url) =>
    createClickHouse({
      url,
      username: need(stack, 'MCP_AUDIT_CLICKHOUSE_ADMIN_USER'),
      password: need(stack, 'MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD'),
      database: 'mcp_audit',
      requestTimeoutMs,
    }),
  );
}

/** The pid the script recorded for a node (ch1, ch2, ch3). */
export const clusterNodePid = (node: 'ch1' | 'ch2' | 'ch3'): number =>
  Number(readFileSync(`${clickhouseClusterDir}/cluster/run/${node}.pid`, 'utf8').trim());
