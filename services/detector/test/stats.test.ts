import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY_SUMMARY, medianOf, quantileOf, robustScore, summarize, upperBand } from '../src/stats.js';

const counts = {
  k: 6,
  q95Multiplier: 1.5,
  cellMaxMultiplier: 1.25,
  minDelta: 0,
  poisson: true,
  relative: 0,
  absolute: 1,
};

test('summarize: empty series is all zeros (simple-statistics would throw)', () => {
  assert.deepEqual(summarize([]), EMPTY_SUMMARY);
  assert.equal(medianOf([]), 0);
  assert.equal(quantileOf([], 0.9), 0);
});

test('summarize: a single point is its own median, MAD 0', () => {
  assert.deepEqual(summarize([7]), { n: 1, median: 7, mad: 0, q95: 7, max: 7 });
});

test('summarize: constant series has MAD 0', () => {
  assert.deepEqual(summarize([5, 5, 5, 5]), { n: 4, median: 5, mad: 0, q95: 5, max: 5 });
  assert.deepEqual(summarize([0, 0, 0]), { n: 3, median: 0, mad: 0, q95: 0, max: 0 });
});

test('summarize: hand-computed median, MAD and q95 with an outlier', () => {
  // sorted 1 2 3 4 100: median 3; |x-3| = 2 1 0 1 97 → sorted 0 1 1 2 97 → MAD 1;
  // q95 (simple-statistics interpolates between ranks): rank (5−1)·0.95 = 3.8 → 4 + 0.8·(100−4) = 80.8
  const s = summarize([100, 3, 1, 4, 2]);
  assert.deepEqual(
    { ...s, q95: Math.round(s.q95 * 1000) / 1000 },
    { n: 5, median: 3, mad: 1, q95: 80.8, max: 100 },
  );
  // even length: median is the mean of the middle two: (2+3)/2
  assert.equal(summarize([1, 2, 3, 4]).median, 2.5);
});

test('upperBand: MAD 0 is floored by Poisson noise (sqrt of the median)', () => {
  // median 100, MAD 0: sigma = max(0, sqrt(100) = 10, 0, 1) = 10 → 100 + 6·10 = 160
  const b = upperBand({ median: 100, mad: 0, q95: 100, cellMax: 100 }, counts);
  assert.equal(b.sigma, 10);
  assert.equal(b.high, 160);
  assert.equal(robustScore(180, b), 8);
});

test('upperBand: zero history still needs minDelta / absolute floor to fire', () => {
  const b = upperBand({ median: 0, mad: 0, q95: 0, cellMax: 0 }, { ...counts, minDelta: 20 });
  // sigma = absolute floor 1 → 0 + 6 = 6; minDelta 20 wins
  assert.equal(b.high, 20);
});

test('upperBand: the largest of z-band, q95 and exact-cell maximum', () => {
  // MAD 2 → sigma 2.9652; 10 + 6·3.1623 (Poisson floor sqrt(10) > 2.9652) = 28.97
  const z = upperBand({ median: 10, mad: 2, q95: 12, cellMax: 14 }, counts);
  assert.ok(Math.abs(z.high - (10 + 6 * Math.sqrt(10))) < 1e-9);
  // a weekly batch of 300 in this exact hour of week: 1.25 × 300 = 375
  assert.equal(upperBand({ median: 10, mad: 2, q95: 12, cellMax: 300 }, counts).high, 375);
  // a regular peak: q95 200 → 300
  assert.equal(upperBand({ median: 10, mad: 2, q95: 200, cellMax: 0 }, counts).high, 300);
});

test('upperBand: bytes use a relative floor (10% of the median), not Poisson', () => {
  const b = upperBand(
    { median: 50e6, mad: 0, q95: 50e6, cellMax: 0 },
    { ...counts, poisson: false, relative: 0.1, absolute: 1024 },
  );
  assert.equal(b.sigma, 5e6);
  assert.equal(b.high, 80e6);
});
