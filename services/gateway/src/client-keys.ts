import { createKeyStore, type BucketLimits, type KeyVerification } from '@mcp-audit/service-kit';
import type { ClientCredential, ClientScope } from './config.js';

/** Gateway client keys are `mcpg_` + 32 random bytes (the kit's `generateKey(CLIENT_KEY_PREFIX)`). */
export const CLIENT_KEY_PREFIX = 'mcpg';

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
  { ok: true; identity: ClientIdentity } | Extract<KeyVerification<ClientCredential>, { ok: false }>;

export interface ClientKeyStore {
  verify(presented: string | undefined): Verification;
  size(): number;
}

export function identityOf(c: ClientCredential): ClientIdentity {
  return {
    clientId: c.id,
    user: c.user,
    name: c.name,
    scopes: c.scopes,
    upstreams: c.upstreams,
    rateLimit: c.rate_limit && { perSecond: c.rate_limit.per_second, burst: c.rate_limit.burst },
  };
}

/**
 * The kit's hashed-key store (SHA-256 only, constant-time compare, disabled keys skipped), verified
 * to the gateway's ClientIdentity.
 */
export function createClientKeyStore(credentials: readonly ClientCredential[]): ClientKeyStore {
  const store = createKeyStore(credentials);
  return {
    verify(presented) {
      const v = store.verify(presented);
      return v.ok ? { ok: true, identity: identityOf(v.credential) } : v;
    },
    size: () => store.size(),
  };
}
