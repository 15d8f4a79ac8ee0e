import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createClickHouse, dbIdent, sql, type ClickHouse, type ClickHouseOptions } from '../src/index.js';

/** Repo's migrations (compiled tests live in packages/clickhouse/dist/test). */
export const SCHEMAS_DIR = fileURLToPath(new URL('../../../../schemas/clickhouse/', import.meta.url));

const env = process.env;
export const CH_URL = env.MCP_AUDIT_CLICKHOUSE_URL || 'http://127.0.0.1:8123';

type Role = 'ADMIN' | 'WRITER' | 'ANALYST';
const DEFAULT_USER: Record<Role, string> = {
  ADMIN: 'mcp_admin',
  WRITER: 'mcp_writer',
  ANALYST: 'mcp_analyst',
};

export function credentials(role: Role): { username: string; password: string } {
  const password = env[`MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD`];
  if (!password) throw new Error(`MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD is not set`);
  return { username: env[`MCP_AUDIT_CLICKHOUSE_${role}_USER`] || DEFAULT_USER[role], password };
}

export function client(role: Role, extra: Partial<ClickHouseOptions> = {}): ClickHouse {
  return createClickHouse({ url: CH_URL, ...credentials(role), ...extra });
}

/** A database name of our own for one test: mcp_audit_test_<tag>_<random>. */
export function testDatabase(tag: string): string {
  return `mcp_audit_test_${tag}_${randomBytes(4).toString('hex')}`;
}

export async function dropDatabase(admin: ClickHouse, database: string): Promise<void> {
  await admin.command(sql`DROP DATABASE IF EXISTS ${dbIdent(database)}`);
}

/** Captures log calls, for asserting on warnings. */
export function memoryLogger() {
  const lines: Array<{ level: string; obj: object; msg: string | undefined }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}
