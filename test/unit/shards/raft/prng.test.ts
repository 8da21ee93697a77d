import { describe, expect, test } from 'vitest';
import { Prng } from '../../../../src/shards/raft/prng.js';

const take = (p: Prng, n: number): number[] => Array.from({ length: n }, () => p.nextU32());

describe('Prng', () => {
  test('the same seed gives the same sequence (a failing seed replays)', () => {
    expect(take(new Prng(42), 50)).toEqual(take(new Prng(42), 50));
  });

  test('different seeds give different sequences, seed 0 included', () => {
    const seqs = [0, 1, 2, 42, 0xffffffff].map((s) => take(new Prng(s), 8).join(','));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(take(new Prng(0), 8).some((x) => x !== 0)).toBe(true);
  });

  test('int(lo, hi) stays in [lo, hi) and reaches both ends', () => {
    const p = new Prng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const v = p.int(10, 20);
      expect(v).toBeGreaterThanOrEqual(10);
      expect(v).toBeLessThan(20);
      expect(Number.isInteger(v)).toBe(true);
      seen.add(v);
    }
    expect(seen.size).toBe(10);
  });

  test('next is in [0, 1) and roughly uniform', () => {
    const p = new Prng(11);
    let sum = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const v = p.next();
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
      sum += v;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.02);
  });

  test('fork is deterministic and independent of the parent afterwards', () => {
    const a = new Prng(5);
    const b = new Prng(5);
    const fa = a.fork();
    const fb = b.fork();
    expect(take(fa, 10)).toEqual(take(fb, 10));
    expect(take(a, 10)).toEqual(take(b, 10));
    expect(take(new Prng(5).fork(), 5)).not.toEqual(take(new Prng(5), 5));
  });

  test('pick chooses from the list and throws on an empty one', () => {
    const p = new Prng(1);
    for (let i = 0; i < 50; i++) expect(['a', 'b', 'c']).toContain(p.pick(['a', 'b', 'c']));
    expect(() => p.pick([])).toThrow();
  });

  test('chance(0) is never true and chance(1) always', () => {
    const p = new Prng(9);
    for (let i = 0; i < 100; i++) {
      expect(p.chance(0)).toBe(false);
      expect(p.chance(1)).toBe(true);
    }
  });
});
