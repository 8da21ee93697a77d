/**
 * A small synchronous cluster for scenario tests: every node persists to a MemoryStorage and
 * messages are delivered in rounds until nothing moves. Faults are explicit (drop filters).
 */
import { RawNode } from '../../../../src/shards/raft/rawnode.js';
import type { RaftConfig } from '../../../../src/shards/raft/config.js';
import { Prng } from '../../../../src/shards/raft/prng.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import type { Entry, FailedProposal, FailedRead, Message, NodeId, ReadState, Ready } from '../../../../src/shards/raft/types.js';
import { EntryType, nodeId } from '../../../../src/shards/raft/types.js';

export interface TestNode {
  id: NodeId;
  rn: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  failedReads: FailedRead[];
  failedProposals: FailedProposal[];
  readies: Ready[];
}

export type Filter = (m: Message) => boolean;

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in the network, delivered by {@link deliver}. */
  inFlight: Message[] = [];
  /** Every message ever sent, for assertions. */
  sent: Message[] = [];
  private filters: Filter[] = [];
  private readonly prng: Prng;

  constructor(
    ids: number[],
    readonly opts: Partial<RaftConfig> = {},
    seed = 1,
    learners: number[] = [],
  ) {
    this.prng = new Prng(seed);
    for (const i of [...ids, ...learners]) {
      const storage = MemoryStorage.withMembers(ids.map(nodeId), learners.map(nodeId));
      this.add(nodeId(i), storage);
    }
  }

  /** Adds (or replaces, as after a restart) node `id` reading `storage`. */
  add(id: NodeId, storage: MemoryStorage, extra: Partial<RaftConfig> = {}): TestNode {
    const rn = new RawNode({
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 1,
      ...this.opts,
      ...extra,
      id,
      storage,
      prng: this.prng.fork(),
      applied: storage.snapshot().metadata.index,
    });
    const n: TestNode = { id, rn, storage, applied: [], readStates: [], failedReads: [], failedProposals: [], readies: [] };
    this.nodes.set(id, n);
    return n;
  }

  node(id: number): TestNode {
    const n = this.nodes.get(nodeId(id));
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Restarts node `id` from what it persisted. */
  restart(id: number): TestNode {
    const old = this.node(id);
    return this.add(old.id, old.storage.clone());
  }

  /** Drops every message for which `f` is true until {@link heal}. */
  drop(f: Filter): void {
    this.filters.push(f);
  }

  isolate(id: number): void {
    this.drop((m) => m.from === id || m.to === id);
  }

  heal(): void {
    this.filters = [];
  }

  /** Handles one Ready on every node that has one; returns whether anything happened. */
  handleReadies(): boolean {
    let any = false;
    for (const n of this.nodes.values()) {
      if (!n.rn.hasReady()) continue;
      any = true;
      this.handleReady(n, n.rn.ready());
    }
    return any;
  }

  /**
   * Does what a shell does with one Ready that the test took itself (persist, send, apply,
   * advance). A node whose Ready is outstanding is skipped by {@link handleReadies}, so a test can
   * hold one node's write back while the rest of the cluster runs.
   */
  handleReady(n: TestNode, rd: Ready): void {
    n.readies.push(rd);
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      n.applied = [];
    }
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.send(rd.messages);
    this.send(rd.messagesAfterPersist);
    n.applied.push(...rd.committedEntries);
    n.readStates.push(...rd.readStates);
    n.failedReads.push(...rd.failedReads);
    n.failedProposals.push(...rd.failedProposals);
    n.rn.advance();
  }

  private send(ms: readonly Message[]): void {
    for (const m of ms) {
      this.sent.push(m);
      if (this.filters.some((f) => f(m))) continue;
      this.inFlight.push(m);
    }
  }

  /** Runs readies and deliveries until the cluster is quiet (bounded). */
  deliver(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      const moved = this.handleReadies();
      const batch = this.inFlight;
      this.inFlight = [];
      for (const m of batch) this.nodes.get(m.to)?.rn.step(m);
      if (!moved && batch.length === 0) return;
    }
    throw new Error('cluster did not settle');
  }

  tick(id: number, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).rn.tick();
      this.deliver();
    }
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.rn.tick();
      this.ticks++;
      while (this.delayed.length > 0 && this.delayed[0]!.due <= this.ticks) this.inFlight.push(this.delayed.shift()!.m);
      this.deliver();
    }
  }

  /** tickAll calls so far: the clock of {@link delay}. */
  private ticks = 0;
  /** Messages a delay holds, in the order sent, each with the tickAll count at which it arrives. */
  private readonly delayed: { due: number; m: Message }[] = [];

  /**
   * Messages matching `f` arrive `ticks` tickAll calls after they were sent, in order, nothing
   * lost, as on a slow link that other messages overtake; with `spacingTicks`, at most one of them
   * arrives per that many ticks (a link busy carrying each for a while: they queue).
   */
  delay(f: Filter, ticks: number, spacingTicks = 0): void {
    this.drop((m) => {
      if (!f(m)) return false;
      const prev = this.delayed.at(-1)?.due ?? this.lastDelayedDue;
      const due = Math.max(this.ticks + ticks, prev + spacingTicks);
      this.lastDelayedDue = due;
      this.delayed.push({ due, m });
      return true;
    });
  }

  private lastDelayedDue = 0;

  /** Campaigns node `id` and settles. */
  elect(id: number): void {
    this.node(id).rn.campaign();
    this.deliver();
  }

  /**
   * Ticks every node until exactly one leader exists and every other node follows it; returns its
   * id. With check-quorum on, a node that just started ignores vote requests for an election
   * timeout, so `elect` alone cannot pick a leader at tick 0; this lets the timers decide.
   */
  settle(maxTicks = 300): NodeId {
    for (let i = 0; i < maxTicks; i++) {
      const ls = this.leaders();
      const l = ls[0];
      if (ls.length === 1 && l !== undefined && [...this.nodes.values()].every((n) => n.rn.status().lead === l)) return l;
      this.tickAll();
    }
    throw new Error('no stable leader');
  }

  /**
   * Holds the messages matching `f` instead of delivering them; `release` puts them back into the
   * network (and delivers), as a slow link would, without losing anything.
   */
  hold(f: Filter): { held: Message[]; release: () => void } {
    const held: Message[] = [];
    let on = true;
    this.drop((m) => {
      if (!on || !f(m)) return false;
      held.push(m);
      return true;
    });
    return {
      held,
      release: () => {
        on = false;
        this.inFlight.push(...held.splice(0));
        this.deliver();
      },
    };
  }

  /** Ids of every node but `id`, ascending. */
  others(id: number): NodeId[] {
    return [...this.nodes.keys()].filter((k) => k !== id).sort((a, b) => a - b);
  }

  /** Messages ever sent that match `f`. */
  sentWhere(f: Filter): Message[] {
    return this.sent.filter(f);
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.rn.status().role === 'leader').map((n) => n.id);
  }

  propose(id: number, text: string): { index: number; term: number } {
    const r = this.node(id).rn.propose(new TextEncoder().encode(text));
    this.deliver();
    return r;
  }

  /** Application payloads a node applied, in order (no-ops and conf changes left out). */
  appliedData(id: number): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
