/**
 * A bound on writes in flight that follows the latency it causes (`--writes-shared-max auto`):
 * the router's FairGate holds at most this many while two or more tenants write, and the rest wait
 * in their tenants' lines, served round robin.
 *
 * Why adaptive: a fixed small bound (8) keeps a steady tenant's latency near its solo latency
 * beside a flood, but it also caps a busy node of many tenants at 8 writes per raft round; a large
 * one keeps throughput but lets the flood fill the raft rounds, where nothing tells tenants apart.
 * The right bound is where more writes in flight stop buying throughput and start buying latency
 * only, and that depends on the machine, the cluster and the load.
 *
 * How: completed writes report their latency. Every window (at least `windowSamples` writes or
 * `windowMs`, whichever ends later) the window's median is compared with the base latency, the
 * lowest window median of the last `baseWindows` windows: while the median stays within
 * `tolerance` times the base, the bound grows by its square root (more in flight, bigger raft
 * batches); past it, the bound shrinks in proportion (the excess is queueing inside the raft
 * rounds, better held in the fair lines). Each window moves the bound a fifth of the way, so one
 * noisy window does not swing it. The base forgets old windows, so a slower machine or cluster
 * lowers the expectation instead of shrinking the bound for ever; and since a bound that stays
 * high never sees the latency of a short pipeline, every `baseWindows` windows one window runs at
 * `min` (a probe, about 1/40 of the time at the defaults) to measure it again, and the bound then
 * returns to where it was.
 */

export interface AdaptiveLimitOptions {
  /** Lowest bound. Default 4. */
  readonly min?: number;
  /** Highest bound (the router's lanes). */
  readonly max: number;
  /** Bound to start from. Default 16. */
  readonly initial?: number;
  /** Latency allowed above the base before the bound shrinks, as a factor. Default 1.5. */
  readonly tolerance?: number;
  /** Writes per window at least. Default 32. */
  readonly windowSamples?: number;
  /** Milliseconds per window at least. Default 250. */
  readonly windowMs?: number;
  /** Windows the base latency is the lowest median of. Default 40 (10 s at the default window). */
  readonly baseWindows?: number;
  /** Milliseconds now. Default performance.now. */
  readonly now?: () => number;
}

export class AdaptiveLimit {
  private readonly min: number;
  private readonly max: number;
  private readonly tolerance: number;
  private readonly windowSamples: number;
  private readonly windowMs: number;
  private readonly baseWindows: number;
  private readonly now: () => number;
  private bound: number;
  private samples: number[] = [];
  private windowStart: number;
  /** Medians of the last baseWindows windows, oldest first. */
  private readonly medians: number[] = [];
  /** Windows closed, for status. */
  windows = 0;
  /** Windows closed since the last probe. */
  private sinceProbe = 0;
  /** During a probe: the bound to return to after it. */
  private probing: number | undefined;

  constructor(o: AdaptiveLimitOptions) {
    this.min = o.min ?? 4;
    this.max = o.max;
    if (!(this.min >= 1 && this.max >= this.min)) throw new RangeError(`AdaptiveLimit: need 1 <= min <= max, got ${this.min}, ${this.max}`);
    this.bound = Math.min(this.max, Math.max(this.min, o.initial ?? 16));
    this.tolerance = o.tolerance ?? 1.5;
    this.windowSamples = o.windowSamples ?? 32;
    this.windowMs = o.windowMs ?? 250;
    this.baseWindows = o.baseWindows ?? 40;
    this.now = o.now ?? (() => performance.now());
    this.windowStart = this.now();
  }

  /** The bound now, a whole number in [min, max]. */
  get limit(): number {
    return Math.round(this.bound);
  }

  /** The base latency (ms) the windows are compared with; undefined before the first window. */
  get base(): number | undefined {
    return this.medians.length === 0 ? undefined : Math.min(...this.medians);
  }

  /** One completed write's latency in ms. Returns true when it closed a window (the limit may have moved). */
  sample(latencyMs: number): boolean {
    if (!(latencyMs >= 0)) return false;
    this.samples.push(latencyMs);
    const now = this.now();
    if (this.samples.length < this.windowSamples || now - this.windowStart < this.windowMs) return false;
    const sorted = this.samples.sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    this.samples = [];
    this.windowStart = now;
    this.windows++;
    this.medians.push(median);
    if (this.medians.length > this.baseWindows) this.medians.shift();
    if (this.probing !== undefined) {
      // The probe's median is in the base now; back to the bound before it.
      this.bound = this.probing;
      this.probing = undefined;
      return true;
    }
    if (++this.sinceProbe >= this.baseWindows) {
      this.sinceProbe = 0;
      this.probing = this.bound;
      this.bound = this.min;
      return true;
    }
    const base = this.base!;
    const target = median <= this.tolerance * base ? this.bound + Math.sqrt(this.bound) : this.bound * ((this.tolerance * base) / median);
    this.bound = Math.min(this.max, Math.max(this.min, 0.8 * this.bound + 0.2 * target));
    return true;
  }
}
