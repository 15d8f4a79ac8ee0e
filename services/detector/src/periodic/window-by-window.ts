import { windowStarts, type Evaluation, type PeriodicDetector } from './types.js';

/**
 * `evaluateRange` as one `evaluate` per window, in order: for detectors whose queries depend on
 * each window's own candidates (sessions, pairs, tools), where one query per range would read more
 * than it saves. Equal to `evaluate` window by window by construction.
 */
export function windowByWindow(
  windowMs: number,
  evaluate: PeriodicDetector['evaluate'],
): NonNullable<PeriodicDetector['evaluateRange']> {
  return async (from, to) => {
    const out: Evaluation[] = [];
    for (const start of windowStarts(from, to, windowMs)) out.push(await evaluate(start, start + windowMs));
    return out;
  };
}
