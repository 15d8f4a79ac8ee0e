import {
  DEPTH_MARKER,
  type FingerprintKey,
  fingerprintWith,
  formatMarker,
  isMarker,
  toKeyBuffer,
} from './fingerprint.js';
import { credentialKeyKind, secretHintKey } from './keys.js';
import { looksLikeSecretToken } from './shapes.js';
import { MIN_SCAN_LENGTH } from './patterns.js';
import { scanText } from './text.js';

export interface RedactOptions {
  /**
   * HMAC key for fingerprints. Set it in every deployment (the services pass
   * MCP_AUDIT_REDACTION_KEY): without it each process draws a random key and the same secret gets
   * different fingerprints in different processes.
   */
  fingerprintKey?: FingerprintKey;
  /** Containers nested deeper than this are replaced by `[TRUNCATED:max_depth]`. Default 64. */
  maxDepth?: number;
}

export interface Redaction<T> {
  value: T;
  /** Number of secrets (and depth-capped containers) replaced. */
  redactions: number;
  /** Distinct kinds replaced, sorted: `github_token`, `password`, `max_depth`, … */
  kinds: string[];
}

export const DEFAULT_MAX_DEPTH = 64;
const MAX_DEPTH_LIMIT = 1000;

/** Accumulates what one call replaced. */
export class Tally {
  redactions = 0;
  readonly kinds = new Set<string>();

  result<T>(value: T): Redaction<T> {
    return { value, redactions: this.redactions, kinds: [...this.kinds].sort() };
  }
}

const AUTH_SCHEME = /^(?:Bearer|Basic|Token|Digest)[ \t]+/i;

function setOwn(out: Record<string, unknown>, key: string, value: unknown): void {
  // NOTE: `out['__proto__'] = v` would replace the prototype instead of adding a key.
  if (key === '__proto__') {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    out[key] = value;
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** The recursive walk shared by values, labels and events, bound to one fingerprint key. */
export class Engine {
  readonly maxDepth: number;
  private readonly key: Buffer;
  readonly fingerprint: (secret: string) => string;

  constructor(opts: RedactOptions = {}) {
    this.key = toKeyBuffer(opts.fingerprintKey);
    const depth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxDepth = Number.isFinite(depth)
      ? Math.min(Math.max(Math.floor(depth), 1), MAX_DEPTH_LIMIT)
      : DEFAULT_MAX_DEPTH;
    this.fingerprint = (secret: string) => fingerprintWith(this.key, secret);
  }

  text(s: string, tally: Tally): string {
    const r = scanText(s, this.fingerprint, tally.kinds);
    tally.redactions += r.redactions;
    return r.text;
  }

  /** The whole value under a credential key. */
  credential(kind: string, v: unknown, tally: Tally): unknown {
    let secret: string;
    if (typeof v === 'string') {
      if (v.length === 0 || isMarker(v)) return v;
      // `Bearer abc` under `authorization` fingerprints like `abc` found in text, so they correlate.
      secret = v.replace(AUTH_SCHEME, '');
    } else if (typeof v === 'number' || typeof v === 'bigint') {
      secret = String(v);
    } else if (v !== null && typeof v === 'object') {
      if (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0) return Array.isArray(v) ? [] : {};
      secret = safeJson(v);
    } else {
      // null, booleans and undefined carry no secret.
      return v;
    }
    tally.redactions++;
    tally.kinds.add(kind);
    return formatMarker(kind, this.fingerprint(secret));
  }

  /** A key name can itself be a secret (`{ "ghp_…": true }`). */
  scanKey(k: string, tally: Tally): string {
    return k.length >= MIN_SCAN_LENGTH ? this.text(k, tally) : k;
  }

  /** `keyRules: false` scans strings only (for event envelope fields named `auth`, `session_id`, …). */
  walk(v: unknown, depth: number, tally: Tally, keyRules = true): unknown {
    switch (typeof v) {
      case 'string':
        return this.text(v, tally);
      case 'number':
      case 'boolean':
      case 'bigint':
      case 'undefined':
        return v;
      case 'object':
        break;
      default:
        return undefined;
    }
    if (v === null) return null;
    if (depth >= this.maxDepth) {
      tally.redactions++;
      tally.kinds.add('max_depth');
      return DEPTH_MARKER;
    }
    if (Array.isArray(v)) {
      const out: unknown[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = this.walk(v[i], depth + 1, tally, keyRules);
      return out;
    }
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      let json: unknown;
      try {
        json = toJSON.call(v);
      } catch {
        json = undefined;
      }
      // Dates, Buffers, URLs: redact what JSON.stringify would store (one level, no loop).
      if (
        json === null ||
        typeof json !== 'object' ||
        typeof (json as { toJSON?: unknown }).toJSON !== 'function'
      ) {
        return this.walk(json, depth, tally, keyRules);
      }
    }
    const src = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(src)) this.entry(out, k, src[k], depth, tally, keyRules);
    return out;
  }

  /** Copies one field of an object at `depth` into `out`, redacted. */
  entry(
    out: Record<string, unknown>,
    k: string,
    v: unknown,
    depth: number,
    tally: Tally,
    keyRules = true,
  ): void {
    let kind: string | undefined = keyRules ? credentialKeyKind(k) : undefined;
    // A machine-made token under a name that hints at a secret (`key`, `hmac`, `signing`).
    if (
      !kind &&
      keyRules &&
      typeof v === 'string' &&
      v.length >= 16 &&
      secretHintKey(k) &&
      looksLikeSecretToken(v)
    )
      kind = 'secret';
    const value = kind ? this.credential(kind, v, tally) : this.walk(v, depth + 1, tally, keyRules);
    setOwn(out, this.scanKey(k, tally), value);
  }

  /**
   * True when `walk(v, depth, tally, keyRules)` would replace nothing (tally.redactions stays 0, and
   * the copy it builds equals `v`), decided without building the copy. For JSON values (from
   * JSON.parse): a value holding a function, a toJSON method or another non-JSON type is reported
   * not clean, so the caller takes the walk.
   */
  clean(v: unknown, depth: number, keyRules = true): boolean {
    switch (typeof v) {
      case 'string':
        return this.cleanText(v);
      case 'number':
      case 'boolean':
      case 'undefined':
        return true;
      case 'object':
        break;
      default:
        return false;
    }
    if (v === null) return true;
    if (depth >= this.maxDepth) return false;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (!this.clean(v[i], depth + 1, keyRules)) return false;
      return true;
    }
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
    const src = v as Record<string, unknown>;
    for (const k of Object.keys(src)) if (!this.cleanEntry(k, src[k], depth, keyRules)) return false;
    return true;
  }

  /** `entry` of `clean`: the key's own rules, the key's text and the value. */
  cleanEntry(k: string, v: unknown, depth: number, keyRules = true): boolean {
    if (k.length >= MIN_SCAN_LENGTH && !this.cleanText(k)) return false;
    if (keyRules) {
      if (credentialKeyKind(k)) return cleanCredential(v);
      if (typeof v === 'string' && v.length >= 16 && secretHintKey(k) && looksLikeSecretToken(v))
        return false;
    }
    return this.clean(v, depth + 1, keyRules);
  }

  private cleanText(s: string): boolean {
    return scanText(s, this.fingerprint, new Set()).redactions === 0;
  }

  labels(labels: Readonly<Record<string, unknown>>, tally: Tally): Record<string, string> {
    const out: Record<string, string> = {};
    for (const k of Object.keys(labels)) {
      const v = labels[k];
      const kind = credentialKeyKind(k);
      const value = kind ? this.credential(kind, v, tally) : this.walk(v, 1, tally);
      setOwn(out, this.scanKey(k, tally), typeof value === 'string' ? value : safeJson(value));
    }
    return out;
  }
}

