/**
 * The adaptive bound on writes in flight while tenants share (src/router/adaptive-limit.ts): it
 * grows while the latency stays near the base, shrinks when it rises past the tolerance, stays in
 * [min, max], moves only at the end of a window, and forgets an old base.
 */
import { describe, expect, test } from 'vitest';
import { AdaptiveLimit } from '../../../src/router/adaptive-limit.js';
import { FairGate } from '../../../src/api/index.js';

function limit(o: Partial<ConstructorParameters<typeof AdaptiveLimit>[0]> = {}): { l: AdaptiveLimit; clock: { t: number } } {
  const clock = { t: 0 };
  const l = new AdaptiveLimit({ max: 256, windowSamples: 10, windowMs: 100, baseWindows: 5, now: () => clock.t, ...o });
  return { l, clock };
}

/** One window of `n` writes of `ms` each, over 100 ms of the clock; whether it closed. */
function window(l: AdaptiveLimit, clock: { t: number }, ms: number, n = 10): boolean {
  let closed = false;
  for (let i = 0; i < n; i++) {
    clock.t += 100 / n;
    closed = l.sample(ms) || closed;
  }
  return closed;
}

describe('AdaptiveLimit', () => {
  test('grows while the latency stays within the tolerance of the base, up to max', () => {
    const { l, clock } = limit({ max: 64, baseWindows: 1000 });
    expect(l.limit).toBe(16);
    const seen = [l.limit];
    for (let i = 0; i < 200; i++) {
      expect(window(l, clock, 10)).toBe(true);
      seen.push(l.limit);
    }
    expect(seen[1]).toBeGreaterThan(16);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(l.limit).toBe(64);
    expect(l.base).toBe(10);
  });

  test('shrinks in proportion when the latency passes tolerance x base, down to min', () => {
    const { l, clock } = limit({ initial: 100, baseWindows: 1000 });
    window(l, clock, 10);
    const before = l.limit;
    window(l, clock, 30);
    // 30 ms against 1.5 x 10: the target is half, a fifth of the way there.
    expect(l.limit).toBe(Math.round(0.8 * before + 0.2 * before * 0.5));
    for (let i = 0; i < 200; i++) window(l, clock, 1000);
    expect(l.limit).toBe(4);
  });

  test('settles near the knee of a pipeline whose latency grows past 20 in flight, from a start far past it (a probe finds the base)', () => {
    const { l, clock } = limit({ initial: 100, baseWindows: 40 });
    // 10 ms up to 20 writes in flight, then 1 ms more per write: queueing, not throughput.
    const latency = (): number => 10 + Math.max(0, l.limit - 20);
    const tail: number[] = [];
    for (let i = 0; i < 400; i++) {
      window(l, clock, latency());
      // Probe windows run at min by design; the bound between them is what is checked.
      if (i >= 300 && l.limit > 4) tail.push(l.limit);
    }
    expect(tail.length).toBeGreaterThan(90);
    expect(Math.min(...tail)).toBeGreaterThanOrEqual(18);
    expect(Math.max(...tail)).toBeLessThanOrEqual(30);
    expect(l.base).toBe(10);
  });

  test('moves only when a window closes: enough writes and enough time', () => {
    const { l, clock } = limit();
    for (let i = 0; i < 50; i++) expect(l.sample(10)).toBe(false);
    clock.t += 100;
    expect(l.sample(10)).toBe(true);
    expect(l.windows).toBe(1);
    // Time alone is not enough either.
    clock.t += 1000;
    expect(l.sample(10)).toBe(false);
  });

  test('the base is the lowest median of the last windows: a slower cluster raises it, the bound recovers', () => {
    const { l, clock } = limit({ initial: 32, baseWindows: 5 });
    window(l, clock, 10);
    for (let i = 0; i < 3; i++) window(l, clock, 40);
    const low = l.limit;
    expect(low).toBeLessThan(32);
    // Five windows on, the 10 ms window is forgotten: 40 ms is the base, and the bound grows again.
    for (let i = 0; i < 10; i++) window(l, clock, 40);
    expect(l.base).toBe(40);
    expect(l.limit).toBeGreaterThan(low);
  });

  test('bad samples are ignored; bad bounds refused', () => {
    const { l } = limit();
    expect(l.sample(Number.NaN)).toBe(false);
    expect(l.sample(-1)).toBe(false);
    expect(() => new AdaptiveLimit({ max: 2, min: 4 })).toThrow(RangeError);
  });
});

describe('FairGate.setSharedRequests', () => {
  test('a larger bound lets waiters in at once; the bound stays within 1 and capacityRequests', async () => {
    const g = new FairGate({ capacityBytes: 1 << 20, capacityRequests: 8, sharedRequests: 2, activeWindowMs: 10_000 });
    expect(await g.acquire('a', 1, 0)).toBe(true);
    expect(await g.acquire('b', 1, 0)).toBe(true);
    const third = g.acquire('a', 1, 10_000);
    await Promise.resolve();
    expect(g.waiting).toBe(1);
    g.setSharedRequests(3);
    expect(await third).toBe(true);
    g.setSharedRequests(100);
    expect(g.sharedRequests).toBe(8);
    g.setSharedRequests(0);
    expect(g.sharedRequests).toBe(1);
  });
});
