/**
 * Cluster life on one node: following the meta group (src/router/meta-record.ts) and doing this
 * node's share of what it asks. Every `--meta-poll-ms` a round:
 *
 * 1. Reads the record (a founder writes the first one). When it changed: the router, the
 *    transport's member list, discovery and `cluster.json` take the new members and replica sets.
 * 2. Hosts what the targets give this node: opens an empty replica of each shard placed here that
 *    it does not host (the shard's leader adds it as a learner and sends it a snapshot), and drops
 *    a replica that is neither placed here nor in its shard's configuration any more.
 * 3. As the leader of a shard, takes the next membership step toward the shard's target
 *    (src/router/moves.ts nextStep: add a learner, promote it once caught up, remove the surplus,
 *    hand leadership over before removing itself): one change at a time per shard.
 * 4. As the leader of the meta group: declares members (up or leaving) dead after
 *    `--dead-node-timeout-ms` of silence (their replicas are rebuilt on the others), and replans
 *    the targets when members changed.
 * 5. A leaving member that hosts nothing any more records itself removed and stops; a member
 *    that finds itself removed stops and says why. So does one that hears from no other member
 *    and is told by one of them (`members.self`) that it was removed while it was away.
 */
import type { Logger } from 'pino';
import type { NodeId, ShardId } from '../shards/raft/index.js';
import type { Router, Member } from '../router/router.js';
import type { WorkerPool } from '../workers/pool.js';
import { MetaClient, foundingMeta, memberOf, replan, setState } from '../router/meta.js';
import type { MetaView } from '../router/meta.js';
import { metaShardOf } from '../router/meta-record.js';
import type { ClusterMeta, MetaMember } from '../router/meta-record.js';
import { lagAllowance, nextStep } from '../router/moves.js';
import type { Step } from '../router/moves.js';
import { SettledShards } from '../router/settled.js';
import type { SelfEntry } from './cluster-join.js';

/** Milliseconds between two asks of the other members what they say of this node, while it hears from none of them. */
const ISOLATED_ASK_MS = 5_000;

export interface LifeParts {
  readonly self: NodeId;
  readonly selfId: string;
  readonly shards: number;
  readonly replicas: number;
  readonly router: Router;
  readonly pool: WorkerPool;
  /** Founding members (raft ids 1..n) when this node is one of them: it may write the first record. */
  readonly founders: readonly { node: NodeId; id: string }[] | undefined;
  /** The record changed: the transport, discovery and meta.json follow. */
  readonly onMembers: (view: MetaView) => void;
  /** This node was removed from the cluster (or finished leaving): the node stops. */
  readonly onRemoved: (why: string) => void;
  /**
   * What the other members say of this node's endpoint (`members.self`; cluster-join.ts askSelf),
   * asked while it hears from none of them: a member removed while it was down or cut off has its
   * raft traffic refused by all, so it could never read its removal from the meta group.
   */
  readonly askSelf: () => Promise<readonly SelfEntry[]>;
  /** Milliseconds between rounds. */
  readonly pollMs: number;
  /** Milliseconds of silence after which the meta group's leader declares a member dead. */
  readonly deadNodeTimeoutMs: number;
  /** Entries a learner may trail its leader by and still be promoted. */
  readonly lagMax: number;
  readonly log: Logger;
}

/** What status shows of cluster life here. */
export interface LifeStatus {
  readonly version: number | undefined;
  readonly cluster: string | undefined;
  readonly members: readonly MetaMember[];
  /**
   * Every shard's target replica set as the record says (the meta group's last), so one node's
   * status shows where every shard's replicas go, hosted here or not.
   */
  readonly targets: readonly (readonly number[])[];
  /** Shards led here whose replicas differ from their targets (each shard shows on its leader's node). */
  readonly moves: readonly { shard: number; voters: number[]; learners: number[]; target: readonly number[] }[];
  readonly counters: LifeCounters;
}

export interface LifeCounters {
  rounds: number;
  roundErrors: number;
  opened: number;
  dropped: number;
  learnersAdded: number;
  promoted: number;
  removed: number;
  transfers: number;
  replans: number;
  /** Joining members made up once heard from (by this node as the meta group's leader). */
  membersUp: number;
  declaredDead: number;
}

