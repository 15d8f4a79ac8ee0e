import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { envBool, envHost, envInt, logLevel } from '@mcp-audit/service-kit';

/**
 * Environment of the gateway process (parsed once in main.ts). Where the upstreams, clients and
 * guard live is the gateway file (MCP_AUDIT_GATEWAY_CONFIG), a JSON document validated below.
 */
export const gatewayEnvSchema = z.object({
  MCP_AUDIT_LOG_LEVEL: logLevel,
  MCP_AUDIT_GATEWAY_CONFIG: z
    .string()
    .min(1, 'a gateway file is required (see services/gateway/README.md and deploy/gateway/)'),
  /** Extra client credentials (hashes only), merged with the file's `clients`. */
  MCP_AUDIT_GATEWAY_CLIENTS_FILE: z.string().optional(),
  MCP_AUDIT_GATEWAY_HOST: envHost,
  MCP_AUDIT_GATEWAY_PORT: envInt(9473, 0, 65535),
  MCP_AUDIT_GATEWAY_OPS_HOST: envHost,
  MCP_AUDIT_GATEWAY_OPS_PORT: envInt(9478, 0, 65535),
  /** `http` (default) serves clients over Streamable HTTP; `stdio` fronts one upstream on stdin/stdout. */
  MCP_AUDIT_GATEWAY_MODE: z.enum(['http', 'stdio']).default('http'),
  /** The upstream a stdio gateway fronts (default: the file's `stdio_upstream`, else the only upstream). */
  MCP_AUDIT_GATEWAY_STDIO_UPSTREAM: z.string().optional(),
  /** The credential of a stdio gateway's client (the MCP authorization spec: stdio takes it from the environment). */
  MCP_AUDIT_GATEWAY_API_KEY: z.string().optional(),
  MCP_AUDIT_GATEWAY_SHUTDOWN_MS: envInt(10_000, 500, 120_000),
  MCP_AUDIT_GATEWAY_DEBUG_UPSTREAM_STDERR: envBool('false'),
});
export type GatewayEnv = z.infer<typeof gatewayEnvSchema>;

const name = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'must be 1-64 of [a-zA-Z0-9_.-], starting alphanumeric');

const stdioUpstream = z.strictObject({
  name,
  transport: z.literal('stdio'),
  command: z.string().min(1, 'must name the program to run'),
  args: z.array(z.string()).default([]),
  /** Added to a minimal inherited environment (PATH, HOME, ...), as the MCP SDK does. */
  env: z.record(z.string(), z.string()).default({}),
  /** Relative to the gateway file's directory. */
  cwd: z.string().optional(),
});

