/**
 * The deterministic cluster: N nodes hosting replicas of G raft groups, on virtual time, with one
 * seeded PRNG behind every choice (network, faults, clients, and each core's own PRNG, forked
 * from it), so a seed replays exactly.
 *
 * Each replica is a {@link RawNode} over a `live` storage (what the process sees: the page cache)
 * and a `durable` one (what survives a crash). A Ready is written to `live` at once; it reaches
 * `durable` only when its simulated fsync completes, and only then do acknowledgements leave.
 * Committed entries apply with the write, and their writers are answered before its fsync, as
 * the shard host does. A crash throws away everything but `durable`. Replicas are ticked as
 * the shard host ticks its shards: a quiet replica's ticks are left out and made up before its
 * next input (see HostedNode).
 */
import { assert } from '../../src/shards/raft/errors.js';
import type { BugName } from '../../src/shards/raft/config.js';
import { RaftError, RaftErrorCode } from '../../src/shards/raft/errors.js';
import { Prng } from '../../src/shards/raft/prng.js';
import { RawNode } from '../../src/shards/raft/rawnode.js';
import { MemoryStorage } from '../../src/shards/raft/storage.js';
import type { ConfChange, ConfState, Entry, HardState, LogIndex, Message, NodeId, Ready, SoftState } from '../../src/shards/raft/types.js';
import { ConfChangeType, EntryType, MessageType, messageTypeName, nodeId } from '../../src/shards/raft/types.js';
import { GroupRecord, checkAck, checkConfInFlight, checkHardState, fail } from './checks.js';
import type { KvInput, KvOutput, Operation } from './history.js';
import type { Command } from './kv.js';
import { KvMachine, decodeCommand, encodeCommand } from './kv.js';
import { Network } from './network.js';
import type { SimParams } from './params.js';
import { HostedNode } from './hosted-node.js';
import { Moves } from './moves.js';
import type { MovesHost } from './moves.js';
import { nextStep } from '../../src/router/moves.js';
import type { NextStep } from '../../src/router/moves.js';
import { EventQueue } from './queue.js';
import { campaignRankOf } from '../../src/shards/raft/config.js';
import { Trace } from './trace.js';
import { ShellLiveness } from './shell-liveness.js';

export interface SimStats {
  virtualMs: number;
  events: number;
  messages: number;
  messagesLost: number;
  readies: number;
  /** Elections won (a replica reporting leadership of a new term). */
  elections: number;
  crashes: number;
  partitions: number;
  /** Quiet replicas woken because their leader's node was down or cut off. */
  quietWakes: number;
  /** Ticks left out on quiet replicas (made up before their next input), as the shard host does. */
  ticksSkipped: number;
  commits: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  /** Node ticks run late (clocks moved, timers not). */
  lateTicks: number;
  confChangesProposed: number;
  /** Distinct membership changes committed and applied. */
  confChangesApplied: number;
  transfers: number;
  /** Reads asked in lease mode and served. */
  leaseReads: number;
  ops: number;
  unknownOps: number;
  readsServed: number;
  writesAcked: number;
  /** Moves mode: nodes that joined, left, died for good. */
  joins: number;
  leaves: number;
  deaths: number;
  /** Moves mode: membership changes the planner proposed, and those that took effect. */
  plannedChanges: number;
  plannedApplied: number;
  /** Moves mode: members that lost their disk (see MovesParams.amnesiaPerSec). */
  amnesias: number;
  /** Virtual time from the end of the chaos phase until every group was live. */
  livenessMs: number;
}

export interface SimOptions {
  readonly bug?: BugName;
  /** Moves mode: the planner's step function (a broken one proves the moves checks bite). */
  readonly nextStep?: NextStep;
  readonly chaosMs: number;
  readonly traceLines: number;
}

/** What survives a crash: the durable storage and the last durable hard state seen (for check 5). */
interface Disk {
  readonly durable: MemoryStorage;
  lastHard: HardState;
}

interface SimNode {
  readonly id: number;
  up: boolean;
  readonly replicas: Map<number, Replica>;
  readonly disks: Map<number, Disk>;
}

interface Replica {
  readonly node: SimNode;
  readonly group: number;
  readonly rn: RawNode;
  readonly live: MemoryStorage;
  readonly disk: Disk;
  sm: KvMachine;
  /** A Ready is taken and not yet advanced. */
  busy: boolean;
  /** Readys handed out by this replica's core. */
  readies: number;
  /** Durable writes scheduled but not done (only with apply-before-persist, where advance runs first). */
  durableQueued: number;
  lastDurableAt: number;
  dirty: boolean;
  /** Role, leader and term as of the last Ready that reported them. */
  soft: SoftState;
  /** Highest index this replica reported committed (and the checks have looked at). */
  commitChecked: number;
  /** Client proposals accepted here, by index. */
  readonly proposals: Map<number, ClientOp[]>;
  /** Reads asked here, by context, waiting for their ReadState. */
  readonly reads: Map<number, ClientOp>;
  /** Reads that have their index, waiting for the state machine to reach it. */
  waiting: { index: number; op: ClientOp }[];
  /** The liveness probe proposed here. */
  mark: { id: number; term: number; applied: boolean } | undefined;
  /** Why the core last refused the liveness probe. */
  markRefused: string | undefined;
  /** The next message of this type to this node is lost (the answer to a late copy). */
  loseNext?: { type: MessageType; to: number } | undefined;
}

interface Client {
  readonly id: number;
  readonly group: number;
  readonly keys: readonly string[];
  hint: number;
  seq: number;
  readonly lastSeen: Map<string, string | null>;
  /** A one-off client that asks one replica once (see probeRead); it issues nothing after. */
  readonly probe?: boolean;
}

interface ClientOp {
  readonly id: number;
  readonly client: Client;
  readonly input: KvInput;
  readonly call: number;
  done: boolean;
  index: number;
  term: number;
  /** Writes: Readys this replica had handed out when the op was proposed (its entry is in a later one). */
  readiesBefore: number;
  /** Every index committed anywhere before the call: the read index may not be below it. */
  minReadIndex: number;
  lease: boolean;
}

type Ev =
  | { readonly k: 'tick'; readonly node: SimNode }
  | { readonly k: 'msg'; readonly group: number; readonly m: Message }
  | { readonly k: 'fsync'; readonly r: Replica; readonly rd: Ready }
  | { readonly k: 'durable'; readonly r: Replica; readonly rd: Ready }
  | { readonly k: 'restart'; readonly node: SimNode }
  | { readonly k: 'crash'; readonly node: SimNode }
  | { readonly k: 'heal'; readonly id: number }
  | { readonly k: 'chaos'; readonly what: ChaosKind }
  | { readonly k: 'client'; readonly c: Client }
  | { readonly k: 'probe-read'; readonly r: Replica }
  | { readonly k: 'timeout'; readonly op: ClientOp }
  | { readonly k: 'plan' }
  | { readonly k: 'disk-loss' }
  | { readonly k: 'liveness-start' }
  | { readonly k: 'liveness-check' };

type ChaosKind = 'crash' | 'partition' | 'link' | 'snapshot' | 'conf' | 'transfer' | 'campaign' | 'join' | 'leave' | 'die' | 'amnesia';

/** Log length at which a replica snapshots and compacts regardless of the snapshot rate. */
const LOG_ENTRIES_MAX = 4000;
/** Campaign messages kept per group for late copies (see SimParams.lateCampaignP). */
const CAMPAIGN_ARCHIVE_MAX = 64;
/** Election timeouts the liveness phase waits, in moves mode, for every group to reach its target. */
const LIVENESS_TIMEOUTS_MOVES = 200;
/** Client ids of one-off probe clients start here (above every regular client's). */
const PROBE_CLIENT_BASE = 1_000_000;

export class Sim {
  readonly stats: SimStats = {
    virtualMs: 0,
    events: 0,
    messages: 0,
    messagesLost: 0,
    readies: 0,
    elections: 0,
    crashes: 0,
    partitions: 0,
    quietWakes: 0,
    ticksSkipped: 0,
    commits: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    lateTicks: 0,
    confChangesProposed: 0,
    confChangesApplied: 0,
    transfers: 0,
    leaseReads: 0,
    ops: 0,
    unknownOps: 0,
    readsServed: 0,
    writesAcked: 0,
    joins: 0,
    leaves: 0,
    deaths: 0,
    plannedChanges: 0,
    plannedApplied: 0,
    amnesias: 0,
    livenessMs: 0,
  };
  readonly trace: Trace;
  readonly history: Operation[] = [];

