import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const SCOPES = ['ingest', 'analyst', 'compliance', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const credentialSchema = z.object({
  id: z.string().min(1).max(128),
  source_id: z.string().min(1).max(256),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lowercase hex characters'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  disabled: z.boolean().default(false),
});
const credentialsFileSchema = z.array(credentialSchema);
export type SourceCredential = z.infer<typeof credentialSchema>;

/** Tokens are 32 random bytes: a fast hash is enough (no dictionary to attack), unlike passwords. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function generateToken(): string {
  return `mcpa_${randomBytes(32).toString('base64url')}`;
}

export interface TokenStore {
  /** The credential a bearer token belongs to, or undefined. Constant-time on the hash. */
  verify(token: string): SourceCredential | undefined;
}

export function createTokenStore(credentials: SourceCredential[]): TokenStore {
  const byHash = new Map(credentials.filter((c) => !c.disabled).map((c) => [c.sha256, c]));
  return {
    verify(token) {
      const h = hashToken(token);
      const found = byHash.get(h);
      // Map lookup is on a hash of the secret, so timing leaks nothing about the token itself;
      // the explicit compare keeps the check obvious to a reviewer.
      if (!found || !timingSafeEqual(Buffer.from(found.sha256, 'hex'), Buffer.from(h, 'hex')))
        return undefined;
      return found;
    },
  };
}

export function loadTokenStore(file: string): TokenStore {
  const parsed = credentialsFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    throw new Error(
      `invalid tokens file ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return createTokenStore(parsed.data);
}
