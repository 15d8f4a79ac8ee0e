import { z } from 'zod';
import {
  createKeyStore,
  generateKey,
  hashKey,
  loadKeyFile,
  sha256Hex,
  type KeyStore,
} from '@mcp-audit/service-kit';

export const SCOPES = ['ingest', 'analyst', 'compliance', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** A source's credential in the tokens file: the kit's stored key plus the source it speaks for. */
const credentialSchema = z.object({
  id: z.string().min(1).max(128),
  source_id: z.string().min(1).max(256),
  sha256: sha256Hex,
  scopes: z.array(z.enum(SCOPES)).min(1),
  disabled: z.boolean().default(false),
});
export type SourceCredential = z.infer<typeof credentialSchema>;
export type TokenStore = KeyStore<SourceCredential>;

export const hashToken = hashKey;
export const generateToken = (): string => generateKey('mcpa');
export const createTokenStore = (credentials: SourceCredential[]): TokenStore => createKeyStore(credentials);
export const loadTokenStore = (file: string): TokenStore =>
  createKeyStore(loadKeyFile(file, credentialSchema));