  private readonly queue = new EventQueue<Ev>();
  private readonly net: Network;
  private readonly nodes: SimNode[] = [];
  private readonly records: GroupRecord[] = [];
  private readonly dirty: Replica[] = [];
  private readonly bugs: ReadonlySet<BugName>;
  private now = 0;
  private phase: 'chaos' | 'liveness' | 'done' = 'chaos';
  private livenessStart = 0;
  private livenessDeadline = 0;
  private readonly liveAt: (number | undefined)[] = [];
  private nextOpId = 1;
  private nextContext = 1;
  private nextMark = 1;
  private nextProbeClient = PROBE_CLIENT_BASE;
  /** Per group: campaign messages sent, newest last (bounded), for late copies. */
  private readonly campaignArchive: Message[][] = [];
  /** Late copies in flight: their recipient's answer travels on the dying connection and is lost. */
  private readonly lateCopies = new Set<Message>();
  /** Moves mode only: members, targets and the planner. */
  private readonly moves: Moves | undefined;
  /** Late-tick draws (params.lateTickP), apart from the main stream so other seeds stay as they were. */
  private readonly lateTicks: Prng | undefined;
  /** A disk loss is drawn and waits for a member that may lose its disk (see loseDisk). */
  private diskLossWaits = false;
  /** Moves mode: each running node's liveness (see ShellLiveness); a crash loses it. */
  private readonly shellLiveness = new Map<number, ShellLiveness>();

  constructor(
    private readonly prng: Prng,
    readonly params: SimParams,
    private readonly opts: SimOptions,
  ) {
    this.trace = new Trace(opts.traceLines);
    this.net = new Network(prng, params);
    this.bugs = new Set(opts.bug ? [opts.bug] : []);
    this.lateTicks = params.lateTickSeed !== undefined ? new Prng(params.lateTickSeed) : undefined;
    for (let i = 1; i <= params.nodes; i++) this.nodes.push({ id: i, up: true, replicas: new Map(), disks: new Map() });
    if (params.moves !== undefined) {
      this.moves = new Moves(params.moves, params.nodes, params.groups, this.movesHost(), opts.nextStep ?? nextStep);
      for (const n of this.nodes) n.up = this.moves.state.get(n.id) === 'up';
    }
    for (let g = 0; g < params.groups; g++) {
      this.records.push(new GroupRecord(g));
      const voters = params.votersOf[g]!.map(nodeId);
      for (const v of voters) {
        const node = this.nodeAt(v)!;
        const durable = MemoryStorage.withMembers(voters);
        const disk: Disk = { durable, lastHard: durable.hardState() };
        node.disks.set(g, disk);
        this.startReplica(node, g, disk);
      }
    }
  }

  /** Runs the chaos phase, then the liveness phase; throws a {@link Violation} (or the core's error). */
  run(): void {
    const p = this.params;
    for (const node of this.nodes) this.queue.push(this.prng.next() * p.tickMs, { k: 'tick', node });
    const rates: [ChaosKind, number][] = [
      ['crash', p.crashPerSec],
      ['partition', p.partitionPerSec],
      ['link', p.linkCutPerSec ?? 0],
      ['snapshot', p.snapshotPerSec],
      ['conf', p.confChangePerSec],
      ['transfer', p.transferPerSec],
      ['campaign', p.campaignPerSec],
      ['join', p.moves?.joinPerSec ?? 0],
      ['leave', p.moves?.leavePerSec ?? 0],
      ['die', p.moves?.diePerSec ?? 0],
      ['amnesia', p.moves?.amnesiaPerSec ?? 0],
    ];
    if (p.moves) this.queue.push(p.moves.planEveryMs, { k: 'plan' });
    for (const [what, rate] of rates) if (rate > 0) this.queue.push(this.expDelay(rate), { k: 'chaos', what });
    let clientId = 1;
    for (let g = 0; g < p.groups; g++) {
      const keys = Array.from({ length: p.keysPerGroup }, (_, i) => `g${g}k${i}`);
      for (let c = 0; c < p.clientsPerGroup; c++) {
        const client: Client = { id: clientId++, group: g, keys, hint: 0, seq: 0, lastSeen: new Map() };
        this.queue.push(this.prng.next() * 50, { k: 'client', c: client });
      }
    }
    this.queue.push(this.opts.chaosMs, { k: 'liveness-start' });

    try {
      while (this.phase !== 'done') {
        const next = this.queue.pop();
        if (next === undefined) fail('liveness', 'the event queue ran dry');
        this.now = next.time;
        this.stats.events++;
        this.handle(next.event);
        this.drainReadies();
      }
      this.finishHistory();
    } finally {
      // A failed run reports how far it got.
      this.summarize();
    }
  }

  private expDelay(perSec: number): number {
    return (-Math.log(1 - this.prng.next()) / perSec) * 1000;
  }

  private uniform(lo: number, hi: number): number {
    return lo + this.prng.next() * (hi - lo);
  }

  private log(node: number, group: number, text: string, msg?: Message): void {
    this.trace.add(this.now, node, group, text, msg);
  }

  // ------------------------------------------------------------------ events

  private handle(ev: Ev): void {
    switch (ev.k) {
      case 'tick':
        this.onTick(ev.node);
        return;
      case 'msg':
        this.deliver(ev.group, ev.m);
        return;
      case 'fsync':
        this.onFsync(ev.r, ev.rd);
        return;
      case 'durable':
        if (!this.current(ev.r)) return;
        this.writeDurable(ev.r, ev.rd);
        ev.r.durableQueued--;
        return;
      case 'restart':
        this.restart(ev.node);
        return;
      case 'crash':
        if (this.phase === 'chaos') this.crashFor(ev.node);
        return;
      case 'heal': {
        const part = this.net.heal(ev.id);
        if (part) this.log(0, -1, `heal ${part.text}`);
        this.wakeAll();
        return;
      }
      case 'chaos':
        this.onChaos(ev.what);
        return;
      case 'client':
        this.clientStep(ev.c);
        return;
      case 'probe-read':
        this.probeRead(ev.r);
        return;
      case 'timeout':
        this.onTimeout(ev.op);
        return;
      case 'disk-loss':
        this.diskLossWaits = false;
        this.loseDisk();
        return;
      case 'plan':
        this.queue.push(this.now + this.params.moves!.planEveryMs, { k: 'plan' });
        this.moves!.plan();
        return;
      case 'liveness-start':
        this.startLiveness();
        return;
      case 'liveness-check':
        this.checkLiveness();
        return;
    }
  }

  private onTick(node: SimNode): void {
    this.queue.push(this.now + this.params.tickMs, { k: 'tick', node });
    if (!node.up) return;
    // A late tick, node-wide as a stalled worker's: every replica's clock moves, no timer does.
    const late = this.lateTicks !== undefined && this.lateTicks.chance(this.params.lateTickP ?? 0);
    if (late) this.stats.lateTicks++;
    if (this.moves !== undefined) this.shellWakes(node);
    for (const r of node.replicas.values()) {
      if (this.moves === undefined) this.livenessOracle(r);
      if (late) r.rn.elapse(1);
      else r.rn.tick();
      this.markDirty(r);
    }
  }

  /**
   * The shell's node liveness, as a perfect failure detector: a quiet replica whose leader's node
   * is down or cut off from it is woken (a real node learns it from missing liveness records).
   */
  private livenessOracle(r: Replica): void {
    if (!r.rn.isQuiesced()) return;
    const lead = r.soft.lead;
    if (lead === 0 || lead === r.node.id) return;
    const leader = this.nodes[lead - 1];
    if (!leader?.up || !this.net.canDeliver(lead, r.node.id) || !this.net.canDeliver(r.node.id, lead)) {
      this.stats.quietWakes++;
      r.rn.wake();
      this.markDirty(r);
    }
  }

