import type { ResolvedConfig } from './config.js';
import { decodeConfChange } from './confchange.js';
import { Election, TRANSFER_CONTEXT } from './election.js';
import { RaftError, RaftErrorCode, assert } from './errors.js';
import { RaftLog } from './log.js';
import { ProposalTracker } from './proposals.js';
import { newRaftCounters } from './counters.js';
import type { RaftCounters } from './counters.js';
import type { Progress } from './progress.js';
import { majority, quorumValue } from './quorum.js';
import { Follower } from './follower.js';
import { Membership } from './membership.js';
import { Quiescence } from './quiesce.js';
import { ReadPath } from './read.js';
import { Replication } from './replication.js';
import type { ConfChange, ConfState, Entry, FailedProposal, FailedRead, LogIndex, Message, NodeId, ReadState, Role, Term } from './types.js';
import { ENTRY_OVERHEAD_BYTES, EntryType, MessageType, NONE, emptyMessage } from './types.js';

/**
 * The raft state machine: pure and synchronous. Inputs are steps, ticks and proposals; outputs are
 * collected in public fields that {@link RawNode} turns into a Ready.
 */
export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;

  /** Current term; persisted. Only grows. */
  term: Term;
  /** Whom this node voted for in `term`; persisted. Never changes within a term once set. */
  vote: NodeId;
  /** Leader of `term` as far as this node knows, or NONE. */
  lead: NodeId = NONE;
  role: Role = 'follower';

  /** Progress of every member (voters and learners), including this node. */
  prs = new Map<NodeId, Progress>();
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();

  /** Messages that may leave at once. */
  msgs: Message[] = [];
  /** Messages that may leave only after the current hard state and entries are durable. */
  msgsAfterPersist: Message[] = [];
  readStates: ReadState[] = [];
  failedReads: FailedRead[] = [];
  failedProposals: FailedProposal[] = [];

  /** Ticks since the last election timeout reset (follower: since it heard from the leader). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Drawn at each role change by {@link Election.timeout}: [E, 2E) ticks, wider after contended campaigns. */
  private randomizedElectionTimeout = 0;
  /** Ticks since this node started. */
  private now = 0;
  /**
   * Until this tick the node promises a leader not to help elect another one (check-quorum):
   * it grants no vote and does not campaign. Set an election timeout ahead each time it hears
   * from the leader, and for the first election timeout after a start (it may have promised
   * before a crash). A leader's lease reads rely on this promise; only the leader's own
   * TimeoutNow lifts it.
   */
  private leaseUntil: number;

  /** Transfer target, or NONE. Proposals are refused while set. */
  leadTransferee: NodeId = NONE;
  private transferElapsed = 0;

  /**
   * Index of a configuration that a member told us (notMember) leaves this replica out, newer
   * than ours; 0 when none. While set the replica does not campaign: it was removed while cut off
   * and never learned it, and would otherwise pre-vote every election timeout forever. Cleared
   * when a leader talks to it or it applies a newer configuration (it was added back, or the
   * hint came from a configuration since replaced).
   */
  removedHint = 0 as LogIndex;
  /** Bytes of proposed entries not yet applied (leader only). */
  private uncommittedBytes = 0;
  /** Entries were proposed since the last broadcast; see {@link flushAppends}. */
  private appendPending = false;
  /** Proposals accepted while leader, not yet resolved by a commit: (index, term). Ordered by index. */
  private readonly proposals = new ProposalTracker();

  /** Linearizable reads and the leader's lease (read.ts). */
  private readonly read: ReadPath = new ReadPath(this, {
    now: () => this.now,
    heartbeatQuorum: () => this.repl.heartbeatQuorum(),
  });

  /** The leader's side of log replication (replication.ts). */
  private readonly repl: Replication = new Replication(this, this.read, { now: () => this.now });

  /** The configuration and its changes (membership.ts). */
  private readonly members: Membership = new Membership(this, this.repl, this.read);

  /** Quiescence of an idle group (quiesce.ts). */
  private readonly quiet = new Quiescence(this, {
    advanceClock: (n) => {
      this.now += n;
    },
    pendingConfIndex: () => this.members.pendingConfIndex,
    readsHeld: () => this.read.queue.size(),
    restartElectionTimer: () => {
      this.electionElapsed = 0;
    },
    heartbeatNow: () => {
      this.heartbeatElapsed = 0;
      this.repl.bcastHeartbeat();
    },
    bcastQuiesce: () => {
      this.repl.bcastHeartbeat(true);
    },
    endPromise: () => {
      this.leaseUntil = this.now;
    },
  });

  /** A follower's side of replication (follower.ts). */
  private readonly follower: Follower = new Follower(this, this.members, this.quiet, { resolveProposals: () => this.resolveProposals() });

  /** Campaigns and votes (election.ts). */
  private readonly election: Election = new Election(this, {
    becomePreCandidate: () => this.becomePreCandidate(),
    becomeCandidate: () => this.becomeCandidate(),
    becomeLeader: () => this.becomeLeader(),
    inLease: () => this.inLease(),
    restartElectionTimer: () => {
      this.electionElapsed = 0;
    },
  });

  readonly counters: RaftCounters = newRaftCounters();

  constructor(cfg: ResolvedConfig) {
    this.cfg = cfg;
    this.id = cfg.id;
    const { hardState, confState } = cfg.storage.initialState();
    this.log = new RaftLog(cfg.storage, hardState.commit, cfg.applied, {
      noConflictTruncate: cfg.bugs.has('no-conflict-truncate'),
      voteWithoutLogCheck: cfg.bugs.has('vote-without-log-check'),
    });
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.leaseUntil = cfg.electionTimeoutTicks;
    this.members.restore(confState, this.log.applied);
    this.becomeFollower(this.term, NONE);
    // Only the first timeout after a start is staggered: later ones follow the usual rules.
    this.randomizedElectionTimeout += cfg.campaignRank * cfg.campaignStaggerTicks;
  }

  // ---------------------------------------------------------------- membership

  confState(): ConfState {
    return this.members.confState();
  }

  /** A voter of the current configuration may campaign (unless members said it was removed). */
  promotable(): boolean {
    return this.voters.has(this.id) && !this.log.pendingSnapshot() && this.removedHint === 0;
  }

  /** Applies the committed membership change at `index` (as the shell confirms it applied the entry). */
  applyConfChange(cc: ConfChange, index: LogIndex): void {
    this.members.applyConfChange(cc, index);
  }

  // ---------------------------------------------------------------- roles

  private reset(t: Term): void {
    if (this.term !== t) {
      this.term = t;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.quiet.reset();
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.election.timeout();
    this.election.clearVotes();
    this.leadTransferee = NONE;
    this.transferElapsed = 0;
    this.repl.reset();
    this.uncommittedBytes = 0;
    this.read.reset();
    const next = (this.log.lastIndex() + 1) as LogIndex;
    for (const [id, pr] of this.prs) {
      const fresh = this.members.newProgress(next, pr.isLearner);
      if (id === this.id) fresh.maybeUpdate(this.log.stableLastIndex());
      this.prs.set(id, fresh);
    }
  }

  becomeFollower(t: Term, lead: NodeId): void {
    const wasLeader = this.role === 'leader';
    const oldLead = this.lead;
    this.read.failReads(wasLeader);
    // A leader is known: elections work, and the timeout reset() draws is the usual one.
    if (lead !== NONE) this.election.forgetCampaigns();
    this.reset(t);
    this.role = 'follower';
    this.lead = lead;
    if (wasLeader) this.counters.stepDowns++;
    if (oldLead !== lead) this.read.failForwardedReads();
  }

  private becomePreCandidate(): void {
    this.read.failReads(this.role === 'leader');
    this.read.failForwardedReads();
    // Pre-vote changes neither term nor vote: a node that cannot win disturbs nobody.
    this.election.clearVotes();
    this.lead = NONE;
    this.role = 'pre-candidate';
    this.electionElapsed = 0;
    this.randomizedElectionTimeout = this.election.timeout();
    this.counters.preVotes++;
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'becomeCandidate: leader');
    this.read.failReads(false);
    this.read.failForwardedReads();
    this.reset((this.term + 1) as Term);
    this.vote = this.id;
    this.role = 'candidate';
    this.counters.elections++;
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', `becomeLeader: role ${this.role}`);
    this.election.forgetCampaigns();
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    this.counters.leaderships++;
    const self = this.prs.get(this.id);
    assert(self !== undefined, 'becomeLeader: not a member');
    self.becomeReplicate();
    // A no-op of the new term: commits everything before it (§5.4.2) and opens reads.
    this.appendEntries([{ term: this.term, index: 0 as LogIndex, type: EntryType.Normal, data: new Uint8Array(0) }], false);
    // Conf changes wait until this leader applied its own first entry: the one-at-a-time rule
    // is safe only once an entry of the current term is committed.
    this.members.pendingConfIndex = this.log.lastIndex();
    this.repl.bcastAppend();
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    this.now++;
    this.tickTimers();
  }

  /**
   * A tick's timer work without moving the clock: `elapse(1)` then `tickTimers()` is one tick. A
   * shell that moves the clock wherever it reads it may run the timers once per pass of its loop
   * (see {@link elapse} for why that is safe).
   */
  tickTimers(): void {
    if (this.quiet.quiesced) {
      // Forwarded reads whose answer got lost still expire while quiet.
      if (this.role !== 'leader') this.read.expireForwardedReads();
      return;
    }
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /**
   * Moves the logical clock `n` ticks on without counting them on any timer (election, heartbeat,
   * check-quorum, transfer, snapshot retry, stall): for ticks a shell runs late, in a row, after
   * its thread stalled. This replica could step no message meanwhile, so those ticks say nothing
   * about its peers: counted on the timers they start campaigns whose answers cannot have
   * arrived yet and depose leaders whose followers did answer, and on thousands of groups at once
   * that traffic is what keeps the worker behind. Only liveness rides on the timers; what safety
   * rides on is dated by the clock (a follower's promise not to vote, `leaseUntil`, and the send
   * ticks of the heartbeats a lease counts), and the clock stays level with real time. Timers that
   * count fewer ticks than the clock only make campaigns, step-downs and heartbeats later.
   */
  elapse(n: number): void {
    if (!(Number.isInteger(n) && n >= 0)) assert(false, `elapse: bad tick count ${n}`);
    this.now += n;
  }

  /** See {@link Quiescence.ticksIdle}: the shell may skip this node's ticks while it holds. */
  ticksIdle(): boolean {
    return this.quiet.ticksIdle();
  }

  /** Exactly what `n` calls of {@link tick} do to a node for which {@link ticksIdle} holds. */
  skipTicks(n: number): void {
    this.quiet.skipTicks(n);
  }

  private tickElection(): void {
    this.electionElapsed++;
    this.read.expireForwardedReads();
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.repl.tick();
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.leadTransferee !== NONE) {
      this.transferElapsed++;
      if (this.transferElapsed >= this.cfg.transferTimeoutTicks) this.abortTransfer();
    }
    const last = this.log.lastIndex();
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      if (pr.state === 'snapshot') {
        // A snapshot that got lost must not stall the follower forever.
        if (++pr.snapshotTicks >= 2 * this.cfg.electionTimeoutTicks) pr.becomeProbe();
      } else if (pr.state === 'replicate' && pr.match < last) {
        pr.stallTicks++;
      }
    }
    if (this.electionElapsed >= this.cfg.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE);
          return;
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      this.repl.bcastHeartbeat();
    }
    this.quiet.maybeQuiesce();
  }

  /** Quiet: see {@link Quiescence.quiesced}. */
  get quiesced(): boolean {
    return this.quiet.quiesced;
  }

  /** Ends quiet (no-op when awake): see {@link Quiescence.wake}. */
  wake(): void {
    this.quiet.wake();
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const v of this.voters) if (v === this.id || this.prs.get(v)?.recentActive) active++;
    return active >= majority(this.voters.size);
  }

  // ---------------------------------------------------------------- elections

  /** Starts a (pre-)campaign. `transfer`: asked by the leader, so skip pre-vote and override leases. */
  hup(transfer: boolean): void {
    this.election.hup(transfer);
  }

  /** Followers that heard from a leader recently (or just restarted) refuse to help unseat it. */
  private inLease(): boolean {
    if (!this.cfg.checkQuorum) return false;
    return this.role === 'leader' || this.now < this.leaseUntil || this.quiet.quiesced;
  }

  /** A message from the leader of the current term: election timer and lease promise restart. */
  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.election.forgetCampaigns();
    // A leader counts us in its configuration.
    this.removedHint = 0 as LogIndex;
    this.lead = from;
    this.leaseUntil = this.now + this.cfg.electionTimeoutTicks;
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (m.to !== this.id && m.type !== MessageType.Hup) return;
    if (m.type === MessageType.Hup) {
      this.hup(false);
      return;
    }
    if (m.notMember === true) {
      this.members.onNotMember(m);
      return;
    }
    if ((m.type === MessageType.PreVote || m.type === MessageType.Vote) && !this.prs.has(m.from)) {
      // Tell a campaigning non-member which configuration left it out; the request itself is
      // still handled as usual (our configuration may be the one that lags).
      const t = m.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
      this.msgs.push({ ...emptyMessage(t, this.id, m.from, this.term), reject: true, notMember: true, index: this.members.confIndex });
      this.counters.notMemberHintsSent++;
    }
    if (this.quiet.quiesced) this.quiet.wakeOn(m);
    const campaigning = this.role === 'candidate' || this.role === 'pre-candidate';
    if (campaigning && (m.type === MessageType.PreVote || m.type === MessageType.Vote) && m.from !== this.id) this.election.contended();
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = m.type === MessageType.Vote && m.context === TRANSFER_CONTEXT;
        if (!force && this.inLease()) return;
      }
      if (m.type === MessageType.PreVote) {
        // Never change term on a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the term we would campaign in; the term moves at the real vote.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
        // A stale leader (e.g. back from a partition) learns the new term and steps down.
        this.msgs.push(emptyMessage(MessageType.AppResp, this.id, m.from, this.term));
      } else if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
        // The rejection carries our term: a candidate behind it learns the term and can catch
        // up, even if we are not among the nodes it would otherwise hear from.
        const t = m.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
        this.msgs.push({ ...emptyMessage(t, this.id, m.from, this.term), reject: true });
      }
      return;
    }

    switch (m.type) {
      case MessageType.Vote:
      case MessageType.PreVote:
        this.election.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        // A leader of our term exists: this campaign is over.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case MessageType.PreVoteResp:
      case MessageType.VoteResp:
        this.election.handleVoteResponse(m);
        return;
      case MessageType.ReadIndexResp:
        this.read.handleReadIndexResp(m);
        return;
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        this.heardFromLeader(m.from);
        if (m.type === MessageType.App) this.follower.handleAppend(m);
        else if (m.type === MessageType.Heartbeat) this.follower.handleHeartbeat(m);
        else this.follower.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // The leader asked us to take over: campaign at once, overriding leases and pre-vote.
        this.hup(true);
        return;
      case MessageType.ReadIndexResp:
        this.read.handleReadIndexResp(m);
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- leader

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    switch (m.type) {
      case MessageType.AppResp:
        if (pr) this.repl.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        if (pr) this.repl.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.ReadIndex:
        this.read.queueRead({ context: m.context, from: m.from, tick: this.now });
        return;
      default:
        return;
    }
  }

  /** Raises commit to what a quorum of voters durably holds, counting only entries of this term. */
  maybeCommit(): boolean {
    const mci = quorumValue(this.voters, (id) => this.prs.get(id)?.match ?? 0) as LogIndex;
    if (mci <= this.log.committed) return false;
    // §5.4.2: an entry of an earlier term is committed only indirectly, by an entry of this term.
    if (!this.cfg.bugs.has('commit-previous-term') && this.log.term(mci) !== this.term) return false;
    this.log.commitTo(mci);
    this.resolveProposals();
    this.read.maybeStartReadRound();
    return true;
  }

  private appendEntries(ents: Entry[], countBytes: boolean): Entry[] {
    let idx = this.log.lastIndex();
    const stamped = ents.map((e) => {
      idx = (idx + 1) as LogIndex;
      return { ...e, term: this.term, index: idx };
    });
    if (countBytes) for (const e of stamped) this.uncommittedBytes += e.data.length + ENTRY_OVERHEAD_BYTES;
    this.log.append(stamped);
    if (this.cfg.bugs.has('apply-before-persist')) {
      // Injected bug: the leader counts its own entries before they are durable.
      this.prs.get(this.id)?.maybeUpdate(this.log.lastIndex());
      this.maybeCommit();
    }
    return stamped;
  }

  /** Self progress catches up with what the shell made durable. */
  onPersisted(): void {
    if (this.role !== 'leader') return;
    const self = this.prs.get(this.id);
    if (!self) return;
    const stable = this.log.stableLastIndex();
    if (stable > self.match && this.log.term(stable) !== undefined) {
      self.maybeUpdate(stable);
      if (this.maybeCommit()) this.repl.bcastAppend();
    }
  }

  propose(data: Uint8Array, type: EntryType = EntryType.Normal): { index: LogIndex; term: Term } {
    this.wake();
    if (this.role !== 'leader') {
      this.counters.proposalsRefused++;
      throw new RaftError(RaftErrorCode.NotLeader, `node ${this.id} is not the leader`, this.lead);
    }
    if (this.leadTransferee !== NONE) {
      this.counters.proposalsRefused++;
      throw new RaftError(RaftErrorCode.TransferInProgress, `leadership is moving to ${this.leadTransferee}`, this.lead);
    }
    const cost = data.length + ENTRY_OVERHEAD_BYTES;
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + cost > this.cfg.uncommittedBytesMax) {
      this.counters.proposalsRefused++;
      throw new RaftError(
        RaftErrorCode.UncommittedBytesExceeded,
        `uncommitted log holds ${this.uncommittedBytes} bytes; limit uncommittedBytesMax=${this.cfg.uncommittedBytesMax}`,
        this.lead,
      );
    }
    const [e] = this.appendEntries([{ term: this.term, index: 0 as LogIndex, type, data }], true);
    assert(e !== undefined, 'propose: nothing appended');
    this.proposals.track(e.index, e.term);
    // Followers get the new entries when the shell next asks for a Ready, so every proposal of
    // one shell turn rides the same App message.
    this.appendPending = true;
    return { index: e.index, term: e.term };
  }

  proposeConfChange(cc: ConfChange, data: Uint8Array): { index: LogIndex; term: Term } {
    this.wake();
    if (this.role !== 'leader') throw new RaftError(RaftErrorCode.NotLeader, `node ${this.id} is not the leader`, this.lead);
    this.members.checkProposal(cc);
    const r = this.propose(data, EntryType.ConfChange);
    this.members.pendingConfIndex = r.index;
    return r;
  }

  private resolveProposals(): void {
    // A leader's log keeps every entry it proposed; any other role's may have lost some.
    const lastIndex = this.role === 'leader' ? undefined : this.log.lastIndex();
    for (const f of this.proposals.resolve(this.log.committed, (i) => this.log.term(i), lastIndex)) this.failedProposals.push(f);
  }

  /** Called as the shell confirms entries applied, to release uncommitted budget. */
  onApplied(ents: readonly Entry[]): void {
    if (this.role !== 'leader') return;
    for (const e of ents) {
      if (e.term === this.term && e.data.length > 0) this.uncommittedBytes = Math.max(0, this.uncommittedBytes - e.data.length - ENTRY_OVERHEAD_BYTES);
    }
  }

  // ---------------------------------------------------------------- sending

  /** Sends proposed entries to followers, batched since the last call. */
  flushAppends(): void {
    if (!this.appendPending) return;
    this.appendPending = false;
    if (this.role === 'leader') this.repl.bcastAppend();
  }

  hasPendingAppends(): boolean {
    return this.appendPending && this.role === 'leader';
  }

  // ---------------------------------------------------------------- leadership transfer

  transferLeader(to: NodeId): void {
    // Refused before anything changes: a refusal must leave a quiet replica quiet, since a shell
    // may leave a quiet replica unticked and learns only from its inputs that it woke.
    if (this.role !== 'leader') throw new RaftError(RaftErrorCode.NotLeader, `node ${this.id} is not the leader`, this.lead);
    if (to === this.id || !this.voters.has(to)) {
      throw new RaftError(RaftErrorCode.InvalidTransferTarget, `cannot transfer leadership to ${to}: not another voter`);
    }
    this.wake();
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.transferElapsed = 0;
    const pr = this.prs.get(to)!;
    if (pr.match === this.log.lastIndex()) this.repl.sendTimeoutNow(to);
    else this.repl.sendAppend(to, true);
  }

  /** Abandons a leadership transfer in progress (no-op without one); proposals are accepted again. */
  abortTransfer(): void {
    if (this.leadTransferee === NONE) return;
    this.leadTransferee = NONE;
    this.transferElapsed = 0;
    this.counters.transfersAborted++;
  }

  // ---------------------------------------------------------------- reads

  /** Queues a linearizable read; the answer comes as a ReadState or a FailedRead (see {@link ReadPath.readIndex}). */
  readIndex(context: number, mode: 'safe' | 'lease'): void {
    this.read.readIndex(context, mode);
  }

  /** Pending (unresolved) proposals and queued reads, for status and tests. */
  backlog(): { proposals: number; reads: number; readRounds: number; uncommittedBytes: number } {
    return {
      proposals: this.proposals.size,
      reads: this.read.queue.pendingCount(),
      readRounds: this.read.queue.roundsInFlight(),
      uncommittedBytes: this.uncommittedBytes,
    };
  }
}

/** Decodes a committed conf change entry; a malformed one is a broken invariant (it was validated at propose). */
export function confChangeOf(e: Entry): ConfChange {
  assert(e.type === EntryType.ConfChange, 'confChangeOf: not a conf change entry');
  return decodeConfChange(e.data);
}
