/**
 * The dialing rules of one peer, as pure functions of the time: exponential backoff with jitter
 * (bounds checked over a seeded random source, and at its extremes), the breaker opening after N
 * consecutive failures, one half-open dial after the cool-down, and a connection closing it.
 * No endpoints, no timers, no waiting: the time is a number the test moves.
 */
import { describe, expect, it } from 'vitest';
import { DIAL_FRESH, afterDialFailure, afterLinkLost, backoffMs, breakerOpen, dialDecision, peerState } from '../../../src/io/transport/backoff.js';
import type { DialPolicy, DialState } from '../../../src/io/transport/backoff.js';
import { Prng } from '../../../src/shards/raft/index.js';

const policy: DialPolicy = { backoffInitialMs: 50, backoffMaxMs: 5000, breakerFailures: 5, breakerCoolDownMs: 10_000 };
const seed = 0x5eed;

/** Fails `n` dials in a row starting at `now` (each at the moment it was allowed), returning the last state. */
function failDials(s: DialState, n: number, now: number, random: () => number): DialState {
  let state = s;
  let t = now;
  for (let i = 0; i < n; i++) {
    t = Math.max(t, state.nextDialAt);
    expect(dialDecision(state, t)).toEqual({ kind: 'dial' });
    state = afterDialFailure(state, t, policy, random).state;
  }
  return state;
}

describe('backoff', () => {
  it('doubles from initialMs per failure and stops at maxMs, jittered to [d/2, d] (seed printed for replay)', () => {
    const prng = new Prng(seed);
    const random = (): number => prng.next();
    for (let failures = 1; failures <= 40; failures++) {
      const d = Math.min(policy.backoffMaxMs, policy.backoffInitialMs * 2 ** (failures - 1));
      for (let k = 0; k < 200; k++) {
        const ms = backoffMs(failures, policy, random);
        expect(ms, `seed ${seed}, failure ${failures}`).toBeGreaterThanOrEqual(Math.round(d / 2));
        expect(ms, `seed ${seed}, failure ${failures}`).toBeLessThanOrEqual(d);
      }
    }
  });

  it('reaches both ends of the jitter range: random 0 gives d/2, random near 1 gives d', () => {
    expect(backoffMs(1, policy, () => 0)).toBe(25);
    expect(backoffMs(1, policy, () => 0.999999)).toBe(50);
    expect(backoffMs(3, policy, () => 0)).toBe(100);
    expect(backoffMs(3, policy, () => 0.999999)).toBe(200);
    expect(backoffMs(8, policy, () => 0.999999)).toBe(5000); // 50 * 2^7 = 6400, capped
    expect(backoffMs(1_000, policy, () => 0)).toBe(2500); // a huge count does not overflow
  });

  it('spreads the delays: a seeded source does not give the same value every time', () => {
    const prng = new Prng(seed);
    const seen = new Set<number>();
    for (let k = 0; k < 50; k++) seen.add(backoffMs(5, policy, () => prng.next()));
    expect(seen.size, `seed ${seed}`).toBeGreaterThan(10);
  });

  it('waits after a failure until the backoff has passed, then dials', () => {
    const { state, breaker } = afterDialFailure(DIAL_FRESH, 1000, policy, () => 0);
    expect(breaker).toBeUndefined();
    expect(state.failures).toBe(1);
    expect(state.nextDialAt).toBe(1025);
    expect(breakerOpen(state, 1000)).toBe(false);
    expect(dialDecision(state, 1000)).toEqual({ kind: 'wait', at: 1025 });
    expect(dialDecision(state, 1024)).toEqual({ kind: 'wait', at: 1025 });
    expect(dialDecision(state, 1025)).toEqual({ kind: 'dial' });
  });

  it('redials a connection that broke after at least one short backoff, keeping a later dial time', () => {
    expect(afterLinkLost(DIAL_FRESH, 1000, policy, () => 0).nextDialAt).toBe(1025);
    const later: DialState = { ...DIAL_FRESH, nextDialAt: 9000 };
    expect(afterLinkLost(later, 1000, policy, () => 0).nextDialAt).toBe(9000);
    expect(afterLinkLost(later, 1000, policy, () => 0).failures).toBe(0);
  });
});