  /**
   * Moves mode: the node's liveness, as a node's router keeps it, names the quiet replicas here to
   * wake (those led by a peer gone silent, and those led here whose replica on a returning peer is
   * back); as a worker does, only those still quiet and led by the named leader wake.
   */
  private shellWakes(node: SimNode): void {
    let l = this.shellLiveness.get(node.id);
    if (l === undefined) {
      const m = this.moves!;
      const timeoutMs = this.params.electionTicks * this.params.tickMs;
      l = new ShellLiveness(
        node.id,
        {
          members: () => [...m.state].filter(([, st]) => st !== 'absent' && st !== 'spare').map(([id]) => id),
          targets: () => m.targets,
          leadOf: (g) => node.replicas.get(g)?.soft.lead,
          hosted: () => [...node.replicas.keys()],
          hears: (peer) => this.nodeAt(peer)?.up === true && this.net.canDeliver(peer, node.id) && this.net.canDeliver(node.id, peer),
        },
        timeoutMs,
        this.now,
      );
      this.shellLiveness.set(node.id, l);
    }
    for (const w of l.tick(this.now)) {
      for (const g of w.shards) {
        const r = node.replicas.get(g);
        if (r === undefined || !r.rn.isQuiesced() || r.soft.lead !== w.leader) continue;
        this.stats.quietWakes++;
        r.rn.wake();
        this.markDirty(r);
      }
    }
  }

  /**
   * A peer came back (restart, healed partition): quiet leaders wake, so its replicas find them at
   * once, as a node's liveness does (a node wakes only the quiet leaders of the shards it shares
   * with the returning peer; every quiet leader here is a superset of that).
   */
  private wakeAll(): void {
    for (const r of this.upReplicas()) {
      if (r.soft.role !== 'leader') continue;
      r.rn.wake();
      this.markDirty(r);
    }
  }

  private current(r: Replica): boolean {
    return r.node.up && r.node.replicas.get(r.group) === r;
  }

  private markDirty(r: Replica): void {
    if (r.dirty) return;
    r.dirty = true;
    this.dirty.push(r);
  }

  private drainReadies(): void {
    while (this.dirty.length > 0) {
      const r = this.dirty.pop()!;
      r.dirty = false;
      if (!this.current(r) || r.busy || !r.rn.hasReady()) continue;
      this.handleReady(r);
    }
  }

  // ------------------------------------------------------------------ network

  private send(r: Replica, m: Message): void {
    this.stats.messages++;
    if ((this.params.lateCampaignP ?? 0) > 0 && (m.type === MessageType.PreVote || m.type === MessageType.Vote)) {
      const archive = (this.campaignArchive[r.group] ??= []);
      archive.push(m);
      if (archive.length > CAMPAIGN_ARCHIVE_MAX) archive.shift();
    }
    if (m.type === MessageType.App) this.records[r.group]!.onLeaderApp(r.node.id, r.live, m);
    if (m.type === MessageType.AppResp) this.records[r.group]!.onAppResp(r.node.id, m);
    if (r.loseNext !== undefined && r.loseNext.type === m.type && r.loseNext.to === m.to) {
      r.loseNext = undefined;
      this.stats.messagesLost++;
      this.log(r.node.id, r.group, 'lost (answer to a late copy)', m);
      return;
    }
    const delays = this.net.copies();
    if (delays.length === 0) {
      this.stats.messagesLost++;
      this.log(r.node.id, r.group, 'lost', m);
      return;
    }
    for (const d of delays) this.queue.push(this.now + d, { k: 'msg', group: r.group, m });
  }

  private deliver(group: number, m: Message): void {
    const node = this.nodeAt(m.to);
    if (node === undefined || !node.up) {
      this.log(m.to, group, 'dropped (node down)', m);
      return;
    }
    if (!this.net.canDeliver(m.from, m.to)) {
      this.log(m.to, group, 'dropped (partition)', m);
      return;
    }
    let r = node.replicas.get(group);
    if (r === undefined) {
      // A node learns it hosts a group when a member talks to it; the replica starts empty and
      // learns the membership from the leader's snapshot.
      const creates =
        m.type === MessageType.App ||
        m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap ||
        m.type === MessageType.Vote ||
        m.type === MessageType.PreVote;
      if (!creates) {
        this.log(m.to, group, 'dropped (no replica)', m);
        return;
      }
      const durable = new MemoryStorage();
      const disk: Disk = { durable, lastHard: durable.hardState() };
      node.disks.set(group, disk);
      r = this.startReplica(node, group, disk);
      this.log(node.id, group, 'replica created');
    }
    if (
      (m.type === MessageType.PreVote || m.type === MessageType.Vote) &&
      !this.lateCopies.has(m) &&
      r.rn.isQuiesced() &&
      r.soft.role !== 'leader' &&
      m.from !== r.rn.leader()
    )
      this.maybeLateCampaign(r, 'now');
    this.log(m.to, group, 'recv', m);
    const wasQuiet = r.rn.isQuiesced();
    if (this.lateCopies.delete(m)) {
      // It came on a connection that is being replaced: the answer written to it is lost.
      const t = m.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
      r.loseNext = { type: t, to: m.from };
    }
    r.rn.step(m);
    this.markDirty(r);
    if (!wasQuiet && r.rn.isQuiesced() && r.soft.role !== 'leader') this.maybeLateCampaign(r, 'soon');
  }

  /**
   * Now and then a late copy of a campaign message addressed to a quiet follower earlier reaches
   * it (duplicated, or held up on a connection that was replaced, so the answer is lost), mostly
   * one of its leader's own, as any network may deliver. It comes at the moments that matter:
   * 'soon' after the follower went quiet, or 'now', just before another node's campaign reaches
   * it. A quiet follower must not take a late copy of the campaign that made its leader for news
   * that the leader restarted: it would then help elect another leader inside the lease it
   * promised.
   */
  private maybeLateCampaign(r: Replica, when: 'soon' | 'now'): void {
    const p = this.params.lateCampaignP ?? 0;
    if (p === 0 || this.phase !== 'chaos' || !this.prng.chance(p)) return;
    const mine = (this.campaignArchive[r.group] ?? []).filter((m) => m.to === r.node.id);
    if (mine.length === 0) return;
    const lead = r.rn.leader();
    const fromLeader = mine.filter((m) => m.from === lead);
    if (when === 'now' && fromLeader.length === 0) return;
    const m = fromLeader.length > 0 && (when === 'now' || this.prng.chance(0.8)) ? this.prng.pick(fromLeader) : this.prng.pick(mine);
    const copy = { ...m };
    this.lateCopies.add(copy);
    if (when === 'now') {
      this.log(m.from, r.group, `late copy of ${messageTypeName(m.type)} t${m.term} -> ${m.to} arrives`);
      this.deliver(r.group, copy);
      return;
    }
    this.log(m.from, r.group, `late copy of ${messageTypeName(m.type)} t${m.term} -> ${m.to} on its way`);
    this.queue.push(this.now + this.prng.next() * 3 * this.params.tickMs, { k: 'msg', group: r.group, m: copy });
  }

  // ------------------------------------------------------------------ replicas

