/**
 * Token buckets keyed by client id (or by source address for failed authentications). A bucket
 * holds `burst` tokens and refills at `perSecond`; a request takes one. Idle buckets are dropped
 * when full again, so memory follows the active clients, not every client ever seen.
 */
export interface RateLimiter {
  /** Take one token; false when the bucket is empty. `retryAfterMs` says when one will be back. */
  take(key: string): { ok: true } | { ok: false; retryAfterMs: number };
  size(): number;
}

interface Bucket {
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
    b.tokens = Math.min(opts.burst, b.tokens + ((t - b.at) / 1000) * opts.perSecond);
    b.at = t;
  };
  const sweep = (t: number) => {
    for (const [k, b] of buckets) {
      refill(b, t);
      if (b.tokens >= opts.burst) buckets.delete(k);
    }
  };
  return {
    take(key) {
      const t = now();
      let b = buckets.get(key);
      if (!b) {
        if (buckets.size >= maxKeys) sweep(t);
        b = { tokens: opts.burst, at: t };
        buckets.set(key, b);
      } else refill(b, t);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterMs: Math.ceil(((1 - b.tokens) / opts.perSecond) * 1000) };
    },
    size: () => buckets.size,
  };
}
