/**
 * Admission shared fairly between tenants. Work in flight is bounded in bytes and in count, like
 * {@link ByteGate}, but the work that waits is kept per tenant (each tenant its own FIFO) and let
 * in by deficit round robin over the tenants that wait, counting bytes: a tenant with a hundred
 * writes waiting does not make another tenant's next write wait behind all of them, only behind
 * about one of them. Within one tenant the order stays first come, first served.
 *
 * Why a count bound, and a smaller one while tenants share: with small values the bytes alone
 * never fill, every request is let in at once, and the queue forms inside the workers (a raft
 * round grows with what was proposed), where nothing tells tenants apart; a steady tenant's write
 * then waits as long as the flood's. Holding the excess here, in per-tenant lines, lets it pass.
 * But fewer writes in flight also means smaller raft batches and less throughput, so the smaller
 * bound applies only while two or more tenants use the gate (within the last `activeWindowMs`):
 * one tenant alone keeps the throughput it had.
 */

interface Waiter {
  readonly tenant: Line;
  readonly bytes: number;
  readonly resolve: (admitted: boolean) => void;
  readonly signal: AbortSignal | undefined;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

/** One tenant's waiting work and what it holds. */
interface Line {
  readonly name: string;
  /** Waiting, oldest first; none is admitted before the one ahead of it. */
  readonly waiters: Waiter[];
  /**
   * Bytes this tenant may still be admitted in the round robin: grows by the quantum at each visit
   * where its oldest waiter is larger, shrinks by what is admitted, 0 while it waits for nothing.
   */
  deficitBytes: number;
  /** Requests and bytes of this tenant admitted and not yet released. */
  heldRequests: number;
  heldBytes: number;
}

/** Limits of a {@link FairGate}. */
export interface FairGateLimits {
  /** Bytes held at once over all tenants; one taker larger than this is admitted when nothing is held. Positive integer. */
  readonly capacityBytes: number;
  /** Takers held at once over all tenants while one tenant alone uses the gate. Positive integer. */
  readonly capacityRequests: number;
  /**
   * Takers held at once over all tenants while two or more use it: hold or wait now, or acquired
   * or released within `activeWindowMs`. Positive integer, at most capacityRequests. Default
   * capacityRequests.
   */
  readonly sharedRequests?: number;
  /** How long a tenant counts as using the gate after its last acquire or release, ms. Default 1,000. */
  readonly activeWindowMs?: number;
  /** Milliseconds now. Default performance.now (tests pass their own clock). */
  readonly now?: () => number;
  /**
   * Bytes a tenant's deficit grows by at each visit of the round robin. At most one taker is
   * admitted per visit, so with takers no larger than this, tenants that wait are let in one
   * taker each in turn; a larger taker waits ceil(bytes / quantum) visits. Default 64 KiB.
   */
  readonly quantumBytes?: number;
}

/** How one tenant stands in a {@link FairGate}. */
export interface FairGateTenant {
  readonly tenant: string;
  readonly heldRequests: number;
  readonly heldBytes: number;
  readonly waiting: number;
}

/**
 * Up to `capacityBytes` and `capacityRequests` held at once, and `sharedRequests` while two or
 * more tenants use the gate (past it, only a tenant holding less than its share, sharedRequests /
 * tenants and at least 1, is let in). A taker is admitted at once when nobody waits and it fits;
 * otherwise it waits in its tenant's line, and lines are served by deficit round robin. The
 * waiters are bounded by the callers (one per HTTP connection, one per router request lane).
 */
export class FairGate {
  readonly capacityBytes: number;
  readonly capacityRequests: number;
  readonly quantumBytes: number;
  readonly sharedRequests: number;
  private readonly activeWindowMs: number;
  private readonly now: () => number;
  /**
   * When each tenant last acquired or released, ms. Entries older than activeWindowMs are dropped
   * whenever they are met, so it holds about the tenants of the last window.
   */
  private readonly lastSeenMs = new Map<string, number>();
  /** Held over all tenants: the sums of the lines' heldBytes and heldRequests. */
  private heldBytes = 0;
  private heldRequests = 0;
  /** Waiters over all lines. */
  private waiterCount = 0;
  /** Lines of tenants that wait or hold something; a line is dropped when it does neither. */
  private readonly lines = new Map<string, Line>();
  /** Lines with waiters, in round-robin order; `next` is the one served next (an index into it). */
  private readonly ring: Line[] = [];
  private next = 0;

