/**
 * Replica placement (rebalance) and the membership steps that reach it (nextStep): targets keep
 * what they can, spread evenly, move few replicas; driven step by step, every group reaches its
 * target through changes the core accepts, without dropping below a quorum of caught-up voters.
 */
import { describe, expect, test } from 'vitest';
import { lagAllowance, nextStep, rebalance } from '../../../src/router/moves.js';
import type { Step } from '../../../src/router/moves.js';
import type { NodeId } from '../../../src/shards/raft/index.js';
import { Prng } from '../../../src/shards/raft/prng.js';

const n = (x: number): NodeId => x as NodeId;
const ids = (...xs: number[]): NodeId[] => xs.map(n);
const range = (lo: number, hi: number): NodeId[] => Array.from({ length: hi - lo + 1 }, (_, i) => n(lo + i));
const empty = (shards: number): NodeId[][] => Array.from({ length: shards }, () => []);

function loads(sets: readonly (readonly NodeId[])[], up: readonly NodeId[]): number[] {
  return up.map((u) => sets.filter((s) => s.includes(u)).length);
}

/** Replicas placed in `next` that `prev` did not have (each one is a copy to make). */
function moved(prev: readonly (readonly NodeId[])[], next: readonly (readonly NodeId[])[]): number {
  return next.reduce((sum, set, s) => sum + set.filter((x) => !(prev[s] ?? []).includes(x)).length, 0);
}

/** No node both gains and loses replicas: nothing moves that did not have to. */
function expectNoChurn(prev: readonly (readonly NodeId[])[], next: readonly (readonly NodeId[])[], up: readonly NodeId[]): void {
  for (const u of up) {
    const gains = next.filter((set, s) => set.includes(u) && !prev[s]!.includes(u)).length;
    const losses = prev.filter((set, s) => set.includes(u) && !next[s]!.includes(u)).length;
    expect(gains === 0 || losses === 0, `node ${u} gains ${gains} and loses ${losses}`).toBe(true);
  }
}

function expectValid(sets: readonly (readonly NodeId[])[], up: readonly NodeId[], factorOf: (s: number) => number): void {
  const upSet = new Set(up);
  sets.forEach((set, s) => {
    expect(set.length, `shard ${s}`).toBe(Math.min(factorOf(s), upSet.size));
    expect(new Set(set).size).toBe(set.length);
    expect([...set].sort((a, b) => a - b)).toEqual(set);
    for (const x of set) expect(upSet.has(x)).toBe(true);
  });
  const l = loads(sets, [...upSet]);
  if (l.length > 0) expect(Math.max(...l) - Math.min(...l)).toBeLessThanOrEqual(1);
}

