/**
 * The node's budget for scan fan-out. A scan asks every shard, up to `scanFanoutMax` at a time, and
 * each answer may be a full reply record (about 2 MiB); without a bound across scans, many
 * concurrent scans take every worker's reply room and the memory with it (80 scans on a
 * 1,024-shard node answered Overloaded and more than doubled the node's RSS). So every shard read
 * of a scan holds one slot of the node's `readsMax` while it runs, and at most `tenantReadsMax`
 * of them go to one tenant: a tenant running many scans waits for its own slots and leaves the
 * rest to the others. Waiting is first come, first served, up to the request's deadline; a read
 * that gets no slot in time ends its scan with `Overloaded` (a scan changes nothing, so a retry is
 * always safe).
 *
 * Scans are admitted whole, first come first served, before their reads: at most as many run at
 * once as the read slots can feed at their full fan-out (`readsMax / fanoutMax` node-wide,
 * `tenantReadsMax / fanoutMax` per tenant, at least one), the rest wait their turn up to their
 * deadline. Admitting every scan's reads side by side would share the slots among all of them, so
 * under a flood each would advance slowly and all would miss their deadline (80 scans of 1,024
 * shards: none whole); admitted in turn, the first ones finish and the work done is not wasted.
 */
import { ByteGate } from '../api/index.js';
import type { ShardId } from '../shards/raft/index.js';
import type { Outcome } from '../shards/sessions.js';
import { fanOut } from './scan-merge.js';

/** A node-wide gate and one per key (tenant) beneath it, for one kind of slot. */
class TwoLevelGate {
  private readonly node: ByteGate;
  /** One gate per tenant with slots held or waiting; dropped when idle, so the map is bounded by the slots in use. */
  private readonly tenants = new Map<string, ByteGate>();

  constructor(
    nodeMax: number,
    private readonly tenantMax: number,
  ) {
    this.node = new ByteGate(nodeMax);
  }

  get held(): number {
    return this.node.held;
  }

  get waiting(): number {
    let n = this.node.waiting;
    for (const g of this.tenants.values()) n += g.waiting;
    return n;
  }

  /**
   * Takes a slot for `tenant`: a function that gives it back (call it exactly once; later calls do
   * nothing), or undefined when `waitMs` passed first (nothing is held then). The tenant's slot is
   * taken first and held while the node's is awaited; nobody holding a node slot waits for
   * anything, so the two never deadlock.
   */
  async acquire(tenant: string, waitMs: number): Promise<(() => void) | undefined> {
    const deadline = performance.now() + waitMs;
    let gate = this.tenants.get(tenant);
    if (gate === undefined) this.tenants.set(tenant, (gate = new ByteGate(this.tenantMax)));
    const t = gate;
    if (!(await t.acquire(1, waitMs))) {
      this.dropIfIdle(tenant, t);
      return undefined;
    }
    if (!(await this.node.acquire(1, deadline - performance.now()))) {
      t.release(1);
      this.dropIfIdle(tenant, t);
      return undefined;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.node.release(1);
      t.release(1);
      this.dropIfIdle(tenant, t);
    };
  }

  private dropIfIdle(tenant: string, gate: ByteGate): void {
    if (gate.held === 0 && gate.waiting === 0 && this.tenants.get(tenant) === gate) this.tenants.delete(tenant);
  }
}

export class ScanBudget {
  private readonly reads: TwoLevelGate;
  private readonly scans: TwoLevelGate;
  /** Shard reads refused for want of a slot before their deadline. */
  refused = 0;
  /** Scans refused before any of their reads, for want of a turn before their deadline. */
  scansRefused = 0;

  /** Slots for one tenant: at most readsMax, default half of it (at least one). */
  readonly tenantReadsMax: number;

  /**
   * `readsMax` shard reads of scans node-wide, `tenantReadsMax` of them per tenant, each scan
   * asking `fanoutMax` shards at a time: positive integers, tenantReadsMax at most readsMax;
   * RangeError otherwise.
   */
  constructor(
    readonly readsMax: number,
    tenantReadsMax = Math.max(1, Math.floor(readsMax / 2)),
    readonly fanoutMax = 4,
  ) {
    this.tenantReadsMax = tenantReadsMax;
    if (!Number.isSafeInteger(readsMax) || readsMax < 1) throw new RangeError(`scanReadsMax must be a positive integer, got ${readsMax}`);
    if (!Number.isSafeInteger(tenantReadsMax) || tenantReadsMax < 1 || tenantReadsMax > readsMax) {
      throw new RangeError(`scanTenantReadsMax must be an integer in 1..scanReadsMax (${readsMax}), got ${tenantReadsMax}`);
    }
    if (!Number.isSafeInteger(fanoutMax) || fanoutMax < 1) throw new RangeError(`scanFanoutMax must be a positive integer, got ${fanoutMax}`);
    this.reads = new TwoLevelGate(readsMax, tenantReadsMax);
    this.scans = new TwoLevelGate(Math.max(1, Math.floor(readsMax / fanoutMax)), Math.max(1, Math.floor(tenantReadsMax / fanoutMax)));
  }

  /** Shard reads of scans running now. */
  get inflight(): number {
    return this.reads.held;
  }

  /** Shard reads of scans waiting for a slot now (the node's and the tenants'). */
  get waiting(): number {
    return this.reads.waiting;
  }

  /** Scans admitted and running now. */
  get scansRunning(): number {
    return this.scans.held;
  }

  /** Scans waiting for their turn now. */
  get scansWaiting(): number {
    return this.scans.waiting;
  }

  /** A slot for one shard read of `tenant`'s scan (see TwoLevelGate.acquire); a refusal is counted. */
  async acquire(tenant: string, waitMs: number): Promise<(() => void) | undefined> {
    const release = await this.reads.acquire(tenant, waitMs);
    if (release === undefined) this.refused++;
    return release;
  }

  /**
   * Asks every one of `shards` for `tenant`'s scan once the scan's turn comes, `fanoutMax` at a
   * time, each read under a slot; the answers by shard. When the turn or a read's slot does not
   * come within `waitMs` of the start, the scan has failed: every shard not yet answered answers
   * Overloaded, and nothing more is asked.
   */
  async fanOut(shards: number, tenant: string, waitMs: number, ask: (shard: ShardId) => Promise<Outcome>): Promise<Outcome[]> {
    const deadline = performance.now() + waitMs;
    const overloaded = (what: string): Outcome => ({
      ok: false,
      code: 'Overloaded',
      message: `no room for this scan's ${what} before its deadline (scanReadsMax ${this.readsMax}, ${this.tenantReadsMax} per tenant)`,
      leaderHint: 0,
    });
    const leave = await this.scans.acquire(tenant, waitMs);
    if (leave === undefined) {
      this.scansRefused++;
      return new Array<Outcome>(shards).fill(overloaded('turn'));
    }
    try {
      let refused: Outcome | undefined;
      return await fanOut(shards, this.fanoutMax, async (s): Promise<Outcome> => {
        if (refused !== undefined) return refused;
        const release = await this.acquire(tenant, deadline - performance.now());
        if (release === undefined) return (refused = overloaded('shard reads'));
        try {
          return await ask(s);
        } finally {
          release();
        }
      });
    } finally {
      leave();
    }
  }
}
