/**
 * Token buckets per key (a source id, a client address). A bucket holds up to a minute's worth of
 * tokens and refills continuously, so a key gets `perMinute` sustained with bursts up to the same
 * number. In memory and per process: with N collector replicas a source gets up to N× the limit.
 */
export interface RateLimiter {
  /** Takes one token for `key`: 0 when allowed, else the milliseconds until one is available. */
  take(key: string): number;
  /** Like take() without taking anything. */
  peek(key: string): number;
  /** Keys currently tracked (bounded by `maxKeys`). */
  size(): number;
}

export interface RateLimiterOptions {
  perMinute: number;
  /** Memory bound: beyond it, full buckets are forgotten first (they equal an absent one), then the oldest. */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  const capacity = opts.perMinute;
  const perMs = opts.perMinute / 60_000;
  const maxKeys = opts.maxKeys ?? 100_000;
  const now = opts.now ?? Date.now;
  // Map iteration is insertion order; a touched key is re-inserted, so the first key is the least recent.
  const buckets = new Map<string, Bucket>();

  function refill(key: string, t: number): Bucket {
    const b = buckets.get(key);
    if (!b) return { tokens: capacity, at: t };
    buckets.delete(key);
    return { tokens: Math.min(capacity, b.tokens + Math.max(0, t - b.at) * perMs), at: t };
  }

  function prune(t: number): void {
    for (const [k, b] of buckets) {
      if (b.tokens + Math.max(0, t - b.at) * perMs >= capacity) buckets.delete(k);
    }
    // Down to 90%, so a flood of distinct keys costs one sweep per tenth of maxKeys, not one per key.
    const target = Math.floor(maxKeys * 0.9);
    for (const k of buckets.keys()) {
      if (buckets.size <= target) break;
      buckets.delete(k);
    }
  }

  const wait = (b: Bucket): number => (b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / perMs));

  return {
    take(key) {
      const t = now();
      const b = refill(key, t);
      const ms = wait(b);
      if (ms === 0) b.tokens -= 1;
      if (buckets.size >= maxKeys) prune(t);
      buckets.set(key, b);
      return ms;
    },
    peek(key) {
      const b = buckets.get(key);
      if (!b) return 0;
      return wait({ tokens: Math.min(capacity, b.tokens + Math.max(0, now() - b.at) * perMs), at: 0 });
    },
    size: () => buckets.size,
  };
}
