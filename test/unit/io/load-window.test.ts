/** The sliding window of request rate and p99 that a node reports on its status page. */
import { describe, expect, test } from 'vitest';
import { LoadWindow } from '../../../src/io/http/load-window.js';

describe('load window', () => {
  test('the rate counts requests of the last slots per second; older slots fall out of the window', () => {
    const w = new LoadWindow({ slotMs: 1000, slots: 5, now: 0 });
    for (let t = 0; t < 10_000; t += 10) w.record(1, t); // 100 requests a second for 10 s
    const r = w.read(10_000);
    // The window is the 4 whole slots before this one plus this one so far (empty): 400 requests in 4 s.
    expect(r.requests).toBe(400);
    expect(r.requestsPerSec).toBe(100);
    expect(w.read(16_000)).toEqual({ requests: 0, requestsPerSec: 0, p99Ms: 0 });
  });

  test('right after the start the rate is over the time since the start, not the whole window', () => {
    const w = new LoadWindow({ slotMs: 1000, slots: 5, now: 0 });
    for (let t = 0; t < 2000; t += 20) w.record(1, t);
    expect(w.read(2000).requestsPerSec).toBe(50);
  });

  test('p99 is the upper edge of the bucket of the 99th percentile: within 19 % above the true value, never below', () => {
    const w = new LoadWindow({ now: 0 });
    for (let i = 0; i < 990; i++) w.record(2, 100);
    for (let i = 0; i < 10; i++) w.record(250, 100);
    const p99 = w.read(200).p99Ms;
    expect(p99).toBeGreaterThanOrEqual(2);
    expect(p99).toBeLessThan(2 * 1.19);
    for (let i = 0; i < 20; i++) w.record(250, 300);
    const slow = w.read(400).p99Ms;
    expect(slow).toBeGreaterThanOrEqual(250);
    expect(slow).toBeLessThan(250 * 1.19);
  });

  test('durations beyond the last bucket and at or below zero are counted, not lost', () => {
    const w = new LoadWindow({ now: 0 });
    w.record(0, 10);
    w.record(-1, 10);
    w.record(Number.NaN, 10);
    w.record(10 * 60_000, 10);
    const r = w.read(20);
    expect(r.requests).toBe(4);
    expect(r.p99Ms).toBeGreaterThan(60_000);
  });

  test('bad options are refused', () => {
    expect(() => new LoadWindow({ slotMs: 0, now: 0 })).toThrow(RangeError);
    expect(() => new LoadWindow({ slots: 0, now: 0 })).toThrow(RangeError);
  });
});
