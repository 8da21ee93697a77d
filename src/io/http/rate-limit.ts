/**
 * Per-tenant request rates on this node: one token bucket per tenant, holding one second's worth
 * of requests (at least one) and refilled continuously at the tenant's `requestsPerSec`.
 *
 * The limit is per node: nodes share no counters (that would put a round trip between nodes on
 * every request), so a client spreading its requests over N nodes gets up to N times its rate.
 * The map of buckets is bounded: past `bucketsMax` the least recently used bucket is dropped.
 * Dropping one costs at most a burst: a bucket left idle for a second is full, the same as a new
 * one. The buckets of a deleted tenant are dropped when its token is refused.
 */

interface Bucket {
  /** Requests that may pass now; in [0, burst]. */
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  atMs: number;
  ratePerSec: number;
}

/** What a request gets: pass, or wait `retryAfterS` seconds (at least 1, whole seconds). */
export type RateDecision = { readonly ok: true } | { readonly ok: false; readonly retryAfterS: number };

export interface RateLimiterOptions {
  /** Buckets kept at most (one per tenant seen lately). Default 10,000. */
  readonly bucketsMax?: number;
  /** Monotonic clock in ms. Default performance.now. */
  readonly now?: () => number;
}

export class RateLimiter {
  /** tenant -> bucket, least recently used first. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly bucketsMax: number;
  private readonly now: () => number;

  constructor(opts: RateLimiterOptions = {}) {
    this.bucketsMax = opts.bucketsMax ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
    if (!Number.isSafeInteger(this.bucketsMax) || this.bucketsMax < 1) throw new RangeError(`bucketsMax must be a positive integer, got ${this.bucketsMax}`);
  }

  /**
   * Takes one request from `tenant`'s bucket at `ratePerSec` (positive; a changed rate applies from
   * now). Refused when less than one request is left: `retryAfterS` is when one will be.
   */
  take(tenant: string, ratePerSec: number): RateDecision {
    const now = this.now();
    const burst = Math.max(1, ratePerSec);
    let b = this.buckets.get(tenant);
    if (b === undefined) {
      b = { tokens: burst, atMs: now, ratePerSec };
      if (this.buckets.size >= this.bucketsMax) this.dropOldest();
    } else {
      this.buckets.delete(tenant);
      b.tokens = Math.min(burst, b.tokens + ((now - b.atMs) / 1000) * ratePerSec);
      b.atMs = now;
      b.ratePerSec = ratePerSec;
    }
    this.buckets.set(tenant, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / ratePerSec)) };
  }

  /** Drops `tenant`'s bucket (a deleted tenant). */
  forget(tenant: string): void {
    this.buckets.delete(tenant);
  }

  /** Buckets held now. */
  get size(): number {
    return this.buckets.size;
  }

  private dropOldest(): void {
    const oldest = this.buckets.keys().next();
    if (oldest.done !== true) this.buckets.delete(oldest.value);
  }
}
