/**
 * Where each shard's replicas should be, and the next safe membership change that brings a shard
 * there. Pure and deterministic (no clock, no randomness, no I/O): the meta group computes
 * targets with {@link rebalance} when members come, go or die, and each shard's leader walks its
 * group towards its target one change at a time with {@link nextStep}. Both take plain lists, so
 * the simulator and the unit tests drive them the way a node does.
 */
import type { NodeId } from '../shards/raft/index.js';

/**
 * Target replica set of every shard (index = shard), each sorted by id.
 *
 * - Keeps every replica of `prev` that sits on an `up` node; nodes not in `up` (dead, leaving)
 *   lose all of theirs.
 * - A set above its factor sheds its replicas on the most loaded nodes.
 * - A set below `min(factorOf(shard), up.length)` is filled with the least loaded up nodes it
 *   lacks; among equally loaded nodes the shard's rotation of `up` decides, so consecutive
 *   shards start on different nodes.
 * - Then the load is evened: while some node holds at least 2 replicas more than another, one
 *   replica of a shard that has the fuller node and lacks the emptier one moves across. Every
 *   move lowers the sum of squared loads, so this ends with `max - min <= 1`, and only the moves
 *   the imbalance needs are made (3 -> 4 nodes, 16 shards x 3: 12 replicas move, the rest stay).
 *
 * `factorOf(shard)` is the replication factor (replicas per shard, >= 1). Nodes in `prev` that are
 * not in `up` are ignored; duplicates in `up` count once.
 */
export function rebalance(prev: readonly (readonly NodeId[])[], up: readonly NodeId[], factorOf: (shard: number) => number): NodeId[][] {
  const nodes = [...new Set(up)].sort((a, b) => a - b);
  const load = new Map<NodeId, number>(nodes.map((n) => [n, 0]));
  const sets: NodeId[][] = prev.map((p) => [...new Set(p)].filter((n) => load.has(n)));
  for (const set of sets) for (const n of set) load.set(n, load.get(n)! + 1);
  const rank = (shard: number, n: NodeId): number => (nodes.indexOf(n) - (shard % nodes.length) + nodes.length) % nodes.length;

  sets.forEach((set, shard) => {
    const want = Math.min(factorOf(shard), nodes.length);
    while (set.length > want) {
      // Shed the replica on the most loaded node (ties: the one latest in the shard's rotation).
      const drop = pickBy(set, (a, b) => load.get(b)! - load.get(a)! || rank(shard, b) - rank(shard, a));
      set.splice(set.indexOf(drop), 1);
      load.set(drop, load.get(drop)! - 1);
    }
  });
  sets.forEach((set, shard) => {
    const want = Math.min(factorOf(shard), nodes.length);
    while (set.length < want) {
      const free = nodes.filter((n) => !set.includes(n));
      const add = pickBy(free, (a, b) => load.get(a)! - load.get(b)! || rank(shard, a) - rank(shard, b));
      set.push(add);
      load.set(add, load.get(add)! + 1);
    }
  });
  evenOut(sets, nodes, load);
  return sets.map((s) => s.sort((a, b) => a - b));
}

/**
 * Moves replicas from the fullest node to the emptiest while they differ by 2 or more. A shard
 * that has the full node and lacks the empty one always exists then (the full node is in more
 * sets than the empty one). The shard scan starts after the last shard moved, so successive
 * moves land on different shards.
 */
function evenOut(sets: NodeId[][], nodes: readonly NodeId[], load: Map<NodeId, number>): void {
  if (nodes.length < 2 || sets.length === 0) return;
  let cursor = 0;
  for (;;) {
    const full = pickBy(nodes, (a, b) => load.get(b)! - load.get(a)! || a - b);
    const empty = pickBy(nodes, (a, b) => load.get(a)! - load.get(b)! || a - b);
    if (load.get(full)! - load.get(empty)! < 2) return;
    let moved = false;
    for (let i = 0; i < sets.length && !moved; i++) {
      const shard = (cursor + i) % sets.length;
      const set = sets[shard]!;
      if (!set.includes(full) || set.includes(empty)) continue;
      set[set.indexOf(full)] = empty;
      load.set(full, load.get(full)! - 1);
      load.set(empty, load.get(empty)! + 1);
      cursor = shard + 1;
      moved = true;
    }
    if (!moved) throw new Error('rebalance: no shard to move a replica from the fullest node (impossible by counting)');
  }
}

/** The first element of a non-empty list in the order `cmp` gives. */
function pickBy<T extends number>(xs: readonly T[], cmp: (a: T, b: T) => number): T {
  let best = xs[0]!;
  for (const x of xs) if (cmp(x, best) < 0) best = x;
  return best;
}

/** One membership change (or the leadership transfer that must come before it). */
export type Step =
  | { readonly kind: 'addLearner'; readonly node: NodeId }
  | { readonly kind: 'promote'; readonly node: NodeId }
  | { readonly kind: 'remove'; readonly node: NodeId }
  | { readonly kind: 'transfer'; readonly to: NodeId };

/** The signature of {@link nextStep} (the simulator takes another one to prove its checks). */
export type NextStep = (p: StepInput) => Step | undefined;

