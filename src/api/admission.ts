/**
 * A byte budget that makes work wait its turn instead of refusing it at once: the HTTP server
 * holds request bodies under one (nothing is read from a socket until its body has room), the
 * router holds the writes it has in flight under another. Under overload the work that is
 * admitted keeps the node busy at its capacity, and the rest waits in order, without reading or
 * buffering anything, until there is room or its wait is over: a flood of large writes then
 * costs latency, not throughput.
 */

interface Waiter {
  readonly bytes: number;
  readonly resolve: (admitted: boolean) => void;
  readonly signal: AbortSignal | undefined;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * Up to `capacityBytes` held at once; takers are admitted first come, first served. One taker
 * larger than the whole capacity is admitted when nothing else is held, so no size waits forever.
 */
export class ByteGate {
  /** Bytes held by admitted takers; at most capacityBytes unless one taker alone is larger. */
  private heldBytes = 0;
  /** Takers waiting, oldest first; none is admitted before the one ahead of it. */
  private readonly waiters: Waiter[] = [];

  /** capacityBytes: a positive integer. */
  constructor(readonly capacityBytes: number) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 1) throw new RangeError(`capacityBytes must be a positive integer, got ${capacityBytes}`);
  }

  /** Bytes held now. */
  get held(): number {
    return this.heldBytes;
  }

  /** Takers waiting now. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Takes `bytes`: true once admitted (then call release(bytes) exactly once), false when `waitMs`
   * passed or `signal` aborted first (nothing is held then). Admitted at once when nobody waits
   * and the bytes fit. The waiters are bounded by the callers: one per HTTP connection, one per
   * router request lane.
   */
  acquire(bytes: number, waitMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.tryAcquire(bytes)) return Promise.resolve(true);
    if (waitMs <= 0 || signal?.aborted === true) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w: Waiter = { bytes, resolve, signal, timer: undefined, onAbort: undefined };
      const giveUp = (): void => {
        const i = this.waiters.indexOf(w);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        this.settle(w, false);
        // The one that gave up may have held back smaller ones behind it.
        this.admitWaiters();
      };
      w.timer = setTimeout(giveUp, waitMs);
      if (signal !== undefined) {
        w.onAbort = giveUp;
        signal.addEventListener('abort', giveUp, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /** Takes `bytes` now if nobody waits and they fit (then release them exactly once); false otherwise, holding nothing. */
  tryAcquire(bytes: number): boolean {
    if (this.waiters.length > 0 || !this.fits(bytes)) return false;
    this.heldBytes += bytes;
    return true;
  }

  /** Gives back bytes an acquire admitted, and admits the waiters that now fit, in order. */
  release(bytes: number): void {
    this.heldBytes -= bytes;
    if (this.heldBytes < 0) throw new Error(`ByteGate released ${-this.heldBytes} bytes more than it held`);
    this.admitWaiters();
  }

  private fits(bytes: number): boolean {
    return this.heldBytes === 0 || this.heldBytes + bytes <= this.capacityBytes;
  }

  private admitWaiters(): void {
    for (;;) {
      const w = this.waiters[0];
      if (w === undefined || !this.fits(w.bytes)) return;
      this.waiters.shift();
      this.heldBytes += w.bytes;
      this.settle(w, true);
    }
  }

  private settle(w: Waiter, admitted: boolean): void {
    clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
    w.resolve(admitted);
  }
}
