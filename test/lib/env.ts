import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Repo root (test/dist/lib → ../../..). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Integration tests read the local stack's credentials from the environment; when run outside
 * `npm test`, fall back to $MCP_AUDIT_LOCAL_DIR/secrets.env (default .local) written by deploy/local/stack.sh.
 */
export function stackEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  const file = `${process.env.MCP_AUDIT_LOCAL_DIR ?? `${REPO_ROOT}.local`}/secrets.env`;
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!;
    }
  }
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('MCP_AUDIT_') && v) out[k] = v;
  return out;
}

export function need(env: Record<string, string>, key: string): string {
  const v = env[key];
  if (!v)
    throw new Error(`${key} is not set: run \`npm run up\` (it writes .local/secrets.env) or export it`);
  return v;
}

export const suffix = (): string => randomBytes(4).toString('hex');

/** Poll until `fn` returns a truthy value; never a fixed sleep. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
