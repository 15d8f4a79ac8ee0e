import { quantileSorted } from 'simple-statistics';

/**
 * Robust statistics for baselines and bands, on simple-statistics. Everything is defined for empty
 * and constant input (simple-statistics throws on empty arrays): an empty series has median, MAD and
 * quantiles of 0, a constant series has MAD 0, and the band floors below keep MAD 0 from turning
 * every tiny change into an alert.
 */

/** 1.4826 × MAD estimates the standard deviation of normally distributed data. */
export const MAD_TO_SIGMA = 1.4826;

export interface Summary {
  n: number;
  median: number;
  mad: number;
  q95: number;
  max: number;
}

export const EMPTY_SUMMARY: Summary = Object.freeze({ n: 0, median: 0, mad: 0, q95: 0, max: 0 });

/** Median, MAD (raw, unscaled), 95th percentile and maximum of a series (not modified). */
export function summarize(values: ArrayLike<number>): Summary {
  const n = values.length;
  if (n === 0) return EMPTY_SUMMARY;
  const sorted = sortedCopy(values);
  const max = sorted[n - 1]!;
  // Fast path: mostly-zero series are the common case (hours a client is idle).
  if (max === 0) return { n, median: 0, mad: 0, q95: 0, max: 0 };
  const median = q(sorted, 0.5);
  const dev = new Float64Array(n);
  for (let i = 0; i < n; i++) dev[i] = Math.abs(sorted[i]! - median);
  sortInPlace(dev);
  return { n, median, mad: q(dev, 0.5), q95: q(sorted, 0.95), max };
}

function sortedCopy(values: ArrayLike<number>): Float64Array {
  return sortInPlace(Float64Array.from(values));
}

/**
 * Numeric sort. NOTE: the baseline job summarizes ~250 pooled cells of ~60 values per client; for
 * arrays that small an insertion sort is several times faster than the built-in sort's call overhead.
 */
function sortInPlace(a: Float64Array): Float64Array {
  const n = a.length;
  if (n > 96) return a.sort();
  for (let i = 1; i < n; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
  return a;
}

// simple-statistics' quantileSorted only indexes its input, so a sorted Float64Array is fine.
const q = (sorted: Float64Array, p: number): number => quantileSorted(sorted as unknown as number[], p);

/** Median of a series; 0 when empty. */
export function medianOf(values: ArrayLike<number>): number {
  return quantileOf(values, 0.5);
}

/** p-quantile of a series (interpolated between ranks, as simple-statistics does); 0 when empty. */
export function quantileOf(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return 0;
  return q(Float64Array.from(values).sort(), p);
}

export interface BandInput {
  median: number;
  mad: number;
  q95: number;
  /** Largest value seen in the exact cell (hour of week); 0 when unknown. */
  cellMax: number;
  /** Largest value seen in any hour of the baseline window; 0 when unknown. */
  clientMax?: number;
}

export interface BandParams {
  /** Robust deviations above the median that are normal. */
  k: number;
  q95Multiplier: number;
  cellMaxMultiplier: number;
  /** … and at least this many times the busiest hour of the whole window (0 = off). */
  maxMultiplier?: number;
  /** The band is at least median + minDelta (absolute floor for small numbers). */
  minDelta: number;
  /**
   * Spread floors. `poisson`: counts vary at least by sqrt(median) (a Poisson process's standard
   * deviation), so a client at 100 calls/h with MAD 0 is not alerted at 101. `relative`: at least this
   * share of the median (bytes are not counts; 10% keeps a steady 50 MB/h from alerting at 51 MB).
   */
  poisson: boolean;
  relative: number;
  /** Absolute floor of sigma (1 for counts). */
  absolute: number;
}

export interface Band {
  low: number;
  high: number;
  median: number;
  sigma: number;
}

/**
 * The upper band of "normal": the largest of
 *   median + k·sigma            (robust z-score; sigma = max(1.4826·MAD, floors))
 *   q95 · q95Multiplier         (the pooled high quantile: regular peaks are normal)
 *   cellMax · cellMaxMultiplier (this exact hour of week has seen that much before)
 *   clientMax · maxMultiplier   (the busiest hour of the whole window, any time: heavy-tailed
 *                               clients burst at random hours, and pooling cannot see that)
 *   median + minDelta           (small absolute changes never alert)
 * Taking the largest keeps every one of those kinds of normal quiet; a real spike has to clear all.
 */
export function upperBand(b: BandInput, p: BandParams): Band {
  const sigma = Math.max(
    MAD_TO_SIGMA * b.mad,
    p.poisson ? Math.sqrt(Math.max(b.median, 0)) : 0,
    p.relative * Math.abs(b.median),
    p.absolute,
  );
  const high = Math.max(
    b.median + p.k * sigma,
    b.q95 * p.q95Multiplier,
    b.cellMax * p.cellMaxMultiplier,
    (b.clientMax ?? 0) * (p.maxMultiplier ?? 0),
    b.median + p.minDelta,
  );
  return { low: 0, high, median: b.median, sigma };
}

/** Robust deviations of `observed` above the median (the alert's score). */
export function robustScore(observed: number, band: Band): number {
  return band.sigma > 0 ? (observed - band.median) / band.sigma : 0;
}

/** Rounds for storage and messages (baselines are stored with 4 significant decimals). */
export function round(v: number, digits = 4): number {
  if (!Number.isFinite(v)) return 0;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
