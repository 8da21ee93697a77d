/**
 * The shard host's tick clock: which ticks a monotonic clock says are due, and whether the timers
 * owe a run. Ticks are due every `tickMs`; each is handed out once, so the host's tick count stays
 * level with real time and never runs ahead of it. Without a clock (tests, simulations) no tick is
 * ever due: the host is ticked by hand.
 */
import { assert } from './raft/index.js';

export class TickClock {
  /**
   * The clock time (ms) at which the next tick is due. Only grows, by `tickMs` per tick; invariant
   * after {@link advance}: `clock() < nextTickAtMs`, i.e. no tick that is due is left out.
   */
  private nextTickAtMs = 0;
  /** Ticks handed out since the timers last ran (see {@link takeTimers}). */
  private sinceTimers = 0;

  constructor(
    private readonly clock: (() => number) | undefined,
    readonly tickMs: number,
  ) {
    assert(tickMs > 0 && Number.isFinite(tickMs), 'tickMs must be positive');
    if (clock) this.nextTickAtMs = clock() + tickMs;
  }

  /**
   * How many ticks came due since the last call. Adds them to `counters.ticks`, and to
   * `counters.ticksLate` all but the first since the timers last ran (whose timer run is owed, see
   * {@link takeTimers}).
   */
  advance(counters: { ticks: number; ticksLate: number }): number {
    if (this.clock === undefined) return 0;
    const now = this.clock();
    let ran = 0;
    while (now >= this.nextTickAtMs) {
      this.nextTickAtMs += this.tickMs;
      ran++;
    }
    assert(now < this.nextTickAtMs, 'advance: a due tick was left out');
    counters.ticks += ran;
    counters.ticksLate += ran === 0 ? 0 : this.sinceTimers === 0 ? ran - 1 : ran;
    this.sinceTimers += ran;
    return ran;
  }

  /** True when at least one tick came due since the timers last ran; the timers then count as run. */
  takeTimers(): boolean {
    if (this.sinceTimers === 0) return false;
    this.sinceTimers = 0;
    return true;
  }

  /** Milliseconds until the next tick is due (0 when one is due now); the tick length without a clock. */
  msUntilTick(): number {
    return this.clock === undefined ? this.tickMs : Math.max(0, this.nextTickAtMs - this.clock());
  }
}
