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

/**
 * Event times (epoch ms) in [from, to) at which something the detector could raise on happens: a
 * superset, never fewer. A window holding none of them must give an empty evaluation.
 */
export type CandidateTimes = (from: number, to: number) => Promise<Iterable<number>>;

const EMPTY = (): Evaluation => ({ findings: [], resolved: [] });

/**
 * `windowByWindow` for detectors that raise rarely and never resolve by a window (their alerts end by
 * expiry): over a range of several windows, one cheap query (`candidates`) marks the windows that
 * could raise and only those are evaluated; every other window is empty, which is what `evaluate`
 * gives there (the candidates are a superset). A catch-up or a replay of a week of 5-minute windows
 * then costs a few queries instead of thousands. A single window is evaluated directly.
 */
export function sparseWindowByWindow(
  windowMs: number,
  candidates: CandidateTimes,
  evaluate: PeriodicDetector['evaluate'],
): NonNullable<PeriodicDetector['evaluateRange']> {
  return async (from, to) => {
    const starts = windowStarts(from, to, windowMs);
    if (starts.length <= 1) return Promise.all(starts.map((s) => evaluate(s, s + windowMs)));
    const marked = new Set<number>();
    for (const t of await candidates(from, to)) if (t >= from && t < to) marked.add(t - (t % windowMs));
    const out: Evaluation[] = [];
    for (const start of starts)
      out.push(marked.has(start) ? await evaluate(start, start + windowMs) : EMPTY());
    return out;
  };
}
