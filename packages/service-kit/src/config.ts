import { z } from 'zod';

/**
 * Parse a service's environment once at boot (Langfuse's env.ts pattern): empty strings are
 * treated as unset so `FOO=` falls back to the default instead of failing a number coercion.
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> {
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') cleaned[k] = v;
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

export class ConfigError extends Error {
  readonly code = 'AUDIT_ERR_CONFIG';
}

/** For main.ts: print the zod issues and exit 1. */
export function loadConfigOrExit<S extends z.ZodType>(schema: S, env = process.env): z.infer<S> {
  try {
    return parseConfig(schema, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

export const envBool = (def: 'true' | 'false') =>
  z
    .enum(['true', 'false'])
    .default(def)
    .transform((v) => v === 'true');

export const envInt = (def: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(def);

/** Loopback unless the operator says otherwise. */
export const envHost = z.string().default('127.0.0.1');

export const logLevel = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .default('info');

/**
 * The ops fragment of a service's environment: `MCP_AUDIT_<PREFIX>_HOST` (loopback by default) and
 * `MCP_AUDIT_<PREFIX>_PORT`.
 */
export function opsEnv<P extends string>(prefix: P, port: number) {
  const shape = {
    [`MCP_AUDIT_${prefix}_HOST`]: envHost,
    [`MCP_AUDIT_${prefix}_PORT`]: envInt(port, 0, 65535),
  } as Record<`MCP_AUDIT_${P}_HOST`, typeof envHost> &
    Record<`MCP_AUDIT_${P}_PORT`, ReturnType<typeof envInt>>;
  return z.object(shape);
}

/** The common fragment: log level and the shutdown deadline (`MCP_AUDIT_<PREFIX>_SHUTDOWN_MS`). */
export function serviceEnv<P extends string>(prefix: P, opts: { shutdownMs?: number } = {}) {
  const shape = {
    MCP_AUDIT_LOG_LEVEL: logLevel,
    [`MCP_AUDIT_${prefix}_SHUTDOWN_MS`]: envInt(opts.shutdownMs ?? 25_000, 1_000, 600_000),
  } as { MCP_AUDIT_LOG_LEVEL: typeof logLevel } & Record<
    `MCP_AUDIT_${P}_SHUTDOWN_MS`,
    ReturnType<typeof envInt>
  >;
  return z.object(shape);
}

/** The keys fragment: a JSON file of hashed keys (`MCP_AUDIT_<PREFIX>_KEYS_FILE`). */
export function keysEnv<P extends string>(prefix: P, opts: { required?: boolean } = {}) {
  const file = opts.required === false ? z.string().min(1).optional() : z.string().min(1);
  const shape = { [`MCP_AUDIT_${prefix}_KEYS_FILE`]: file } as Record<
    `MCP_AUDIT_${P}_KEYS_FILE`,
    typeof file
  >;
  return z.object(shape);
}
