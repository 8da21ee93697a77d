/**
 * The simulator's meta group in moves mode: it keeps the members (joining, up, leaving, dead for
 * good) and every group's target replicas (src/router/moves.ts `rebalance`), and on every planner
 * round asks each group's leader for its next membership change (`nextStep`) and proposes it,
 * as a node's shard leaders will. It also checks what a planner must never do, each time a
 * change it proposed takes effect:
 * - moves-quorum: the voters of the new configuration include a quorum of replicas whose logs
 *   hold every entry before the change (up to `lagMax` entries of slack, the planner's own
 *   notion of caught up); a node dead for good before the change was proposed holds nothing;
 * - moves-replicas: removing a voter never leaves fewer voters than the target had when the
 *   removal was proposed.
 * At the end (faults healed) every group's voters must equal its target, of size
 * `min(factor, members up)` (moves-converged).
 */
import type { NodeId } from '../../src/shards/raft/types.js';
import { ConfChangeType, EntryType, nodeId } from '../../src/shards/raft/types.js';
import type { ConfChange, ConfState, LogIndex } from '../../src/shards/raft/types.js';
import type { MemoryStorage } from '../../src/shards/raft/storage.js';
import type { Status } from '../../src/shards/raft/rawnode.js';
import { nextStep, rebalance } from '../../src/router/moves.js';
import type { NextStep, Step } from '../../src/router/moves.js';
import { fail } from './checks.js';
import type { MovesParams } from './params.js';

/**
 * A member's life: absent until it joins; leaving and dead members are out of every target. A
 * spare id is kept for a node that lost its disk and comes back as a new member (see
 * {@link Moves.rejoin}); regular joins never take it.
 */
export type MemberState = 'absent' | 'spare' | 'up' | 'leaving' | 'dead';

/** What the planner needs of the simulated cluster. */
export interface MovesHost {
  now(): number;
  /** The group's leader (highest term among live replicas), if any. */
  leader(group: number): { readonly node: number; status(): Status; readonly live: MemoryStorage } | undefined;
  /** Node `id`'s process runs and hears `from` and is heard by it. */
  reachable(from: number, id: number): boolean;
  /** The membership replica (`id`, `group`) has applied, as it sees it; undefined while its node is down or it hosts none. */
  confOf(id: number, group: number): ConfState | undefined;
  /** The log a replica holds: live while its node runs, durable while it is down; undefined if none. */
  logOf(id: number, group: number): MemoryStorage | undefined;
  /** Term of the entry committed at `index` in `group`, if known. */
  committedTerm(group: number, index: number): number | undefined;
  propose(group: number, cc: ConfChange): { index: number; term: number } | undefined;
  transfer(group: number, to: number): void;
  log(node: number, group: number, text: string): void;
}

interface Proposal {
  readonly group: number;
  readonly index: number;
  readonly at: number;
  /** Voters once the change applies. */
  readonly voters: readonly number[];
  readonly kind: Step['kind'];
  /** The change removes a voter (not a learner). */
  readonly removesVoter: boolean;
  readonly targetSize: number;
}

export interface MovesStats {
  joins: number;
  leaves: number;
  deaths: number;
  /** Membership changes the planner proposed (accepted by the core). */
  proposed: number;
  /** Planner changes that took effect (first apply anywhere). */
  applied: number;
  /** Leaderships handed over so a leader could be removed. */
  transfers: number;
  /** Members that lost their disk and came back under a new id. */
  rejoins: number;
}

export class Moves {
  readonly state = new Map<number, MemberState>();
  readonly diedAt = new Map<number, number>();
  targets: NodeId[][];
  readonly stats: MovesStats = { joins: 0, leaves: 0, deaths: 0, proposed: 0, applied: 0, transfers: 0, rejoins: 0 };
  private readonly proposals = new Map<string, Proposal>();

  constructor(
    readonly p: MovesParams,
    private readonly nodes: number,
    private readonly groups: number,
    private readonly host: MovesHost,
    private readonly next: NextStep = nextStep,
  ) {
    const spareFrom = nodes - (p.amnesiaMax ?? 0);
    for (let id = 1; id <= nodes; id++) this.state.set(id, id <= p.startNodes ? 'up' : id <= spareFrom ? 'absent' : 'spare');
    this.targets = rebalance(
      Array.from({ length: groups }, () => []),
      this.members(),
      () => p.factor,
    );
  }

