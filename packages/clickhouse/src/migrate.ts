#!/usr/bin/env node
/**
 * Applies schemas/clickhouse/NNN_name.sql to the database (default mcp_audit) as the admin user.
 *   MCP_AUDIT_CLICKHOUSE_URL, MCP_AUDIT_CLICKHOUSE_ADMIN_USER, MCP_AUDIT_CLICKHOUSE_ADMIN_PASSWORD,
 *   optional MCP_AUDIT_CLICKHOUSE_DATABASE, MCP_AUDIT_CLICKHOUSE_MIGRATIONS_DIR
 */
import { fileURLToPath } from 'node:url';
import { createClickHouse, type ClickHouseLogger } from './client.js';
import { ClickHouseAuditError } from './errors.js';
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
  // No `database` on the connection: it may not exist yet.
  const client = createClickHouse({
    url: nonEmpty(env.MCP_AUDIT_CLICKHOUSE_URL) ?? 'http://127.0.0.1:8123',
    username: nonEmpty(env.MCP_AUDIT_CLICKHOUSE_ADMIN_USER) ?? 'mcp_admin',
    password,
    requestTimeoutMs: 60_000,
    logger,
    application: 'mcp-audit-migrate',
  });
  try {
    const res = await runMigrations({
      client,
      dir,
      logger,
      database: nonEmpty(env.MCP_AUDIT_CLICKHOUSE_DATABASE) ?? 'mcp_audit',
    });
    for (const m of res.applied) console.log(`applied ${m.file} to ${res.database} (${m.durationMs} ms)`);
    if (res.applied.length === 0) {
      console.log(`${res.database} is up to date (${res.alreadyApplied.length} migrations applied before)`);
    }
    return 0;
  } catch (err) {
    const code = err instanceof ClickHouseAuditError ? ` [${err.code}]` : '';
    console.error(`migrate failed${code}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await client.close();
  }
}

process.exitCode = await main();
