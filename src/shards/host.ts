/**
 * The shell around the consensus core for all shards of one worker. Each turn it takes every
 * shard's Ready, writes all of them in one durable transaction (group commit), and only then lets
 * out what depended on that write: append and vote responses (`messagesAfterPersist`) and read
 * answers. Client writes are answered inside the transaction, before its flush: what they depend
 * on is their entry's durability in a quorum's logs, which commit already implies (see
 * answerApplied). Applying committed entries and recording the applied index happen in the same
 * transaction, so a crash never applies an entry twice.
 */
import { randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { APPEND_BYTES_MAX_DEFAULT, ENTRY_OVERHEAD_BYTES, RawNode, Prng, RaftError, RaftErrorCode, assert, MessageType, emptyMessage } from './raft/index.js';
import { campaignRankOf } from './raft/index.js';
import type { LogIndex, Message, NodeId, Ready, ShardId } from './raft/index.js';
import { compactIfDue, compactionDue, writeTurn } from './turn-write.js';
import { TickClock } from './tick-clock.js';
import { checkDumpFile } from './snapshot-io.js';
import type { SnapshotReader, StagedSnapshot } from './snapshot-io.js';
import { StoreError } from './store-error.js';
import { addRaftTotals, zeroHostCounters, zeroRaftTotals } from './host-counters.js';
import type { HostCounters, RaftTotals } from './host-counters.js';
import type { ShardStore } from './store.js';
import { LOG_CLOCK_CLIENT, LOG_CLOCK_EVERY_MS, encodeLogClock, encodeProposal } from './sessions.js';
import { verifyShard } from './verify.js';
import type { PendingProposal, Shard, Turn } from './host-shard.js';
import { membershipOf, proposeChange } from './membership.js';
import type { Membership, MembershipAnswer, MembershipChange } from './membership.js';
import type { VerifyResult } from './verify.js';

export type { Outcome } from './sessions.js';
export type { HostCounters, HostLatency, RaftTotals } from './host-counters.js';
export type { SnapshotWish, StagedSnapshot } from './snapshot-io.js';
export type { Membership, MembershipAnswer, MembershipChange } from './membership.js';
export { encodeProposal } from './sessions.js';
export type { ClientReply, Consistency, HostOptions, HostSink, ShardEvent, ShardSpec, TransferAnswer } from './host-types.js';
export { HostErrorCode } from './host-types.js';
import type { ClientReply, Consistency, HostOptions, ShardSpec, TransferAnswer } from './host-types.js';
import { HostErrorCode } from './host-types.js';

export class ShardHost {
  private readonly shards = new Map<ShardId, Shard>();
  /** Ticks so far; only grows. */
  private ticks = 0;
  /** Which ticks are due by `clock` (none without one), and the tick length (see TickClock). */
  private readonly dueTicks: TickClock;
  /**
   * Shards whose tick does more than move the clock: every shard but quiet ones. Invariant: a
   * hosted shard not in it has `node.ticksIdle()`, so skipping its ticks changes nothing but its
   * clock. A quiet shard costs no tick, and ten thousand of them leave the worker idle.
   */
  private readonly ticking = new Set<Shard>();
  /**
   * Shards that may have a Ready: every shard touched (stepped, ticked with a result, proposed to,
   * read, woken, turned) since it was last seen without one. Invariant: a shard whose node has a
   * Ready is in it, so hasReady and turn look at these only.
   */
  private readonly dirty = new Set<Shard>();
  /**
   * Read ids, unique per host instance: a random start, so an answer to a read of a previous
   * instance (before a worker restart) cannot match a new read.
   */
  private readContext = randomInt(0, 2 ** 40) * 1024;
  readonly counters: HostCounters = zeroHostCounters();
  private readonly compactEvery: number;
  private readonly compactKeep: number;
  /**
   * Snapshots stepped into a core and not yet taken by a turn, by shard. The turn after the step
   * either installs one (its Ready carries the snapshot) or the core refused it; either way the
   * turn deletes its file.
   */
  private readonly staged = new Map<ShardId, StagedSnapshot>();
  /**
   * Largest entry this host proposes, counted as the raft core counts it (data +
   * ENTRY_OVERHEAD_BYTES): `appendBytesMax`. The core lets a lone entry exceed that cap (the first
   * entry of an App always goes in); refusing larger proposals here keeps every App within it, so
   * an App never outgrows the record it travels in (src/workers/fit.ts).
   */
  private readonly entryBytesMax: number;
  /** Raft counts of the shards closed here, so raftTotals() only grows. */
  private readonly retiredRaft = zeroRaftTotals();

  constructor(private readonly opts: HostOptions) {
    this.entryBytesMax = opts.raft?.appendBytesMax ?? APPEND_BYTES_MAX_DEFAULT;
    this.compactEvery = opts.compactEveryEntries ?? 10_000;
    this.compactKeep = opts.compactKeepEntries ?? 1_000;
    assert(Number.isInteger(this.compactEvery) && this.compactEvery > 0, 'compactEveryEntries must be a positive integer');
    assert(Number.isInteger(this.compactKeep) && this.compactKeep >= 0, 'compactKeepEntries must be >= 0');
    this.dueTicks = new TickClock(opts.clock, opts.tickMs ?? 100);
  }

  /** Opens a shard from disk, creating it first when this store has never held it. */
  open(spec: ShardSpec): void {
    if (this.shards.has(spec.shard)) return;
    const { store } = this.opts;
    const ss = store.has(spec.shard) ? store.shard(spec.shard) : store.create(spec.shard, spec.voters, spec.learners ?? []);
    const node = new RawNode({
      ...this.opts.raft,
      campaignRank: campaignRankOf(spec.shard, this.opts.nodeId, ss.initialState().confState.voters),
      id: this.opts.nodeId,
      storage: ss,
      prng: new Prng((this.opts.seed ^ Math.imul(spec.shard + 1, 0x9e3779b1)) >>> 0),
      applied: ss.applied(),
    });
    const s: Shard = {
      id: spec.shard,
      node,
      store: ss,
      proposals: new Map(),
      reads: new Map(),
      readyReads: [],
      clock: this.ticks,
      logClockAtMs: -Infinity,
      logClockTerm: 0,
    };
    this.shards.set(spec.shard, s);
    this.ticking.add(s);
    this.dirty.add(s);
  }

  /** Stops hosting a shard; its outstanding requests fail with ShardNotFound. Data stays on disk. */
  close(id: ShardId): void {
    const s = this.shards.get(id);
    if (!s) return;
    this.shards.delete(id);
    this.ticking.delete(s);
    this.dirty.delete(s);
    const fail = (reqId: number): void => this.replyError(id, reqId, HostErrorCode.ShardNotFound, `shard ${id} was closed`);
    for (const ps of s.proposals.values()) for (const p of ps) fail(p.reqId);
    for (const r of s.reads.values()) fail(r.reqId);
    for (const r of s.readyReads) fail(r.read.reqId);
    // Its core's counts stay in the totals, so they never go down while the worker runs.
    addRaftTotals(this.retiredRaft, s.node.counters());
  }

  /**
   * Closes shard `id` (its outstanding requests fail with ShardNotFound, see {@link close}), drops
   * a snapshot staged for it, and deletes everything the store holds for it (Store.drop), so a
   * later {@link open} creates it empty. `absent` when it was neither hosted nor stored. The
   * caller closes the shard's snapshot readers first.
   */
  drop(id: ShardId): 'dropped' | 'absent' {
    const hosted = this.shards.has(id);
    this.close(id);
    const staged = this.staged.get(id);
    if (staged !== undefined) rmSync(staged.path, { force: true });
    this.staged.delete(id);
    const stored = this.opts.store.drop(id);
    assert(!this.shards.has(id), `host: shard ${id} still hosted after drop`);
    return hosted || stored ? 'dropped' : 'absent';
  }

  /** The replica's membership as applied and its raft position (see membershipOf); undefined when not hosted. */
  membership(id: ShardId): Membership | undefined {
    const s = this.shards.get(id);
    if (!s) return undefined;
    this.catchUp();
    this.level(s);
    return membershipOf(s.node);
  }

  /**
   * Proposes one membership change on this replica of shard `id` (it must lead); see
   * MembershipAnswer for the answers. The change applies on each replica as it applies the entry
   * (writeTurn records the new membership with the applied index).
   */
  changeMembership(id: ShardId, change: MembershipChange): MembershipAnswer {
    const s = this.shards.get(id);
    if (!s) return 'absent';
    this.catchUp();
    this.level(s);
    try {
      return proposeChange(s.node, change);
    } finally {
      this.touched(s);
    }
  }

  /** The raft cores' event counts summed over every shard this host has hosted (monotonic). */
  raftTotals(): RaftTotals {
    const t = { ...this.retiredRaft };
    for (const s of this.shards.values()) addRaftTotals(t, s.node.counters());
    return t;
  }

  has(id: ShardId): boolean {
    return this.shards.has(id);
  }

  shardIds(): ShardId[] {
    return [...this.shards.keys()];
  }

  status(id: ShardId): ReturnType<RawNode['status']> | undefined {
    return this.shards.get(id)?.node.status();
  }

  /** Replays the shard's log and compares with its data (see verifyShard). */
  verify(id: ShardId): VerifyResult | undefined {
    const s = this.shards.get(id);
    // The check compares the log with LMDB's data: what waits for a checkpoint goes there first.
    if (s?.store.hasPending()) this.commitWith(() => undefined);
    return s ? verifyShard(s.store, this.opts.stateMachine) : undefined;
  }

  /** The shard's data as committed, for tools and tests. */
  storeOf(id: ShardId): ShardStore | undefined {
    return this.shards.get(id)?.store;
  }

  /**
   * Advances every shard's logical clock by one tick; only shards that are not quiet do work. For
   * hosts without a `clock` (tests, simulations); with one, {@link catchUp} ticks.
   */
  tick(): void {
    assert(this.opts.clock === undefined, 'tick(): this host ticks by its clock (catchUp)');
    this.tickOnce();
  }

  /**
   * Moves every shard's clock by the ticks that are due, so the tick count is level with real
   * time; returns how many. The worker calls it at the top of each loop pass, with `timers` (see
   * below); the host itself calls it right before each decision that a tick count stands for real
   * time in (see read and step), because a pass can stall between its catch-up and such a decision
   * (a long commit, a GC pause). Without a `clock` it does nothing.
   *
   * The timers (elections, heartbeats, check-quorum...) run only with `timers`, at most once per
   * call, when at least one tick passed since they last ran (RawNode.elapse, tickTimers): ticks due
   * in a row, or passing while a pass runs, come from a slow pass during which the shards could
   * step nothing new, so they say nothing about their peers. Counted on the timers, they started
   * campaigns whose answers were not stepped yet and deposed leaders whose followers had answered,
   * and with thousands of groups that traffic was what kept the worker behind.
   */
  catchUp(timers = false): number {
    const ran = this.dueTicks.advance(this.counters);
    if (ran > 0) {
      this.ticks += ran;
      for (const s of this.ticking) {
        s.node.elapse(ran);
        s.clock = this.ticks;
      }
    }
    if (timers && this.dueTicks.takeTimers()) this.tickOnce(true);
    return ran;
  }

  /** Milliseconds until the next tick is due (0 when one is due now); the tick length without a clock. */
  msUntilTick(): number {
    return this.dueTicks.msUntilTick();
  }

  /**
   * One tick on every shard that is not quiet: the clock and the timers (tick()), or with
   * `timersOnly` the timers of shards whose clocks are level already (see catchUp).
   */
  private tickOnce(timersOnly = false): void {
    if (!timersOnly) {
      this.ticks++;
      this.counters.ticks++;
    }
    for (const s of this.ticking) {
      if (timersOnly) s.node.tickTimers();
      else s.node.tick();
      s.clock = this.ticks;
      if (s.node.hasReady()) this.dirty.add(s);
      if (s.node.ticksIdle()) this.ticking.delete(s);
    }
  }

  /** Shards that are not quiet (their ticks do work); for metrics and tests. */
  activeShards(): number {
    return this.ticking.size;
  }

  /** Before any input reaches a shard: its core catches up the ticks it was left out of. */
  private level(s: Shard): void {
    const behind = this.ticks - s.clock;
    if (behind === 0) return;
    s.node.skipTicks(behind);
    s.clock = this.ticks;
  }

  /** After an input reached a shard: it may have a Ready, and may no longer be quiet. */
  private touched(s: Shard): void {
    this.dirty.add(s);
    if (!s.node.ticksIdle()) this.ticking.add(s);
  }

  /**
   * Ends quiet on the shards led by `leader` (whatever their leader when undefined), among
   * `shards` when given (ids not hosted here are skipped), else among all: the shell learned that
   * the leader's node or worker is gone, or that a replica came back. Returns how many woke.
   */
  wake(leader?: NodeId, shards?: readonly ShardId[]): number {
    this.catchUp();
    let n = 0;
    const among = shards === undefined ? this.shards.values() : shards.map((id) => this.shards.get(id));
    for (const s of among) {
      if (!s || !s.node.isQuiesced() || (leader !== undefined && s.node.leader() !== leader)) continue;
      this.level(s);
      s.node.wake();
      this.touched(s);
      n++;
    }
    return n;
  }

  /**
   * Asks shard `id`'s leader here to hand leadership to replica `to` (raft's leadership transfer:
   * `to` is caught up, then told to campaign at once; proposals wait meanwhile). `started` when
   * the transfer began (or was already under way), else why not: this replica does not lead, `to`
   * is not another voter, `to` is behind (not replicating, or short of the commit index: a
   * transfer to it would hold proposals while it catches up, maybe by snapshot, and likely time
   * out), or the shard is not hosted here.
   */
  transferLeader(id: ShardId, to: NodeId): TransferAnswer {
    const s = this.shards.get(id);
    if (!s) return 'absent';
    this.catchUp();
    this.level(s);
    if (s.node.leader() === this.opts.nodeId) {
      const st = s.node.status();
      const pr = st.progress.get(to);
      if (pr !== undefined && (pr.state !== 'replicate' || pr.match < st.commit)) return 'target-behind';
    }
    try {
      s.node.transferLeader(to);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
      return e.code === RaftErrorCode.NotLeader ? 'not-leader' : 'invalid-target';
    } finally {
      // Refused or not, as after every input: a replica left out of the ticks while quiet that
      // no longer is must be ticked again, or its next input finds it behind and awake.
      this.touched(s);
    }
    return 'started';
  }

  /** A raft message from another replica. Messages for unknown shards are dropped (raft retries). */
  step(id: ShardId, m: Message): void {
    const s = this.shards.get(id);
    if (!s) return;
    if (m.type === MessageType.Snap) {
      this.counters.snapshotMessagesDropped++;
      return;
    }
    // Level with real time first. A follower that hears from its leader promises not to help elect
    // another until its tick count reaches `now + electionTimeoutTicks`; a count that lags real
    // time by d ticks here would end that promise d ticks early once the lag is made up, and the
    // leader's lease counts on it lasting an election timeout from (after) the heartbeat's send.
    // Caught up, the promise starts no earlier than the message's arrival, which is after its
    // send. Votes judged on a lagging count only err toward refusing (safe, but slower elections).
    this.catchUp();
    this.level(s);
    s.node.step(m);
    this.touched(s);
  }

  /** A reader of the shard's data as of now, for a snapshot stream (close it when done). */
  openSnapshot(id: ShardId): SnapshotReader | undefined {
    return this.shards.get(id)?.store.openSnapshotReader();
  }

  /** Would a snapshot at `index` bring this replica anything? `absent` when the shard is not hosted here. */
  offerSnapshot(id: ShardId, index: LogIndex): 'accept' | 'stale' | 'absent' {
    const s = this.shards.get(id);
    if (!s) return 'absent';
    return s.store.applied() >= index ? 'stale' : 'accept';
  }

  /**
   * A snapshot the shell received whole (every chunk and the total checked) and staged in a file:
   * the file's structure is checked, then the core gets it as the Snap message its leader sent;
   * the next turn installs it in one transaction, or the core refuses it (stale). The host owns
   * the file and deletes it. `bad` when the file does not decode, `absent` for a shard not here.
   */
  installStaged(id: ShardId, snap: StagedSnapshot): 'stepped' | 'absent' | 'bad' {
    const s = this.shards.get(id);
    if (!s) {
      rmSync(snap.path, { force: true });
      return 'absent';
    }
    try {
      checkDumpFile(snap.path);
    } catch (e) {
      rmSync(snap.path, { force: true });
      if (e instanceof StoreError) return 'bad';
      throw e;
    }
    const previous = this.staged.get(id);
    if (previous !== undefined) rmSync(previous.path, { force: true });
    this.staged.set(id, snap);
    this.counters.snapshotsStaged++;
    this.catchUp();
    this.level(s);
    s.node.step({ ...emptyMessage(MessageType.Snap, snap.from, this.opts.nodeId, snap.term), snapshot: { metadata: snap.metadata, data: new Uint8Array(0) } });
    this.touched(s);
    return 'stepped';
  }

  /** Starts a client proposal; the reply comes through the sink once applied (or failed). */
  propose(id: ShardId, req: { reqId: number; clientId: number; seq: number; command: Uint8Array }): void {
    const s = this.shards.get(id);
    if (!s) return this.replyError(id, req.reqId, HostErrorCode.ShardNotFound, `shard ${id} is not hosted here`);
    if (!Number.isSafeInteger(req.clientId) || req.clientId < 0) {
      return this.replyError(id, req.reqId, HostErrorCode.InvalidClientId, `client id ${req.clientId} is not a non-negative integer`);
    }
    const bad = this.opts.stateMachine.validateCommand(req.command);
    if (bad) return this.replyError(id, req.reqId, bad.code, bad.message);
    const data = encodeProposal(req.clientId, req.seq, req.command);
    if (data.length + ENTRY_OVERHEAD_BYTES > this.entryBytesMax) {
      return this.replyError(
        id,
        req.reqId,
        HostErrorCode.RequestTooLarge,
        `a proposal of ${req.command.length} command bytes makes a ${data.length + ENTRY_OVERHEAD_BYTES}-byte entry; appendBytesMax is ${this.entryBytesMax}`,
      );
    }
    this.level(s);
    try {
      if (req.clientId !== 0) this.maybeWriteLogClock(s);
      const at = s.node.propose(data);
      // An older proposal at this index (an earlier term's, truncated here) stays: it is answered
      // when the index commits, with whichever entry commits there.
      const p: PendingProposal = { reqId: req.reqId, term: at.term, atMs: this.opts.latency ? (this.opts.clock?.() ?? 0) : 0 };
      const waiting = s.proposals.get(at.index);
      if (waiting) waiting.push(p);
      else s.proposals.set(at.index, [p]);
      this.counters.proposals++;
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
      this.counters.proposalsRefused++;
      this.replyError(id, req.reqId, e.code, e.message, e.leaderHint);
    } finally {
      this.touched(s);
    }
  }

  /**
   * Before a client proposal with a session: as leader, writes the wall clock into the log if the
   * last write is LOG_CLOCK_EVERY_MS old, so log time moves while sessions are in use. Refused
   * (not leader, budget full): nothing written, the client's proposal meets the same answer.
   */
  private maybeWriteLogClock(s: Shard): void {
    const clock = this.opts.logClock;
    if (clock === undefined) return;
    const now = clock();
    const term = s.node.term();
    const sameTerm = term === s.logClockTerm;
    if (sameTerm && now - s.logClockAtMs < LOG_CLOCK_EVERY_MS) return;
    // The first entry of a term steps by 0: what passed before this replica led is not its to say.
    const step = sameTerm ? now - s.logClockAtMs : 0;
    try {
      s.node.propose(encodeProposal(LOG_CLOCK_CLIENT, 0, encodeLogClock(step)));
      s.logClockAtMs = now;
      s.logClockTerm = term;
      this.counters.logClockEntries++;
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  /** Starts a client read; the reply comes through the sink. */
  read(id: ShardId, req: { reqId: number; consistency: Consistency; query: Uint8Array }): void {
    const s = this.shards.get(id);
    if (!s) return this.replyError(id, req.reqId, HostErrorCode.ShardNotFound, `shard ${id} is not hosted here`);
    this.counters.reads++;
    if (req.consistency === 'stale') {
      this.reply(id, { reqId: req.reqId, ok: true, body: this.opts.stateMachine.query(s.store.reader(), req.query) });
      return;
    }
    const ctx = ++this.readContext;
    s.reads.set(ctx, { reqId: req.reqId, query: req.query });
    // A lease read is judged on the leader's tick count: served while `now - sent` (ticks since it
    // sent the heartbeat a quorum acknowledged) is at most electionTimeoutTicks - 3. A count that
    // lags real time makes the lease look younger than it is: the followers' promises may have run
    // out, another leader may have been elected and have committed writes, and this read would
    // miss them. So the count is caught up right here, with nothing that can stall between the
    // catch-up and the core's synchronous decision. It never runs ahead of real time, and the send
    // tick it is compared with was read no later than the heartbeat left, so an error in either
    // only shortens the lease.
    if (req.consistency === 'lease') this.catchUp();
    this.level(s);
    s.node.readIndex(ctx, req.consistency === 'lease' ? 'lease' : 'safe');
    this.touched(s);
  }

  /** True when some shard has a Ready to handle. Looks at touched shards only (see `dirty`). */
  hasReady(): boolean {
    for (const s of this.dirty) {
      if (s.node.hasReady()) return true;
      this.dirty.delete(s);
    }
    return false;
  }

  /**
   * Handles every shard's Ready: messages that may leave at once, then one durable write of all
   * shards' log appends and hard states (a write-ahead log record; an LMDB commit when a snapshot
   * installs) with the applied entries, then everything that waited for it. Returns the number of
   * shards that had work.
   */
  turn(): number {
    const turns: Turn[] = [];
    for (const s of this.dirty) {
      if (!s.node.hasReady()) {
        this.dirty.delete(s);
        continue;
      }
      this.level(s);
      const rd = s.node.ready();
      turns.push({ shard: s, rd, applied: [], takenAtMs: this.committedAt(s, rd) });
      this.sendAll(s.id, rd.messages);
      if (this.opts.unsafeSendBeforePersist) this.sendAll(s.id, rd.messagesAfterPersist);
    }
    if (turns.length === 0) {
      this.dropStaged();
      return 0;
    }
    this.counters.turns++;
    if (turns.some((t) => needsWrite(t.rd))) {
      const how = { stateMachine: this.opts.stateMachine, counters: this.counters, compactEvery: this.compactEvery, compactKeep: this.compactKeep };
      const write = (): void => {
        for (const t of turns) t.applied.push(...writeTurn(t.shard.id, t.shard.store, t.rd, this.staged.get(t.shard.id), how));
        // Answers leave before this turn's flush: they wait on their entries' durability, which
        // the raft log already has (see answerApplied), not on the apply's.
        for (const t of turns) this.answerApplied(t);
      };
      // A snapshot installs straight into LMDB, in a checkpoint; every other turn is logged.
      if (turns.some((t) => t.rd.snapshot !== undefined)) this.commitWith(write);
      else this.opts.store.logged(write);
      this.counters.commits++;
      // A compaction comes due as entries apply; it runs in a checkpoint, at once (every
      // compactEveryEntries entries of a shard).
      if (turns.some((t) => compactionDue(t.shard.store, this.compactEvery, this.compactKeep))) this.commitWith(() => undefined);
      this.appliedAt(turns);
    }
    this.dropStaged();
    for (const t of turns) {
      if (!this.opts.unsafeSendBeforePersist) this.sendAll(t.shard.id, t.rd.messagesAfterPersist);
      this.finish(t);
    }
    return turns.length;
  }

  /** A checkpoint when one is due (see Store.checkpointDue); true when it ran. */
  maybeCheckpoint(): boolean {
    if (!this.opts.store.checkpointDue()) return false;
    this.commitWith(() => undefined);
    return true;
  }

  /** A checkpoint with `fn`, and the compactions due, in one durable LMDB commit. */
  private commitWith(fn: () => void): void {
    this.opts.store.commit(() => {
      fn();
      for (const s of this.shards.values()) if (compactIfDue(s.store, this.compactEvery, this.compactKeep)) this.counters.compactions++;
    });
    this.counters.checkpoints++;
  }

  /**
   * With `latency`: the clock now (the moment this Ready's entries count as committed here), and
   * each committed entry that answers a proposal of this replica's is told as a commit latency.
   */
  private committedAt(s: Shard, rd: Ready): number {
    const { latency, clock } = this.opts;
    if (!latency || !clock || rd.committedEntries.length === 0) return 0;
    const now = clock();
    for (const e of rd.committedEntries) {
      for (const p of s.proposals.get(e.index) ?? []) if (p.term === e.term) latency.commit((now - p.atMs) / 1000);
    }
    return now;
  }

  /** With `latency`: after the commit that applied them, each shard's committed entries are told as an apply latency. */
  private appliedAt(turns: readonly Turn[]): void {
    const { latency, clock } = this.opts;
    if (!latency || !clock) return;
    const now = clock();
    for (const t of turns) if (t.rd.committedEntries.length > 0) latency.apply((now - t.takenAtMs) / 1000, t.rd.committedEntries.length);
  }

  /** After a turn: every staged snapshot was installed or refused by its core; their files go. */
  private dropStaged(): void {
    for (const st of this.staged.values()) rmSync(st.path, { force: true });
    this.staged.clear();
  }

  /**
   * Answers the proposals of `t`'s applied entries. Called inside the turn's write, after its
   * writes and before its flush: an entry is applied only once committed, and a leader counts
   * its own copy of an entry toward the commit only once its log append was durable
   * (RawNode.advance -> onPersisted), so every answered entry is durable in the logs of a quorum,
   * this leader's included. The apply itself need not be durable yet: it is a deterministic
   * function of the log, and a restart replays the log from the applied index of its store's last
   * checkpoint, reaching the same state and the same answers (client sessions keep a replayed
   * write from applying twice). If the write fails, the worker stops and its shards recover so.
   */
  private answerApplied(t: Turn): void {
    const s = t.shard;
    for (const a of t.applied) {
      const ps = s.proposals.get(a.index);
      if (!ps) continue;
      s.proposals.delete(a.index);
      for (const p of ps) {
        if (p.term !== a.term) {
          // Committed and applied with another term: final, this proposal never applies.
          this.replyError(s.id, p.reqId, 'ProposalDropped', `entry ${a.index} was replaced by another leader's entry`);
        } else if (a.reply) {
          this.reply(s.id, { reqId: p.reqId, ...a.reply });
        }
      }
    }
  }

  /** Reports failures, serves reads, publishes leader changes, then advances the core. */
  private finish(t: Turn): void {
    const { shard: s, rd } = t;
    for (const f of rd.failedProposals) {
      const ps = s.proposals.get(f.index);
      const i = ps?.findIndex((p) => p.term === f.term) ?? -1;
      if (!ps || i < 0) continue;
      const [p] = ps.splice(i, 1);
      if (ps.length === 0) s.proposals.delete(f.index);
      this.replyError(s.id, p!.reqId, f.code, `proposal at ${f.index}: ${f.code}`);
    }
    for (const f of rd.failedReads) {
      const r = s.reads.get(f.context);
      if (!r) continue;
      s.reads.delete(f.context);
      this.replyError(s.id, r.reqId, f.code, `read failed: ${f.code}`, s.node.status().lead);
    }
    for (const rs of rd.readStates) {
      const r = s.reads.get(rs.context);
      if (!r) continue;
      s.reads.delete(rs.context);
      s.readyReads.push({ index: rs.index, read: r });
    }
    if (rd.softState) this.opts.sink.event(s.id, rd.softState);
    s.node.advance();
    // What advance did (commits, applied conf changes) may leave more work: the shard stays dirty.
    this.touched(s);
    this.serveReads(s);
  }

  private serveReads(s: Shard): void {
    if (s.readyReads.length === 0) return;
    const applied = s.store.applied();
    const reader = s.store.reader();
    let kept = 0;
    for (const r of s.readyReads) {
      if (r.index > applied) {
        s.readyReads[kept++] = r;
        continue;
      }
      this.reply(s.id, { reqId: r.read.reqId, ok: true, body: this.opts.stateMachine.query(reader, r.read.query) });
    }
    s.readyReads.length = kept;
  }

  private sendAll(id: ShardId, ms: readonly Message[]): void {
    for (const m of ms) {
      if (m.type === MessageType.Snap) {
        // The data streams beside raft (see HostSink.snapshot); the core only names the follower.
        this.counters.snapshotsRequested++;
        this.opts.sink.snapshot(id, { from: m.from, to: m.to, term: m.term, index: m.snapshot!.metadata.index });
      } else {
        this.opts.sink.send(id, m);
      }
    }
    this.counters.messagesSent += ms.length;
  }

  private reply(id: ShardId, r: ClientReply): void {
    this.counters.replies++;
    this.opts.sink.reply(id, r);
  }

  private replyError(id: ShardId, reqId: number, code: string, message: string, leaderHint = 0): void {
    this.reply(id, { reqId, ok: false, code, message, leaderHint });
  }
}

function needsWrite(rd: Ready): boolean {
  return rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined || rd.committedEntries.length > 0;
}