const httpUpstream = z.strictObject({
  name,
  transport: z.literal('http'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  /** Sent with every upstream request (e.g. the upstream's own credential); values may be `env:NAME`. */
  headers: z.record(z.string(), z.string()).default({}),
});

export const upstreamSchema = z.discriminatedUnion('transport', [stdioUpstream, httpUpstream], {
  error: (iss) =>
    iss.code === 'invalid_union' ? 'transport must be "stdio" or "http"' : (iss.message ?? 'invalid'),
});
export type UpstreamConfig = z.infer<typeof upstreamSchema>;

export const CLIENT_SCOPES = ['mcp', 'admin'] as const;
export type ClientScope = (typeof CLIENT_SCOPES)[number];

const perSecond = z.number().positive().max(100_000);
const burst = z.int().min(1).max(1_000_000);

/** A client's own token bucket; a field it leaves out is the gateway's `rate_limit` value. */
export const clientRateLimitSchema = z
  .strictObject({ per_second: perSecond.optional(), burst: burst.optional() })
  .refine((r) => r.per_second !== undefined || r.burst !== undefined, 'set per_second, burst or both');

export const clientCredentialSchema = z.strictObject({
  /** The client id events carry (`client.id`, the unit of baselining). */
  id: z.string().min(1).max(128),
  user: z.string().min(1).max(256).optional(),
  name: z.string().min(1).max(256).optional(),
  /** SHA-256 hex of the key; the key itself is never stored. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (sha256 of the key)'),
  scopes: z.array(z.enum(CLIENT_SCOPES)).min(1).default(['mcp']),
  /** Upstreams this client may use; absent = all. */
  upstreams: z.array(name).optional(),
  /** Overrides the gateway's `rate_limit` for this client (the bucket is per client id). */
  rate_limit: clientRateLimitSchema.optional(),
  disabled: z.boolean().default(false),
});
export type ClientCredential = z.infer<typeof clientCredentialSchema>;
export const clientsFileSchema = z.array(clientCredentialSchema);

/** `name` or `name:port` as a Host header carries it (IPv6 in brackets), lower-cased. */
const hostEntry = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .refine((s) => /^(?:[a-z0-9._-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/.test(s), {
    message:
      'must be a host name or host:port as sent in the Host header, e.g. mcp.example.com or gw.internal:8443',
  });

/** `scheme://host[:port]`, kept as URL.origin spells it (lower case, default port dropped). */
const originEntry = z.string().transform((s, ctx) => {
  let u: URL | undefined;
  try {
    u = new URL(s.trim());
  } catch {
    u = undefined;
  }
  if (!u || u.origin === 'null' || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be an origin: scheme://host[:port], e.g. https://app.example.com',
    });
    return z.NEVER;
  }
  return u.origin;
});

export const gatewayFileSchema = z
  .strictObject({
    /** `source.id` of the events; must match the collector token's source when the collector sink is used. */
    gateway_id: name,
    upstreams: z.array(upstreamSchema).min(1, 'at least one upstream is required'),
    clients: z.array(clientCredentialSchema).default([]),
    stdio_upstream: name.optional(),
    /** Public base URL of the gateway (for RFC 9728 metadata); default http://<host>:<port>. */
    public_url: z.url().optional(),
    /**
     * Refused when non-empty: the gateway authenticates with its own API keys and validates no
     * OAuth access token, so advertising an authorization server (MCP authorization) would send
     * clients for tokens it then refuses. Kept only so `[]` in older files still parses.
     */
    authorization_servers: z
      .array(z.url())
      .max(
        0,
        'the gateway authenticates with its own API keys, not OAuth: it validates no access token, so it advertises no authorization server (see services/gateway/README.md, Authentication)',
      )
      .optional(),
    /**
     * Host header names (`name` for any port, `name:port` for one) the MCP endpoint answers. Default:
     * localhost, 127.0.0.1, [::1], the bound address, the address a connection arrived on and the
     * public_url's host. A list replaces the defaults.
     */
    allowed_hosts: z.array(hostEntry).optional(),
    /**
     * Origins (`scheme://host[:port]`) a browser may call the MCP endpoint from. Default: none but
     * loopback origins, and those only while the gateway is bound to loopback; a request without
     * Origin (any non-browser client) always passes. A list replaces the default.
     */
    allowed_origins: z.array(originEntry).optional(),
    guard: z
      .strictObject({
        /** Refuse calls to a tool whose definition changed until an operator re-approves it. */
        enabled: z.boolean().default(false),
        /** Where approved definition hashes persist; relative to the gateway file's directory. */
        state_file: z.string().min(1).default('gateway-tools.state.json'),
      })
      .prefault({}),
    rate_limit: z
      .strictObject({
        /** Token bucket per client: sustained requests per second and burst size. */
        per_second: perSecond.default(50),
        burst: burst.default(100),
        /** Failed authentications per source address per minute before 429. */
        auth_failures_per_minute: z.int().min(1).max(100_000).default(30),
      })
      .prefault({}),
    limits: z
      .strictObject({
        body_bytes: z
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(4 * 1024 * 1024),
        max_sessions: z.int().min(1).max(100_000).default(200),
        /**
         * SSE events kept per session so a client can resume a broken stream with Last-Event-ID
         * (event-store.ts); 0 turns resumability off (no event ids are sent).
         */
        resume_events: z.int().min(0).max(100_000).default(1000),
        /** The JSON bytes those events may hold per session (the newest one is always kept). */
        resume_bytes: z
          .int()
          .min(1024)
          .max(256 * 1024 * 1024)
          .default(512 * 1024),
        session_idle_ms: z
          .int()
          .min(1000)
          .default(30 * 60_000),
      })
      .prefault({}),
  })
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.upstreams.forEach((u, i) => {
      if (seen.has(u.name))
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', i, 'name'],
          message: `duplicate upstream "${u.name}"`,
        });
      seen.add(u.name);
    });
    if (f.stdio_upstream !== undefined && !seen.has(f.stdio_upstream))
      ctx.addIssue({
        code: 'custom',
        path: ['stdio_upstream'],
        message: `names no upstream (have: ${[...seen].join(', ')})`,
      });
    for (const c of rateLimitConflicts(f.clients))
      ctx.addIssue({
        code: 'custom',
        path: ['clients', c.index, 'rate_limit'],
        message: `differs from clients.${c.firstIndex}, another credential of client "${c.id}" (buckets are per client id)`,
      });
    f.clients.forEach((c, i) =>
      c.upstreams?.forEach((u, j) => {
        if (!seen.has(u))
          ctx.addIssue({
            code: 'custom',
            path: ['clients', i, 'upstreams', j],
            message: `names no upstream "${u}"`,
          });
      }),
    );
  });