export class ClusterLife {
  readonly meta: MetaClient;
  private view: MetaView | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private gone = false;
  /** When each member was last seen up by this node (ms, performance.now). */
  private readonly lastUp = new Map<number, number>();
  /** Since when this node hears from no other member (ms, performance.now); undefined while it hears one. */
  /** When it last asked the members what they say of it (ms, performance.now). */
  private lastAsk = -Infinity;
  /** An ask of the members about this node is under way. */
  private asking = false;
  private moves: LifeStatus['moves'] = [];
  /**
   * Each shard led here at the previous round, with its last index then: where a learner must have
   * come to keep up with the writes (lagAllowance). A shard led again after a while starts afresh.
   */
  private lastIndexBefore = new Map<number, number>();
  /** The record (as read, the same object while unchanged) whose placement replan left as it was. */
  private plannedAlready: ClusterMeta | undefined;
  /** Shards led here at their target: left out of the round's membership asks (see settled.ts). */
  private readonly settled: SettledShards;
  readonly counters: LifeCounters = {
    rounds: 0,
    roundErrors: 0,
    opened: 0,
    dropped: 0,
    learnersAdded: 0,
    promoted: 0,
    removed: 0,
    transfers: 0,
    replans: 0,
    membersUp: 0,
    declaredDead: 0,
  };

  constructor(private readonly p: LifeParts) {
    this.meta = new MetaClient(p.router);
    this.settled = new SettledShards(p.self);
  }

