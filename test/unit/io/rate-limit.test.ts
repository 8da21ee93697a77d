/** The per-tenant token bucket, on a virtual clock. */
import { describe, expect, test } from 'vitest';
import { RateLimiter } from '../../../src/io/http/rate-limit.js';

function limiter(bucketsMax?: number): { rl: RateLimiter; clock: { ms: number } } {
  const clock = { ms: 0 };
  return { rl: new RateLimiter({ now: () => clock.ms, ...(bucketsMax === undefined ? {} : { bucketsMax }) }), clock };
}

const passed = (rl: RateLimiter, tenant: string, rate: number, n: number): number => {
  let ok = 0;
  for (let i = 0; i < n; i++) if (rl.take(tenant, rate).ok) ok++;
  return ok;
};

describe('RateLimiter', () => {
  test('a burst of one second passes, the rest is refused with retry-after of at least 1 s', () => {
    const { rl } = limiter();
    expect(passed(rl, 'a', 5, 50)).toBe(5);
    const d = rl.take('a', 5);
    expect(d).toEqual({ ok: false, retryAfterS: 1 });
  });

  test('refills at the rate: 5/s gives 5 more after a second, 1 after 200 ms', () => {
    const { rl, clock } = limiter();
    passed(rl, 'a', 5, 5);
    clock.ms += 200;
    expect(passed(rl, 'a', 5, 10)).toBe(1);
    clock.ms += 1000;
    expect(passed(rl, 'a', 5, 10)).toBe(5);
    // Never more than one second's worth, however long it was idle.
    clock.ms += 60_000;
    expect(passed(rl, 'a', 5, 10)).toBe(5);
  });

  test('a rate below 1/s holds one request, and retry-after says when the next comes', () => {
    const { rl, clock } = limiter();
    expect(rl.take('slow', 0.25)).toEqual({ ok: true });
    expect(rl.take('slow', 0.25)).toEqual({ ok: false, retryAfterS: 4 });
    clock.ms += 3000;
    expect(rl.take('slow', 0.25)).toEqual({ ok: false, retryAfterS: 1 });
    clock.ms += 1000;
    expect(rl.take('slow', 0.25)).toEqual({ ok: true });
  });

  test('tenants have their own buckets', () => {
    const { rl } = limiter();
    expect(passed(rl, 'a', 2, 10)).toBe(2);
    expect(passed(rl, 'b', 2, 10)).toBe(2);
  });

  test('bounded: past bucketsMax the least recently used bucket goes; forget drops one', () => {
    const { rl } = limiter(2);
    passed(rl, 'a', 1, 1);
    passed(rl, 'b', 1, 1);
    passed(rl, 'a', 1, 1); // a is now the most recent
    passed(rl, 'c', 1, 1); // b goes
    expect(rl.size).toBe(2);
    expect(rl.take('a', 1).ok).toBe(false); // still its (spent) bucket
    expect(rl.take('b', 1).ok).toBe(true); // a new bucket
    rl.forget('b');
    rl.forget('c');
    expect(rl.size).toBe(1);
    expect(() => new RateLimiter({ bucketsMax: 0 })).toThrow(RangeError);
  });
});