export type GatewayFile = z.infer<typeof gatewayFileSchema>;

export class GatewayConfigError extends Error {
  readonly code = 'AUDIT_ERR_CONFIG';
}

function issuesText(file: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
  return `invalid gateway file ${file}:\n${lines.join('\n')}`;
}

/**
 * Parse a gateway file's JSON. Relative paths in it (stdio `cwd`, `guard.state_file`) are resolved
 * against `baseDir` so the file works from any working directory.
 */
export function parseGatewayFile(json: unknown, file = '<inline>', baseDir = process.cwd()): GatewayFile {
  const parsed = gatewayFileSchema.safeParse(json);
  if (!parsed.success) throw new GatewayConfigError(issuesText(file, parsed.error));
  const f = parsed.data;
  return {
    ...f,
    upstreams: f.upstreams.map((u) =>
      u.transport === 'stdio' && u.cwd !== undefined ? { ...u, cwd: resolve(baseDir, u.cwd) } : u,
    ),
    guard: { ...f.guard, state_file: resolve(baseDir, f.guard.state_file) },
  };
}

/**
 * Buckets are per client id, so every credential of one id (key rotation: two keys, one client)
 * must carry the same `rate_limit`, or the bucket would change size with the key presented.
 */
function rateLimitConflicts(
  clients: ReadonlyArray<Pick<ClientCredential, 'id' | 'rate_limit'>>,
): Array<{ index: number; firstIndex: number; id: string }> {
  const first = new Map<string, { index: number; limit: string }>();
  const conflicts: Array<{ index: number; firstIndex: number; id: string }> = [];
  clients.forEach((c, index) => {
    const limit = JSON.stringify(c.rate_limit ?? null);
    const seen = first.get(c.id);
    if (!seen) first.set(c.id, { index, limit });
    else if (seen.limit !== limit) conflicts.push({ index, firstIndex: seen.index, id: c.id });
  });
  return conflicts;
}

/** The gateway file's clients plus those of MCP_AUDIT_GATEWAY_CLIENTS_FILE, checked together. */
export function mergeClients(
  fromFile: readonly ClientCredential[],
  extra: readonly ClientCredential[],
  extraFile = '<clients file>',
): ClientCredential[] {
  const all = [...fromFile, ...extra];
  const n = fromFile.length;
  const where = (i: number) => (i < n ? `the gateway file's clients.${i}` : `entry ${i - n}`);
  const lines = rateLimitConflicts(all)
    .filter((c) => c.index >= n)
    .map(
      (c) =>
        `  ${c.index - n}.rate_limit: differs from ${where(c.firstIndex)}, another credential of client "${c.id}" (buckets are per client id)`,
    );
  if (lines.length > 0)
    throw new GatewayConfigError(`invalid clients file ${extraFile}:\n${lines.join('\n')}`);
  return all;
}

export function loadGatewayFile(file: string): GatewayFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GatewayConfigError(`cannot read gateway file ${file}: ${(err as Error).message}`);
  }
  return parseGatewayFile(json, file, dirname(resolve(file)));
}

export function loadClientsFile(file: string): ClientCredential[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GatewayConfigError(`cannot read clients file ${file}: ${(err as Error).message}`);
  }
  const parsed = clientsFileSchema.safeParse(json);
  if (!parsed.success) throw new GatewayConfigError(issuesText(file, parsed.error));
  return parsed.data;
}

/** Header values `env:NAME` are read from the environment at boot (secrets stay out of the file). */
export function resolveHeaderValues(
  headers: Record<string, string>,
  env: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const m = /^env:([A-Z_][A-Z0-9_]*)$/.exec(v);
    if (!m) {
      out[k] = v;
      continue;
    }
    const value = env[m[1]!];
    if (value === undefined || value === '')
      throw new GatewayConfigError(`upstream header ${k} refers to ${m[1]}, which is not set`);
    out[k] = value;
  }
  return out;
}
