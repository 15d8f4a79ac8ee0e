/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * attempt n waits a uniform random time in [0, min(max, base * 2^(n-1))], at least `floor`.
 */
export function backoffMs(
  attempt: number,
  base: number,
  max: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(max, base * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.max(1, Math.round(random() * cap));
}

/** Retry-After: delta-seconds or an HTTP date (RFC 9110 §10.2.3). Capped at one hour. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(v.trim())) ms = Number(v.trim()) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(0, Math.round(ms)), 3_600_000);
}

/** Wait before the next attempt: the jittered backoff, but never earlier than the server asked. */
export function nextDelayMs(
  attempt: number,
  opts: { baseMs: number; maxMs: number; retryAfterMs?: number | undefined },
  random: () => number = Math.random,
): number {
  const b = backoffMs(attempt, opts.baseMs, opts.maxMs, random);
  return opts.retryAfterMs === undefined ? b : Math.max(b, opts.retryAfterMs);
}

/** Token bucket: `perSecond` sustained with bursts of `burst`. */
export class TokenBucket {
  #tokens: number;
  #last: number;
  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }
  #refill(): void {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.perSecond);
    this.#last = t;
  }
  /** Whole tokens available now. */
  available(): number {
    this.#refill();
    return Math.floor(this.#tokens);
  }
  /** Milliseconds until one token is available (0 if one is). */
  waitMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.perSecond) * 1000);
  }
  take(): void {
    this.#refill();
    this.#tokens -= 1;
  }
}
