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
  /** Pure function of the stored events: the same events give the same result (replay). */
  evaluate(windowStart: number, windowEnd: number): Promise<Evaluation>;
}
