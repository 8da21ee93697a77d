/**
 * The pool's client requests in flight: each has an id, holds its payload bytes against
 * `inflightBytesMax`, and ends exactly once, with its reply, its deadline (Timeout), its worker's
 * restart (WorkerRestarted) or the pool's stop (ShuttingDown). The pool writes the request into
 * the worker's ring; this is what waits for the answer.
 */
import { ByteGate } from '../api/index.js';
import type { Outcome } from '../shards/host.js';
import { assert } from '../shards/raft/index.js';
import { PoolErrorCode } from './pool-options.js';

interface Pending {
  readonly resolve: (o: Outcome) => void;
  readonly timer: NodeJS.Timeout;
  readonly worker: number;
  /** Payload bytes of the request (held in the byte gate). */
  readonly bytes: number;
}

/** An answer that is not the worker's: a refusal, or the end of a request that got none. */
export const poolFailure = (code: (typeof PoolErrorCode)[keyof typeof PoolErrorCode], message: string): Outcome => ({
  ok: false,
  code,
  message,
  leaderHint: 0,
});

export class PoolRequests {
  /** Requests in flight by id, until their reply or timeout; at most `countMax`. */
  private readonly pending = new Map<number, Pending>();
  /** Holds the `bytes` of every request in `pending`; nothing waits in it. */
  private readonly bytes: ByteGate;
  private nextId = 1;

  constructor(
    private readonly countMax: number,
    bytesMax: number,
  ) {
    this.bytes = new ByteGate(bytesMax);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Why a new request must be refused now (inflightRequestsMax), else undefined. */
  full(): Outcome | undefined {
    return this.pending.size >= this.countMax
      ? poolFailure(PoolErrorCode.Overloaded, `${this.pending.size} requests in flight (inflightRequestsMax)`)
      : undefined;
  }

  /** The next request id. */
  nextReqId(): number {
    return this.nextId++;
  }

  /** Holds `n` payload bytes for a request about to be written; Overloaded when they do not fit. */
  hold(n: number): Outcome | undefined {
    if (this.bytes.tryAcquire(n)) return undefined;
    return poolFailure(PoolErrorCode.Overloaded, `${this.bytes.held} request bytes in flight (inflightBytesMax ${this.bytes.capacityBytes})`);
  }

  /** Gives back bytes held for a request that was not written after all. */
  unhold(n: number): void {
    this.bytes.release(n);
  }

  /** Waits for request `reqId`'s answer, written to worker `worker` with `bytes` held; Timeout after `ms`. */
  wait(reqId: number, worker: number, bytes: number, ms: number, shard: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        this.settle(reqId, poolFailure(PoolErrorCode.Timeout, `no reply from shard ${shard} within ${ms} ms; the request may still be applied`));
      }, ms);
      this.pending.set(reqId, { resolve, timer, worker, bytes });
      if (this.pending.size > this.countMax) assert(false, `pool: ${this.pending.size} requests in flight, beyond ${this.countMax}`);
    });
  }

  /** Ends request `reqId` with `o`; nothing when it already ended (timed out earlier). */
  settle(reqId: number, o: Outcome): void {
    const p = this.pending.get(reqId);
    if (!p) return;
    this.pending.delete(reqId);
    this.bytes.release(p.bytes);
    clearTimeout(p.timer);
    p.resolve(o);
  }

  /** Ends every request written to worker `worker` with `o`. */
  failWorker(worker: number, o: Outcome): void {
    for (const [id, p] of this.pending) if (p.worker === worker) this.settle(id, o);
  }

  /** Ends every request with `o`. */
  failAll(o: Outcome): void {
    for (const id of [...this.pending.keys()]) this.settle(id, o);
  }
}