  constructor(limits: FairGateLimits) {
    const check = (name: string, v: number): number => {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`FairGate: ${name} must be a positive integer, got ${v}`);
      return v;
    };
    this.capacityBytes = check('capacityBytes', limits.capacityBytes);
    this.capacityRequests = check('capacityRequests', limits.capacityRequests);
    this.quantumBytes = check('quantumBytes', limits.quantumBytes ?? 64 << 10);
    this.sharedRequests = check('sharedRequests', limits.sharedRequests ?? this.capacityRequests);
    if (this.sharedRequests > this.capacityRequests)
      throw new RangeError(`FairGate: sharedRequests ${this.sharedRequests} exceeds capacityRequests ${this.capacityRequests}`);
    this.activeWindowMs = limits.activeWindowMs ?? 1000;
    if (!(this.activeWindowMs >= 0)) throw new RangeError(`FairGate: activeWindowMs must be at least 0, got ${this.activeWindowMs}`);
    this.now = limits.now ?? (() => performance.now());
  }

  /**
   * Tenants using the gate now: holding or waiting, or seen (acquire, release) within
   * activeWindowMs. lastSeenMs is in order of last use, so the stale entries are a prefix: they
   * are dropped here, and what remains is the tenants of the window (amortized O(1) per call).
   */
  activeTenants(): number {
    const now = this.now();
    for (const [t, at] of this.lastSeenMs) {
      if (now - at <= this.activeWindowMs) break;
      this.lastSeenMs.delete(t);
    }
    return Math.max(this.lastSeenMs.size, this.lines.size);
  }

  /** Whether two or more tenants use the gate now (the sharedRequests bound applies). */
  get shared(): boolean {
    return this.activeTenants() >= 2;
  }

  /** Bytes held now, over all tenants. */
  get held(): number {
    return this.heldBytes;
  }

  /** Takers held now, over all tenants. */
  get holding(): number {
    return this.heldRequests;
  }

  /** Takers waiting now, over all tenants. */
  get waiting(): number {
    return this.waiterCount;
  }

  /** Tenants that hold or wait now, with what they hold and how many of theirs wait. */
  tenants(): FairGateTenant[] {
    return [...this.lines.values()].map((l) => ({ tenant: l.name, heldRequests: l.heldRequests, heldBytes: l.heldBytes, waiting: l.waiters.length }));
  }

