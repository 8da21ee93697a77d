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
 */
import { ByteGate } from '../api/index.js';
import type { ShardId } from '../shards/raft/index.js';
import type { Outcome } from '../shards/sessions.js';
import { fanOut } from './scan-merge.js';

export class ScanBudget {
  private readonly node: ByteGate;
  /** One gate per tenant with reads held or waiting; dropped when idle, so the map is bounded by the reads in flight. */
  private readonly tenants = new Map<string, ByteGate>();
  /** Shard reads refused for want of a slot before their deadline. */
  refused = 0;

  /** Slots for one tenant: at most readsMax, default half of it (at least one). */
  readonly tenantReadsMax: number;

  /** Positive integers, tenantReadsMax at most readsMax; RangeError otherwise. */
  constructor(
    readonly readsMax: number,
    tenantReadsMax = Math.max(1, Math.floor(readsMax / 2)),
  ) {
    this.tenantReadsMax = tenantReadsMax;
    if (!Number.isSafeInteger(readsMax) || readsMax < 1) throw new RangeError(`scanReadsMax must be a positive integer, got ${readsMax}`);
    if (!Number.isSafeInteger(tenantReadsMax) || tenantReadsMax < 1 || tenantReadsMax > readsMax) {
      throw new RangeError(`scanTenantReadsMax must be an integer in 1..scanReadsMax (${readsMax}), got ${tenantReadsMax}`);
    }
    this.node = new ByteGate(readsMax);
  }

  /** Shard reads of scans running now. */
  get inflight(): number {
    return this.node.held;
  }

  /** Shard reads of scans waiting for a slot now (the node's and the tenants'). */
  get waiting(): number {
    let n = this.node.waiting;
    for (const g of this.tenants.values()) n += g.waiting;
    return n;
  }

  /**
   * Takes a slot for one shard read of `tenant`'s scan: a function that gives it back (call it
   * exactly once), or undefined when `waitMs` passed first (nothing is held then). The tenant's
   * slot is taken first and held while the node's is awaited; nobody holding a node slot waits
   * for anything, so the two never deadlock.
   */
  async acquire(tenant: string, waitMs: number): Promise<(() => void) | undefined> {
    const deadline = performance.now() + waitMs;
    let gate = this.tenants.get(tenant);
    if (gate === undefined) this.tenants.set(tenant, (gate = new ByteGate(this.tenantReadsMax)));
    const t = gate;
    if (!(await t.acquire(1, waitMs))) {
      this.dropIfIdle(tenant, t);
      this.refused++;
      return undefined;
    }
    if (!(await this.node.acquire(1, deadline - performance.now()))) {
      t.release(1);
      this.dropIfIdle(tenant, t);
      this.refused++;
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

  /**
   * Asks every one of `shards` for `tenant`'s scan, `fanoutMax` at a time, each read under a slot;
   * the answers by shard. When a read finds no slot within `waitMs` of the start, the scan has
   * failed: that read and every one not yet asked answer Overloaded, and nothing more is asked.
   */
  async fanOut(shards: number, fanoutMax: number, tenant: string, waitMs: number, ask: (shard: ShardId) => Promise<Outcome>): Promise<Outcome[]> {
    const deadline = performance.now() + waitMs;
    let refused: Outcome | undefined;
    return fanOut(shards, fanoutMax, async (s): Promise<Outcome> => {
      if (refused !== undefined) return refused;
      const release = await this.acquire(tenant, deadline - performance.now());
      if (release === undefined) {
        const message = `no room for this scan's shard reads before its deadline (scanReadsMax ${this.readsMax}, ${this.tenantReadsMax} per tenant)`;
        return (refused = { ok: false, code: 'Overloaded', message, leaderHint: 0 });
      }
      try {
        return await ask(s);
      } finally {
        release();
      }
    });
  }

  private dropIfIdle(tenant: string, gate: ByteGate): void {
    if (gate.held === 0 && gate.waiting === 0 && this.tenants.get(tenant) === gate) this.tenants.delete(tenant);
  }
}
