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
