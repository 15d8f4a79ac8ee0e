import { MIN_SCAN_LENGTH, SECRET_PATTERNS } from './patterns.js';

interface Trigger {
  readonly text: string;
  /** Compared with the lower-cased string, as its pattern does. */
  readonly ignoreCase: boolean;
  /** The shortest `minLength` of the patterns it triggers. */
  readonly minLength: number;
}

/**
 * The non-ASCII characters whose `toLowerCase()` begins with an ASCII character: İ gives `i̇`
 * (i and a combining dot) and the Kelvin sign gives `k`. A test checks this against all of Unicode.
 */
const LOWERS_TO_ASCII: ReadonlyMap<number, number> = new Map([
  [0x130, 0x69],
  [0x212a, 0x6b],
]);

/** The code `toLowerCase()` gives the character at `i` (its first one, for İ). */
function lowerCodeAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c >= 0x41 && c <= 0x5a) return c + 0x20;
  if (c < 0x80) return c;
  return LOWERS_TO_ASCII.get(c) ?? c;
}

function occursAt(s: string, i: number, t: Trigger): boolean {
  if (!t.ignoreCase) return s.startsWith(t.text, i);
  if (i + t.text.length > s.length) return false;
  for (let j = 0; j < t.text.length; j++) {
    if (lowerCodeAt(s, i + j) !== t.text.charCodeAt(j)) return false;
  }
  return true;
}

/** Every trigger, by the lower-cased code of its first character (always ASCII). */
const BY_FIRST: ReadonlyArray<readonly Trigger[] | undefined> = (() => {
  const shortest = new Map<string, number>();
  for (const p of SECRET_PATTERNS) {
    for (const text of p.triggers) {
      const id = `${p.ignoreCase ? 'i' : 's'}${text}`;
      shortest.set(id, Math.min(shortest.get(id) ?? Infinity, p.minLength));
    }
  }
  const table: Trigger[][] = [];
  for (const [id, minLength] of shortest) {
    const text = id.slice(1);
    const first = text.toLowerCase().charCodeAt(0);
    if (first >= 0x80) throw new Error(`secret pattern trigger must start with ASCII: ${text}`);
    (table[first] ??= []).push({ text, ignoreCase: id[0] === 'i', minLength });
  }
  return table;
})();

/**
 * False when no pattern's trigger occurs in `s` (it may say true when none does, never the
 * reverse), so `scanText` can skip the per-pattern loop: most strings hold no trigger at all.
 */
export function mayContainSecret(s: string): boolean {
  const n = s.length;
  if (n < MIN_SCAN_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const candidates = BY_FIRST[lowerCodeAt(s, i)];
    if (candidates === undefined) continue;
    for (const t of candidates) if (n >= t.minLength && occursAt(s, i, t)) return true;
  }
  return false;
}
