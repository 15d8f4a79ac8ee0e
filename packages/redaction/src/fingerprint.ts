import { createHmac, randomBytes } from 'node:crypto';

/** Key for the HMAC that fingerprints secrets. */
export type FingerprintKey = string | Buffer | Uint8Array;

/**
 * A replaced secret: `[REDACTED:<kind>:<8 hex>]`. The fingerprint is the first 8 hex characters of
 * HMAC-SHA256(fingerprintKey, secret): the same secret gives the same marker under one key, so
 * analysts can correlate a leak across events without being able to recover or brute-force it
 * offline (that needs the key, unlike a bare SHA-256 of a short password).
 */
export const MARKER_RE = /\[REDACTED:[a-z0-9_]{1,40}:[0-9a-f]{8}\]/g;
/** A container deeper than `maxDepth`, replaced whole. */
export const DEPTH_MARKER = '[TRUNCATED:max_depth]';

const EXACT_MARKER_RE = /^\[REDACTED:[a-z0-9_]{1,40}:[0-9a-f]{8}\]$/;

export function isMarker(s: string): boolean {
  return s === DEPTH_MARKER || (s.length <= 60 && EXACT_MARKER_RE.test(s));
}

/** [start, end) spans of the markers already in `s` (a second pass must leave them alone). */
export function markerSpans(s: string): Array<[number, number]> {
  if (!s.includes('[REDACTED:') && !s.includes(DEPTH_MARKER)) return [];
  const spans: Array<[number, number]> = [];
  MARKER_RE.lastIndex = 0;
  for (let m = MARKER_RE.exec(s); m !== null; m = MARKER_RE.exec(s)) {
    spans.push([m.index, m.index + m[0].length]);
  }
  for (let i = s.indexOf(DEPTH_MARKER); i !== -1; i = s.indexOf(DEPTH_MARKER, i + 1)) {
    spans.push([i, i + DEPTH_MARKER.length]);
  }
  return spans;
}

let processKey: Buffer | undefined;

/**
 * NOTE: without a configured key every process draws its own random one, so fingerprints do not
 * match across processes or restarts. Deployments set MCP_AUDIT_REDACTION_KEY (the services pass it
 * as `fingerprintKey`) so a secret seen by the collector and the ingester carries one fingerprint.
 */
function defaultKey(): Buffer {
  processKey ??= randomBytes(32);
  return processKey;
}

export function toKeyBuffer(key: FingerprintKey | undefined): Buffer {
  if (key === undefined) return defaultKey();
  const buf = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  if (buf.length === 0) throw new TypeError('redaction fingerprintKey must not be empty');
  return buf;
}

export function fingerprintWith(key: Buffer, secret: string): string {
  return createHmac('sha256', key).update(secret, 'utf8').digest('hex').slice(0, 8);
}

export function formatMarker(kind: string, fingerprint: string): string {
  return `[REDACTED:${kind}:${fingerprint}]`;
}
