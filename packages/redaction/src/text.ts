import { formatMarker, markerSpans } from './fingerprint.js';
import { SECRET_PATTERNS } from './patterns.js';
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
export function scanText(s: string, fingerprint: (secret: string) => string, kinds: Set<string>): TextScan {
  if (!mayContainSecret(s)) return { text: s, redactions: 0 };
  let lower: string | undefined;
  let existing: Array<[number, number]> | undefined;
  const found: Span[] = [];

  for (let prio = 0; prio < SECRET_PATTERNS.length; prio++) {
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