  /** Members that hold replicas: up, not leaving, not dead. */
  members(): NodeId[] {
    return [...this.state].filter(([, s]) => s === 'up').map(([id]) => nodeId(id));
  }

  private replan(why: string): void {
    this.targets = rebalance(this.targets, this.members(), () => this.p.factor);
    this.host.log(0, -1, `${why}: targets ${this.targets.map((t) => `[${t.join(',')}]`).join('')}`);
  }

  /** The next absent id joins (empty storage: its replicas are created by the leaders' messages). */
  join(): number | undefined {
    const id = [...this.state].find(([, s]) => s === 'absent')?.[0];
    if (id === undefined) return undefined;
    this.state.set(id, 'up');
    this.stats.joins++;
    this.replan(`node ${id} joins`);
    return id;
  }

  /** A member is taken out of the targets (it keeps running until its replicas have moved). */
  leave(pick: (ids: number[]) => number): number | undefined {
    const ids = this.members();
    if (ids.length <= 1) return undefined;
    const id = pick(ids);
    this.state.set(id, 'leaving');
    this.stats.leaves++;
    this.replan(`node ${id} leaves`);
    return id;
  }

  /**
   * A member may die for good only when every group is settled (its leader's configuration is
   * its target, no change in flight) and each group it votes in keeps a quorum without it.
   */
  canDie(id: number): boolean {
    const s = this.state.get(id);
    if (s !== 'up' && s !== 'leaving') return false;
    for (let g = 0; g < this.groups; g++) {
      const l = this.host.leader(g);
      if (l === undefined) return false;
      const st = l.status();
      if (!sameSet(st.confState.voters, this.targets[g]!) || st.confState.learners.length > 0) return false;
      if (hasConfChange(l.live, st.applied + 1, st.lastIndex)) return false;
      // A change the planner proposed may still sit in the leader's unstable log, not yet in `live`.
      for (const pr of this.proposals.values()) if (pr.group === g && pr.index > st.applied) return false;
      const voters = st.confState.voters;
      if (voters.includes(nodeId(id)) && voters.length < 3) return false;
      // Every other voter has applied that membership too: one that has not learned yet that the
      // last change committed campaigns (or stays a learner) under the one before, and with this
      // member gone it may never hear of it (the leader applied the change, the others did not).
      for (const v of voters) {
        if (v === nodeId(id)) continue;
        const cs = this.host.confOf(v, g);
        if (cs === undefined || !sameSet(cs.voters, voters) || cs.learners.length > 0) return false;
      }
    }
    return true;
  }

  die(id: number): void {
    this.state.set(id, 'dead');
    this.diedAt.set(id, this.host.now());
    this.stats.deaths++;
    this.replan(`node ${id} dies for good`);
  }

  /**
   * Member `old` lost its disk and comes back as a new member, as the amnesia guard has it
   * (src/main/cluster-start.ts): its old id is declared dead, so the planner rebuilds its
   * replicas from the others, and it takes a spare id, in every target from now on but hosting
   * nothing until the planner adds it as a learner. Returns the new id; undefined when no spare
   * id is left.
   */
  rejoin(old: number): number | undefined {
    const id = [...this.state].find(([, s]) => s === 'spare')?.[0];
    if (id === undefined) return undefined;
    this.state.set(old, 'dead');
    this.diedAt.set(old, this.host.now());
    this.state.set(id, 'up');
    this.stats.rejoins++;
    this.replan(`node ${old} lost its disk: its id is dead, it comes back as node ${id}`);
    return id;
  }

  /** One planner round: each group's leader takes its next step. */
  plan(): void {
    for (let g = 0; g < this.groups; g++) this.planGroup(g);
  }

