import { SECRET_PATTERNS, type SecretPattern } from './patterns.js';

/**
 * The only characters outside ASCII whose `toLowerCase()` holds an ASCII letter: İ gives `i̇` and
 * the Kelvin sign gives `k`, so they can complete a lower-cased trigger that a case-insensitive
 * regex does not see. A test checks this against all of Unicode.
 */
const LOWERS_TO_ASCII = '\u0130\u212a';

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/**
 * Where a trigger of `patterns` occurs, as `scanText` tests them (and a little more): the
 * case-sensitive triggers, then the case-insensitive ones. Undefined where there are none.
 */
type Prefilter = readonly [RegExp | undefined, RegExp | undefined];

function prefilter(patterns: readonly SecretPattern[]): Prefilter {
  const sources = (ignoreCase: boolean): string[] => [
    ...new Set(
      patterns.filter((p) => (p.ignoreCase === true) === ignoreCase).flatMap((p) => p.triggers.map(escape)),
    ),
  ];
  const exact = sources(false);
  const folded = sources(true);
  return [
    exact.length > 0 ? new RegExp(exact.join('|')) : undefined,
    folded.length > 0 ? new RegExp([...folded, `[${LOWERS_TO_ASCII}]`].join('|'), 'i') : undefined,
  ];
}

/**
 * `BY_LENGTH[n]`: the prefilter of the patterns that fit in n characters (strings longer than the
 * table use its last entry); undefined below the shortest pattern.
 */
const BY_LENGTH: ReadonlyArray<Prefilter | undefined> = (() => {
  const longest = Math.max(...SECRET_PATTERNS.map((p) => p.minLength));
  const table: Array<Prefilter | undefined> = [];
  let last: Prefilter | undefined;
  let lastCount = 0;
  for (let n = 0; n <= longest; n++) {
    const fit = SECRET_PATTERNS.filter((p) => p.minLength <= n);
    if (fit.length !== lastCount) {
      last = prefilter(fit);
      lastCount = fit.length;
    }
    table.push(last);
  }
  return table;
})();

/**
 * Digests, UUIDs and trace ids (lowercase hex, 32 characters or more) fill events, are slow for the
 * regexes above and cannot hold a trigger: every trigger has a character outside this class
 * (checked here, for new ones; such a string is its own lower case).
 */
const HEX_ONLY = /^[0-9a-f-]*$/;
for (const p of SECRET_PATTERNS) {
  for (const t of p.triggers) if (HEX_ONLY.test(t)) throw new Error(`trigger "${t}" defeats HEX_ONLY`);
}

/**
 * False when no pattern both fits in `s` and has a trigger in it (true may still find nothing), so
 * `scanText` can skip the per-pattern loop: most strings hold no trigger at all.
 */
export function mayContainSecret(s: string): boolean {
  const filter = BY_LENGTH[Math.min(s.length, BY_LENGTH.length - 1)];
  if (filter === undefined || (s.length >= 32 && HEX_ONLY.test(s))) return false;
  const [exact, folded] = filter;
  return (exact !== undefined && exact.test(s)) || (folded !== undefined && folded.test(s));
}