describe('rebalance', () => {
  test('a cluster grows 1 -> 3 -> 5 nodes: every shard fills to 3 replicas, then spreads evenly with few moves', () => {
    const three = () => 3;
    const one = rebalance(empty(16), ids(1), three);
    expect(one).toEqual(Array.from({ length: 16 }, () => ids(1)));
    const grown = rebalance(one, range(1, 3), three);
    expect(grown).toEqual(Array.from({ length: 16 }, () => ids(1, 2, 3)));
    expect(moved(one, grown)).toBe(32);
    const five = rebalance(grown, range(1, 5), three);
    expectValid(five, range(1, 5), three);
    // 48 replicas over 5 nodes: 10,10,10,9,9 or so; only the new nodes' replicas are copies.
    const l = loads(five, range(1, 5));
    expect(moved(grown, five)).toBe(l[3]! + l[4]!);
    expectNoChurn(grown, five, range(1, 5));
  });

  test('a fourth node joining 16 shards x 3 replicas takes 12 of them; the other 36 stay', () => {
    const three = rebalance(empty(16), range(1, 3), () => 3);
    const four = rebalance(three, range(1, 4), () => 3);
    expectValid(four, range(1, 4), () => 3);
    expect(loads(four, range(1, 4))).toEqual([12, 12, 12, 12]);
    expect(moved(three, four)).toBe(12);
  });

  test('a node leaving (or dead) loses every replica; they go to the others, nothing else churns', () => {
    // The static layout of placement.ts: 3 consecutive members from shard % 5.
    const five = Array.from({ length: 16 }, (_, s) => [0, 1, 2].map((i) => n(((s + i) % 5) + 1)).sort((a, b) => a - b));
    const had = five.filter((s) => s.includes(n(5))).length;
    const four = rebalance(five, range(1, 4), () => 3);
    expectValid(four, range(1, 4), () => 3);
    for (const set of four) expect(set).not.toContain(n(5));
    expect(moved(five, four)).toBe(had);
    expectNoChurn(five, four, range(1, 4));
  });

  test('a node leaving a layout rebalance made moves its replicas and evens out, far from moving everything', () => {
    const five = rebalance(empty(16), range(1, 5), () => 3);
    const had = five.filter((s) => s.includes(n(5))).length;
    const four = rebalance(five, range(1, 4), () => 3);
    expectValid(four, range(1, 4), () => 3);
    for (const set of four) expect(set).not.toContain(n(5));
    // Where node 5 shared many shards with node 4, evening out moves a few more than its own.
    expect(moved(five, four)).toBeGreaterThanOrEqual(had);
    expect(moved(five, four)).toBeLessThanOrEqual(had + 4);
  });

  test('fewer up nodes than the factor: every shard has every up node', () => {
    const three = rebalance(empty(8), range(1, 3), () => 3);
    const two = rebalance(three, ids(1, 3), () => 3);
    expect(two).toEqual(Array.from({ length: 8 }, () => ids(1, 3)));
    expect(rebalance(two, [], () => 3)).toEqual(empty(8));
  });

  test('sets above their factor shed replicas on the most loaded nodes', () => {
    const sets = rebalance([ids(1, 2, 3), ids(1, 2, 3), ids(1)], range(1, 3), () => 2);
    expectValid(sets, range(1, 3), () => 2);
  });

  test('seeded: any members, shard counts and factors end with max - min <= 1 replicas per node', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const p = new Prng(seed);
      const universe = range(1, p.int(1, 10));
      const shards = p.int(0, 41);
      const factors = Array.from({ length: shards }, () => p.int(1, 6));
      const factorOf = (s: number) => factors[s]!;
      const prev = Array.from({ length: shards }, () => universe.filter(() => p.chance(0.4)));
      const up = universe.filter(() => p.chance(0.7));
      const next = rebalance(prev, up, factorOf);
      expectValid(next, up, factorOf);
      // Stable: placing again with the same members changes nothing.
      expect(rebalance(next, up, factorOf)).toEqual(next);
      // Replicas on up nodes stay unless their set was too big or the load had to even out.
      if (p.chance(0.5) && up.length > 1) {
        const joined = [...up, n(universe.length + 1)];
        const after = rebalance(next, joined, factorOf);
        expectValid(after, joined, factorOf);
        expectNoChurn(next, after, joined);
      }
    }
  });

  test('deterministic: the same inputs give the same targets, whatever the order of up', () => {
    const prev = [ids(3, 1), ids(2), [], ids(5, 4, 1)];
    const a = rebalance(prev, ids(1, 2, 3, 4, 6), () => 3);
    const b = rebalance(prev, ids(6, 4, 3, 2, 1, 1), () => 3);
    expect(b).toEqual(a);
  });
});

// ---------------------------------------------------------------------------------- nextStep

/** A group as the planner sees it, driven step by step; every step is checked against the core's rules. */
class Group {
  voters: NodeId[];
  learners: NodeId[] = [];
  match = new Map<NodeId, number>();
  lastIndex = 100;
  readonly steps: Step[] = [];

  constructor(
    voters: readonly NodeId[],
    public self: NodeId,
    readonly dead: ReadonlySet<NodeId>,
  ) {
    this.voters = [...voters];
    for (const v of voters) this.match.set(v, this.dead.has(v) ? 50 : this.lastIndex);
  }

