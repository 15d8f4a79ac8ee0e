/**
 * The one rate limiter: token buckets per key (a source, a client, an API key, an address). A bucket
 * holds `burst` tokens and refills at `perSecond`; a request takes one. A key may bring its own limits
 * (a gateway client's `rate_limit`). In memory and per process: with N replicas a key gets up to N×.
 */
export interface BucketLimits {
  perSecond: number;
  burst: number;
}

export interface RateLimiter {
  /** Takes one token for `key`: 0 when allowed, else the milliseconds until one is available. */
  take(key: string, limits?: Partial<BucketLimits>): number;
  /** Like take() without taking anything. */
  peek(key: string): number;
  /** Keys currently tracked (bounded by `maxKeys`). */
  size(): number;
}

export interface RateLimiterOptions extends BucketLimits {
  /** Memory bound: beyond it, full buckets are forgotten first (they equal an absent one), then the oldest. */
  maxKeys?: number;
  now?: () => number;
}

/** `perMinute` sustained with bursts up to the same number (the collector's and the api's form). */
export const perMinute = (n: number): BucketLimits => ({ perSecond: n / 60, burst: n });

interface Bucket extends BucketLimits {
  tokens: number;
  at: number;
}

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  const maxKeys = opts.maxKeys ?? 100_000;
  const now = opts.now ?? Date.now;
  // Map iteration is insertion order; a touched key is re-inserted, so the first key is the least recent.
  const buckets = new Map<string, Bucket>();
  const level = (b: Bucket, t: number): number =>
    Math.min(b.burst, b.tokens + (Math.max(0, t - b.at) / 1000) * b.perSecond);

  function prune(t: number): void {
    for (const [k, b] of buckets) if (level(b, t) >= b.burst) buckets.delete(k);
    // Down to 90%, so a flood of distinct keys costs one sweep per tenth of maxKeys, not one per key.
    const target = Math.floor(maxKeys * 0.9);
    for (const k of buckets.keys()) {
      if (buckets.size <= target) break;
      buckets.delete(k);
    }
  }

  const wait = (tokens: number, perSecond: number): number =>
    tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / perSecond) * 1000);

  return {
    take(key, limits) {
      const t = now();
      const perSecond = limits?.perSecond ?? opts.perSecond;
      const burst = limits?.burst ?? opts.burst;
      const old = buckets.get(key);
      const tokens = old ? Math.min(burst, level(old, t)) : burst;
      if (old) buckets.delete(key);
      const b: Bucket = { tokens, at: t, perSecond, burst };
      const ms = wait(tokens, perSecond);
      if (ms === 0) b.tokens -= 1;
      if (buckets.size >= maxKeys) prune(t);
      buckets.set(key, b);
      return ms;
    },
    peek(key) {
      const b = buckets.get(key);
      return b ? wait(level(b, now()), b.perSecond) : 0;
    },
    size: () => buckets.size,
  };
}
