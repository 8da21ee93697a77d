/** A seed is a complete description of a run: replaying it gives the same run, event for event. */
import { describe, expect, test } from 'vitest';
import { runSeed } from '../../sim/run.js';

describe('simulator determinism', () => {
  test('the same seed twice gives identical stats, outcome and trace', () => {
    for (const seed of [3, 17, 42]) {
      const a = runSeed(seed, { durationMs: 3000, fullTrace: true });
      const b = runSeed(seed, { durationMs: 3000, fullTrace: true });
      expect(b.stats).toEqual(a.stats);
      expect(b.ok).toBe(a.ok);
      expect(b.failure).toEqual(a.failure);
      expect(b.params).toBe(a.params);
      expect(b.trace).toEqual(a.trace);
      expect(a.trace.length).toBeGreaterThan(1000);
    }
  });

  test('the same seed with an injected bug replays identically too', () => {
    const a = runSeed(5, { bug: 'commit-previous-term', durationMs: 3000 });
    const b = runSeed(5, { bug: 'commit-previous-term', durationMs: 3000 });
    expect(b.stats).toEqual(a.stats);
    expect(b.failure).toEqual(a.failure);
  });

  test('different seeds give different runs', () => {
    expect(runSeed(1, { durationMs: 2000 }).stats).not.toEqual(runSeed(2, { durationMs: 2000 }).stats);
  });
});