/** `credential` replaces nothing: an empty or marked string, an empty container, no value at all. */
function cleanCredential(v: unknown): boolean {
  if (typeof v === 'string') return v.length === 0 || isMarker(v);
  if (v === null || v === undefined || typeof v === 'boolean') return true;
  if (typeof v === 'object') return Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0;
  return false;
}

/** What a service holds: every function bound to one fingerprint key. */
export interface Redactor {
  /** Deep copy of a JSON value with secrets replaced (by key name and by pattern inside strings). */
  redactValue(value: unknown): Redaction<unknown>;
  /** Free text (error messages, log lines): secrets replaced in place, the rest kept. */
  redactString(s: string): Redaction<string>;
  /** A string → string record (event labels): credential keys and secret values replaced. */
  redactLabels(labels: Readonly<Record<string, string>>): Redaction<Record<string, string>>;
  /** First 8 hex chars of HMAC-SHA256(key, secret): find the marker of a known leaked secret. */
  fingerprint(secret: string): string;
}

export function bindRedactor(engine: Engine): Redactor {
  return {
    redactValue(value) {
      const tally = new Tally();
      return tally.result(engine.walk(value, 0, tally));
    },
    redactString(s) {
      const tally = new Tally();
      if (typeof s !== 'string') return tally.result(s);
      return tally.result(engine.text(s, tally));
    },
    redactLabels(labels) {
      const tally = new Tally();
      if (labels === null || typeof labels !== 'object') return tally.result({});
      return tally.result(engine.labels(labels, tally));
    },
    fingerprint: engine.fingerprint,
  };
}

let defaultRedactor: Redactor | undefined;

function redactorFor(opts: RedactOptions | undefined): Redactor {
  if (opts === undefined || (opts.fingerprintKey === undefined && opts.maxDepth === undefined)) {
    defaultRedactor ??= bindRedactor(new Engine());
    return defaultRedactor;
  }
  return bindRedactor(new Engine(opts));
}

/** One-off use; services should hold a `createRedactor(...)` bound to MCP_AUDIT_REDACTION_KEY. */
export function redactValue(value: unknown, opts?: RedactOptions): Redaction<unknown> {
  return redactorFor(opts).redactValue(value);
}

export function redactString(s: string, opts?: RedactOptions): Redaction<string> {
  return redactorFor(opts).redactString(s);
}

export function redactLabels(
  labels: Readonly<Record<string, string>>,
  opts?: RedactOptions,
): Redaction<Record<string, string>> {
  return redactorFor(opts).redactLabels(labels);
}
