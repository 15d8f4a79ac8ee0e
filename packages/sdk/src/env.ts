import { z } from 'zod';

/** A bad `MCP_AUDIT_SDK_*` / `MCP_AUDIT_KAFKA_*` variable; the message names each one, never a value. */
export class SdkConfigError extends Error {
  readonly code = 'AUDIT_ERR_CONFIG';
}

/**
 * The SDK's own reading of the environment (a library cannot take the services' kit with it):
 * empty strings count as unset, and every issue is named as `VARIABLE: problem`.
 */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.infer<S> {
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(set);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new SdkConfigError(`invalid configuration:\n${issues.join('\n')}`);
}

export const envTimeoutMs = z.coerce.number().int().min(100).max(120_000).default(5_000);