  private planGroup(g: number): void {
    const l = this.host.leader(g);
    if (l === undefined) return;
    const st = l.status();
    if (st.role !== 'leader' || st.leadTransferee !== 0) return;
    const self = st.id;
    const step = this.next({
      self,
      voters: st.confState.voters,
      learners: st.confState.learners,
      target: this.targets[g]!,
      match: (n) => st.progress.get(n)?.match ?? 0,
      lastIndex: st.lastIndex,
      lagMax: this.p.lagMax,
      reachable: (n) => n === self || this.host.reachable(self, n),
    });
    if (step === undefined) return;
    if (step.kind === 'transfer') {
      this.stats.transfers++;
      this.host.log(self, g, `planner: transfer to ${step.to} (target [${this.targets[g]!.join(',')}])`);
      this.host.transfer(g, step.to);
      return;
    }
    const cc = toConfChange(step);
    const res = this.host.propose(g, cc);
    if (res === undefined) return;
    this.stats.proposed++;
    this.proposals.set(`${g}:${res.index}:${res.term}`, {
      group: g,
      index: res.index,
      at: this.host.now(),
      voters: votersAfter(st.confState, cc),
      kind: step.kind,
      removesVoter: step.kind === 'remove' && st.confState.voters.includes(step.node),
      targetSize: this.targets[g]!.length,
    });
    this.host.log(self, g, `planner: ${step.kind} ${step.node} at ${res.index}/t${res.term} (target [${this.targets[g]!.join(',')}])`);
  }

  /** A membership change entry is applied somewhere; the first time for a planner change, check it. */
  onApplied(g: number, index: number, term: number): void {
    const key = `${g}:${index}:${term}`;
    const pr = this.proposals.get(key);
    if (pr === undefined) return;
    this.proposals.delete(key);
    this.stats.applied++;
    const upTo = index - 1 - this.p.lagMax;
    const holders = pr.voters.filter((v) => this.holds(v, g, upTo, pr.at));
    const quorum = Math.floor(pr.voters.length / 2) + 1;
    if (holders.length < quorum) {
      fail(
        'moves-quorum',
        `group ${g}: ${pr.kind} at ${index} leaves voters [${pr.voters.join(',')}], of which only [${holders.join(',')}] hold the log up to ${upTo} (quorum ${quorum})`,
      );
    }
    if (pr.removesVoter && pr.voters.length < pr.targetSize) {
      fail('moves-replicas', `group ${g}: remove at ${index} leaves ${pr.voters.length} voters [${pr.voters.join(',')}], below the target's ${pr.targetSize}`);
    }
  }

  private holds(v: number, g: number, upTo: number, proposedAt: number): boolean {
    const died = this.diedAt.get(v);
    if (died !== undefined && died <= proposedAt) return false;
    if (upTo <= 0) return true;
    const log = this.host.logOf(v, g);
    if (log === undefined) return false;
    if (upTo <= log.firstIndex() - 1) return true;
    if (upTo > log.lastIndex()) return false;
    return log.term(upTo as LogIndex) === this.host.committedTerm(g, upTo);
  }

  /** Why group `g` has not reached its target, or undefined when it has. */
  unsettled(g: number): string | undefined {
    const l = this.host.leader(g);
    if (l === undefined) return 'no leader';
    const cs = l.status().confState;
    const want = Math.min(this.p.factor, this.members().length);
    const t = this.targets[g]!;
    if (t.length !== want) return `target [${t.join(',')}] has ${t.length} replicas, not min(${this.p.factor}, ${this.members().length})`;
    if (!sameSet(cs.voters, t) || cs.learners.length > 0)
      return `voters [${cs.voters.join(',')}] learners [${cs.learners.join(',')}] on leader n${l.node}, target [${t.join(',')}]`;
    return undefined;
  }
}

function toConfChange(s: Exclude<Step, { kind: 'transfer' }>): ConfChange {
  const type = s.kind === 'addLearner' ? ConfChangeType.AddLearner : s.kind === 'promote' ? ConfChangeType.AddVoter : ConfChangeType.RemoveNode;
  return { type, node: s.node };
}

function votersAfter(cs: ConfState, cc: ConfChange): number[] {
  if (cc.type === ConfChangeType.AddVoter) return [...cs.voters, cc.node];
  if (cc.type === ConfChangeType.RemoveNode) return cs.voters.filter((v) => v !== cc.node);
  return [...cs.voters];
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** A membership change entry among `from..to` of `log` (what is compacted was applied). */
function hasConfChange(log: MemoryStorage, from: number, to: number): boolean {
  const lo = Math.max(from, log.firstIndex());
  const hi = Math.min(to, log.lastIndex());
  if (lo > hi) return false;
  return log.entries(lo as LogIndex, (hi + 1) as LogIndex, Number.MAX_SAFE_INTEGER).some((e) => e.type === EntryType.ConfChange);
}
