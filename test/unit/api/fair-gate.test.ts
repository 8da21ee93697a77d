/**
 * FairGate: admission bounded in bytes and count, the waiting work kept per tenant and let in by
 * deficit round robin; a smaller count bound while two or more tenants use it; bounded waits.
 */
import { describe, expect, test } from 'vitest';
import { FairGate } from '../../../src/api/index.js';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A gate whose clock the test moves. */
function gate(limits: { capacityBytes?: number; capacityRequests?: number; sharedRequests?: number; quantumBytes?: number }): {
  g: FairGate;
  clock: { ms: number };
} {
  const clock = { ms: 0 };
  const g = new FairGate({ capacityBytes: 1 << 20, capacityRequests: 4, ...limits, now: () => clock.ms });
  return { g, clock };
}

/** Starts acquires and records, in order, `tenant#i` as each is admitted. */
function queue(g: FairGate, tenant: string, n: number, bytes: number, admitted: string[], waitMs = 10_000): Promise<boolean>[] {
  return Array.from({ length: n }, (_, i) =>
    g.acquire(tenant, bytes, waitMs).then((ok) => {
      if (ok) admitted.push(`${tenant}#${i}`);
      return ok;
    }),
  );
}

describe('FairGate', () => {
  test('a tenant with 100 writes waiting delays another tenant by one admission, not by all of them', async () => {
    const { g } = gate({ capacityRequests: 2 });
    const admitted: string[] = [];
    const noisy = queue(g, 'noisy', 102, 256, admitted);
    await tick();
    expect(g.holding).toBe(2);
    expect(g.waiting).toBe(100);
    const steady = queue(g, 'steady', 1, 256, admitted);
    await tick();
    // Room frees one write at a time: the steady write is among the next two let in.
    for (let i = 0; i < 2; i++) {
      g.release('noisy', 256);
      await tick();
    }
    expect(admitted.slice(2)).toContain('steady#0');
    expect(admitted.indexOf('steady#0')).toBeLessThanOrEqual(3);
    // The rest of the flood goes on in its own order.
    for (let i = 0; i < 101; i++) {
      g.release(admitted[i + 2] === 'steady#0' ? 'steady' : 'noisy', 256);
      await tick();
    }
    expect(await Promise.all([...noisy, ...steady])).toEqual(Array(103).fill(true));
    const noisyOrder = admitted.filter((a) => a.startsWith('noisy')).map((a) => Number(a.slice(6)));
    expect(noisyOrder).toEqual([...noisyOrder].sort((a, b) => a - b));
  });

  test('two tenants that both wait are served in turn, one write each', async () => {
    const { g } = gate({ capacityRequests: 1 });
    const admitted: string[] = [];
    expect(await g.acquire('a', 10, 1000)).toBe(true);
    const all = [...queue(g, 'a', 3, 10, admitted), ...queue(g, 'b', 3, 10, admitted)];
    await tick();
    for (let i = 0; i < 6; i++) {
      g.release(i === 0 ? 'a' : admitted[i - 1]!.slice(0, 1), 10);
      await tick();
    }
    expect(admitted).toEqual(['a#0', 'b#0', 'a#1', 'b#1', 'a#2', 'b#2']);
    await Promise.all(all);
  });

  test('deficit round robin counts bytes: a large write waits for its bytes of turns, then goes in', async () => {
    const { g } = gate({ capacityRequests: 1, quantumBytes: 1000 });
    const admitted: string[] = [];
    expect(await g.acquire('x', 1, 1000)).toBe(true);
    const big = queue(g, 'big', 1, 3000, admitted);
    const small = queue(g, 'small', 10, 1000, admitted);
    await tick();
    let holder = 'x';
    let bytes = 1;
    for (let i = 0; i < 11; i++) {
      g.release(holder, bytes);
      await tick();
      const last = admitted.at(-1)!;
      holder = last.startsWith('big') ? 'big' : 'small';
      bytes = holder === 'big' ? 3000 : 1000;
    }
    // 3,000 bytes take three turns of 1,000; the small tenant's 1,000 go in at each of its turns.
    expect(admitted.slice(0, 4)).toEqual(['small#0', 'small#1', 'big#0', 'small#2']);
    expect(await Promise.all([...big, ...small])).toEqual(Array(11).fill(true));
  });

  test('bytes and counts held, per tenant and in all; a release of what is not held throws', async () => {
    const { g } = gate({ capacityBytes: 1000, capacityRequests: 10 });
    expect(await g.acquire('a', 600, 1000)).toBe(true);
    expect(await g.acquire('b', 300, 1000)).toBe(true);
    expect(g.held).toBe(900);
    expect(g.holding).toBe(2);
    const waiting = g.acquire('b', 200, 1000);
    await tick();
    expect(g.tenants()).toEqual([
      { tenant: 'a', heldRequests: 1, heldBytes: 600, waiting: 0 },
      { tenant: 'b', heldRequests: 1, heldBytes: 300, waiting: 1 },
    ]);
    g.release('a', 600);
    expect(await waiting).toBe(true);
    expect(g.held).toBe(500);
    expect(g.tenants()).toEqual([{ tenant: 'b', heldRequests: 2, heldBytes: 500, waiting: 0 }]);
    expect(() => g.release('a', 1)).toThrow(/does not hold/);
    expect(() => g.release('b', 501)).toThrow(/does not hold/);
    g.release('b', 300);
    g.release('b', 200);
    expect(g.held).toBe(0);
    expect(g.tenants()).toEqual([]);
  });

  test('one taker larger than the whole capacity goes in when nothing is held', async () => {
    const { g } = gate({ capacityBytes: 100 });
    expect(await g.acquire('a', 50, 1000)).toBe(true);
    const big = g.acquire('b', 500, 1000);
    await tick();
    expect(g.waiting).toBe(1);
    g.release('a', 50);
    expect(await big).toBe(true);
    expect(g.held).toBe(500);
  });

  test('a wait ends at its deadline holding nothing, and no longer holds back those behind it', async () => {
    const { g } = gate({ capacityBytes: 100, capacityRequests: 10 });
    expect(await g.acquire('a', 90, 1000)).toBe(true);
    // b's 50 does not fit; c's 5 would, but waits its turn behind b.
    const b = g.acquire('b', 50, 20);
    const c = g.acquire('c', 5, 10_000);
    await tick();
    expect(g.waiting).toBe(2);
    expect(await b).toBe(false);
    expect(await c).toBe(true);
    expect(g.held).toBe(95);
    expect(g.waiting).toBe(0);
    expect(g.tenants().map((t) => t.tenant)).toEqual(['a', 'c']);
    expect(await g.acquire('d', 50, 0)).toBe(false);
  });

  test('an abort ends a wait holding nothing; an aborted signal is refused at once', async () => {
    const { g } = gate({ capacityRequests: 1 });
    expect(await g.acquire('a', 1, 1000)).toBe(true);
    const ac = new AbortController();
    const w = g.acquire('b', 1, 10_000, ac.signal);
    const next = g.acquire('c', 1, 10_000);
    await tick();
    ac.abort();
    expect(await w).toBe(false);
    expect(g.waiting).toBe(1);
    expect(await g.acquire('d', 1, 10_000, ac.signal)).toBe(false);
    g.release('a', 1);
    expect(await next).toBe(true);
    expect(g.tenants()).toEqual([{ tenant: 'c', heldRequests: 1, heldBytes: 1, waiting: 0 }]);
  });

  test('the shared count bound applies while two tenants use the gate, and lifts a window after the second left', async () => {
    const { g, clock } = gate({ capacityRequests: 8, sharedRequests: 2 });
    // One tenant alone: the whole count.
    for (let i = 0; i < 8; i++) expect(await g.acquire('a', 1, 0)).toBe(true);
    expect(g.shared).toBe(false);
    for (let i = 0; i < 8; i++) g.release('a', 1);
    // A second tenant came: 2 at most in flight over both.
    expect(await g.acquire('b', 1, 0)).toBe(true);
    expect(g.shared).toBe(true);
    expect(await g.acquire('a', 1, 0)).toBe(true);
    expect(await g.acquire('a', 1, 0)).toBe(false);
    g.release('b', 1);
    g.release('a', 1);
    // b is gone but was seen within the window: still shared.
    clock.ms += 999;
    expect(await g.acquire('a', 1, 0)).toBe(true);
    expect(await g.acquire('a', 1, 0)).toBe(true);
    expect(await g.acquire('a', 1, 0)).toBe(false);
    clock.ms += 2;
    expect(g.shared).toBe(false);
    expect(await g.acquire('a', 1, 0)).toBe(true);
  });

  test('past the shared bound a tenant below its share goes in at once, but never past a write waiting for bytes', async () => {
    const { g } = gate({ capacityBytes: 1000, capacityRequests: 8, sharedRequests: 4 });
    // Alone, a holds 6 (over the shared 4).
    for (let i = 0; i < 6; i++) expect(await g.acquire('a', 10, 0)).toBe(true);
    // b comes: it holds less than its share (4 / 2 tenants), so it goes in; a does not.
    expect(await g.acquire('b', 10, 0)).toBe(true);
    expect(await g.acquire('b', 10, 0)).toBe(true);
    expect(await g.acquire('b', 10, 0)).toBe(false);
    expect(await g.acquire('a', 10, 0)).toBe(false);
    // A write that waits for bytes is not passed, even by a tenant below its share.
    const big = g.acquire('c', 950, 10_000);
    await tick();
    expect(await g.acquire('d', 10, 0)).toBe(false);
    for (let i = 0; i < 6; i++) g.release('a', 10);
    g.release('b', 10);
    g.release('b', 10);
    expect(await big).toBe(true);
  });

  test('limits are checked', () => {
    expect(() => new FairGate({ capacityBytes: 0, capacityRequests: 1 })).toThrow(RangeError);
    expect(() => new FairGate({ capacityBytes: 1, capacityRequests: 1.5 })).toThrow(RangeError);
    expect(() => new FairGate({ capacityBytes: 1, capacityRequests: 2, sharedRequests: 3 })).toThrow(/exceeds/);
    expect(() => new FairGate({ capacityBytes: 1, capacityRequests: 2, quantumBytes: 0 })).toThrow(RangeError);
    expect(() => new FairGate({ capacityBytes: 1, capacityRequests: 2, activeWindowMs: -1 })).toThrow(RangeError);
    expect(() => new FairGate({ capacityBytes: 1, capacityRequests: 2 }).acquire('a', -1, 0)).toThrow(RangeError);
  });
});
