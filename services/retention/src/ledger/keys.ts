import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  generateSigningKey,
  keyIdOf,
  publicKeyPem,
  signingKeyFromPem,
  type PublicKeys,
  type SigningKey,
} from './record.js';

export class KeyFileError extends Error {
  readonly code = 'AUDIT_ERR_LEDGER_KEY';
}

/**
 * Loads the Ed25519 signing key (PKCS#8 PEM). The file must be readable by its owner only: a key
 * that another account could have read may have signed anything.
 */
export function loadSigningKey(file: string): SigningKey {
  let st;
  try {
    st = statSync(file);
  } catch {
    throw new KeyFileError(`signing key file not found: ${file}`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new KeyFileError(
      `signing key file ${file} is accessible to group/others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  return signingKeyFromPem(readFileSync(file, 'utf8'));
}

/** Reads every `<key_id>.pub` (SPKI PEM) of a directory; a file whose name is not its key id is refused. */
export function loadPublicKeys(dir: string): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  if (!existsSync(dir)) return keys;
  for (const f of readdirSync(dir).sort()) {
    const m = /^([0-9a-f]{16})\.pub$/.exec(f);
    if (!m) continue;
    const pk = createPublicKey(readFileSync(join(dir, f), 'utf8'));
    if (pk.asymmetricKeyType !== 'ed25519' || keyIdOf(pk) !== m[1]) {
      throw new KeyFileError(`${f}: not the Ed25519 key its name says`);
    }
    keys.set(m[1]!, pk);
  }
  return keys;
}

export function publishPublicKey(dir: string, key: SigningKey): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${key.keyId}.pub`);
  if (!existsSync(file)) writeFileSync(file, publicKeyPem(key.publicKey), { mode: 0o644 });
  return file;
}

/**
 * Creates a signing key (or, with `rotate`, replaces the current one) and publishes its public key.
 * The replaced private key is not kept: older records stay verifiable through their published
 * public key, and nothing can sign as the old key any more.
 */
export function createSigningKey(
  file: string,
  publicDir: string,
  opts: { rotate?: boolean } = {},
): { key: SigningKey; replaced?: string } {
  let replaced: string | undefined;
  if (existsSync(file)) {
    if (!opts.rotate) throw new KeyFileError(`${file} exists; use rotate to replace it`);
    replaced = loadSigningKey(file).keyId;
  }
  const key = generateSigningKey();
  publishPublicKey(publicDir, key);
  const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, pem, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
  return replaced === undefined ? { key } : { key, replaced };
}

export type { PublicKeys };