  private startReplica(node: SimNode, group: number, disk: Disk): Replica {
    const p = this.params;
    const live = disk.durable.clone();
    const snap = live.snapshot();
    const hs = live.hardState();
    const rn = new HostedNode(
      {
        id: nodeId(node.id),
        storage: live,
        prng: this.prng.fork(),
        applied: snap.metadata.index,
        electionTimeoutTicks: p.electionTicks,
        heartbeatIntervalTicks: p.heartbeatTicks,
        preVote: p.preVote,
        checkQuorum: p.checkQuorum,
        ...(p.quiesceAfterTicks !== undefined ? { quiesceAfterTicks: p.quiesceAfterTicks } : {}),
        ...(p.quiesceNewLeaderAfterTicks !== undefined ? { quiesceNewLeaderAfterTicks: p.quiesceNewLeaderAfterTicks } : {}),
        // Ranked by the group's current voters, as the shard host ranks a replica it opens.
        ...(p.campaignStaggerTicks !== undefined
          ? { campaignStaggerTicks: p.campaignStaggerTicks, campaignRank: campaignRankOf(group, nodeId(node.id), live.initialState().confState.voters) }
          : {}),
        ...(p.appendBytesMax !== undefined ? { appendBytesMax: p.appendBytesMax } : {}),
        ...(p.inflightMessagesMax !== undefined ? { inflightMessagesMax: p.inflightMessagesMax } : {}),
        ...(p.inflightBytesMax !== undefined ? { inflightBytesMax: p.inflightBytesMax } : {}),
        ...(p.uncommittedBytesMax !== undefined ? { uncommittedBytesMax: p.uncommittedBytesMax } : {}),
        ...(p.committedBytesPerReadyMax !== undefined ? { committedBytesPerReadyMax: p.committedBytesPerReadyMax } : {}),
        ...(p.readQueueMax !== undefined ? { readQueueMax: p.readQueueMax } : {}),
        bugs: this.bugs,
      },
      () => this.stats.ticksSkipped++,
    );
    const r: Replica = {
      node,
      group,
      rn,
      live,
      disk,
      sm: KvMachine.fromSnapshot(snap.metadata.index, snap.data),
      busy: false,
      readies: 0,
      durableQueued: 0,
      lastDurableAt: 0,
      dirty: false,
      soft: { lead: 0 as NodeId, role: 'follower', term: hs.term },
      commitChecked: 0,
      proposals: new Map(),
      reads: new Map(),
      waiting: [],
      mark: undefined,
      markRefused: undefined,
    };
    // What a restarted replica holds as committed must still agree with everything committed.
    this.records[group]!.onCommit(node.id, live, 0, hs.commit);
    r.commitChecked = Math.max(hs.commit, snap.metadata.index);
    node.replicas.set(group, r);
    this.markDirty(r);
    return r;
  }

  private handleReady(r: Replica): void {
    const rd = r.rn.ready();
    const rec = this.records[r.group]!;
    this.stats.readies++;
    r.readies++;
    if (rd.softState) this.onSoftState(r, rd.softState);
    this.traceReady(r, rd);
    // The page cache: the core reads these at once.
    const commitBefore = r.commitChecked;
    write(r.live, rd);
    rec.onLogWrite(r.node.id, r.live, rd.entries, commitBefore);
    if (r.soft.role === 'leader') checkConfInFlight(r.group, r.node.id, r.live, rd.entries, r.soft.term, r.sm.applied);
    if (rd.hardState && rd.hardState.commit > r.commitChecked) {
      rec.onCommit(r.node.id, r.live, r.commitChecked, rd.hardState.commit);
      r.commitChecked = rd.hardState.commit;
    }
    if (rd.snapshot && rd.snapshot.metadata.index > r.commitChecked) r.commitChecked = rd.snapshot.metadata.index;
    for (const m of rd.messages) this.send(r, m);
    // As the shard host does: committed entries apply inside the Ready's write and their writers
    // are answered before its flush (a crash before it loses the apply, never the entry: it was
    // committed, so durable in a quorum's logs, and replays).
    this.applyReady(r, rd);
    const fsyncMs = this.uniform(this.params.fsyncMinMs, this.params.fsyncMaxMs);
    if (this.bugs.has('apply-before-persist')) {
      // The shell under test does not wait for its write: it acks and applies now, and the data
      // reaches the disk later (in order).
      const at = Math.max(this.now + fsyncMs, r.lastDurableAt);
      r.lastDurableAt = at;
      r.durableQueued++;
      this.queue.push(at, { k: 'durable', r, rd });
      this.finishReady(r, rd);
      return;
    }
    r.busy = true;
    this.queue.push(this.now + fsyncMs, { k: 'fsync', r, rd });
  }

  private onFsync(r: Replica, rd: Ready): void {
    if (!this.current(r)) return;
    this.writeDurable(r, rd);
    r.busy = false;
    this.log(r.node.id, r.group, 'fsync done');
    this.finishReady(r, rd);
  }

  private writeDurable(r: Replica, rd: Ready): void {
    const d = r.disk.durable;
    write(d, rd);
    const hs = d.hardState();
    checkHardState(r.group, r.node.id, r.disk.lastHard, hs);
    r.disk.lastHard = hs;
    if (hs.commit > d.lastIndex())
      fail('committed-changed', `group ${r.group} node ${r.node.id}: durable commit ${hs.commit} beyond durable log end ${d.lastIndex()}`);
  }

  /** Installs the Ready's snapshot in the state machine and applies its committed entries. */
  private applyReady(r: Replica, rd: Ready): void {
    if (rd.snapshot) {
      const md = rd.snapshot.metadata;
      this.records[r.group]!.onSnapshotInstalled(r.node.id, r.sm.applied, md.index, md.term);
      r.sm = KvMachine.fromSnapshot(md.index, rd.snapshot.data);
      this.stats.snapshotsInstalled++;
    }
    for (const e of rd.committedEntries) this.apply(r, e);
  }

  /** Steps 3-5 of the Ready contract (but the applying, done with the write), once the write is durable. */
  private finishReady(r: Replica, rd: Ready): void {
    for (const m of rd.messagesAfterPersist) {
      checkAck(r.group, r.node.id, r.disk.durable, m, (i) => this.leaderTermAt(r.group, m, i));
      this.send(r, m);
    }
    for (const rs of rd.readStates) this.onReadState(r, rs.index, rs.context);
    if (r.waiting.length > 0) this.serveWaitingReads(r);
    for (const fp of rd.failedProposals) this.onFailedProposal(r, fp.index, fp.term, fp.code);
    this.checkProposalsHeld(r);
    for (const fr of rd.failedReads) {
      const op = r.reads.get(fr.context);
      if (op === undefined) continue;
      r.reads.delete(fr.context);
      this.log(r.node.id, r.group, `read op${op.id} failed: ${fr.code}`);
      this.finishOp(op, 'not-happened');
    }
    r.rn.advance();
    this.markDirty(r);
    // A shell compacts by size too, not only now and then; and MemoryStorage copies its log on
    // every append, so an endless log would make a calm, busy seed quadratic.
    if (r.durableQueued === 0 && r.live.lastIndex() - r.live.firstIndex() >= LOG_ENTRIES_MAX && r.sm.applied > r.live.snapshot().metadata.index) {
      this.snapshot(r);
    }
  }

  /**
   * After a Ready's failed proposals are settled: every write still waiting here whose entry was in
   * this Ready's log (proposed before it was taken) has that entry in the log, with its term. One
   * whose entry another leader replaced or cut off must have been reported in that Ready: the
   * commit index may never pass its index, and waiting for it leaves the client hanging.
   */
  private checkProposalsHeld(r: Replica): void {
    const live = r.live;
    for (const [index, ops] of r.proposals) {
      if (index < live.firstIndex()) continue; // compacted: committed, settled as it applies
      for (const op of ops) {
        if (op.readiesBefore >= r.readies) continue; // its entry is not in a Ready yet
        const held = index <= live.lastIndex() && live.term(index as LogIndex) === op.term;
        if (!held) {
          fail(
            'proposal-silent',
            `group ${r.group} node ${r.node.id}: op${op.id} at ${index}/t${op.term} is not in the log (last ${live.lastIndex()}), and no Ready reported it failed`,
          );
        }
      }
    }
  }

  private onSoftState(r: Replica, s: SoftState): void {
    const prev = r.soft;
    r.soft = s;
    this.records[r.group]!.onSoftState(r.node.id, s);
    if (s.role === 'leader' && (prev.role !== 'leader' || prev.term !== s.term)) {
      this.stats.elections++;
      this.maybeStaleHintReads(r, s.term);
      if (this.phase === 'chaos' && this.params.crashNewLeaderP > 0 && this.prng.chance(this.params.crashNewLeaderP)) {
        this.queue.push(this.now + this.prng.next() * 3 * this.params.tickMs, { k: 'crash', node: r.node });
      }
    }
  }

  /**
   * A new leader was elected: a client still holding the old hint asks a replica that still
   * thinks it leads an older term (typically quiet, possibly cut off) for a lease read moments
   * later. Its lease is valid only if no new leader can have been elected meanwhile.
   */
  private maybeStaleHintReads(fresh: Replica, term: number): void {
    const p = this.params.staleHintReadP ?? 0;
    if (p === 0 || this.phase !== 'chaos') return;
    for (const n of this.nodes) {
      const old = n.replicas.get(fresh.group);
      if (old === undefined || old === fresh || !this.current(old) || old.soft.role !== 'leader' || old.soft.term >= term) continue;
      if (!this.prng.chance(p)) continue;
      this.queue.push(this.now + this.prng.next() * 2 * this.params.tickMs, { k: 'probe-read', r: old });
    }
  }

