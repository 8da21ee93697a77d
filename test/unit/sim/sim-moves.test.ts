/**
 * The simulator's moves mode (test/sim/moves.ts): membership changes come from the planner while
 * nodes join, leave and die for good. The real planner passes its seeds; each way of breaking the
 * planner is caught by the check written for it, on a seed the real planner passes.
 */
import { describe, expect, test } from 'vitest';
import { nextStep } from '../../../src/router/moves.js';
import type { NextStep } from '../../../src/router/moves.js';
import { MemoryStorage } from '../../../src/shards/raft/storage.js';
import type { Entry, LogIndex, Term } from '../../../src/shards/raft/types.js';
import { EntryType } from '../../../src/shards/raft/types.js';
import { Violation, checkConfInFlight } from '../../sim/checks.js';
import type { CheckName } from '../../sim/checks.js';
import { formatFailure, runSeed } from '../../sim/run.js';
import type { SimParams } from '../../sim/params.js';

const DURATION_MS = 6000;
const SEEDS_MAX = 120;

/** Seeds in 1..SEEDS_MAX that draw moves mode. */
function movesSeeds(): number[] {
  const out: number[] = [];
  for (let seed = 1; seed <= SEEDS_MAX && out.length < 12; seed++) if (runSeed(seed, { durationMs: 1 }).params.includes('\nmoves: ')) out.push(seed);
  return out;
}

/** Promotes any target learner at once, caught up or not. */
const promoteEarly: NextStep = (p) => {
  const l = p.learners.find((n) => p.target.includes(n));
  return l !== undefined ? { kind: 'promote', node: l } : nextStep(p);
};

/** Removes a voter that is not in the target before the target's replicas are voters. */
const removeEarly: NextStep = (p) => {
  const v = p.voters.find((n) => !p.target.includes(n) && n !== p.self);
  return v !== undefined && p.voters.length > 1 ? { kind: 'remove', node: v } : nextStep(p);
};

/** Never removes a voter (nor hands leadership over to remove itself). */
const neverShrink: NextStep = (p) => {
  const s = nextStep(p);
  if (s?.kind === 'transfer' || (s?.kind === 'remove' && p.voters.includes(s.node))) return undefined;
  return s;
};

/**
 * Idle groups that go quiet one tick after an election (no clients, so nothing wakes them), and
 * members dying for good often, with no other fault: a member that dies leading quiet groups is
 * already out of their targets when the others' liveness finds it silent.
 */
const quietDeaths = (p: SimParams): SimParams =>
  p.moves === undefined
    ? p
    : {
        ...p,
        clientsPerGroup: 0,
        quiesceAfterTicks: 3,
        quiesceNewLeaderAfterTicks: 1,
        crashPerSec: 0,
        partitionPerSec: 0,
        linkCutPerSec: 0,
        moves: { ...p.moves, diePerSec: 2, leavePerSec: 0, amnesiaPerSec: 0 },
      };

describe('simulator moves mode', () => {
  const seeds = movesSeeds();

  test('a share of seeds draws moves mode; with the real planner they pass, with joins, deaths and planned changes', () => {
    expect(seeds.length).toBeGreaterThanOrEqual(8);
    const total = { joins: 0, leaves: 0, deaths: 0, applied: 0 };
    for (const seed of seeds.slice(0, 8)) {
      const r = runSeed(seed, { durationMs: DURATION_MS });
      expect(r.ok, formatFailure(r)).toBe(true);
      total.joins += r.stats.joins;
      total.leaves += r.stats.leaves;
      total.deaths += r.stats.deaths;
      total.applied += r.stats.plannedApplied;
    }
    expect(total.joins).toBeGreaterThan(0);
    expect(total.leaves).toBeGreaterThan(0);
    expect(total.deaths).toBeGreaterThan(0);
    expect(total.applied).toBeGreaterThan(10);
  });

  test("a member that dies leading quiet groups: the nodes' liveness wakes their followers, which elect a leader that moves the replicas", () => {
    const total = { deaths: 0, quietWakes: 0 };
    for (const seed of seeds.slice(0, 8)) {
      const r = runSeed(seed, { durationMs: DURATION_MS, tweak: quietDeaths });
      expect(r.ok, formatFailure(r)).toBe(true);
      total.deaths += r.stats.deaths;
      total.quietWakes += r.stats.quietWakes;
    }
    expect(total.deaths).toBeGreaterThan(0);
    expect(total.quietWakes).toBeGreaterThan(0);
  });

  test('a moves seed replays identically', () => {
    const a = runSeed(seeds[0]!, { durationMs: 3000, fullTrace: true });
    const b = runSeed(seeds[0]!, { durationMs: 3000, fullTrace: true });
    expect(b.stats).toEqual(a.stats);
    expect(b.trace).toEqual(a.trace);
    expect(a.trace.some((line) => line.includes('planner: '))).toBe(true);
  });

  const broken: { name: string; step: NextStep; check: CheckName }[] = [
    { name: 'a learner promoted before it caught up', step: promoteEarly, check: 'moves-quorum' },
    { name: 'a voter removed before the target replicas are voters', step: removeEarly, check: 'moves-replicas' },
    { name: 'surplus voters never removed', step: neverShrink, check: 'moves-converged' },
  ];
  test.each(broken)('caught: $name ($check)', ({ step, check }) => {
    const caught = seeds.find((seed) => !runSeed(seed, { durationMs: DURATION_MS, nextStep: step }).ok);
    expect(caught, 'no seed caught the broken planner').toBeDefined();
    const r = runSeed(caught!, { durationMs: DURATION_MS, nextStep: step });
    expect(r.failure?.check, formatFailure(r)).toBe(check);
    expect(runSeed(caught!, { durationMs: DURATION_MS }).ok).toBe(true);
  });
});

describe('conf-in-flight', () => {
  const entry = (index: number, type: EntryType, t = 2): Entry => ({ index: index as LogIndex, term: t as Term, type, data: new Uint8Array(0) });
  const log = (): MemoryStorage => {
    const s = new MemoryStorage();
    s.append([entry(1, EntryType.Normal), entry(2, EntryType.ConfChange), entry(3, EntryType.Normal), entry(4, EntryType.ConfChange)]);
    return s;
  };

  test('a leader appending a change while an earlier one is unapplied breaks the check', () => {
    expect(() => checkConfInFlight(0, 1, log(), [entry(4, EntryType.ConfChange)], 2, 1)).toThrow(Violation);
    try {
      checkConfInFlight(0, 1, log(), [entry(4, EntryType.ConfChange)], 2, 1);
    } catch (e) {
      expect((e as Violation).check).toBe('conf-in-flight');
    }
  });

  test('once the earlier change is applied, or for entries of another term (a follower catching up), it holds', () => {
    expect(() => checkConfInFlight(0, 1, log(), [entry(4, EntryType.ConfChange)], 2, 2)).not.toThrow();
    expect(() => checkConfInFlight(0, 1, log(), [entry(4, EntryType.ConfChange)], 3, 1)).not.toThrow();
    expect(() => checkConfInFlight(0, 1, log(), [entry(3, EntryType.Normal)], 2, 1)).not.toThrow();
  });
});
