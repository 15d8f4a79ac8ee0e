import type { DetectorName, Finding } from '../model.js';

export interface Resolution {
  dedupKey: string;
  reason: string;
}

export interface Evaluation {
  findings: Finding[];
  /** Keys whose signal is back in band at the window end (the lifecycle ignores keys not open). */
  resolved: Resolution[];
}

/** A detector that judges one closed event-time window with a few ClickHouse queries. */
export interface PeriodicDetector {
  name: DetectorName;
  /** Windows are aligned to multiples of windowMs (epoch ms). */
  windowMs: number;
  /**
   * Event time past the window end the detector reads too (e.g. a success shortly after the window);
   * the runner evaluates a window only once this much more is closed. 0 when absent.
   */
  lookaheadMs?: number;
  /**
   * Alerts of this detector that no later window resolves expire this long (event time) after they
   * opened: the runner resolves them at the end of the first window ending at or after that, before
   * that window's findings, so a new occurrence in it opens a new alert. Absent: never by age.
   */
  expireMs?: number;
  /** Pure function of the stored events: the same events give the same result (replay). */
  evaluate(windowStart: number, windowEnd: number): Promise<Evaluation>;
  /**
   * The same judgement for every aligned window in [from, to) (to - from a whole number of windows),
   * in a few queries for the whole range: one Evaluation per window, in window order, each equal to
   * what `evaluate` gives for that window alone. Optional: the runner falls back to `evaluate`.
   */
  evaluateRange?(from: number, to: number): Promise<Evaluation[]>;
}

/** The aligned window starts in [from, to). */
export function windowStarts(from: number, to: number, windowMs: number): number[] {
  if (from % windowMs !== 0 || to % windowMs !== 0 || to < from)
    throw new RangeError(`range [${from}, ${to}) is not whole aligned windows of ${windowMs} ms`);
  const out: number[] = [];
  for (let s = from; s < to; s += windowMs) out.push(s);
  return out;
}