  /** A one-off client's lease read at replica `r`. */
  private probeRead(r: Replica): void {
    if (this.phase !== 'chaos' || !this.current(r)) return;
    const keys = Array.from({ length: this.params.keysPerGroup }, (_, i) => `g${r.group}k${i}`);
    const c: Client = { id: this.nextProbeClient++, group: r.group, keys, hint: r.node.id, seq: 0, lastSeen: new Map(), probe: true };
    const key = this.prng.pick(keys);
    const op = this.newOp(c, { op: 'get', key }, true);
    const ctx = this.nextContext++;
    op.minReadIndex = this.records[r.group]!.maxCommitted;
    r.reads.set(ctx, op);
    this.log(r.node.id, r.group, `op${op.id} c${c.id} get ${key} (lease, old hint) ctx${ctx}`);
    r.rn.readIndex(ctx, 'lease');
    this.queue.push(this.now + this.params.clientTimeoutMs, { k: 'timeout', op });
    this.markDirty(r);
  }

  /** Term of entry `i` in the log of the leader an ack goes to, if that leader is still leading the ack's term. */
  private leaderTermAt(group: number, m: Message, i: number): number | undefined {
    const l = this.nodeAt(m.to)?.replicas.get(group);
    if (l === undefined || !this.current(l) || l.soft.role !== 'leader' || l.soft.term !== m.term) return undefined;
    if (i < l.live.firstIndex() - 1 || i > l.live.lastIndex()) return undefined;
    return l.live.term(i as LogIndex);
  }

  private apply(r: Replica, e: Entry): void {
    this.records[r.group]!.onApply(r.node.id, r.sm.applied, e);
    let cmd: Command | undefined;
    let out: KvOutput | undefined;
    if (e.type === EntryType.Normal && e.data.length > 0) {
      cmd = decodeCommand(e.data);
      out = r.sm.apply(cmd);
    }
    r.sm.applied = e.index;
    if (e.type === EntryType.ConfChange) this.moves?.onApplied(r.group, e.index, e.term);
    if (e.index > r.commitChecked) {
      // Entries handed out to apply are committed even if no hard state reported it yet.
      this.records[r.group]!.onCommit(r.node.id, r.live, r.commitChecked, e.index);
      r.commitChecked = e.index;
    }
    const ps = r.proposals.get(e.index);
    if (ps !== undefined) {
      r.proposals.delete(e.index);
      for (const op of ps) {
        if (op.term === e.term && cmd !== undefined && cmd.i === op.id) this.finishOp(op, 'ok', out);
        else this.finishOp(op, 'not-happened');
      }
    }
    if (cmd !== undefined && cmd.o === 'mark' && r.mark !== undefined && r.mark.id === cmd.i) r.mark.applied = true;
  }

  private onFailedProposal(r: Replica, index: number, term: number, code: string): void {
    const ps = r.proposals.get(index);
    const i = ps?.findIndex((op) => op.term === term) ?? -1;
    if (ps === undefined || i < 0) return;
    const op = ps[i]!;
    ps.splice(i, 1);
    if (ps.length === 0) r.proposals.delete(index);
    this.log(r.node.id, r.group, `proposal op${op.id} at ${index}/t${term} failed: ${code}`);
    if (code === RaftErrorCode.ProposalDropped) {
      this.records[r.group]!.onDropped(op.id);
      this.finishOp(op, 'not-happened');
    } else {
      this.finishOp(op, 'unknown');
    }
  }

  private onReadState(r: Replica, index: number, context: number): void {
    const op = r.reads.get(context);
    if (op === undefined) return;
    r.reads.delete(context);
    if (op.done) return;
    if (index < op.minReadIndex) {
      fail(
        'stale-read',
        `group ${r.group} node ${r.node.id}: read op${op.id} got read index ${index}, but ${op.minReadIndex} was committed before it was asked`,
      );
    }
    op.index = index;
    if (r.sm.applied >= index) this.serveRead(r, op);
    else r.waiting.push({ index, op });
  }

  private serveWaitingReads(r: Replica): void {
    const still: { index: number; op: ClientOp }[] = [];
    for (const w of r.waiting) {
      if (w.index <= r.sm.applied) this.serveRead(r, w.op);
      else still.push(w);
    }
    r.waiting = still;
  }

  private serveRead(r: Replica, op: ClientOp): void {
    if (op.input.op !== 'get') return;
    this.stats.readsServed++;
    if (op.lease) this.stats.leaseReads++;
    this.finishOp(op, 'ok', { kind: 'value', value: r.sm.get(op.input.key) });
  }

  // ------------------------------------------------------------------ faults

  private crash(node: SimNode): void {
    node.up = false;
    this.shellLiveness.delete(node.id);
    this.stats.crashes++;
    this.log(node.id, -1, 'CRASH');
    for (const r of node.replicas.values()) {
      for (const ps of r.proposals.values()) for (const op of ps) this.finishOp(op, 'unknown');
      for (const op of r.reads.values()) this.finishOp(op, 'not-happened');
      for (const w of r.waiting) this.finishOp(w.op, 'not-happened');
    }
    node.replicas.clear();
  }

  /** Crashes `node` and schedules its restart, unless too many nodes are down already. */
  private crashFor(node: SimNode): void {
    if (!node.up) return;
    const down = this.nodes.filter((n) => !n.up && this.mayRun(n)).length;
    if (down >= this.params.maxDown) return;
    this.crash(node);
    this.queue.push(this.now + this.uniform(this.params.downMinMs, this.params.downMaxMs), { k: 'restart', node });
  }

  private randomLeaderNode(): SimNode | undefined {
    const leaders = this.upReplicas().filter((r) => r.soft.role === 'leader');
    return leaders.length === 0 ? undefined : this.prng.pick(leaders).node;
  }

  /** A node that may run: not (yet) absent, not dead for good (always, outside moves mode). */
  private mayRun(node: SimNode): boolean {
    const s = this.moves?.state.get(node.id);
    return s === undefined || s === 'up' || s === 'leaving';
  }

  private restart(node: SimNode): void {
    if (node.up || !this.mayRun(node)) return;
    node.up = true;
    this.log(node.id, -1, 'RESTART');
    for (const [g, disk] of node.disks) this.startReplica(node, g, disk);
    this.wakeAll();
  }