/**
 * The lag a replica may have and still count as caught up, for a leader whose last index is
 * `lastIndex` now and was `before` one round ago (undefined: no earlier round): `lagMax`, or the
 * entries the leader appended during the last round when that is more. A learner that has reached
 * where the leader was a round ago keeps up with the writes, so under sustained writes faster than
 * `lagMax` entries per round it is still promoted; a fixed bound alone would keep it a learner
 * until the writes slow.
 */
export function lagAllowance(lagMax: number, lastIndex: number, before: number | undefined): number {
  return before === undefined ? lagMax : Math.max(lagMax, lastIndex - before);
}

/** What a shard's leader knows when it asks {@link nextStep}. */
export interface StepInput {
  /** The leader asking. */
  readonly self: NodeId;
  /** Voters of the leader's applied configuration. */
  readonly voters: readonly NodeId[];
  /** Learners of the leader's applied configuration. */
  readonly learners: readonly NodeId[];
  /** Where the shard's replicas should be (from {@link rebalance}). */
  readonly target: readonly NodeId[];
  /** Highest log index known durable on `node` (the leader's progress); 0 when unknown. */
  readonly match: (node: NodeId) => number;
  /** The leader's last log index. */
  readonly lastIndex: number;
  /** Entries a replica may lag behind `lastIndex` and still count as caught up (>= 0). */
  readonly lagMax: number;
  /** The leader hears from `node` now (its liveness). */
  readonly reachable: (node: NodeId) => boolean;
  /** Whether `node` may be handed the leadership (not a node stopping); default: any. */
  readonly canLead?: (node: NodeId) => boolean;
}

/**
 * The next membership change that moves a shard towards `target`, or `undefined` when there is
 * none to make now (done, or waiting for a learner to catch up). Call it on the shard's leader,
 * with its applied configuration, and propose one change at a time: the core refuses a second
 * change while one is unapplied.
 *
 * A replica is *caught up* when it is reachable and its match is at least `lastIndex - lagMax`.
 * The rules, safety first, in the order they are tried:
 * 1. A learner not in the target is removed (a learner never counts towards a quorum). A leader
 *    not in the target hands leadership to the caught-up target voter with the highest match (one
 *    that can lead: not a node stopping), when there is one, before anything else: a node being removed stops leading first.
 * 2. A target learner that is caught up is promoted, and only if the voters with it would still
 *    have a quorum of caught-up replicas (a promotion must not leave the group waiting on a
 *    replica that lags).
 * 3. When there is no learner, one reachable target node that is neither voter nor learner is
 *    added as a learner: one replica catches up at a time, so the extra load stays bounded.
 * 4. A voter not in the target is removed only once every target node is a voter, so the shard
 *    never falls below its target replicas, and only if the voters left keep a quorum of caught-up
 *    replicas. The last voter is never removed. If that voter is the leader itself, the step is a
 *    transfer of leadership to the caught-up target voter with the highest match (`lastIndex`
 *    when one has it; under steady writes nobody may be exactly there when asked, and the core
 *    brings the transferee to `lastIndex` before it hands over). The next leader removes it.
 */
export function nextStep(p: StepInput): Step | undefined {
  const target = new Set(p.target);
  const caughtUp = (n: NodeId): boolean => p.reachable(n) && p.match(n) >= p.lastIndex - p.lagMax;
  const heirOk = (n: NodeId): boolean => target.has(n) && caughtUp(n) && (p.canLead?.(n) ?? true);
  const quorumCaughtUp = (voters: readonly NodeId[]): boolean => voters.filter(caughtUp).length >= Math.floor(voters.length / 2) + 1;
  if (!p.voters.includes(p.self)) return undefined;

  const stray = p.learners.find((n) => !target.has(n));
  if (stray !== undefined) return { kind: 'remove', node: stray };

  // A leader the target leaves out (its node leaving, or the replica moved away) hands leadership
  // to a caught-up target voter first: the moves are then made by a leader that stays, and a node
  // being removed stops leading at once.
  if (!target.has(p.self)) {
    const heir = p.voters.filter((v) => v !== p.self && heirOk(v)).sort((a, b) => p.match(b) - p.match(a) || a - b)[0];
    if (heir !== undefined) return { kind: 'transfer', to: heir };
  }

  for (const n of p.learners) {
    if (caughtUp(n) && quorumCaughtUp([...p.voters, n])) return { kind: 'promote', node: n };
  }
  if (p.learners.length > 0) return undefined;

  const members = new Set([...p.voters, ...p.learners]);
  const missing = p.target.filter((n) => !members.has(n));
  const join = missing.find((n) => p.reachable(n));
  if (join !== undefined) return { kind: 'addLearner', node: join };
  if (missing.length > 0) return undefined;

  const surplus = p.voters.filter((n) => !target.has(n));
  // Voters that are reachable leave last: a dead voter goes first, it serves nobody.
  surplus.sort((a, b) => Number(p.reachable(a)) - Number(p.reachable(b)) || a - b);
  for (const n of surplus) {
    const rest = p.voters.filter((v) => v !== n);
    if (rest.length === 0 || !quorumCaughtUp(rest)) continue;
    if (n !== p.self) return { kind: 'remove', node: n };
    // The most caught-up target voter: the core sends it what it lacks before it hands over.
    const heirs = rest.filter(heirOk).sort((a, b) => p.match(b) - p.match(a) || a - b);
    if (heirs.length > 0) return { kind: 'transfer', to: heirs[0]! };
  }
  return undefined;
}
