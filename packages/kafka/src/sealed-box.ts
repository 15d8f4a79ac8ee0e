import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * Sealed boxes for dead-lettered originals: X25519 ECDH with a fresh ephemeral key per message,
 * HKDF-SHA256, AES-256-GCM with a random 96-bit nonce. Producers (collector, ingester) hold only
 * the recipient's public key, so a compromised producer cannot read what it sealed before; only
 * the reprocessing command (`dlq replay`) holds the private key.
 *
 * Layout: 0x01 ‖ ephemeral public key (32) ‖ nonce (12) ‖ AES-256-GCM(deflate-raw(original)) ‖ tag (16).
 * The additional data binds the box to its key id. The plaintext is compressed before it is
 * encrypted: an oversized event is mostly repetition, and ciphertext no longer compresses.
 */
const VERSION = 0x01;
const PUB_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const HEADER_LEN = 1 + PUB_LEN + NONCE_LEN;
const INFO = Buffer.from('mcp-audit dead-letter sealed box v1');
/** Bound on what one box may inflate to: the largest body the collector accepts is 100 MiB. */
const MAX_PLAINTEXT_BYTES = 128 * 1024 * 1024;

export class SealedBoxError extends Error {
  readonly code = 'AUDIT_ERR_DLQ_SEALED';
}

/** Raw 32-byte X25519 public key of a key object (its SPKI DER ends with it). */
function rawPublic(key: KeyObject): Buffer {
  const der = key.export({ type: 'spki', format: 'der' });
  return Buffer.from(der.subarray(der.length - PUB_LEN));
}

/** Key id: the first 16 hex characters of SHA-256 over the raw public key. */
export function dlqKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(rawPublic(publicKey)).digest('hex').slice(0, 16);
}

function assertX25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'x25519') {
    throw new SealedBoxError(
      `${what} is a ${key.asymmetricKeyType ?? 'symmetric'} key; an X25519 key is required`,
    );
  }
  return key;
}

function wrapKey(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), INFO, 32));
}

export interface Sealer {
  readonly keyId: string;
  seal(plaintext: Buffer): Buffer;
}

export interface Opener {
  /** Key ids this opener can open. */
  readonly keyIds: string[];
  open(box: Buffer, keyId: string): Buffer;
}

export function createSealer(publicKey: KeyObject): Sealer {
  assertX25519(publicKey, 'the dead-letter public key');
  const recipient = rawPublic(publicKey);
  const keyId = dlqKeyId(publicKey);
  const aad = Buffer.from(`mcp-audit-dlq-v1:${keyId}`);
  return {
    keyId,
    seal(plaintext) {
      const eph = generateKeyPairSync('x25519');
      const ephPub = rawPublic(eph.publicKey);
      const key = wrapKey(diffieHellman({ privateKey: eph.privateKey, publicKey }), ephPub, recipient);
      const nonce = randomBytes(NONCE_LEN);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(aad);
      const body = Buffer.concat([cipher.update(deflateRawSync(plaintext)), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), ephPub, nonce, body, cipher.getAuthTag()]);
    },
  };
}

export function createOpener(privateKeys: KeyObject[]): Opener {
  const byId = new Map<string, { priv: KeyObject; pub: KeyObject; raw: Buffer }>();
  for (const priv of privateKeys) {
    assertX25519(priv, 'the dead-letter private key');
    const pub = createPublicKey(priv);
    byId.set(dlqKeyId(pub), { priv, pub, raw: rawPublic(pub) });
  }
  return {
    keyIds: [...byId.keys()],
    open(box, keyId) {
      const k = byId.get(keyId);
      if (!k) {
        throw new SealedBoxError(
          `sealed under key ${keyId}; the private key file holds ${[...byId.keys()].join(', ') || 'no key'}`,
        );
      }
      if (box.length < HEADER_LEN + TAG_LEN || box[0] !== VERSION) {
        throw new SealedBoxError('not a version 1 sealed box');
      }
      const ephPub = box.subarray(1, 1 + PUB_LEN);
      const nonce = box.subarray(1 + PUB_LEN, HEADER_LEN);
      const tag = box.subarray(box.length - TAG_LEN);
      const ephKey = createPublicKey({
        key: Buffer.concat([X25519_SPKI_PREFIX, ephPub]),
        format: 'der',
        type: 'spki',
      });
      const key = wrapKey(diffieHellman({ privateKey: k.priv, publicKey: ephKey }), ephPub, k.raw);
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(Buffer.from(`mcp-audit-dlq-v1:${keyId}`));
      decipher.setAuthTag(tag);
      let compressed: Buffer;
      try {
        compressed = Buffer.concat([
          decipher.update(box.subarray(HEADER_LEN, box.length - TAG_LEN)),
          decipher.final(),
        ]);
      } catch {
        throw new SealedBoxError(
          'the sealed original does not authenticate under this key (altered or another key)',
        );
      }
      return inflateRawSync(compressed, { maxOutputLength: MAX_PLAINTEXT_BYTES });
    },
  };
}

/** DER prefix of an X25519 SubjectPublicKeyInfo (RFC 8410), before the 32 raw bytes. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** A public key from a PEM file (`-----BEGIN PUBLIC KEY-----`, e.g. `openssl pkey -pubout`). */
export function loadDlqPublicKey(file: string): KeyObject {
  return assertX25519(createPublicKey(readFileSync(file)), file);
}

/** Every `PRIVATE KEY` PEM block of a file: keep retired keys after the current one to replay old letters. */
export function loadDlqPrivateKeys(file: string): KeyObject[] {
  const text = readFileSync(file, 'utf8');
  const blocks = text.match(/-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----/g) ?? [];
  if (blocks.length === 0) throw new SealedBoxError(`${file} holds no PEM private key`);
  return blocks.map((b) => assertX25519(createPrivateKey(b), file));
}

/** A new X25519 key pair as PEM (what `dlq keygen` writes). */
export function generateDlqKeyPair(): { publicPem: string; privatePem: string; keyId: string } {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    keyId: dlqKeyId(publicKey),
  };
}

/** The dead-letter sealer of a service whose env names the replay key's public half (else none). */
export function dlqSealerFromEnv(env: {
  MCP_AUDIT_DLQ_PUBLIC_KEY_FILE?: string | undefined;
}): Sealer | undefined {
  return env.MCP_AUDIT_DLQ_PUBLIC_KEY_FILE
    ? createSealer(loadDlqPublicKey(env.MCP_AUDIT_DLQ_PUBLIC_KEY_FILE))
    : undefined;
}
