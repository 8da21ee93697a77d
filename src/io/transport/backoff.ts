/**
 * When a peer may be dialed: exponential backoff with jitter after failed dials, and a circuit
 * breaker that stops dialing (and sending) for a cool-down after too many failures in a row.
 *
 * Pure: every function takes the current time (epoch ms) and, where jitter is drawn, a random
 * source in [0, 1), and returns a decision or the next state. The transport owns the clock and the
 * timers; these functions own the rules, so tests drive them with plain numbers.
 */

import type { PeerState } from './options.js';

/** The limits the rules use (from the transport's options). */
export interface DialPolicy {
  /** Delay after the first failure, in milliseconds. */
  readonly backoffInitialMs: number;
  /** Largest delay between dials, in milliseconds; `backoffInitialMs <= backoffMaxMs`. */
  readonly backoffMaxMs: number;
  /** Consecutive failures that open the breaker; at least 1. */
  readonly breakerFailures: number;
  /** How long an open breaker stays open, in milliseconds. */
  readonly breakerCoolDownMs: number;
}

/** One peer's dialing record. */
export interface DialState {
  /** Failed dials since the last connection; reset by any connection that comes up. */
  readonly failures: number;
  /** No dial before this time (epoch ms). */
  readonly nextDialAt: number;
  /** The breaker is open until this time (epoch ms); open while `now < breakerUntil`. */
  readonly breakerUntil: number;
}

/** A fresh start (a connection came up, or new addresses): no backoff, breaker closed. */
export const DIAL_FRESH: DialState = { failures: 0, nextDialAt: 0, breakerUntil: 0 };

/**
 * Delay before redialing after the `failures`-th failure (>= 1): `d = min(maxMs, initialMs *
 * 2^(failures-1))`, jittered uniformly to [d/2, d] (rounded) by `random()` in [0, 1).
 */
export function backoffMs(failures: number, policy: DialPolicy, random: () => number): number {
  const d = Math.min(policy.backoffMaxMs, policy.backoffInitialMs * 2 ** Math.min(30, failures - 1));
  return Math.round(d / 2 + (random() * d) / 2);
}

/** Whether the breaker is open at `now`: sends are dropped and no dial is made. */
export const breakerOpen = (s: DialState, now: number): boolean => now < s.breakerUntil;

/**
 * What to do about dialing at `now`: `open` (breaker open until `at`: drop, and for a kept peer
 * try once at `at`, half-open), `wait` (backing off until `at`) or `dial`.
 */
export type DialDecision = { readonly kind: 'open'; readonly at: number } | { readonly kind: 'wait'; readonly at: number } | { readonly kind: 'dial' };

export function dialDecision(s: DialState, now: number): DialDecision {
  if (now < s.breakerUntil) return { kind: 'open', at: s.breakerUntil };
  if (now < s.nextDialAt) return { kind: 'wait', at: s.nextDialAt };
  return { kind: 'dial' };
}

/**
 * The state after a dial failed at `now`, and whether that failure opened the breaker: `opened`
 * the first time the count reaches `breakerFailures`, `reopened` for each failure after it (a
 * half-open dial that failed), else undefined (backing off).
 */
export function afterDialFailure(
  s: DialState,
  now: number,
  policy: DialPolicy,
  random: () => number,
): { readonly state: DialState; readonly breaker: 'opened' | 'reopened' | undefined } {
  const failures = s.failures + 1;
  if (failures >= policy.breakerFailures) {
    return {
      state: { failures, nextDialAt: s.nextDialAt, breakerUntil: now + policy.breakerCoolDownMs },
      breaker: failures === policy.breakerFailures ? 'opened' : 'reopened',
    };
  }
  return { state: { failures, nextDialAt: now + backoffMs(failures, policy, random), breakerUntil: s.breakerUntil }, breaker: undefined };
}

/** The state after a live connection broke at `now`: redial soon, but not in a tight loop. */
export function afterLinkLost(s: DialState, now: number, policy: DialPolicy, random: () => number): DialState {
  return { ...s, nextDialAt: Math.max(s.nextDialAt, now + backoffMs(1, policy, random)) };
}

/** What a peer's link is doing at `now`, for stats. */
export function peerState(
  s: DialState,
  now: number,
  link: { readonly connected: boolean; readonly dialing: boolean; readonly retryScheduled: boolean },
): PeerState {
  if (link.connected) return 'connected';
  if (link.dialing) return 'dialing';
  if (now < s.breakerUntil) return 'open';
  if (link.retryScheduled || now < s.nextDialAt) return 'backoff';
  return 'idle';
}
