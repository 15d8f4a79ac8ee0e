import { statSync } from 'node:fs';
import { z } from 'zod';
import {
  createKeyStore,
  loadKeyFile,
  sha256Hex,
  type KeyVerification,
  type Logger,
} from '@mcp-audit/service-kit';

export const API_SCOPES = ['analyst', 'compliance', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export const apiKeySchema = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.@-]+$/, 'id: letters, digits and _ . @ - only'),
  sha256: sha256Hex,
  scopes: z.array(z.enum(API_SCOPES)).min(1),
  disabled: z.boolean().optional(),
  created_at: z.string().optional(),
  description: z.string().max(500).optional(),
});
export type ApiKey = z.infer<typeof apiKeySchema>;

/** `admin` implies every other scope (API.md). */
export const grants = (scopes: readonly string[], needed: ApiScope): boolean =>
  scopes.includes('admin') || scopes.includes(needed);

/** The keys the API accepts now; a changed file is re-read, so a revocation needs no restart. */
export interface KeyRing {
  verify(presented: string | undefined): KeyVerification<ApiKey>;
  /** The live (not disabled) key with this id: sessions re-check their key on every request. */
  byId(id: string): ApiKey | undefined;
  size(): number;
}

export function staticKeyRing(keys: readonly ApiKey[]): KeyRing {
  const store = createKeyStore(keys);
  const ids = new Map(keys.filter((k) => !k.disabled).map((k) => [k.id, k]));
  return { verify: (p) => store.verify(p), byId: (id) => ids.get(id), size: () => store.size() };
}

/**
 * A key ring over `file`, checked at most every `checkMs` (mtime, size and inode): a changed file is
 * loaded again; an unreadable or invalid file keeps the previous keys and logs an error (a half-written
 * file must not lock everyone out; the keys CLI writes atomically by rename).
 */
export function fileKeyRing(file: string, log: Logger, opts: { checkMs?: number } = {}): KeyRing {
  const checkMs = opts.checkMs ?? 1_000;
  let ring = staticKeyRing(loadKeyFile(file, apiKeySchema));
  let stamp = stampOf(file);
  let checkedAt = Date.now();
  const current = (): KeyRing => {
    const now = Date.now();
    if (now - checkedAt < checkMs) return ring;
    checkedAt = now;
    const s = stampOf(file);
    if (s === stamp) return ring;
    try {
      ring = staticKeyRing(loadKeyFile(file, apiKeySchema));
      stamp = s;
      log.info({ file, keys: ring.size() }, 'api keys reloaded');
    } catch (err) {
      log.error({ err, file }, 'api keys file unreadable: keeping the previous keys');
    }
    return ring;
  };
  return {
    verify: (p) => current().verify(p),
    byId: (id) => current().byId(id),
    size: () => current().size(),
  };
}

function stampOf(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}
