import { describe, expect, test } from 'vitest';
import { TickClock } from '../../../src/shards/tick-clock.js';

describe('TickClock: ticks due by a clock, and the timers owed a run', () => {
  test('each due tick is handed out once; all but the first since the timers ran count as late; the timers are owed one run', () => {
    let now = 0;
    const c = new TickClock(() => now, 100);
    const counters = { ticks: 0, ticksLate: 0 };
    expect(c.advance(counters)).toBe(0);
    expect(c.takeTimers()).toBe(false);
    now = 100;
    expect(c.advance(counters)).toBe(1);
    expect(counters).toEqual({ ticks: 1, ticksLate: 0 });
    // A stall: three more ticks come due at once, and another before the timers get to run.
    now = 450;
    expect(c.advance(counters)).toBe(3);
    now = 500;
    expect(c.advance(counters)).toBe(1);
    expect(counters).toEqual({ ticks: 5, ticksLate: 4 });
    expect(c.takeTimers()).toBe(true);
    expect(c.takeTimers()).toBe(false);
    expect(c.msUntilTick()).toBe(100);
    now = 600;
    expect(c.advance(counters)).toBe(1);
    expect(counters).toEqual({ ticks: 6, ticksLate: 4 });
  });

  test('without a clock no tick is ever due, and a pass waits a tick length', () => {
    const c = new TickClock(undefined, 250);
    const counters = { ticks: 0, ticksLate: 0 };
    expect(c.advance(counters)).toBe(0);
    expect(c.takeTimers()).toBe(false);
    expect(c.msUntilTick()).toBe(250);
  });

  test('a tick length that is not a positive number is a broken invariant', () => {
    expect(() => new TickClock(undefined, 0)).toThrow();
    expect(() => new TickClock(undefined, Number.NaN)).toThrow();
  });
});