  reachable = (x: NodeId): boolean => !this.dead.has(x);

  caughtUp(x: NodeId, lagMax: number): boolean {
    return this.reachable(x) && (this.match.get(x) ?? 0) >= this.lastIndex - lagMax;
  }

  next(target: readonly NodeId[], lagMax: number): Step | undefined {
    return nextStep({
      self: this.self,
      voters: this.voters,
      learners: this.learners,
      target,
      match: (x) => this.match.get(x) ?? 0,
      lastIndex: this.lastIndex,
      lagMax,
      reachable: this.reachable,
    });
  }

  /** Applies `s` as the core would, asserting the core accepts it and the group stays safe. */
  apply(s: Step, target: readonly NodeId[], lagMax: number): void {
    this.steps.push(s);
    const member = (x: NodeId) => this.voters.includes(x) || this.learners.includes(x);
    const quorum = (vs: readonly NodeId[]) => vs.filter((v) => this.caughtUp(v, lagMax)).length >= Math.floor(vs.length / 2) + 1;
    switch (s.kind) {
      case 'addLearner':
        expect(member(s.node)).toBe(false);
        expect(this.learners).toEqual([]);
        this.learners.push(s.node);
        this.match.set(s.node, 0);
        return;
      case 'promote':
        expect(this.learners).toContain(s.node);
        expect(this.caughtUp(s.node, lagMax)).toBe(true);
        this.learners = this.learners.filter((x) => x !== s.node);
        this.voters.push(s.node);
        expect(quorum(this.voters)).toBe(true);
        return;
      case 'remove': {
        expect(member(s.node)).toBe(true);
        expect(s.node).not.toBe(this.self);
        const wasVoter = this.voters.includes(s.node);
        this.learners = this.learners.filter((x) => x !== s.node);
        this.voters = this.voters.filter((x) => x !== s.node);
        expect(this.voters.length).toBeGreaterThan(0);
        if (wasVoter) {
          // Never below the target: every target node is a voter already.
          for (const t of target) expect(this.voters).toContain(t);
          expect(quorum(this.voters)).toBe(true);
        }
        return;
      }
      case 'transfer':
        expect(this.voters).toContain(s.to);
        expect(s.to).not.toBe(this.self);
        expect(this.caughtUp(s.to, lagMax)).toBe(true);
        for (const v of this.voters)
          if (target.includes(v) && this.caughtUp(v, lagMax)) expect(this.match.get(s.to)).toBeGreaterThanOrEqual(this.match.get(v)!);
        this.self = s.to;
        return;
    }
  }

  /** Time passes: new entries, and reachable replicas catch up by some amount. */
  replicate(p: Prng): void {
    this.lastIndex += p.int(0, 4);
    this.match.set(this.self, this.lastIndex);
    for (const x of [...this.voters, ...this.learners]) {
      if (!this.reachable(x) || x === this.self) continue;
      const m = this.match.get(x) ?? 0;
      this.match.set(x, Math.min(this.lastIndex, m + p.int(0, 60)));
    }
  }
}

/** Drives `g` to `target`; returns the number of rounds used. */
function drive(g: Group, target: readonly NodeId[], lagMax: number, p: Prng, roundsMax = 2000): number {
  for (let round = 0; round < roundsMax; round++) {
    const s = g.next(target, lagMax);
    if (s !== undefined) g.apply(s, target, lagMax);
    else if ([...g.voters].sort((a, b) => a - b).join() === [...target].sort((a, b) => a - b).join() && g.learners.length === 0) return round;
    g.replicate(p);
  }
  throw new Error(`not converged: voters ${g.voters.join()} learners ${g.learners.join()}, target ${target.join()}, steps ${JSON.stringify(g.steps)}`);
}

