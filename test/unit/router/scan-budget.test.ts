/** The node's budget for the shard reads of scans: a node-wide bound, a per-tenant share, deadlines. */
import { describe, expect, test } from 'vitest';
import { ScanBudget } from '../../../src/router/scan-budget.js';
import type { Outcome } from '../../../src/shards/sessions.js';

const ok: Outcome = { ok: true, body: new Uint8Array(0) };

describe('ScanBudget', () => {
  test('holds at most readsMax reads node-wide and tenantReadsMax per tenant; releases let the next in, in order', async () => {
    const b = new ScanBudget(4, 2);
    const a1 = await b.acquire('a', 0);
    const a2 = await b.acquire('a', 0);
    expect(a1 && a2).toBeTruthy();
    // Tenant a is at its share: a third read of a waits even though the node has room.
    expect(await b.acquire('a', 0)).toBeUndefined();
    const b1 = await b.acquire('b', 0);
    const b2 = await b.acquire('b', 0);
    expect(b.inflight).toBe(4);
    // The node is full: tenant c waits for a slot, and gets the first one freed.
    const c1 = b.acquire('c', 1_000);
    await new Promise((r) => setImmediate(r));
    expect(b.waiting).toBe(1);
    a1!();
    expect(await c1).toBeTypeOf('function');
    expect(b.inflight).toBe(4);
    a1!(); // a second call gives nothing back twice
    expect(b.inflight).toBe(4);
    for (const r of [a2, b1, b2]) r!();
    expect(b.inflight).toBe(1);
    expect(b.refused).toBe(1);
  });

  test('a read that gets no slot before its deadline holds nothing, and is counted', async () => {
    const b = new ScanBudget(1);
    expect(b.tenantReadsMax).toBe(1);
    const held = await b.acquire('a', 0);
    const t0 = performance.now();
    expect(await b.acquire('b', 30)).toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(b.waiting).toBe(0);
    held!();
    expect(b.inflight).toBe(0);
    expect(b.refused).toBe(1);
    expect(await b.acquire('b', 0)).toBeTypeOf('function');
  });

  test('one tenant flooding scans leaves the other tenants their share', async () => {
    const b = new ScanBudget(8, 4, 4);
    const asked: string[] = [];
    const slow = (tenant: string) => async (): Promise<Outcome> => {
      asked.push(tenant);
      await new Promise((r) => setTimeout(r, 20));
      return ok;
    };
    // Tenant noisy runs 10 scans of 16 shards at once, 4 reads each.
    const noisy = Array.from({ length: 10 }, () => b.fanOut(16, 'noisy', 10_000, slow('noisy')));
    await new Promise((r) => setTimeout(r, 5));
    expect(b.inflight).toBe(4);
    const quiet = await b.fanOut(16, 'quiet', 10_000, slow('quiet'));
    const noisyBefore = asked.filter((t) => t === 'noisy').length;
    // Quiet ran in its own 4 slots beside noisy's 4: about 4 noisy reads per quiet round of 4 (20
    // by the end). Without the per-tenant share the same run lets 40 noisy reads in first.
    expect(noisyBefore).toBeLessThanOrEqual(28);
    expect(quiet.every((o) => o.ok)).toBe(true);
    expect(asked.filter((t) => t === 'quiet')).toHaveLength(16);
    await Promise.all(noisy);
    expect(b.inflight).toBe(0);
  });

  test('a scan whose read finds no slot in time fails Overloaded and asks no more shards', async () => {
    const b = new ScanBudget(1, 1, 2);
    const held = await b.acquire('other', 0);
    let asked = 0;
    const parts = await b.fanOut(10, 't', 30, () => {
      asked++;
      return Promise.resolve(ok);
    });
    held!();
    expect(asked).toBe(0);
    expect(parts.every((o) => !o.ok && o.code === 'Overloaded')).toBe(true);
    expect(b.inflight).toBe(0);
  });

  test('bad sizes are refused', () => {
    expect(() => new ScanBudget(0)).toThrow(RangeError);
    expect(() => new ScanBudget(4, 5)).toThrow(RangeError);
    expect(() => new ScanBudget(4, 0)).toThrow(RangeError);
    expect(() => new ScanBudget(2.5)).toThrow(RangeError);
    expect(() => new ScanBudget(4, 2, 0)).toThrow(RangeError);
  });

  test('under a flood of scans, scans run in turn: the first ones finish whole, later ones wait for their turn or time out', async () => {
    // 16 read slots, 8 per tenant, 4 shards at a time per scan: two scans of a tenant run at once.
    const b = new ScanBudget(16, 8, 4);
    const done: number[] = [];
    let running = 0;
    let mostRunning = 0;
    const flood = Array.from({ length: 12 }, (_, i) =>
      b
        .fanOut(32, 't', 300, async () => {
          mostRunning = Math.max(mostRunning, b.scansRunning);
          running++;
          await new Promise((r) => setTimeout(r, 5));
          running--;
          return ok;
        })
        .then((parts) => {
          if (parts.every((o) => o.ok)) done.push(i);
          return parts;
        }),
    );
    await new Promise((r) => setTimeout(r, 1));
    expect(b.scansRunning).toBe(2);
    expect(b.scansWaiting).toBe(10);
    const parts = await Promise.all(flood);
    expect(mostRunning).toBe(2);
    expect(running).toBe(0);
    // Each scan takes 8 rounds of 5 ms or more: about 40 ms per pair of scans, so within 300 ms the
    // first pairs finish whole, in the order they came, and the rest are refused without a read.
    expect(done.length).toBeGreaterThan(0);
    expect([...done].sort((a, c) => a - c)).toEqual(Array.from({ length: done.length }, (_, i) => i));
    for (const p of parts.slice(done.length)) expect(p.every((o) => !o.ok && o.code === 'Overloaded')).toBe(true);
    expect(b.scansRunning + b.scansWaiting + b.inflight).toBe(0);
  });
});
