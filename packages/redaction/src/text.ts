import { formatMarker, markerSpans } from './fingerprint.js';
import { SECRET_PATTERNS } from './patterns.js';
import { decodeBase64Text, looksLikeAwsSecret, mayBeBase64Text } from './shapes.js';
import { mayContainSecret } from './triggers.js';

interface Span {
  start: number;
  end: number;
  prio: number;
  kind: string;
}

export interface TextScan {
  text: string;
  redactions: number;
}

const TRAILING_PUNCT = '.,;:';

function overlaps(start: number, end: number, spans: ReadonlyArray<[number, number]>): boolean {
  for (const [s, e] of spans) if (start < e && s < end) return true;
  return false;
}

/**
 * A match glued to a marker was glued to the secret the marker replaced, where the word boundary
 * that failed on the first pass must fail again: `npm_…ghp_…` redacts the `ghp_` token only, and
 * the `npm_` prefix left in front of its marker must not match on a second pass.
 */
function touches(start: number, end: number, spans: ReadonlyArray<[number, number]>): boolean {
  for (const [s, e] of spans) if (e === start || s === end) return true;
  return false;
}

function isQuote(c: string | undefined): boolean {
  return c === '"' || c === "'";
}

/**
 * Replaces every recognised secret inside `s` with its marker and adds the kinds found to `kinds`.
 * Overlapping matches are merged into one span (a secret is never left half-visible because two
 * patterns disagreed on where it ends); markers already in `s` are left alone, which makes a second
 * pass a no-op.
 */
export function scanText(
  s: string,
  fingerprint: (secret: string) => string,
  kinds: Set<string>,
  depth = 0,
): TextScan {
  const byPattern = mayContainSecret(s);
  const byShape = mayHoldShapedSecret(s);
  if (!byPattern && !byShape) return { text: s, redactions: 0 };
  let lower: string | undefined;
  let existing: Array<[number, number]> | undefined;
  const found: Span[] = [];

  for (let prio = 0; byPattern && prio < SECRET_PATTERNS.length; prio++) {
    const p = SECRET_PATTERNS[prio]!;
    if (s.length < p.minLength) continue;
    const hay = p.ignoreCase ? (lower ??= s.toLowerCase()) : s;
    if (!p.triggers.some((t) => hay.includes(t))) continue;

    const rx = p.regex;
    rx.lastIndex = 0;
    for (let m = rx.exec(s); m !== null; m = rx.exec(s)) {
      const range = p.span ? p.span(m) : m.indices?.[p.group];
      if (m[0].length === 0 || !range) {
        rx.lastIndex = m.index + 1;
        continue;
      }
      let [start, end] = range;
      if (end - start >= 2 && isQuote(s[start]) && s[end - 1] === s[start]) {
        start++;
        end--;
      }
      // Sentence punctuation after a token is not part of it (keeps fingerprints stable).
      while (end - start > 1 && TRAILING_PUNCT.includes(s[end - 1]!)) end--;
      const secret = s.slice(start, end);
      existing ??= markerSpans(s);
      if (
        secret.length === 0 ||
        overlaps(start, end, existing) ||
        touches(Math.min(m.index, start), m.index + m[0].length, existing) ||
        (p.check && !p.check(secret, m))
      ) {
        rx.lastIndex = m.index + 1;
        continue;
      }
      found.push({ start, end, prio, kind: p.kindOf ? p.kindOf(m) : p.kind });
      // Resume inside the match, not after it: a rejected or accepted match may hide another one
      // that starts inside it (`Note: password=…`, two tokens glued together); overlaps merge below.
      rx.lastIndex = m.index + 1;
    }
  }
  if (byShape) {
    existing ??= markerSpans(s);
    shapedSecrets(s, existing, depth, found);
  }
  if (found.length === 0) return { text: s, redactions: 0 };

  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Span[] = [];
  for (const span of found) {
    const last = merged[merged.length - 1];
    if (last && span.start < last.end) {
      if (span.end > last.end) last.end = span.end;
      if (span.prio < last.prio) {
        last.prio = span.prio;
        last.kind = span.kind;
      }
    } else {
      merged.push({ ...span });
    }
  }

  let out = '';
  let at = 0;
  for (const span of merged) {
    out += s.slice(at, span.start) + formatMarker(span.kind, fingerprint(s.slice(span.start, span.end)));
    at = span.end;
    kinds.add(span.kind);
  }
  out += s.slice(at);
  return { text: out, redactions: merged.length };
}

/** Runs of base64 characters, 20 or more, not glued to others (hashes and ids are hex: skipped). */
// NOTE: no lookarounds: the leftmost match of a greedy class run is a maximal run already, and a
// lookbehind tried at every position cost more than the rest of the shape pass.
const RUN_RE = /[A-Za-z0-9+/_-]{20,}={0,2}/g;
const HEX_ONLY = /^[0-9a-f-]*$/;
/** Base64 decoded to look for a secret inside: at most this much of a run. */
const MAX_DECODE = 256 * 1024;
const SHAPE_PRIO = SECRET_PATTERNS.length;

/** A character of RUN_RE's class: A-Z a-z 0-9 + / _ - */
function isRunChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 47 && c <= 57) || c === 43 || c === 45 || c === 95
  );
}

/**
 * Cheap gate of the shape pass: a run of 20 base64 characters somewhere, in a string that is not a
 * lowercase hex digest or id. One linear loop (timestamps, paths and prose end it early or fail it),
 * where the regex would retry at every position.
 */
export function mayHoldShapedSecret(s: string): boolean {
  if (s.length < 20 || (s.length >= 32 && HEX_ONLY.test(s))) return false;
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    if (isRunChar(s.charCodeAt(i))) {
      if (++run >= 20) return true;
    } else {
      run = 0;
    }
  }
  return false;
}

/**
 * Secrets with no literal to trigger on: a bare 40-character AWS secret access key, and base64 (or
 * base64url) that decodes to text in which a secret is found, redacted whole (the kind is
 * `base64_secret`). Decoding goes one level deep and only where the run can be text at all.
 */
function shapedSecrets(
  s: string,
  existing: ReadonlyArray<[number, number]>,
  depth: number,
  found: Span[],
): void {
  // NOTE: collected first: decoding scans the decoded text with the same (global) regex.
  const runs: RegExpExecArray[] = [];
  RUN_RE.lastIndex = 0;
  for (let m = RUN_RE.exec(s); m !== null; m = RUN_RE.exec(s)) runs.push(m);
  for (const m of runs) {
    const run = m[0];
    const start = m.index;
    const end = start + run.length;
    if (overlaps(start, end, existing) || touches(start, end, existing)) continue;
    if (run.length === 40 && !/[_=-]/.test(run)) {
      if (looksLikeAwsSecret(run))
        found.push({ start, end, prio: SHAPE_PRIO, kind: 'aws_secret_access_key' });
      continue;
    }
    if (depth > 0 || run.length < 24 || !mayBeBase64Text(run)) continue;
    const text = decodeBase64Text(run, MAX_DECODE);
    if (text === undefined) continue;
    const inner = scanText(text, () => '00000000', new Set(), depth + 1);
    if (inner.redactions > 0) found.push({ start, end, prio: SHAPE_PRIO, kind: 'base64_secret' });
  }
}