  private onChaos(what: ChaosKind): void {
    if (this.phase !== 'chaos') return;
    const p = this.params;
    const rate = {
      crash: p.crashPerSec,
      partition: p.partitionPerSec,
      link: p.linkCutPerSec ?? 0,
      snapshot: p.snapshotPerSec,
      conf: p.confChangePerSec,
      transfer: p.transferPerSec,
      campaign: p.campaignPerSec,
      join: p.moves?.joinPerSec ?? 0,
      leave: p.moves?.leavePerSec ?? 0,
      die: p.moves?.diePerSec ?? 0,
      amnesia: p.moves?.amnesiaPerSec ?? 0,
    }[what];
    this.queue.push(this.now + this.expDelay(rate), { k: 'chaos', what });
    switch (what) {
      case 'crash': {
        const up = this.nodes.filter((n) => n.up);
        if (up.length === 0) return;
        const leader = this.randomLeaderNode();
        const node = leader !== undefined && this.prng.chance(p.targetLeaderP) ? leader : this.prng.pick(up);
        this.crashFor(node);
        return;
      }
      case 'partition': {
        const leader = this.randomLeaderNode();
        const part = this.net.partition(leader !== undefined && this.prng.chance(p.targetLeaderP) ? leader.id : undefined);
        this.stats.partitions++;
        this.log(0, -1, `partition ${part.text}`);
        this.queue.push(this.now + this.uniform(p.partitionMinMs, p.partitionMaxMs), { k: 'heal', id: part.id });
        return;
      }
      case 'link': {
        // One link between a leader and one of its followers fails; the rest of the network stays up.
        const l = this.leaderOf(this.prng.int(0, p.groups));
        if (l === undefined) return;
        const others = l.rn.confState().voters.filter((v) => v !== l.node.id);
        if (others.length === 0) return;
        const part = this.net.cutLink(l.node.id, this.prng.pick(others));
        this.stats.partitions++;
        this.log(0, -1, `partition ${part.text}`);
        this.queue.push(this.now + this.uniform(p.partitionMinMs, p.partitionMaxMs), { k: 'heal', id: part.id });
        return;
      }
      case 'snapshot':
        this.takeSnapshot();
        return;
      case 'conf':
        this.changeMembership();
        return;
      case 'transfer': {
        const g = this.prng.int(0, p.groups);
        const leader = this.leaderOf(g);
        if (leader === undefined) return;
        // A shell's view of the leader may be stale (leader balance, a replica moving away): one
        // transfer in four is asked of any replica of the group, which refuses it unless it leads.
        const l = this.prng.int(0, 4) === 0 ? this.prng.pick(this.upReplicas().filter((r) => r.group === g)) : leader;
        const others = l.rn.confState().voters.filter((v) => v !== l.node.id);
        if (others.length === 0) return;
        const to = this.prng.pick(others);
        this.log(l.node.id, l.group, `transferLeader -> ${to}`);
        this.stats.transfers++;
        this.refusable(() => l.rn.transferLeader(to));
        this.markDirty(l);
        return;
      }
      case 'join':
      case 'leave':
      case 'die':
        this.onMembership(what);
        return;
      case 'amnesia':
        this.loseDisk();
        return;
      case 'campaign': {
        const rs = this.upReplicas();
        if (rs.length === 0) return;
        const r = this.prng.pick(rs);
        this.log(r.node.id, r.group, 'campaign');
        r.rn.campaign();
        this.markDirty(r);
        return;
      }
    }
  }

  /** Runs a call the core may refuse with an operating error; anything else is a failure. */
  private refusable<T>(f: () => T): T | RaftError {
    try {
      return f();
    } catch (e) {
      if (e instanceof RaftError) return e;
      throw e;
    }
  }

  /** Node ids start at 1. */
  private nodeAt(id: number): SimNode | undefined {
    return this.nodes[id - 1];
  }

  private upReplicas(): Replica[] {
    const out: Replica[] = [];
    for (const n of this.nodes) if (n.up) for (const r of n.replicas.values()) out.push(r);
    return out;
  }

  /** The replica that last reported leading the highest term, among live nodes. */
  private leaderOf(group: number): Replica | undefined {
    let best: Replica | undefined;
    for (const n of this.nodes) {
      if (!n.up) continue;
      const r = n.replicas.get(group);
      if (r !== undefined && r.soft.role === 'leader' && (best === undefined || r.soft.term > best.soft.term)) best = r;
    }
    return best;
  }

  private takeSnapshot(): void {
    const rs = this.upReplicas().filter((r) => !r.busy && r.durableQueued === 0 && r.sm.applied > r.live.snapshot().metadata.index);
    if (rs.length === 0) return;
    this.snapshot(this.prng.pick(rs));
  }

  /** Snapshots `r`'s state machine at its applied index and compacts its log, live and durable alike. */
  private snapshot(r: Replica): void {
    const index = r.sm.applied as LogIndex;
    const data = r.sm.snapshot();
    this.records[r.group]!.onSnapshotTaken(r.node.id, index, data);
    const cs = r.rn.confState();
    const keep = this.prng.pick([0, 0, this.prng.int(1, 6), 50]);
    for (const s of [r.live, r.disk.durable]) {
      s.createSnapshot(index, cs, data);
      const to = index - keep;
      if (to >= s.firstIndex()) s.compact(to as LogIndex);
    }
    this.stats.snapshotsTaken++;
    this.log(r.node.id, r.group, `snapshot at ${index}, log from ${r.live.firstIndex()}`);
  }

  /**
   * Moves mode: a member loses its disk, every group's durable state (log, hard state, snapshot,
   * applied state), and keeps its identity. It is drawn only where the cluster survives losing
   * the member's replicas (as for a death: every group settled, each keeps a quorum without it).
   * Guarded, it comes back as a new member under a spare id (see Moves.rejoin); unguarded, under
   * its old id with empty storage: a voter of the configuration it last knew, term 1, empty log,
   * no memory of its votes or of the entries it acknowledged.
   */
  private loseDisk(): void {
    const m = this.moves!;
    const mp = this.params.moves!;
    if (this.phase !== 'chaos' || this.stats.amnesias >= (mp.amnesiaMax ?? 0)) return;
    const candidates = this.nodes.filter((n) => n.up && m.canDie(n.id));
    if (candidates.length === 0) {
      // Under churn the moments it may strike are short: it waits for the next one, one tick on.
      if (!this.diskLossWaits) this.queue.push(this.now + this.params.tickMs, { k: 'disk-loss' });
      this.diskLossWaits = true;
      return;
    }
    this.diskLossWaits = false;
    const node = this.diskLossVictim(candidates);
    const confs = new Map<number, ConfState>();
    for (const [g, r] of node.replicas) confs.set(g, r.rn.confState());
    this.crash(node);
    node.disks.clear();
    this.stats.amnesias++;
    const back = this.now + this.uniform(this.params.downMinMs, this.params.downMaxMs);
    if (mp.amnesiaUnguarded === true) {
      for (const [g, cs] of confs) {
        // A new disk: the hard state it had is gone with the old one, so nothing to compare with.
        const durable = MemoryStorage.withMembers(cs.voters, cs.learners);
        node.disks.set(g, { durable, lastHard: durable.hardState() });
      }
      this.log(node.id, -1, 'DISK LOST: restarts under its old id with empty storage (unguarded)');
      this.queue.push(back, { k: 'restart', node });
      return;
    }
    const id = m.rejoin(node.id);
    // A spare id is kept for each disk loss a run may draw.
    assert(id !== undefined, 'a disk loss without a spare id');
    this.log(node.id, -1, `DISK LOST: its id is dead; it comes back as node ${id}, hosting nothing`);
    this.queue.push(back, { k: 'restart', node: this.nodeAt(id)! });
  }

  /**
   * With chance targetLeaderP, a member whose loss hurts: one that holds commits another voter of
   * a group lacks, so that, coming back as the replica it was, its vote could elect that voter.
   */
  private diskLossVictim(candidates: SimNode[]): SimNode {
    if (this.prng.chance(this.params.targetLeaderP)) {
      const ahead = candidates.filter((n) => this.holdsWhatOthersLack(n.id));
      if (ahead.length > 0) return this.prng.pick(ahead);
    }
    return this.prng.pick(candidates);
  }

  /** In some group, node `id` holds committed entries that another voter lacks (as its leader sees it). */
  private holdsWhatOthersLack(id: number): boolean {
    for (let g = 0; g < this.params.groups; g++) {
      const st = this.leaderOf(g)?.rn.status();
      if (st === undefined || !st.confState.voters.includes(nodeId(id))) continue;
      const match = (v: number): number => (v === st.id ? st.lastIndex : (st.progress.get(nodeId(v))?.match ?? 0));
      const mine = Math.min(match(id), st.commit);
      if (st.confState.voters.some((v) => v !== id && match(v) < mine)) return true;
    }
    return false;
  }

  /** Moves mode: a node joins (empty), a member leaves, or a member dies for good. */
  private onMembership(what: 'join' | 'leave' | 'die'): void {
    const m = this.moves!;
    if (what === 'join') {
      const id = m.join();
      if (id === undefined) return;
      const node = this.nodeAt(id)!;
      node.up = true;
      this.stats.joins++;
      this.log(id, -1, 'JOIN (empty)');
      return;
    }
    if (what === 'leave') {
      const id = m.leave((ids) => this.prng.pick(ids));
      if (id !== undefined) this.stats.leaves++;
      return;
    }
    const candidates = this.nodes.filter((n) => n.up && m.canDie(n.id));
    if (candidates.length === 0) return;
    const node = this.prng.pick(candidates);
    m.die(node.id);
    this.crash(node);
    this.stats.deaths++;
    this.log(node.id, -1, 'DEAD for good');
  }

