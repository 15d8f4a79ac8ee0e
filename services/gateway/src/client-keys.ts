import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ClientCredential, ClientScope } from './config.js';
import type { BucketLimits } from './rate-limiter.js';

/**
 * Client API keys, stored only as SHA-256 (services/collector/src/source-tokens.ts does the same):
 * keys are 32 random bytes, so there is no dictionary to attack and a fast hash is enough.
 */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateKey(): string {
  return `mcpg_${randomBytes(32).toString('base64url')}`;
}

/** Who a request is, as the gateway established it (never from client-supplied identity headers). */
export interface ClientIdentity {
  clientId: string;
  user?: string | undefined;
  name?: string | undefined;
  scopes: readonly ClientScope[];
  upstreams?: readonly string[] | undefined;
  /** The client's own `rate_limit` (unset fields: the gateway's). */
  rateLimit?: Partial<BucketLimits> | undefined;
}

export type Verification =
  | { ok: true; identity: ClientIdentity }
  | { ok: false; reason: 'missing_credential' | 'malformed_credential' | 'unknown_key' };

export interface KeyStore {
  verify(presented: string | undefined): Verification;
  size(): number;
}

// Keys are printable ASCII without spaces; anything else is refused before hashing.
const KEY_SHAPE = /^[\x21-\x7e]{16,512}$/;

export function createKeyStore(credentials: readonly ClientCredential[]): KeyStore {
  const byHash = new Map<string, ClientCredential>();
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
      return {
        ok: true,
        identity: {
          clientId: found.id,
          user: found.user,
          name: found.name,
          scopes: found.scopes,
          upstreams: found.upstreams,
          rateLimit: found.rate_limit && {
            perSecond: found.rate_limit.per_second,
            burst: found.rate_limit.burst,
          },
        },
      };
    },
    size: () => byHash.size,
  };
}

/**
 * The credential a request presents: `Authorization: Bearer <key>` (the MCP authorization spec's
 * form) or `X-API-Key: <key>`. A non-Bearer Authorization header counts as malformed.
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