  /**
   * Takes `bytes` for `tenant`: true once admitted (then call release(tenant, bytes) exactly
   * once), false when `waitMs` passed or `signal` aborted first (nothing is held then).
   */
  acquire(tenant: string, bytes: number, waitMs: number, signal?: AbortSignal): Promise<boolean> {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`FairGate: bytes must be a non-negative integer, got ${bytes}`);
    this.seen(tenant);
    const line = this.lineOf(tenant);
    const active = this.activeTenants();
    // When others wait, only a tenant below its share passes them, and never a write waiting for bytes.
    const passes = this.waiterCount === 0 || (this.belowShare(line, active) && !this.waitingForBytes());
    if (line.waiters.length === 0 && passes && this.room(line, bytes, active) === 'yes') {
      this.hold(line, bytes);
      return Promise.resolve(true);
    }
    if (waitMs <= 0 || signal?.aborted === true) {
      this.dropIfIdle(line);
      return Promise.resolve(false);
    }
    return new Promise<boolean>((resolve) => {
      const w: Waiter = { tenant: line, bytes, resolve, signal, timer: undefined, onAbort: undefined };
      const giveUp = (): void => this.giveUp(w);
      w.timer = setTimeout(giveUp, waitMs);
      if (signal !== undefined) {
        w.onAbort = giveUp;
        signal.addEventListener('abort', giveUp, { once: true });
      }
      if (line.waiters.length === 0) this.ring.push(line);
      line.waiters.push(w);
      this.waiterCount++;
    });
  }

  /** Gives back what an acquire of `tenant` admitted, and admits the waiters that now fit. */
  release(tenant: string, bytes: number): void {
    const line = this.lines.get(tenant);
    if (line === undefined || line.heldRequests < 1 || line.heldBytes < bytes) throw new Error(`FairGate: ${tenant} released ${bytes} bytes it does not hold`);
    this.seen(tenant);
    line.heldRequests--;
    line.heldBytes -= bytes;
    this.heldRequests--;
    this.heldBytes -= bytes;
    this.dropIfIdle(line);
    this.admitWaiters();
  }

  private seen(tenant: string): void {
    // Deleted first so the map stays in order of last use: stale entries are met first.
    this.lastSeenMs.delete(tenant);
    this.lastSeenMs.set(tenant, this.now());
  }

  /**
   * Whether `line` may take `bytes` now with `active` tenants using the gate: 'bytes' when they do
   * not fit capacityBytes, 'count' when the count bound says no.
   */
  private room(line: Line, bytes: number, active: number): 'yes' | 'bytes' | 'count' {
    if (this.heldBytes !== 0 && this.heldBytes + bytes > this.capacityBytes) return 'bytes';
    if (this.heldRequests >= this.capacityRequests) return 'count';
    if (active < 2 || this.heldRequests < this.sharedRequests) return 'yes';
    // Past the shared bound a tenant below its share still goes in: a flood let in while it was
    // alone does not make a newcomer wait until it drains.
    return this.belowShare(line, active) ? 'yes' : 'count';
  }

  /** Whether the round robin stopped at a waiter whose bytes do not fit (it goes first when they do). */
  private waitingForBytes(): boolean {
    if (this.ring.length === 0) return false;
    const w = this.ring[this.next % this.ring.length]!.waiters[0]!;
    return this.heldBytes !== 0 && this.heldBytes + w.bytes > this.capacityBytes;
  }

  /** Whether `line` holds less than its share of sharedRequests (at least one) among `active` tenants. */
  private belowShare(line: Line, active: number): boolean {
    return active >= 2 && line.heldRequests < Math.max(1, Math.floor(this.sharedRequests / active));
  }

  private lineOf(tenant: string): Line {
    let l = this.lines.get(tenant);
    if (l === undefined) {
      l = { name: tenant, waiters: [], deficitBytes: 0, heldRequests: 0, heldBytes: 0 };
      this.lines.set(tenant, l);
    }
    return l;
  }

  private hold(line: Line, bytes: number): void {
    line.heldRequests++;
    line.heldBytes += bytes;
    this.heldRequests++;
    this.heldBytes += bytes;
    // room() said yes before every hold: never more than capacityRequests.
    if (this.heldRequests > this.capacityRequests) throw new Error(`FairGate: ${this.heldRequests} held, beyond capacityRequests ${this.capacityRequests}`);
  }

  private dropIfIdle(line: Line): void {
    if (line.waiters.length === 0 && line.heldRequests === 0) this.lines.delete(line.name);
  }

  /**
   * Deficit round robin: at each visit a line whose oldest waiter is larger than its deficit gains
   * a quantum; then, if the waiter fits the deficit, it is admitted; either way the turn passes
   * on, so lines that wait are let in one taker per visit and about a quantum of bytes per visit
   * at most. A line the count bound refuses (its tenant at its share) is passed over. It stops at
   * a line whose oldest waiter does not fit the bytes, without passing the turn on: room that
   * frees later goes to that waiter first, so a large write is not passed forever by small ones.
   */
  private admitWaiters(): void {
    const active = this.activeTenants();
    // Lines passed over in a row because the count bound said no to them: all of them ends it.
    let refused = 0;
    while (this.ring.length > 0 && refused < this.ring.length) {
      if (this.next >= this.ring.length) this.next = 0;
      const line = this.ring[this.next]!;
      const w = line.waiters[0]!;
      const room = this.room(line, w.bytes, active);
      if (room === 'bytes') return;
      if (room === 'count') {
        refused++;
        this.next++;
        continue;
      }
      refused = 0;
      if (line.deficitBytes < w.bytes) line.deficitBytes += this.quantumBytes;
      if (line.deficitBytes >= w.bytes) {
        line.deficitBytes -= w.bytes;
        this.unlink(w);
        this.hold(line, w.bytes);
        this.settle(w, true);
        // unlink already moved the turn on when the line left the ring.
        if (line.waiters.length === 0) continue;
      }
      this.next++;
    }
  }

  /** Takes `w` out of its line, and its line out of the ring when it was the last waiter. */
  private unlink(w: Waiter): void {
    const line = w.tenant;
    const i = line.waiters.indexOf(w);
    if (i < 0) return;
    line.waiters.splice(i, 1);
    this.waiterCount--;
    if (line.waiters.length > 0) return;
    line.deficitBytes = 0;
    const r = this.ring.indexOf(line);
    this.ring.splice(r, 1);
    if (r < this.next) this.next--;
  }

  private giveUp(w: Waiter): void {
    if (!w.tenant.waiters.includes(w)) return;
    this.unlink(w);
    this.dropIfIdle(w.tenant);
    this.settle(w, false);
    // The one that gave up may have held back others behind it.
    this.admitWaiters();
  }

  private settle(w: Waiter, admitted: boolean): void {
    clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
    w.resolve(admitted);
  }
}