  /** What the planner sees of the cluster (see Moves). */
  private movesHost(): MovesHost {
    return {
      now: () => this.now,
      leader: (g) => {
        const l = this.leaderOf(g);
        return l === undefined ? undefined : { node: l.node.id, status: () => l.rn.status(), live: l.live };
      },
      reachable: (from, id) => {
        const n = this.nodeAt(id);
        return n !== undefined && n.up && this.net.canDeliver(from, id) && this.net.canDeliver(id, from);
      },
      confOf: (id, g) => {
        const n = this.nodeAt(id);
        return n?.up === true ? n.replicas.get(g)?.rn.confState() : undefined;
      },
      logOf: (id, g) => {
        const n = this.nodeAt(id);
        if (n === undefined) return undefined;
        return n.up ? n.replicas.get(g)?.live : n.disks.get(g)?.durable;
      },
      committedTerm: (g, index) => this.records[g]!.committedTerm(index),
      propose: (g, cc) => {
        const l = this.leaderOf(g)!;
        const res = this.refusable(() => l.rn.proposeConfChange(cc));
        this.markDirty(l);
        if (res instanceof RaftError) {
          this.log(l.node.id, g, `planner: ${cc.type}/${cc.node} refused: ${res.code}`);
          return undefined;
        }
        this.stats.confChangesProposed++;
        return res;
      },
      transfer: (g, to) => {
        const l = this.leaderOf(g)!;
        this.stats.transfers++;
        this.refusable(() => l.rn.transferLeader(nodeId(to)));
        this.markDirty(l);
      },
      log: (node, g, text) => this.log(node, g, text),
    };
  }

  private changeMembership(): void {
    const g = this.prng.int(0, this.params.groups);
    const l = this.leaderOf(g);
    if (l === undefined) return;
    const cs = l.rn.confState();
    const members = new Set<number>([...cs.voters, ...cs.learners]);
    const outsiders = this.nodes.filter((n) => !members.has(n.id)).map((n) => n.id);
    const options: ConfChange[] = [];
    for (const n of outsiders) options.push({ type: ConfChangeType.AddLearner, node: nodeId(n) });
    for (const n of cs.learners) {
      options.push({ type: ConfChangeType.AddVoter, node: n });
      options.push({ type: ConfChangeType.RemoveNode, node: n });
    }
    // Two voters tolerate no failure; go there only now and then.
    if (cs.voters.length > 3 || (cs.voters.length === 3 && this.prng.chance(0.25))) {
      for (const n of cs.voters) options.push({ type: ConfChangeType.RemoveNode, node: n });
    }
    if (options.length === 0) return;
    const cc = this.prng.pick(options);
    const name = cc.type === ConfChangeType.AddLearner ? 'add-learner' : cc.type === ConfChangeType.AddVoter ? 'add-voter' : 'remove';
    const res = this.refusable(() => l.rn.proposeConfChange(cc));
    if (res instanceof RaftError) {
      this.log(l.node.id, g, `conf change ${name} ${cc.node} refused: ${res.code}`);
    } else {
      this.stats.confChangesProposed++;
      this.log(
        l.node.id,
        g,
        `conf change ${name} ${cc.node} proposed at ${res.index}/t${res.term} (voters ${cs.voters.join(',')} learners ${cs.learners.join(',')})`,
      );
    }
    this.markDirty(l);
  }

  // ------------------------------------------------------------------ clients

  private clientStep(c: Client): void {
    if (this.phase === 'done') return;
    const p = this.params;
    const key = this.prng.pick(c.keys);
    const roll = this.prng.next();
    let input: KvInput;
    if (roll < p.readP) {
      input = { op: 'get', key };
    } else {
      const value = `${c.id}.${++c.seq}`;
      if (roll < p.readP + (1 - p.readP) * p.casP) {
        const seen = c.lastSeen.get(key);
        const expected = seen !== undefined && this.prng.chance(0.75) ? seen : null;
        input = { op: 'cas', key, expected, value };
      } else {
        input = { op: 'put', key, value };
      }
    }
    const target = c.hint > 0 && this.prng.chance(0.8) ? c.hint : this.prng.int(1, p.nodes + 1);
    const node = this.nodeAt(target);
    const r = node?.replicas.get(c.group);
    const retry = (): void => this.queue.push(this.now + this.uniform(1, 10), { k: 'client', c });
    if (r === undefined || !node!.up) {
      c.hint = 0;
      retry();
      return;
    }
    const op = this.newOp(c, input, false);
    if (input.op === 'get') {
      const ctx = this.nextContext++;
      const lease = p.leaseReadP > 0 && this.prng.chance(p.leaseReadP);
      op.lease = lease;
      op.minReadIndex = this.records[c.group]!.maxCommitted;
      r.reads.set(ctx, op);
      this.log(r.node.id, c.group, `op${op.id} c${c.id} get ${key}${lease ? ' (lease)' : ''} ctx${ctx}`);
      r.rn.readIndex(ctx, lease ? 'lease' : 'safe');
    } else {
      const cmd: Command =
        input.op === 'put' ? { i: op.id, o: 'put', k: key, v: input.value } : { i: op.id, o: 'cas', k: key, e: input.expected, v: input.value };
      const res = this.refusable(() => r.rn.propose(encodeCommand(cmd)));
      if (res instanceof RaftError) {
        // Refused synchronously: it did not happen; try again as a new operation.
        if (res.code === RaftErrorCode.NotLeader) c.hint = res.leaderHint;
        retry();
        return;
      }
      op.index = res.index;
      op.term = res.term;
      op.readiesBefore = r.readies;
      let ps = r.proposals.get(res.index);
      if (ps === undefined) {
        ps = [];
        r.proposals.set(res.index, ps);
      }
      ps.push(op);
      c.hint = r.node.id;
      this.log(
        r.node.id,
        c.group,
        `op${op.id} c${c.id} ${input.op} ${key}=${input.value}${input.op === 'cas' ? ` if ${input.expected}` : ''} at ${res.index}/t${res.term}`,
      );
    }
    this.queue.push(this.now + p.clientTimeoutMs, { k: 'timeout', op });
    this.markDirty(r);
  }

  /** A client operation not yet asked of any replica. */
  private newOp(client: Client, input: KvInput, lease: boolean): ClientOp {
    return { id: this.nextOpId++, client, input, call: this.now, done: false, index: 0, term: 0, readiesBefore: 0, minReadIndex: 0, lease };
  }

  private onTimeout(op: ClientOp): void {
    if (op.done) return;
    this.log(0, op.client.group, `op${op.id} timed out`);
    this.finishOp(op, op.input.op === 'get' ? 'not-happened' : 'unknown');
  }

  /** An operation's outcome. 'not-happened' leaves it out of the history; 'unknown' never returns. */
  private finishOp(op: ClientOp, outcome: 'ok' | 'unknown' | 'not-happened', output?: KvOutput): void {
    if (op.done) return;
    op.done = true;
    const c = op.client;
    if (outcome === 'ok') {
      this.history.push({ id: op.id, client: c.id, input: op.input, call: op.call, ret: this.now, output: output! });
      if (op.input.op === 'put' || (op.input.op === 'cas' && output?.kind === 'cas' && output.swapped)) c.lastSeen.set(op.input.key, op.input.value);
      if (output?.kind === 'value') c.lastSeen.set(op.input.key, output.value);
      if (op.input.op !== 'get') this.stats.writesAcked++;
      this.log(0, c.group, `op${op.id} ok ${JSON.stringify(output)}`);
    } else if (outcome === 'unknown') {
      this.history.push({ id: op.id, client: c.id, input: op.input, call: op.call, ret: Infinity });
      this.stats.unknownOps++;
      this.log(0, c.group, `op${op.id} outcome unknown`);
    }
    if (this.phase !== 'done' && c.probe !== true) this.queue.push(this.now + this.prng.next() * this.params.thinkMaxMs, { k: 'client', c });
  }

  private finishHistory(): void {
    for (const n of this.nodes) {
      if (!n.up) continue;
      for (const r of n.replicas.values()) {
        for (const ps of r.proposals.values()) for (const op of ps) this.finishOp(op, 'unknown');
        for (const op of r.reads.values()) this.finishOp(op, 'not-happened');
        for (const w of r.waiting) this.finishOp(w.op, 'not-happened');
      }
    }
    this.history.sort((a, b) => a.id - b.id);
  }