  /** Starts the rounds. */
  start(): void {
    const next = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.running = this.round().finally(next);
      }, this.p.pollMs);
      this.timer.unref();
    };
    this.running = this.round().finally(next);
  }

  /** Stops the rounds, after the one under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  status(): LifeStatus {
    return {
      version: this.view?.version,
      cluster: this.view?.meta.cluster,
      members: this.view?.meta.members ?? [],
      targets: this.view?.meta.placement ?? [],
      moves: this.moves,
      counters: { ...this.counters },
    };
  }

  /** The record as last read here. */
  current(): MetaView | undefined {
    return this.view;
  }

  /**
   * A record this node just wrote (a removal asked of it): taken at once when newer than the one
   * read last, so this node's members list shows its own change without waiting for a round.
   */
  learn(v: MetaView): void {
    if (this.stopped || this.gone) return;
    if (this.view === undefined || v.version > this.view.version) this.apply(v);
  }

  /** One round (see the module's comment). Errors are counted and logged; the next round retries. */
  async round(): Promise<void> {
    if (this.stopped || this.gone) return;
    this.counters.rounds++;
    try {
      this.askIfIsolated();
      // Watching needs no quorum round: an idle cluster's meta group stays quiet.
      const r = await this.meta.read('stale');
      if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
      let v = r.value;
      if (v === undefined) {
        if (this.p.founders === undefined) return;
        const w = await this.meta.update(
          (cur) =>
            cur ??
            foundingMeta({
              founders: this.p.founders!,
              shards: this.p.shards,
              replicas: this.p.replicas,
              systemOnMeta: this.p.router.hash.systemOnMeta,
            }),
        );
        if (!w.ok) throw new Error(`${w.code}: ${w.message}`);
        v = w.value;
      }
      // A stale read may come from a replica behind the last one read: never go back.
      if (this.view === undefined || v.version > this.view.version) this.apply(v);
      else v = this.view;
      if (this.checkSelf(v.meta)) return;
      await this.host(v.meta);
      await this.step(v.meta);
      await this.lead(v.meta);
    } catch (e) {
      this.counters.roundErrors++;
      this.p.log.debug({ err: e }, 'cluster round failed; retrying next round');
    }
  }

  private apply(v: MetaView): void {
    this.view = v;
    const live = v.meta.members.filter((m) => m.state !== 'removed');
    const members: Member[] = live.map((m) => ({ nodeId: m.node as NodeId, peerId: m.id }));
    this.p.router.setLayout(members, v.meta.placement as NodeId[][]);
    this.p.onMembers(v);
    this.p.log.info({ version: v.version, members: live.map((m) => `${m.node}:${m.state}`).join(' ') }, 'cluster metadata changed');
  }

  /** True (and the node stops) when this node is removed, or has finished leaving. */
  private checkSelf(m: ClusterMeta): boolean {
    const me = memberOf(m, this.p.selfId);
    if (me === undefined) return false; // a founder before the first record, or a join not yet read
    if (me.state === 'removed') {
      this.gone = true;
      this.p.onRemoved(`node ${me.node} was removed from cluster ${m.cluster}`);
      return true;
    }
    return false;
  }

  /**
   * Hearing from none of the other members (within the liveness timeout), asks them what they say
   * of this node, in the background (a member that cannot be reached must not hold the round), at
   * most every {@link ISOLATED_ASK_MS}; when one says it was removed, the node stops. A removed
   * member is refused by all (so its own stale replica of the meta group says it is up), and would
   * otherwise go on serving what it has. A member's word is enough: `removed` is final in the record.
   */
  private askIfIsolated(): void {
    const others = this.p.router.currentMembers().filter((m) => m.nodeId !== this.p.self);
    const now = performance.now();
    if (this.asking || others.length === 0 || this.p.router.peersUp().length > 0 || now - this.lastAsk < ISOLATED_ASK_MS) return;
    this.lastAsk = now;
    this.asking = true;
    void this.p
      .askSelf()
      .then((said) => {
        if (this.gone || this.stopped || !said.some((e) => e.node === this.p.self && e.state === 'removed')) return;
        this.gone = true;
        this.p.onRemoved(`node ${this.p.self} was removed from its cluster while it was away (its members say so and refuse its traffic)`);
      })
      .catch((e: unknown) => this.p.log.debug({ err: e }, 'asking the members about this node failed'))
      .finally(() => (this.asking = false));
  }

  /** Opens the replicas placed here and drops those that are neither placed here nor members of their shard. */
  private async host(m: ClusterMeta): Promise<void> {
    const hosted = new Set(this.p.pool.hostedShards());
    for (let s = 0; s <= m.shards; s++) {
      if (!m.placement[s]!.includes(this.p.self) || hosted.has(s as ShardId)) continue;
      const r = await this.p.pool.openShard({ shard: s as ShardId, voters: [] });
      if (r === 'opened') this.counters.opened++;
    }
    for (const s of hosted) {
      if (m.placement[s]?.includes(this.p.self) === true) continue;
      const ms = await this.p.pool.membership(s);
      if (ms === undefined || ms.voters.includes(this.p.self) || ms.learners.includes(this.p.self)) continue;
      if ((await this.p.pool.dropShard(s)) === 'dropped') {
        this.counters.dropped++;
        this.p.log.info({ shard: s }, 'replica moved away: dropped its data here');
      }
    }
    const me = memberOf(m, this.p.selfId);
    if (me?.state === 'leaving' && this.p.pool.hostedShards().length === 0) {
      const w = await this.meta.update((cur) => (cur === undefined ? undefined : setState(cur, me.node, 'removed')));
      if (w.ok) {
        // The members stop taking this node's traffic now: it could not even read its own removal.
        this.p.log.info({ node: me.node }, 'every replica moved away: recorded this node as removed');
        this.apply(w.value);
        this.checkSelf(w.value.meta);
      }
    }
  }

  /** The next membership step of every shard led here; the moves they show, for status. */
  private async step(m: ClusterMeta): Promise<void> {
    const moves: { shard: number; voters: number[]; learners: number[]; target: readonly number[] }[] = [];
    // Only leaders move their shards: one call per worker for the shards led here, not one per shard.
    const led = this.p.pool.hostedShards().filter((s) => this.p.pool.leaders.get(s)?.lead === this.p.self);
    // Shards already at their target are not asked again while led here in the same term (settled.ts).
    const ask = this.settled.toAsk(
      led,
      (s) => this.p.pool.leaders.get(s)?.term,
      (s) => m.placement[s],
    );
    const lastIndexNow = new Map<number, number>();
    for (const [s, ms] of await this.p.pool.memberships(ask)) {
      const target = m.placement[s];
      if (target === undefined) continue;
      this.settled.answered(s, ms, target);
      if (!sameSet(ms.voters, target) || ms.learners.length > 0) moves.push({ shard: s, voters: ms.voters, learners: ms.learners, target });
      if (ms.role !== 'leader') continue;
      const before = this.lastIndexBefore.get(s);
      lastIndexNow.set(s, ms.lastIndex);
      // Only a replica that acknowledges appends counts as caught up: a learner that never answered
      // shows match 0 (in probe), which a young log's lastIndex - lagMax would take for caught up.
      const match = new Map(ms.progress.map((x) => [x.node, x.node === this.p.self || x.state === 'replicate' ? x.match : -Infinity]));
      const step = nextStep({
        self: this.p.self,
        voters: ms.voters as NodeId[],
        learners: ms.learners as NodeId[],
        target: target as NodeId[],
        match: (n) => match.get(n) ?? -Infinity,
        lastIndex: ms.lastIndex,
        lagMax: lagAllowance(this.p.lagMax, ms.lastIndex, before),
        // Only a peer heard from since it became a member: one admitted but never seen counts as up
        // for a liveness timeout, and would otherwise be added as a learner that never answers.
        reachable: (n) => n === this.p.self || (this.p.router.liveness.reachable(n, s) && this.p.router.liveness.heardFrom(n)),
        // A node stopping would refuse it, and the transfer would hold the shard's writes until it timed out.
        canLead: (n) => !this.p.router.liveness.stopping(n),
      });
      if (step === undefined) continue;
      this.settled.changed(s);
      await this.take(s, step);
    }
    this.moves = moves;
    this.lastIndexBefore = lastIndexNow;
  }

  private async take(shard: ShardId, step: Step): Promise<void> {
    const log = this.p.log;
    if (step.kind === 'transfer') {
      const r = await this.p.pool.transferLeader(shard, step.to);
      if (r === 'started') this.counters.transfers++;
      log.info({ shard, to: step.to, result: r }, 'handing leadership over before leaving the shard');
      return;
    }
    const type = step.kind === 'addLearner' ? 'addLearner' : step.kind === 'promote' ? 'addVoter' : 'remove';
    const r = await this.p.pool.changeMembership(shard, { type, node: step.node });
    if (r !== 'proposed') return;
    if (step.kind === 'addLearner') this.counters.learnersAdded++;
    else if (step.kind === 'promote') this.counters.promoted++;
    else this.counters.removed++;
    log.info({ shard, step: step.kind, node: step.node }, 'shard membership change proposed');
  }

  /** The meta group's leader: dead members declared, targets replanned. */
  private async lead(m: ClusterMeta): Promise<void> {
    const metaShard = metaShardOf(m.shards);
    if (this.p.pool.leaders.get(metaShard)?.lead !== this.p.self) {
      this.lastUp.clear();
      return;
    }
    const now = performance.now();
    const up = new Set(this.p.router.peersUp());
    // A joining member is up once heard from: then, and not before, the targets give it replicas.
    for (const x of m.members) {
      if (x.state !== 'joining' || !up.has(x.node as NodeId) || !this.p.router.liveness.heardFrom(x.node as NodeId)) continue;
      const w = await this.meta.update((cur) => (cur === undefined || memberState(cur, x.node) !== 'joining' ? undefined : setState(cur, x.node, 'up')));
      if (w.ok) {
        this.counters.membersUp++;
        this.p.log.info({ node: x.node }, 'a joining member is heard from: up, replicas planned on it');
      }
    }
    for (const x of m.members) {
      // A leaving member that falls silent is dead too: it would never finish leaving, so never be
      // removed; and a joining one that never shows up would stay listed.
      if ((x.state !== 'up' && x.state !== 'leaving' && x.state !== 'joining') || x.node === this.p.self) continue;
      if (up.has(x.node as NodeId) || !this.lastUp.has(x.node)) this.lastUp.set(x.node, now);
      if (now - this.lastUp.get(x.node)! < this.p.deadNodeTimeoutMs) continue;
      const w = await this.meta.update((cur) => (cur === undefined ? undefined : setState(cur, x.node, 'dead')));
      if (w.ok) {
        this.counters.declaredDead++;
        this.p.log.warn(
          { node: x.node, silentMs: Math.round(now - this.lastUp.get(x.node)!) },
          'member unreachable past the dead-node timeout: rebuilding its replicas on the others',
        );
      }
    }
    // Dead members whose replicas are all placed elsewhere are gone for good.
    for (const x of m.members) {
      if (x.state !== 'dead' || m.placement.some((set) => set.includes(x.node))) continue;
      await this.meta.update((cur) => (cur === undefined ? undefined : setState(cur, x.node, 'removed')));
    }
    // A record already found to need no replan needs none while it is the record read: replanning
    // 10,000 shards every round was a steady cost of the meta group's leader in an idle cluster.
    if (m === this.plannedAlready) return;
    const planned = replan(m);
    if (JSON.stringify(planned.placement) === JSON.stringify(m.placement)) this.plannedAlready = m;
    else {
      const w = await this.meta.update((cur) => {
        if (cur === undefined) return undefined;
        const p = replan(cur);
        return JSON.stringify(p.placement) === JSON.stringify(cur.placement) ? undefined : p;
      });
      if (w.ok) this.counters.replans++;
    }
  }
}

function memberState(m: ClusterMeta, node: number): string | undefined {
  return m.members.find((x) => x.node === node)?.state;
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
