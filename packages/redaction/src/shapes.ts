/**
 * Secrets without a prefix: recognised by their shape (a bare 40-character AWS secret access key,
 * base64 that decodes to text holding a secret) or by their position (a high-entropy token after
 * `secret`/`token`/`key`/`password` in prose, or under a key name that hints at one). The measured
 * false-positive and detection rates of these rules are printed by `test/fp-rate.test.ts`.
 */

/** Shannon entropy of `s` in bits per character. */
export function shannonEntropy(s: string): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^(?:[0-9a-f]+|[0-9A-F]+)$/;
const LOWER_RUN = /[a-z]{8,}/g;

/**
 * Words and identifiers: eight or more lower-case letters in a row with three vowels among them
 * (`ingleton`, `onfiguration`), or eleven in a row. A random 40-character token has eight in a row
 * about 3% of the time, and three vowels in them about a fifth of that.
 */
function wordy(s: string): boolean {
  LOWER_RUN.lastIndex = 0;
  for (let m = LOWER_RUN.exec(s); m !== null; m = LOWER_RUN.exec(s)) {
    if (m[0].length >= 11) return true;
    let vowels = 0;
    for (const ch of m[0]) if ('aeiou'.includes(ch)) vowels++;
    if (vowels >= 3) return true;
  }
  return false;
}

const SLUG_PART = /^(?:[a-z]+|[A-Z]+|[0-9]+|[A-Z][a-z]+)$/;

/** Words and numbers joined by separators (`worker-draft-488`, `Q3_Report_2024`): names, not keys. */
function slug(s: string): boolean {
  const parts = s.split(/[-_./:+~=]+/).filter((p) => p.length > 0);
  return parts.length >= 2 && parts.every((p) => SLUG_PART.test(p));
}

/**
 * About the 0.5th percentile of the entropy of random base64-alphabet strings of length n
 * (measured: 3.33 at 16, 3.86 at 24, 4.18 at 32, 4.43 at 40, 4.90 at 64), flat beyond 64.
 */
export function entropyFloor(n: number): number {
  const m = Math.min(n, 64);
  return Math.log2(m) - 0.55 - 0.01 * m;
}
/** Date, time, version and path-like shapes. */
const STRUCTURED = /^\d{4}-\d{2}-\d{2}|^v?\d+\.\d+\.\d+|^[./~]|\/\/|\.(?:[a-z]{2,4})$/;

interface Classes {
  upper: number;
  lower: number;
  digit: number;
  other: number;
}

function classes(s: string): Classes {
  const c = { upper: 0, lower: 0, digit: 0, other: 0 };
  for (let i = 0; i < s.length; i++) {
    const x = s.charCodeAt(i);
    if (x >= 65 && x <= 90) c.upper++;
    else if (x >= 97 && x <= 122) c.lower++;
    else if (x >= 48 && x <= 57) c.digit++;
    else c.other++;
  }
  return c;
}

/**
 * A token that looks machine-made: long enough, a mix of character classes, no words, and close to
 * the entropy a random string of its length and alphabet has. Tuned on the ordinary corpus of
 * `test/fp-rate.test.ts` (hashes, UUIDs, paths, identifiers, base64 images, prose).
 */
export function looksLikeSecretToken(s: string, minLength = 16): boolean {
  const n = s.length;
  if (n < minLength || n > 512) return false;
  if (UUID.test(s) || STRUCTURED.test(s)) return false;
  const h = shannonEntropy(s);
  if (HEX.test(s)) {
    // Hex: a digest or id as often as a secret; only long ones in a secret-like position.
    return n >= 32 && h >= 3.3;
  }
  if (wordy(s) || slug(s)) return false;
  const c = classes(s);
  const kinds = (c.upper > 0 ? 1 : 0) + (c.lower > 0 ? 1 : 0) + (c.digit > 0 ? 1 : 0) + (c.other > 0 ? 1 : 0);
  if (kinds < 3 && !(kinds === 2 && c.digit > 0 && n >= 24)) return false;
  return h >= entropyFloor(n);
}

/** A bare 40-character AWS secret access key: base64 alphabet without `=`, random. */
export function looksLikeAwsSecret(s: string): boolean {
  if (s.length !== 40) return false;
  const c = classes(s);
  if (c.upper < 3 || c.lower < 3 || c.digit < 1) return false;
  if (wordy(s)) return false;
  return shannonEntropy(s) >= 4.3;
}

/**
 * Whether the base64 `run` can decode to printable text: in base64 of ASCII every 4-character group
 * starts with a character below `g` (the first six bits of a byte under 0x80). Images, archives and
 * random bytes fail within the first groups, so they are never decoded.
 */
export function mayBeBase64Text(run: string): boolean {
  const probe = Math.min(run.length - (run.length % 4), 64);
  for (let i = 0; i < probe; i += 4) {
    const c = run.charCodeAt(i);
    // A-Z (0-25), a-f (26-31)
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 102))) return false;
  }
  return probe >= 4;
}

/** Decoded text of a base64 run when it is mostly printable, else undefined. */
export function decodeBase64Text(run: string, maxChars: number): string | undefined {
  const cut = run.length > maxChars ? run.slice(0, maxChars - (maxChars % 4)) : run;
  const text = Buffer.from(cut, 'base64').toString('latin1');
  if (text.length === 0) return undefined;
  let printable = 0;
  for (let i = 0; i < text.length; i++) {
    const x = text.charCodeAt(i);
    if ((x >= 32 && x < 127) || x === 10 || x === 13 || x === 9) printable++;
  }
  return printable / text.length >= 0.97 ? text : undefined;
}