  private summarize(): void {
    this.stats.virtualMs = this.now;
    this.stats.ops = this.history.length;
    this.stats.commits = 0;
    this.stats.confChangesApplied = 0;
    for (const rec of this.records) {
      this.stats.commits += rec.maxCommitted;
      this.stats.confChangesApplied += rec.confChangesApplied;
    }
    if (this.moves) {
      this.stats.plannedChanges = this.moves.stats.proposed;
      this.stats.plannedApplied = this.moves.stats.applied;
    }
  }

  // ------------------------------------------------------------------ liveness

  private startLiveness(): void {
    this.phase = 'liveness';
    this.livenessStart = this.now;
    // Moves need longer: each group may still have learners to bring up one after another over a
    // lossy, throttled network while clients keep writing.
    const timeouts = this.moves === undefined ? 40 : LIVENESS_TIMEOUTS_MOVES;
    this.livenessDeadline = this.now + timeouts * this.params.electionTicks * this.params.tickMs;
    this.net.healAll();
    this.net.dropP = 0;
    this.net.dupP = 0;
    this.net.delaySpikeP = 0;
    this.log(0, -1, 'LIVENESS PHASE: healed, no loss, every node up');
    for (const n of this.nodes) if (!n.up) this.restart(n);
    this.wakeAll();
    this.queue.push(this.now, { k: 'liveness-check' });
  }

  private checkLiveness(): void {
    let all = true;
    for (let g = 0; g < this.params.groups; g++) {
      if (this.liveAt[g] !== undefined) continue;
      if (this.groupLive(g)) {
        this.liveAt[g] = this.now;
        this.log(0, g, 'group is live');
      } else {
        all = false;
      }
    }
    if (all) {
      this.phase = 'done';
      this.stats.livenessMs = this.now - this.livenessStart;
      return;
    }
    if (this.now >= this.livenessDeadline) {
      const stuck: number[] = [];
      for (let g = 0; g < this.params.groups; g++) if (this.liveAt[g] === undefined) stuck.push(g);
      const unsettled = stuck.map((g) => (this.liveOtherwise(g) ? this.moves?.unsettled(g) : undefined));
      if (unsettled.every((u) => u !== undefined)) {
        const why = stuck.map((g, i) => `group ${g}: ${unsettled[i]!}`).join('; ');
        fail('moves-converged', `${why} (${this.now - this.livenessStart} ms after healing)\n${stuck.map((g) => this.describeGroup(g)).join('\n')}`);
      }
      const why = stuck.map((g) => `group ${g}: ${this.whyNotLive(g)}`).join('; ');
      fail('liveness', `${why} (${this.now - this.livenessStart} ms after healing)\n${stuck.map((g) => this.describeGroup(g)).join('\n')}`);
    }
    this.queue.push(this.now + 20, { k: 'liveness-check' });
  }

  private groupLive(g: number): boolean {
    const l = this.leaderOf(g);
    if (l === undefined) return false;
    if (l.mark === undefined || l.mark.term !== l.soft.term) {
      const id = -this.nextMark++;
      const res = this.refusable(() => l.rn.propose(encodeCommand({ i: id, o: 'mark' })));
      if (res instanceof RaftError) {
        l.markRefused = res.code;
      } else {
        l.mark = { id, term: res.term, applied: false };
        this.markDirty(l);
      }
      return false;
    }
    if (!l.mark.applied) return false;
    for (const v of l.rn.confState().voters) {
      const r = this.nodeAt(v)?.replicas.get(g);
      if (r === undefined || r.soft.lead !== l.node.id || r.soft.term !== l.soft.term) return false;
    }
    return this.moves?.unsettled(g) === undefined;
  }

  /** Live but for the moves: a leader that commits and that every voter follows (but those dead for good). */
  private liveOtherwise(g: number): boolean {
    const l = this.leaderOf(g);
    if (l?.mark === undefined || l.mark.term !== l.soft.term || !l.mark.applied) return false;
    return l.rn.confState().voters.every((v) => {
      // A voter dead for good follows nobody: its staying a voter is the moves' failure.
      if (this.moves?.state.get(v) === 'dead') return true;
      const r = this.nodeAt(v)?.replicas.get(g);
      return r !== undefined && r.soft.lead === l.node.id && r.soft.term === l.soft.term;
    });
  }

  private whyNotLive(g: number): string {
    const l = this.leaderOf(g);
    if (l === undefined) return 'no leader';
    if (l.mark === undefined || l.mark.term !== l.soft.term) return `leader n${l.node.id} (t${l.soft.term}) refuses proposals (${l.markRefused ?? '?'})`;
    if (!l.mark.applied) return `leader n${l.node.id} (t${l.soft.term}) does not commit a fresh proposal`;
    return `not every voter follows leader n${l.node.id} (t${l.soft.term})`;
  }

  private describeGroup(g: number): string {
    const lines = [`group ${g}:`];
    for (const n of this.nodes) {
      const r = n.replicas.get(g);
      if (r === undefined) continue;
      const st = r.rn.status();
      lines.push(
        `  n${n.id}${n.up ? '' : ' (down)'}: ${st.role} t${st.term} vote ${st.vote} lead ${st.lead} commit ${st.commit} applied ${st.applied} log ${st.firstIndex}..${st.lastIndex} voters [${st.confState.voters.join(',')}] learners [${st.confState.learners.join(',')}]${r.busy ? ' (fsync pending)' : ''}`,
      );
      for (const [id, pr] of st.progress) {
        if (id !== st.id)
          lines.push(`    progress of n${id}: ${pr.state} match ${pr.match} next ${pr.next} inflight ${pr.inflight}${pr.isLearner ? ' (learner)' : ''}`);
      }
    }
    return lines.join('\n');
  }

  private traceReady(r: Replica, rd: Ready): void {
    const parts: string[] = ['ready'];
    if (rd.softState) parts.push(`${rd.softState.role} t${rd.softState.term} lead ${rd.softState.lead}`);
    if (rd.hardState) parts.push(`hs(t${rd.hardState.term} v${rd.hardState.vote} c${rd.hardState.commit})`);
    if (rd.snapshot) parts.push(`snap@${rd.snapshot.metadata.index}/t${rd.snapshot.metadata.term}`);
    if (rd.entries.length > 0)
      parts.push(`ents ${rd.entries[0]!.index}..${rd.entries[rd.entries.length - 1]!.index}/t${rd.entries[rd.entries.length - 1]!.term}`);
    if (rd.committedEntries.length > 0) parts.push(`apply ${rd.committedEntries[0]!.index}..${rd.committedEntries[rd.committedEntries.length - 1]!.index}`);
    if (rd.messages.length > 0) parts.push(`send ${summarize(rd.messages)}`);
    if (rd.messagesAfterPersist.length > 0) parts.push(`after-persist ${summarize(rd.messagesAfterPersist)}`);
    if (rd.readStates.length > 0) parts.push(`reads ${rd.readStates.map((x) => `ctx${x.context}@${x.index}`).join(',')}`);
    if (rd.failedReads.length > 0) parts.push(`failed-reads ${rd.failedReads.length}`);
    if (rd.failedProposals.length > 0) parts.push(`failed-proposals ${rd.failedProposals.map((x) => `${x.index}/t${x.term}:${x.code}`).join(',')}`);
    this.log(r.node.id, r.group, parts.join(' '));
  }

  /** Every group's replicas, for a failure report. */
  describeGroups(): string {
    const out: string[] = [];
    for (let g = 0; g < this.params.groups; g++) out.push(this.describeGroup(g));
    return out.join('\n');
  }
}

function write(s: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) s.applySnapshot(rd.snapshot);
  s.append(rd.entries);
  if (rd.hardState) s.setHardState(rd.hardState);
}

function summarize(ms: readonly Message[]): string {
  const counts = new Map<string, number>();
  for (const m of ms) {
    const k = `${messageTypeName(m.type)}${m.reject ? '(rej)' : ''}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => (n > 1 ? `${k}x${n}` : k)).join(',');
}
