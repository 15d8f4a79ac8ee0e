import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** A ledger record of version 1 (LEDGER.md). Times are ISO-8601 UTC to the second, with `Z`. */
export interface LedgerRecord {
  v: 1;
  table: 'events';
  /** Start of the hour of event time. */
  hour: string;
  kind: 'seal' | 'addendum';
  /** Position in the one chain of the ledger, from 0, no gaps. */
  seq: number;
  rows: number;
  /** Hex RFC 6962 root of the covered rows. */
  root: string;
  /** The covered rows were ingested at or before this second (and after the hour's previous cutoff). */
  cutoff: string;
  /** Hex SHA-256 of the previous record's canonical JSON; 64 zeros for seq 0. */
  prev: string;
  key_id: string;
}

/** A record with its Ed25519 signature (hex) over the canonical JSON's UTF-8 bytes. */
export interface SignedRecord {
  record: LedgerRecord;
  sig: string;
}

export const GENESIS_PREV = '0'.repeat(64);

/**
 * Canonical JSON: object keys sorted by UTF-16 code units (all keys here are ASCII), no
 * whitespace, strings and numbers as JSON.stringify writes them. Only integers, strings, null,
 * booleans, arrays and plain objects are allowed.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError('canonical JSON: only safe integers');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON: cannot encode ${typeof value}`);
}

export const sha256hex = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** SHA-256 of a record's canonical JSON: the next record's `prev`. */
export const recordHash = (r: LedgerRecord): string => sha256hex(canonicalJson(r));

/** Key id: the first 16 hex digits of SHA-256 of the raw 32-byte Ed25519 public key. */
export function keyIdOf(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' }) as { x?: string };
  if (!jwk.x) throw new TypeError('not an Ed25519 public key');
  return sha256hex(Buffer.from(jwk.x, 'base64url')).slice(0, 16);
}

export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function signingKeyFromPem(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('the signing key must be Ed25519');
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

export const publicKeyPem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

/** Signs any canonical-JSON object (records, receipts, manifests use the same scheme). */
export function signBytes(key: SigningKey, bytes: Buffer | string): string {
  return sign(null, typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes, key.privateKey).toString(
    'hex',
  );
}

export function verifyBytes(publicKey: KeyObject, bytes: Buffer | string, sigHex: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(sigHex)) return false;
  try {
    return verify(
      null,
      typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes,
      publicKey,
      Buffer.from(sigHex, 'hex'),
    );
  } catch {
    return false;
  }
}

export function signRecord(key: SigningKey, record: LedgerRecord): SignedRecord {
  if (record.key_id !== key.keyId) throw new Error('record key_id does not match the signing key');
  return { record, sig: signBytes(key, canonicalJson(record)) };
}

/** A trusted set of public keys by id (the published `<key_id>.pub` files). */
export type PublicKeys = ReadonlyMap<string, KeyObject>;

export function verifyRecordSignature(
  keys: PublicKeys,
  s: SignedRecord,
): 'ok' | 'unknown_key' | 'bad_signature' {
  const pk = keys.get(s.record.key_id);
  if (!pk) return 'unknown_key';
  return verifyBytes(pk, canonicalJson(s.record), s.sig) ? 'ok' : 'bad_signature';
}

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_S = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** Parses a record's JSON strictly (exact key set and types), or returns why not. */
export function parseRecord(value: unknown): LedgerRecord | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const o = value as Record<string, unknown>;
  const keys = ['cutoff', 'hour', 'key_id', 'kind', 'prev', 'root', 'rows', 'seq', 'table', 'v'];
  if (Object.keys(o).sort().join() !== keys.join()) return 'unexpected keys';
  if (o.v !== 1 || o.table !== 'events') return 'unknown version or table';
  if (o.kind !== 'seal' && o.kind !== 'addendum') return 'bad kind';
  if (typeof o.hour !== 'string' || !ISO_S.test(o.hour) || !o.hour.endsWith(':00:00Z')) return 'bad hour';
  if (typeof o.cutoff !== 'string' || !ISO_S.test(o.cutoff)) return 'bad cutoff';
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0) return 'bad seq';
  if (!Number.isSafeInteger(o.rows) || (o.rows as number) < 0) return 'bad rows';
  if (typeof o.root !== 'string' || !HEX64.test(o.root)) return 'bad root';
  if (typeof o.prev !== 'string' || !HEX64.test(o.prev)) return 'bad prev';
  if (typeof o.key_id !== 'string' || !/^[0-9a-f]{16}$/.test(o.key_id)) return 'bad key_id';
  return o as unknown as LedgerRecord;
}

/** ISO-8601 to the second. */
export const isoSecond = (ms: number) =>
  new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
export const HOUR_MS = 3_600_000;
export const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
