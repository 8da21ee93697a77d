/**
 * Requests per second and their 99th-percentile duration over the last few seconds, in fixed
 * memory: one small log-scale histogram per one-second slot, in a ring of slots. Recording is a
 * logarithm and two increments; reading merges the slots. For the status page, not for alerting:
 * a duration is known only to its bucket (about 19 % wide), and the p99 reported is the upper
 * edge of the bucket that holds it, never below the true value by more than a bucket.
 */

/** Durations at or under this go in the first bucket, in milliseconds (10 us). */
const BUCKET_BASE_MS = 0.01;
/** Buckets per doubling of the duration: each bucket is 2^(1/4), about 19 %, wider than the last. */
const BUCKETS_PER_DOUBLING = 4;
/** Buckets: from 10 us up past 60 s (2^23 * 10 us = 84 s); longer durations go in the last one. */
const BUCKETS = 23 * BUCKETS_PER_DOUBLING + 1;

export interface LoadWindowOptions {
  /** Width of one slot, in ms. Default 1,000. */
  readonly slotMs?: number;
  /** Slots kept: the window is slots * slotMs. Default 5. */
  readonly slots?: number;
  /** The time now, in ms (performance.now()); the window starts counting here. */
  readonly now: number;
}

/** What {@link LoadWindow.read} measured. */
export interface LoadReading {
  /** Requests recorded in the window, per second of the window (of the time since the start, when shorter). */
  readonly requestsPerSec: number;
  /** 99th-percentile duration in the window, in ms (a bucket's upper edge); 0 when none was recorded. */
  readonly p99Ms: number;
  /** Requests recorded in the window. */
  readonly requests: number;
}

export class LoadWindow {
  private readonly slotMs: number;
  /** counts[slot * BUCKETS + bucket]: requests of that slot whose duration fell in that bucket. */
  private readonly counts: Uint32Array;
  /** Per slot: which slot number (floor(time / slotMs)) its counts belong to; -1 when never used. */
  private readonly epochs: Float64Array;
  private readonly startedAt: number;

  constructor(opts: LoadWindowOptions) {
    this.slotMs = opts.slotMs ?? 1000;
    const slots = opts.slots ?? 5;
    if (!(this.slotMs > 0) || !Number.isSafeInteger(slots) || slots < 1)
      throw new RangeError(`load window: slotMs ${this.slotMs} and slots ${slots} must be positive`);
    this.counts = new Uint32Array(slots * BUCKETS);
    this.epochs = new Float64Array(slots).fill(-1);
    this.startedAt = opts.now;
  }

  /** One request that took `durationMs` and ended at `now` (ms). */
  record(durationMs: number, now: number): void {
    const epoch = Math.floor(now / this.slotMs);
    const slot = epoch % this.epochs.length;
    if (this.epochs[slot] !== epoch) {
      this.counts.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS);
      this.epochs[slot] = epoch;
    }
    this.counts[slot * BUCKETS + bucketOf(durationMs)]!++;
  }

  /** Rate and p99 of the requests that ended within the window before `now` (ms). */
  read(now: number): LoadReading {
    const epoch = Math.floor(now / this.slotMs);
    const slots = this.epochs.length;
    const merged = new Float64Array(BUCKETS);
    let requests = 0;
    for (let s = 0; s < slots; s++) {
      const e = this.epochs[s]!;
      if (e < 0 || e > epoch || e <= epoch - slots) continue;
      for (let b = 0; b < BUCKETS; b++) {
        const c = this.counts[s * BUCKETS + b]!;
        merged[b]! += c;
        requests += c;
      }
    }
    // The window: the slots before this one, whole, and this one so far; shorter right after the start.
    const spanMs = Math.min((slots - 1) * this.slotMs + (now - epoch * this.slotMs), now - this.startedAt);
    const requestsPerSec = requests === 0 || spanMs <= 0 ? 0 : (requests * 1000) / Math.max(spanMs, this.slotMs);
    return { requestsPerSec, p99Ms: requests === 0 ? 0 : upperEdgeMs(quantileBucket(merged, requests, 0.99)), requests };
  }
}

/** The bucket of a duration: 0 up to BUCKET_BASE_MS, then one per 2^(1/4) step, the last open-ended. */
function bucketOf(durationMs: number): number {
  if (!(durationMs > BUCKET_BASE_MS)) return 0;
  const b = Math.ceil(Math.log2(durationMs / BUCKET_BASE_MS) * BUCKETS_PER_DOUBLING);
  return Math.min(b, BUCKETS - 1);
}

/** The upper edge of bucket `b`, in ms. */
function upperEdgeMs(b: number): number {
  return BUCKET_BASE_MS * 2 ** (b / BUCKETS_PER_DOUBLING);
}

/** The first bucket at which at least q of the `total` counts are at or below. */
function quantileBucket(counts: Float64Array, total: number, q: number): number {
  const rank = Math.ceil(total * q);
  let seen = 0;
  for (let b = 0; b < counts.length; b++) {
    seen += counts[b]!;
    if (seen >= rank) return b;
  }
  return counts.length - 1;
}
