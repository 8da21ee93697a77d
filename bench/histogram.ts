/**
 * A latency histogram in the spirit of HdrHistogram: log-linear buckets over whole microseconds.
 * Values below 2^(subBucketBits + 1) µs (8.192 ms) have a bucket each, so they are exact to the
 * microsecond; above, each power of two is cut into 2^subBucketBits buckets, so a value is known
 * within 1/4096 (0.025 %) of itself. Memory is fixed (one Uint32Array), whatever the count.
 */

const SUB_BUCKET_BITS = 12;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** Largest recordable value, µs (about 19 hours); larger values are clamped to it. */
const VALUE_MAX_US = 2 ** 36 - 1;
const BUCKETS = SUB_BUCKETS * 2 + (36 - SUB_BUCKET_BITS - 1) * SUB_BUCKETS;

function indexOf(us: number): number {
  if (us < SUB_BUCKETS * 2) return us;
  const exp = Math.floor(Math.log2(us));
  const shift = exp - SUB_BUCKET_BITS;
  // 2^exp <= us < 2^(exp+1): the top SUB_BUCKET_BITS bits below the leading one pick the bucket.
  return SUB_BUCKETS * 2 + (exp - SUB_BUCKET_BITS - 1) * SUB_BUCKETS + (Math.floor(us / 2 ** shift) - SUB_BUCKETS);
}

/** The largest value, µs, that lands in bucket `i` (what a percentile reports, as HDR does). */
function highestOf(i: number): number {
  if (i < SUB_BUCKETS * 2) return i;
  const k = i - SUB_BUCKETS * 2;
  const exp = Math.floor(k / SUB_BUCKETS) + SUB_BUCKET_BITS + 1;
  const shift = exp - SUB_BUCKET_BITS;
  const sub = (k % SUB_BUCKETS) + SUB_BUCKETS;
  return (sub + 1) * 2 ** shift - 1;
}

/** A histogram as it crosses a process boundary: only the non-empty buckets. */
export interface HistogramJson {
  readonly count: number;
  readonly minUs: number;
  readonly maxUs: number;
  readonly sumUs: number;
  /** [bucket index, count] pairs. */
  readonly buckets: readonly (readonly [number, number])[];
}

export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  /** Values recorded; `minUs`/`maxUs` are exact (not bucketed), `sumUs` for the mean. */
  count = 0;
  minUs = Infinity;
  maxUs = 0;
  sumUs = 0;

  /** Records one latency given in nanoseconds (a difference of `process.hrtime.bigint()`). */
  recordNs(ns: bigint): void {
    this.recordUs(Math.round(Number(ns) / 1000));
  }

  recordUs(us: number): void {
    const v = Math.min(Math.max(0, us), VALUE_MAX_US);
    this.counts[indexOf(v)]!++;
    this.count++;
    this.sumUs += v;
    if (v < this.minUs) this.minUs = v;
    if (v > this.maxUs) this.maxUs = v;
  }

  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sumUs += other.sumUs;
    this.minUs = Math.min(this.minUs, other.minUs);
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  /** The value, µs, at or below which `q` (0..1) of the recorded values lie. */
  quantileUs(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(highestOf(i), this.maxUs);
    }
    return this.maxUs;
  }

  summary(): LatencySummary {
    const ms = (us: number): number => us / 1000;
    return {
      count: this.count,
      meanMs: this.count === 0 ? 0 : ms(this.sumUs / this.count),
      minMs: this.count === 0 ? 0 : ms(this.minUs),
      p50Ms: ms(this.quantileUs(0.5)),
      p90Ms: ms(this.quantileUs(0.9)),
      p99Ms: ms(this.quantileUs(0.99)),
      p999Ms: ms(this.quantileUs(0.999)),
      maxMs: ms(this.maxUs),
    };
  }

  toJSON(): HistogramJson {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { count: this.count, minUs: this.minUs, maxUs: this.maxUs, sumUs: this.sumUs, buckets };
  }

  static fromJSON(j: HistogramJson): Histogram {
    const h = new Histogram();
    for (const [i, c] of j.buckets) h.counts[i] = c;
    h.count = j.count;
    h.minUs = j.count === 0 ? Infinity : j.minUs;
    h.maxUs = j.maxUs;
    h.sumUs = j.sumUs;
    return h;
  }
}
