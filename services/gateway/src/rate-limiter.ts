/**
 * Token buckets keyed by client id (or by source address for failed authentications). A bucket
 * holds `burst` tokens and refills at `perSecond`; a request takes one. A key may bring its own
 * limits (a client's `rate_limit`), else the limiter's apply. Idle buckets are dropped when full
 * again, so memory follows the active clients, not every client ever seen.
 */
export interface BucketLimits {
  perSecond: number;
  burst: number;
}

export interface RateLimiter {
  /** Take one token; false when the bucket is empty. `retryAfterMs` says when one will be back. */
  take(key: string, limits?: Partial<BucketLimits>): { ok: true } | { ok: false; retryAfterMs: number };
  size(): number;
}

interface Bucket extends BucketLimits {
  tokens: number;
  at: number;
}

export function createRateLimiter(opts: {
  perSecond: number;
  burst: number;
  now?: () => number;
  maxKeys?: number;
}): RateLimiter {
  const now = opts.now ?? Date.now;
  const buckets = new Map<string, Bucket>();
  const maxKeys = opts.maxKeys ?? 100_000;
  const refill = (b: Bucket, t: number) => {
    b.tokens = Math.min(b.burst, b.tokens + ((t - b.at) / 1000) * b.perSecond);
    b.at = t;
  };
  const sweep = (t: number) => {
    for (const [k, b] of buckets) {
      refill(b, t);
      if (b.tokens >= b.burst) buckets.delete(k);
    }
  };
  return {
    take(key, limits) {
      const t = now();
      const perSecond = limits?.perSecond ?? opts.perSecond;
      const burst = limits?.burst ?? opts.burst;
      let b = buckets.get(key);
      if (!b) {
        if (buckets.size >= maxKeys) sweep(t);
        b = { tokens: burst, at: t, perSecond, burst };
        buckets.set(key, b);
      } else {
        refill(b, t);
        b.perSecond = perSecond;
        b.burst = burst;
        b.tokens = Math.min(b.tokens, burst);
      }
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterMs: Math.ceil(((1 - b.tokens) / b.perSecond) * 1000) };
    },
    size: () => buckets.size,
  };
}