describe('nextStep', () => {
  test('under sustained writes a learner that reached where the leader was a round ago is promoted (lagAllowance)', () => {
    expect(lagAllowance(64, 1000, undefined)).toBe(64);
    expect(lagAllowance(64, 1000, 990)).toBe(64);
    expect(lagAllowance(64, 1000, 700)).toBe(300);
    // 300 entries a round: the learner trails by 150 at every look, always past a fixed 64.
    const g = new Group(ids(1, 2, 3), n(1), new Set());
    const target = ids(1, 2, 4);
    g.apply({ kind: 'addLearner', node: n(4) }, target, 0);
    let before: number | undefined;
    const steps: (Step | undefined)[] = [];
    for (let round = 0; round < 3; round++) {
      g.lastIndex += 300;
      for (const v of g.voters) g.match.set(v, g.lastIndex);
      g.match.set(n(4), g.lastIndex - 150);
      expect(g.next(target, 64), `round ${round}, fixed bound`).toBeUndefined();
      steps.push(g.next(target, lagAllowance(64, g.lastIndex, before)));
      before = g.lastIndex;
    }
    // The first look has no round before it; from the second on, 150 < 300 entries a round.
    expect(steps).toEqual([undefined, { kind: 'promote', node: 4 }, { kind: 'promote', node: 4 }]);
  });

  test('a new replica joins as a learner, is promoted once caught up, then the surplus voter leaves', () => {
    const g = new Group(ids(1, 2, 3), n(1), new Set());
    const target = ids(1, 2, 4);
    expect(g.next(target, 0)).toEqual({ kind: 'addLearner', node: 4 });
    g.apply({ kind: 'addLearner', node: n(4) }, target, 0);
    // Not caught up: wait; and 3 stays while 4 is not a voter.
    expect(g.next(target, 0)).toBeUndefined();
    g.match.set(n(4), 95);
    expect(g.next(target, 10)).toEqual({ kind: 'promote', node: 4 });
    expect(g.next(target, 0)).toBeUndefined();
    g.match.set(n(4), 100);
    g.apply(g.next(target, 0)!, target, 0);
    expect(g.next(target, 0)).toEqual({ kind: 'remove', node: 3 });
  });

  test('a leader out of the target hands leadership over before any other step, when a target voter is caught up', () => {
    const g = new Group(ids(1, 2, 3), n(3), new Set());
    // Node 4 is missing from the shard: the leader would add it, but it leaves first.
    expect(g.next(ids(1, 2, 4), 0)).toEqual({ kind: 'transfer', to: 1 });
    // No target voter caught up: it goes on with the moves itself.
    g.match.set(n(1), 10);
    g.match.set(n(2), 10);
    expect(g.next(ids(1, 2, 4), 0)).toEqual({ kind: 'addLearner', node: 4 });
  });

  test('the leader leaving hands leadership to a caught-up target voter first; the next leader removes it', () => {
    const g = new Group(ids(1, 2, 3), n(3), new Set());
    g.match.set(n(1), 99);
    const target = ids(1, 2);
    // 1 lags by one entry: caught up with lagMax 1, but 2 (match == lastIndex) is the better heir.
    expect(g.next(target, 1)).toEqual({ kind: 'transfer', to: 2 });
    g.match.set(n(2), 98);
    expect(g.next(target, 2)).toEqual({ kind: 'transfer', to: 1 });
    g.match.set(n(2), 100);
    // With lagMax 0 only 2 is caught up: still its heir (a transfer changes no configuration, so the
    // quorum of the voters left is not asked); the removal then waits for that quorum.
    expect(g.next(target, 0)).toEqual({ kind: 'transfer', to: 2 });
    g.apply({ kind: 'transfer', to: n(2) }, target, 1);
    expect(g.next(target, 1)).toEqual({ kind: 'remove', node: 3 });
  });

  test('a node that cannot lead (it is stopping) is passed over as heir: the next caught-up target voter, or none yet', () => {
    const g = new Group(ids(1, 2, 3), n(3), new Set());
    const stopping = new Set([2]);
    const next = (target: readonly NodeId[]) =>
      nextStep({
        self: g.self,
        voters: g.voters,
        learners: g.learners,
        target,
        match: (x) => g.match.get(x) ?? 0,
        lastIndex: g.lastIndex,
        lagMax: 1,
        reachable: g.reachable,
        canLead: (x) => !stopping.has(x),
      });
    // The leader leaves: 2 (match 100) would be the heir before 1 (99), but it is stopping.
    g.match.set(n(1), 99);
    expect(next(ids(1, 2))).toEqual({ kind: 'transfer', to: 1 });
    // Only 2 is caught up among the target voters: no transfer while it stops (the moves wait).
    g.match.set(n(1), 10);
    expect(next(ids(1, 2))).toBeUndefined();
    stopping.clear();
    expect(next(ids(1, 2))).toEqual({ kind: 'transfer', to: 2 });
  });

  test('a dead voter goes first, and only when the voters left keep a quorum of caught-up replicas', () => {
    const g = new Group(ids(1, 2, 3, 4), n(1), new Set([n(3)]));
    g.match.set(n(4), 100);
    expect(g.next(ids(1, 2), 0)).toEqual({ kind: 'remove', node: 3 });
    // 2 lags: removing 3 would leave {1, 2, 4} with caught-up {1, 4}: still a quorum.
    g.match.set(n(2), 10);
    expect(g.next(ids(1, 2, 4), 0)).toEqual({ kind: 'remove', node: 3 });
    // 2 and 4 lag: {1, 2, 4} would have one caught-up voter; wait.
    g.match.set(n(4), 10);
    expect(g.next(ids(1, 2, 4), 0)).toBeUndefined();
  });

  test('the last voter is never removed, a stray learner always is', () => {
    const g = new Group(ids(1), n(1), new Set());
    expect(g.next([], 0)).toBeUndefined();
    g.learners = ids(7);
    expect(g.next([], 0)).toEqual({ kind: 'remove', node: 7 });
    expect(g.next(ids(1), 0)).toEqual({ kind: 'remove', node: 7 });
  });

  test('an unreachable target node is not added, and the surplus stays until it is', () => {
    const g = new Group(ids(1, 2, 3), n(1), new Set([n(4)]));
    expect(g.next(ids(1, 2, 4), 0)).toBeUndefined();
  });

  test('from 1 node to 3, and back to another single node', () => {
    const p = new Prng(7);
    const g = new Group(ids(1), n(1), new Set());
    drive(g, ids(1, 2, 3), 0, p);
    expect(g.steps.map((s) => s.kind)).toEqual(['addLearner', 'promote', 'addLearner', 'promote']);
    drive(g, ids(5), 0, p);
    expect(g.voters).toEqual(ids(5));
  });

  test('seeded: from many starting points every group reaches voters == target through valid steps', () => {
    let steps = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const p = new Prng(seed);
      const universe = range(1, p.int(2, 9));
      const shuffled = [...universe].sort(() => p.next() - 0.5);
      const voters = shuffled.slice(0, p.int(1, Math.min(6, universe.length) + 1));
      // A minority of the voters may be dead for good; the target avoids them.
      const dead = new Set(voters.filter((v, i) => i > 0 && i <= (voters.length - 1) / 2 && p.chance(0.5)));
      const self = voters[0]!;
      const alive = universe.filter((x) => !dead.has(x));
      const target = alive.filter(() => p.chance(0.5));
      if (target.length === 0) target.push(alive[p.int(0, alive.length)]!);
      const g = new Group(voters, self, dead);
      const lagMax = p.pick([0, 0, 5, 20]);
      drive(g, target, lagMax, p);
      expect([...g.voters].sort((a, b) => a - b)).toEqual([...target].sort((a, b) => a - b));
      steps += g.steps.length;
    }
    expect(steps).toBeGreaterThan(1000);
  });
});
