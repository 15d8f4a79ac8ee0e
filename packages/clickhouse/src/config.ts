import { z } from 'zod';
import { createClickHouse, type ClickHouse, type ClickHouseOptions } from './client.js';

/** The ClickHouse users of DESIGN.md; each service gets only the ones it uses. */
export type ClickHouseRole = 'WRITER' | 'ANALYST' | 'ADMIN' | 'API' | 'API_READER';

const DEFAULT_USER: Record<ClickHouseRole, string> = {
  WRITER: 'mcp_writer',
  ANALYST: 'mcp_analyst',
  ADMIN: 'mcp_admin',
  API: 'mcp_api',
  // The analyst API's reads: readonly, with the per-query limits in its settings profile.
  API_READER: 'mcp_api_reader',
};

const baseShape = {
  MCP_AUDIT_CLICKHOUSE_URL: z.string().url().default('http://127.0.0.1:8123'),
  MCP_AUDIT_CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/)
    .default('mcp_audit'),
};

type RoleShape<R extends ClickHouseRole> = Record<
  `MCP_AUDIT_CLICKHOUSE_${R}_USER`,
  z.ZodDefault<z.ZodString>
> &
  Record<`MCP_AUDIT_CLICKHOUSE_${R}_PASSWORD`, z.ZodString>;

/**
 * The ClickHouse fragment of a service's environment: the URL, the database, and a user and password
 * for each role the service uses (`MCP_AUDIT_CLICKHOUSE_<ROLE>_USER` / `_PASSWORD`).
 */
export function clickhouseEnv<R extends ClickHouseRole>(...roles: R[]) {
  const shape: Record<string, z.ZodType> = { ...baseShape };
  for (const role of roles) {
    shape[`MCP_AUDIT_CLICKHOUSE_${role}_USER`] = z.string().default(DEFAULT_USER[role]);
    shape[`MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD`] = z
      .string()
      .min(1, `the ${role.toLowerCase()} password is required`);
  }
  return z.object(shape as typeof baseShape & RoleShape<R>);
}

type ClickHouseEnv<R extends ClickHouseRole> = {
  MCP_AUDIT_CLICKHOUSE_URL: string;
  MCP_AUDIT_CLICKHOUSE_DATABASE: string;
} & Record<`MCP_AUDIT_CLICKHOUSE_${R}_USER` | `MCP_AUDIT_CLICKHOUSE_${R}_PASSWORD`, string>;

/** A client for one role, from a parsed environment that has that role's fragment. */
export function clickhouseFor<R extends ClickHouseRole>(
  env: ClickHouseEnv<R>,
  role: R,
  opts: Omit<ClickHouseOptions, 'url' | 'database' | 'username' | 'password'> = {},
): ClickHouse {
  const e = env as unknown as Record<string, string>;
  return createClickHouse({
    url: env.MCP_AUDIT_CLICKHOUSE_URL,
    database: env.MCP_AUDIT_CLICKHOUSE_DATABASE,
    username: e[`MCP_AUDIT_CLICKHOUSE_${role}_USER`]!,
    password: e[`MCP_AUDIT_CLICKHOUSE_${role}_PASSWORD`]!,
    ...opts,
  });
}
