import { SECRET_PATTERNS } from './patterns.js';

/**
 * The only characters outside ASCII whose `toLowerCase()` holds an ASCII letter: İ gives `i̇` and
 * the Kelvin sign gives `k`, so they can complete a lower-cased trigger that a case-insensitive
 * regex does not see. A test checks this against all of Unicode.
 */
const LOWERS_TO_ASCII = '\u0130\u212a';

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

/** Matches where a trigger of `patterns` occurs, as `scanText` tests them (and a little more). */
function prefilter(patterns: readonly (typeof SECRET_PATTERNS)[number][]): [RegExp, RegExp] {
  const triggers = (ignoreCase: boolean): string[] => [
    ...new Set(
      patterns.filter((p) => (p.ignoreCase === true) === ignoreCase).flatMap((p) => p.triggers.map(escape)),
    ),
  ];
  return [
    new RegExp(triggers(false).join('|') || '(?!)'),
    new RegExp([...triggers(true), `[${LOWERS_TO_ASCII}]`].join('|'), 'i'),
  ];
}

/**
 * `BY_LENGTH[n]`: the prefilter of the patterns that fit in n characters (strings longer than the
 * table use its last entry); none below the shortest pattern.
 */
const BY_LENGTH: ReadonlyArray<readonly [RegExp, RegExp] | undefined> = (() => {
  const longest = Math.max(...SECRET_PATTERNS.map((p) => p.minLength));
  const table: Array<[RegExp, RegExp] | undefined> = [];
  let last: [RegExp, RegExp] | undefined;
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
 * False when no pattern both fits in `s` and has a trigger in it (true may still find nothing), so
 * `scanText` can skip the per-pattern loop: most strings hold no trigger at all.
 */
export function mayContainSecret(s: string): boolean {
  const filter = BY_LENGTH[Math.min(s.length, BY_LENGTH.length - 1)];
  return filter !== undefined && (filter[0].test(s) || filter[1].test(s));
}
