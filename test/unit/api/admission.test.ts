/**
 * ByteGate: admission by bytes, first come first served, with a bounded wait.
 */
import { describe, expect, test } from 'vitest';
import { ByteGate } from '../../../src/api/index.js';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('ByteGate', () => {
  test('admits while the bytes fit; the rest wait and are admitted in order as bytes come back', async () => {
    const g = new ByteGate(100);
    const order: string[] = [];
    expect(await g.acquire(60, 1000)).toBe(true);
    expect(await g.acquire(40, 1000)).toBe(true);
    expect(g.held).toBe(100);
    const a = g.acquire(50, 1000).then((ok) => order.push(`a:${ok}`));
    // Small enough to fit once 40 comes back, but it came after a: it waits for a.
    const b = g.acquire(10, 1000).then((ok) => order.push(`b:${ok}`));
    await tick();
    expect(g.waiting).toBe(2);
    g.release(40);
    await tick();
    expect(order).toEqual([]);
    g.release(60);
    await Promise.all([a, b]);
    expect(order).toEqual(['a:true', 'b:true']);
    expect(g.held).toBe(60);
    expect(g.waiting).toBe(0);
  });

  test('tryAcquire takes at once or not at all, and never passes a waiter', async () => {
    const g = new ByteGate(100);
    expect(g.tryAcquire(70)).toBe(true);
    expect(g.tryAcquire(40)).toBe(false);
    expect(g.held).toBe(70);
    const waiting = g.acquire(50, 1000);
    // 20 would fit beside the 70 held, but 50 waits ahead of it.
    expect(g.tryAcquire(20)).toBe(false);
    g.release(70);
    expect(await waiting).toBe(true);
    expect(g.tryAcquire(20)).toBe(true);
    expect(g.held).toBe(70);
  });

  test('one taker larger than the capacity goes when nothing is held', async () => {
    const g = new ByteGate(100);
    expect(await g.acquire(500, 0)).toBe(true);
    expect(await g.acquire(1, 0)).toBe(false);
    g.release(500);
    expect(await g.acquire(1, 0)).toBe(true);
  });

  test('a wait that times out holds nothing and lets the ones behind it in', async () => {
    const g = new ByteGate(100);
    expect(await g.acquire(90, 0)).toBe(true);
    const big = g.acquire(100, 30);
    const small = g.acquire(10, 1000);
    expect(await big).toBe(false);
    // The big one gave up: the small one behind it fits beside the 90 held.
    expect(await small).toBe(true);
    expect(g.held).toBe(100);
  });

  test('an aborted wait holds nothing; an aborted signal never waits', async () => {
    const g = new ByteGate(10);
    expect(await g.acquire(10, 0)).toBe(true);
    const ac = new AbortController();
    const w = g.acquire(5, 10_000, ac.signal);
    ac.abort();
    expect(await w).toBe(false);
    expect(g.waiting).toBe(0);
    expect(await g.acquire(5, 10_000, ac.signal)).toBe(false);
    g.release(10);
    expect(g.held).toBe(0);
  });

  test('releasing more than held is a bug; a capacity below 1 is refused', () => {
    const g = new ByteGate(10);
    expect(() => g.release(1)).toThrow(/more than it held/);
    expect(() => new ByteGate(0)).toThrow(RangeError);
  });
});