describe('breaker', () => {
  it('stays closed for breakerFailures - 1 failures, and opens at the N-th for coolDownMs', () => {
    const prng = new Prng(seed);
    const random = (): number => prng.next();
    const s = failDials(DIAL_FRESH, policy.breakerFailures - 1, 0, random);
    expect(s.failures).toBe(policy.breakerFailures - 1);
    expect(breakerOpen(s, s.nextDialAt)).toBe(false);
    const t = s.nextDialAt;
    const { state, breaker } = afterDialFailure(s, t, policy, random);
    expect(breaker).toBe('opened');
    expect(state.failures).toBe(policy.breakerFailures);
    expect(state.breakerUntil).toBe(t + policy.breakerCoolDownMs);
    expect(breakerOpen(state, t)).toBe(true);
    expect(breakerOpen(state, t + policy.breakerCoolDownMs - 1)).toBe(true);
    expect(dialDecision(state, t + 1)).toEqual({ kind: 'open', at: t + policy.breakerCoolDownMs });
  });

  it('opens with one failure when breakerFailures is 1', () => {
    const { breaker } = afterDialFailure(DIAL_FRESH, 0, { ...policy, breakerFailures: 1 }, () => 0);
    expect(breaker).toBe('opened');
  });

  it('allows one dial after the cool-down (half-open), and opens again when it fails', () => {
    const opened = failDials(DIAL_FRESH, policy.breakerFailures, 0, () => 0);
    const end = opened.breakerUntil;
    expect(breakerOpen(opened, end)).toBe(false);
    expect(dialDecision(opened, end)).toEqual({ kind: 'dial' });
    const { state, breaker } = afterDialFailure(opened, end, policy, () => 0);
    expect(breaker).toBe('reopened');
    expect(state.failures).toBe(policy.breakerFailures + 1);
    expect(state.breakerUntil).toBe(end + policy.breakerCoolDownMs);
    expect(dialDecision(state, end)).toEqual({ kind: 'open', at: end + policy.breakerCoolDownMs });
  });

  it('closes on success: a connection resets to the fresh state, which dials at once', () => {
    const opened = failDials(DIAL_FRESH, policy.breakerFailures, 0, () => 0);
    expect(breakerOpen(opened, opened.breakerUntil - 1)).toBe(true);
    // A connection (either direction) replaces the state with DIAL_FRESH.
    expect(DIAL_FRESH).toEqual({ failures: 0, nextDialAt: 0, breakerUntil: 0 });
    expect(breakerOpen(DIAL_FRESH, opened.breakerUntil - 1)).toBe(false);
    expect(dialDecision(DIAL_FRESH, opened.breakerUntil - 1)).toEqual({ kind: 'dial' });
    // And it takes the full count again to reopen.
    expect(afterDialFailure(DIAL_FRESH, 0, policy, () => 0).breaker).toBeUndefined();
  });

  it('with a zero cool-down, the half-open dial comes at once', () => {
    const p = { ...policy, breakerFailures: 1, breakerCoolDownMs: 0 };
    const { state } = afterDialFailure(DIAL_FRESH, 500, p, () => 0);
    expect(breakerOpen(state, 500)).toBe(false);
    expect(dialDecision(state, 500)).toEqual({ kind: 'dial' });
  });
});

describe('peerState', () => {
  const idle = { connected: false, dialing: false, retryScheduled: false };

  it('says connected, dialing, open, backoff or idle, in that order of precedence', () => {
    const open: DialState = { failures: 5, nextDialAt: 0, breakerUntil: 2000 };
    expect(peerState(open, 1000, { ...idle, connected: true, dialing: true })).toBe('connected');
    expect(peerState(open, 1000, { ...idle, dialing: true })).toBe('dialing');
    expect(peerState(open, 1000, { ...idle, retryScheduled: true })).toBe('open');
    expect(peerState(open, 2000, idle)).toBe('idle');
    const waiting: DialState = { failures: 1, nextDialAt: 1500, breakerUntil: 0 };
    expect(peerState(waiting, 1000, idle)).toBe('backoff');
    expect(peerState(waiting, 1500, idle)).toBe('idle');
    expect(peerState(DIAL_FRESH, 1000, { ...idle, retryScheduled: true })).toBe('backoff');
    expect(peerState(DIAL_FRESH, 1000, idle)).toBe('idle');
  });
});
