#!/usr/bin/env node
/**
 * Applies schemas/clickhouse/NNN_name.sql to the database (default mcp_audit) as the admin user.
 *   MCP_AUDIT_CLICKHOUSE_URL, MCP_AUDIT_CLICKHOUSE_ADMIN_USER, MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD,
 *   optional MCP_AUDIT_CLICKHOUSE_DATABASE, MCP_AUDIT_CLICKHOUSE_MIGRATIONS_DIR
 * Cluster layout (README "Running at scale"): MCP_AUDIT_CLICKHOUSE_CLUSTER=<name in remote_servers>
 *   and MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS=<every node's HTTP URL, comma-separated>.
 */
import { fileURLToPath } from 'node:url';
import { createClickHouse, type ClickHouseLogger } from './client.js';
import { ClickHouseAuditError } from './errors.js';
import { runClusterMigrations } from './cluster-migrations.js';
import { runMigrations } from './migrations.js';

const env = process.env;
const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);

// Compiled to packages/clickhouse/dist/src/migrate.js: the repo root is four levels up.
const dir =
  nonEmpty(env.MCP_AUDIT_CLICKHOUSE_MIGRATIONS_DIR) ??
  fileURLToPath(new URL('../../../../schemas/clickhouse/', import.meta.url));

const line =
  (level: string) =>
  (obj: object, msg?: string): void => {
    const { err, ...rest } = obj as { err?: unknown };
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    const why = err instanceof Error ? `: ${err.message}` : '';
    console.error(`migrate ${level}: ${msg ?? ''}${extra}${why}`);
  };
const logger: ClickHouseLogger = {
  debug: () => {},
  info: line('info'),
  warn: line('warn'),
  error: line('error'),
};

async function main(): Promise<number> {
  const password = nonEmpty(env.MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD);
  if (password === undefined) {
    console.error('migrate: MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD is required');
    return 1;
  }
  const database = nonEmpty(env.MCP_AUDIT_CLICKHOUSE_DATABASE) ?? 'mcp_audit';
  const cluster = nonEmpty(env.MCP_AUDIT_CLICKHOUSE_CLUSTER);
  const urls = cluster
    ? (nonEmpty(env.MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS) ?? '')
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean)
    : [nonEmpty(env.MCP_AUDIT_CLICKHOUSE_URL) ?? 'http://127.0.0.1:8123'];
  if (urls.length === 0) {
    console.error(
      'migrate: MCP_AUDIT_CLICKHOUSE_CLUSTER is set: MCP_AUDIT_CLICKHOUSE_CLUSTER_URLS must list every node',
    );
    return 1;
  }
  // No `database` on the connection: it may not exist yet.
  const clients = urls.map((url) =>
    createClickHouse({
      url,
      username: nonEmpty(env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER) ?? 'mcp_admin',
      password,
      requestTimeoutMs: 60_000,
      logger,
      application: 'mcp-audit-migrate',
    }),
  );
  try {
    const results = cluster
      ? (
          await runClusterMigrations({
            cluster,
            nodes: clients.map((client, i) => ({ name: urls[i]!, client })),
            dir,
            logger,
            database,
          })
        ).nodes.map((n) => ({
          where: ` on ${n.node} (shard ${n.shard}, replica ${n.replica})`,
          res: n.result,
        }))
      : [{ where: '', res: await runMigrations({ client: clients[0]!, dir, logger, database }) }];
    for (const { where, res } of results) {
      for (const m of res.applied)
        console.log(`applied ${m.file} to ${res.database}${where} (${m.durationMs} ms)`);
      if (res.applied.length === 0) {
        console.log(
          `${res.database}${where} is up to date (${res.alreadyApplied.length} migrations applied before)`,
        );
      }
    }
    return 0;
  } catch (err) {
    const code = err instanceof ClickHouseAuditError ? ` [${err.code}]` : '';
    console.error(`migrate failed${code}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

process.exitCode = await main();
