import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The one hashed-key store: the collector's source tokens, the gateway's client keys and the api's
 * keys. Keys are 32 random bytes, so there is no dictionary to attack and SHA-256 is enough (unlike
 * passwords); only the hash is ever stored.
 */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new key: `<prefix>_` and 32 random bytes in base64url. */
export function generateKey(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** What every stored credential has; services add their own fields (source id, user, upstreams…). */
export interface StoredKey {
  id: string;
  sha256: string;
  scopes: readonly string[];
  disabled?: boolean | undefined;
}

export const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lowercase hex characters');

export type KeyVerification<C> =
  | { ok: true; credential: C }
  | { ok: false; reason: 'missing_credential' | 'malformed_credential' | 'unknown_key' };

export interface KeyStore<C extends StoredKey> {
  /** The credential a presented key belongs to. Constant-time on the hash. */
  verify(presented: string | undefined): KeyVerification<C>;
  size(): number;
}

// Keys are printable ASCII without spaces; anything else is refused before hashing.
const KEY_SHAPE = /^[\x21-\x7e]{16,512}$/;

export function createKeyStore<C extends StoredKey>(credentials: readonly C[]): KeyStore<C> {
  const byHash = new Map<string, C>();
  for (const c of credentials) if (!c.disabled) byHash.set(c.sha256, c);
  return {
    verify(presented) {
      if (presented === undefined || presented === '') return { ok: false, reason: 'missing_credential' };
      if (!KEY_SHAPE.test(presented)) return { ok: false, reason: 'malformed_credential' };
      const h = hashKey(presented);
      const found = byHash.get(h);
      // The lookup is on a hash of the secret, so timing says nothing about the key; the compare
      // keeps the check obvious to a reviewer.
      if (!found || !timingSafeEqual(Buffer.from(found.sha256, 'hex'), Buffer.from(h, 'hex')))
        return { ok: false, reason: 'unknown_key' };
      return { ok: true, credential: found };
    },
    size: () => byHash.size,
  };
}

export const hasScope = (c: { scopes: readonly string[] }, scope: string): boolean =>
  c.scopes.includes(scope);

/** A JSON array of credentials validated by `schema`; the error names the file and each bad field. */
export function loadKeyFile<S extends z.ZodType>(file: string, schema: S): Array<z.infer<S>> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read keys file ${file}: ${(err as Error).message}`);
  }
  const parsed = z.array(schema).safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `invalid keys file ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/**
 * The key a request presents: `Authorization: Bearer <key>` (the MCP authorization spec's form) or
 * `X-API-Key: <key>`. A non-Bearer Authorization header counts as malformed.
 */
export function presentedCredential(headers: Record<string, string | string[] | undefined>): {
  key?: string;
  malformed?: boolean;
} {
  const auth = headers.authorization;
  if (typeof auth === 'string' && auth !== '') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? { key: m[1]! } : { malformed: true };
  }
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x !== '') return { key: x.trim() };
  return {};
}
