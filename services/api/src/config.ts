import { z } from 'zod';
import { clickhouseEnv } from '@mcp-audit/clickhouse';
import { kafkaEnvSchema, TOPIC_ALERTS } from '@mcp-audit/kafka';
import { envBool, envHost, envInt, keysEnv, opsEnv, serviceEnv } from '@mcp-audit/service-kit';

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

/** The api's environment, parsed once in main.ts. */
export const apiEnvSchema = kafkaEnvSchema.extend({
  ...serviceEnv('API').shape,
  ...opsEnv('API_OPS', 9476).shape,
  ...keysEnv('API').shape,
  // Reads as mcp_api_reader (readonly, limits in its profile); writes as mcp_api (its own tables).
  ...clickhouseEnv('API', 'API_READER').shape,
  MCP_AUDIT_API_HOST: envHost,
  MCP_AUDIT_API_PORT: envInt(9475, 0, 65535),
  /** Host header values accepted (hostname or host:port); DNS-rebinding protection. */
  MCP_AUDIT_API_ALLOWED_HOSTS: list.default(['127.0.0.1', 'localhost', '[::1]']),
  /** Origins accepted on requests that carry one; empty: http(s)://<an allowed host>. */
  MCP_AUDIT_API_ALLOWED_ORIGINS: list.default([]),
  /** Set on HTTPS deployments: the session cookie gets `Secure`. */
  MCP_AUDIT_API_COOKIE_SECURE: envBool('false'),
  MCP_AUDIT_API_SESSION_IDLE_MINUTES: envInt(30, 1, 24 * 60),
  MCP_AUDIT_API_SESSION_MAX_HOURS: envInt(8, 1, 24 * 7),
  MCP_AUDIT_API_BODY_LIMIT_BYTES: envInt(64 * 1024, 1024, 10 * 1024 * 1024),
  MCP_AUDIT_API_RATE_LIMIT_PER_MINUTE: envInt(600, 1, 1_000_000),
  MCP_AUDIT_API_ADDRESS_RATE_LIMIT_PER_MINUTE: envInt(1_200, 1, 1_000_000),
  /** Failed logins/authentications per address per minute. */
  MCP_AUDIT_API_AUTH_FAILURES_PER_MINUTE: envInt(20, 1, 1_000_000),
  MCP_AUDIT_API_EXPORT_MAX_ROWS: envInt(100_000, 1, 450_000),
  MCP_AUDIT_API_MAX_RANGE_DAYS: envInt(31, 1, 400),
  MCP_AUDIT_API_CONSOLE_DIR: z.string().optional(),
  MCP_AUDIT_API_TRUST_PROXY: envBool('false'),
  MCP_AUDIT_ALERTS_TOPIC: z.string().default(TOPIC_ALERTS),
  // Compliance routes (compliance.routes.ts): on when the ledger's public keys are given.
  MCP_AUDIT_LEDGER_PUBLIC_KEYS_DIR: z.string().optional(),
  MCP_AUDIT_LEDGER_DIR: z.string().optional(),
  /** Signs export manifests: a key of the API's own (never the ledger's), published with the ledger's. */
  MCP_AUDIT_API_EXPORT_SIGNING_KEY_FILE: z.string().optional(),
  MCP_AUDIT_API_EXPORT_DIR: z.string().default('exports'),
});

export type ApiEnv = z.infer<typeof apiEnvSchema>;

/** What buildApi needs (no environment, no secrets). */
export interface ApiConfig {
  allowedHosts: string[];
  allowedOrigins: string[];
  cookieSecure: boolean;
  sessionIdleMs: number;
  sessionMaxMs: number;
  bodyLimitBytes: number;
  rateLimitPerMinute: number;
  addressRateLimitPerMinute: number;
  authFailuresPerMinute: number;
  exportMaxRows: number;
  maxRangeDays: number;
  /** Directory of the console's static build (index.html, assets/). */
  consoleDir: string | undefined;
  trustProxy: boolean;
  alertsTopic: string;
}

export function apiConfigFromEnv(env: ApiEnv, defaultConsoleDir: string): ApiConfig {
  return {
    allowedHosts: env.MCP_AUDIT_API_ALLOWED_HOSTS,
    allowedOrigins: env.MCP_AUDIT_API_ALLOWED_ORIGINS,
    cookieSecure: env.MCP_AUDIT_API_COOKIE_SECURE,
    sessionIdleMs: env.MCP_AUDIT_API_SESSION_IDLE_MINUTES * 60_000,
    sessionMaxMs: env.MCP_AUDIT_API_SESSION_MAX_HOURS * 3_600_000,
    bodyLimitBytes: env.MCP_AUDIT_API_BODY_LIMIT_BYTES,
    rateLimitPerMinute: env.MCP_AUDIT_API_RATE_LIMIT_PER_MINUTE,
    addressRateLimitPerMinute: env.MCP_AUDIT_API_ADDRESS_RATE_LIMIT_PER_MINUTE,
    authFailuresPerMinute: env.MCP_AUDIT_API_AUTH_FAILURES_PER_MINUTE,
    exportMaxRows: env.MCP_AUDIT_API_EXPORT_MAX_ROWS,
    maxRangeDays: env.MCP_AUDIT_API_MAX_RANGE_DAYS,
    consoleDir: env.MCP_AUDIT_API_CONSOLE_DIR ?? defaultConsoleDir,
    trustProxy: env.MCP_AUDIT_API_TRUST_PROXY,
    alertsTopic: env.MCP_AUDIT_ALERTS_TOPIC,
  };
}

/** Defaults for tests. */
export function defaultApiConfig(over: Partial<ApiConfig> = {}): ApiConfig {
  return {
    allowedHosts: ['127.0.0.1', 'localhost', '[::1]'],
    allowedOrigins: [],
    cookieSecure: false,
    sessionIdleMs: 30 * 60_000,
    sessionMaxMs: 8 * 3_600_000,
    bodyLimitBytes: 64 * 1024,
    rateLimitPerMinute: 600,
    addressRateLimitPerMinute: 1_200,
    authFailuresPerMinute: 20,
    exportMaxRows: 100_000,
    maxRangeDays: 31,
    consoleDir: undefined,
    trustProxy: false,
    alertsTopic: TOPIC_ALERTS,
    ...over,
  };
}
