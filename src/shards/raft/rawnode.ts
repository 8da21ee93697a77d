import type { RaftConfig } from './config.js';
import { resolveConfig } from './config.js';
import { encodeConfChange } from './confchange.js';
import { assert } from './errors.js';
import type { ProgressState } from './progress.js';
import { Raft, confChangeOf } from './raft.js';
import type { RaftCounters } from './counters.js';
import type { ConfChange, ConfState, Entry, HardState, LogIndex, Message, NodeId, Ready, Role, SoftState, Term } from './types.js';
import { EntryType, MessageType } from './types.js';

export interface ProgressStatus {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly inflight: number;
}

export interface Status {
  readonly id: NodeId;
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lead: NodeId;
  readonly role: Role;
  readonly confState: ConfState;
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  /** Leader only: each member's replication progress. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
  readonly leadTransferee: NodeId;
  /** True while the group is quiet on this replica. */
  readonly quiesced: boolean;
  /** Non-zero: members said a configuration at this index left this replica out; it does not campaign. */
  readonly removedHint: LogIndex;
  readonly counters: Readonly<RaftCounters>;
}

/** What an outstanding Ready handed out, so advance() knows what became durable and applied. */
interface Outstanding {
  readonly lastEntry: { index: LogIndex; term: Term } | undefined;
  readonly snapshotIndex: LogIndex | undefined;
  readonly committed: readonly Entry[];
  readonly hardState: HardState | undefined;
}

/**
 * The facade the shell drives: feed it ticks, messages and proposals; take a {@link Ready}; do the
 * work it asks (persist, send, apply) in the documented order; call {@link advance}.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Outstanding | undefined;

  constructor(config: RaftConfig) {
    const cfg = resolveConfig(config);
    this.raft = new Raft(cfg);
    this.prevSoft = this.softState();
    this.prevHard = this.hardState();
  }

  /** Advances the logical clock by one tick (election and heartbeat timers). */
  tick(): void {
    this.raft.tick();
  }

  /** One tick's timer work without moving the clock: `elapse(1)` + `tickTimers()` = `tick()`. */
  tickTimers(): void {
    this.raft.tickTimers();
  }

  /** Feeds a message from a peer. Messages addressed to another node are ignored. */
  step(m: Message): void {
    assert(m.type !== MessageType.Hup, 'step: Hup is local; use campaign()');
    this.raft.step(m);
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void {
    this.raft.wake();
    this.raft.hup(false);
  }

  /**
   * Ends quiet (see RaftConfig.quiesceAfterTicks). The shell calls it when it learns that the
   * node leading this group is gone, or that a peer came back: a quiet follower then runs its
   * election timer again, a quiet leader heartbeats.
   */
  wake(): void {
    this.raft.wake();
  }

  /** True while the group is quiet on this replica (cheaper than status()). */
  isQuiesced(): boolean {
    return this.raft.quiesced;
  }

  /** Leader of the current term as far as this replica knows, or NONE (cheaper than status()). */
  leader(): NodeId {
    return this.raft.lead;
  }

  /** Current term (cheaper than status()). */
  term(): Term {
    return this.raft.term;
  }

  /**
   * True when a tick would only advance the logical clock (the group is quiet here, no forwarded
   * read waits). It stays true under ticks alone: only step, propose, reads, transfers, wake() and
   * campaign() end it. A shell hosting many groups may then stop ticking this one and call
   * {@link skipTicks} with the ticks it left out before anything else reaches the node.
   */
  ticksIdle(): boolean {
    return this.raft.ticksIdle();
  }

  /**
   * The same as `n` calls of {@link tick} on a node for which {@link ticksIdle} holds (asserted):
   * its clock, which lease reads and heartbeat send ticks are measured on, moves by `n`.
   */
  skipTicks(n: number): void {
    this.raft.skipTicks(n);
  }

  /**
   * Moves the clock `n` ticks on without counting them on any timer: for ticks a shell runs late,
   * in a row, after its thread stalled (see {@link Raft.elapse}). Any node, quiet or not.
   */
  elapse(n: number): void {
    this.raft.elapse(n);
  }

  /**
   * Appends `data` as a new entry (leader only). Returns the entry's index and term: the proposal
   * succeeded when that (index, term) shows up in `committedEntries`; a Ready's `failedProposals`
   * reports it otherwise. Throws RaftError NotLeader (with `leaderHint`), TransferInProgress,
   * UncommittedBytesExceeded.
   */
  propose(data: Uint8Array): { index: LogIndex; term: Term } {
    return this.raft.propose(data, EntryType.Normal);
  }

  /**
   * Proposes one membership change (leader only). It takes effect on every replica when the
   * replica applies it (at advance). Throws RaftError NotLeader, ConfChangePending,
   * InvalidConfChange, TransferInProgress, UncommittedBytesExceeded.
   */
  proposeConfChange(cc: ConfChange): { index: LogIndex; term: Term } {
    return this.raft.proposeConfChange(cc, encodeConfChange(cc));
  }

  /**
   * Hands leadership to voter `to`: once it is up to date it is told to campaign at once.
   * Proposals are refused meanwhile; the attempt is abandoned after `transferTimeoutTicks`.
   * Throws RaftError NotLeader, InvalidTransferTarget.
   */
  transferLeader(to: NodeId): void {
    this.raft.transferLeader(to);
  }

  /** Abandons a leadership transfer in progress; proposals are accepted again. */
  abortTransfer(): void {
    this.raft.abortTransfer();
  }

  /**
   * Asks for a linearizable read. `context` identifies it (unique among this node's outstanding
   * reads). The answer is a ReadState (serve once applied >= its index) or a FailedRead.
   * 'lease' reads are answered by a leader without a quorum round while its lease holds (only with
   * check-quorum; else FailedRead LeaseReadRequiresCheckQuorum); followers serve them as 'safe'.
   */
  readIndex(context: number, mode: 'safe' | 'lease' = 'safe'): void {
    this.raft.readIndex(context, mode);
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role, term: this.raft.term };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    if (r.hasPendingAppends()) return true;
    // Called for every shard on every loop turn: compare fields, allocate nothing.
    const hard = this.prevHard;
    const soft = this.prevSoft;
    return (
      r.msgs.length > 0 ||
      r.msgsAfterPersist.length > 0 ||
      r.log.unstableEntries().length > 0 ||
      r.log.pendingSnapshot() !== undefined ||
      r.log.hasNextCommittedEnts() ||
      r.readStates.length > 0 ||
      r.failedReads.length > 0 ||
      r.failedProposals.length > 0 ||
      r.term !== hard.term ||
      r.vote !== hard.vote ||
      r.log.committed !== hard.commit ||
      r.lead !== soft.lead ||
      r.role !== soft.role ||
      r.term !== soft.term
    );
  }

  /** The next batch of work. Only one may be outstanding: call advance() before the next. */
  ready(): Ready {
    assert(this.outstanding === undefined, 'ready: the previous Ready was not advanced');
    const r = this.raft;
    r.flushAppends();
    const soft = this.softState();
    const hard = this.hardState();
    const entries = r.log.unstableEntries().slice();
    const snapshot = r.log.pendingSnapshot();
    const committed = r.log.nextCommittedEnts(r.cfg.committedBytesPerReadyMax);
    if (committed.length > 0) r.log.applying = committed[committed.length - 1]!.index;
    const softChanged = soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role || soft.term !== this.prevSoft.term;
    const hardChanged = !sameHard(hard, this.prevHard);
    // Nothing may speak for a term before that term is durable (a crash would reuse it).
    const termChanged = hard.term !== this.prevHard.term;
    const rd: Ready = {
      softState: softChanged ? soft : undefined,
      hardState: hardChanged ? hard : undefined,
      snapshot,
      entries,
      messages: termChanged ? [] : r.msgs,
      messagesAfterPersist: termChanged ? [...r.msgs, ...r.msgsAfterPersist] : r.msgsAfterPersist,
      committedEntries: committed,
      readStates: r.readStates,
      failedReads: r.failedReads,
      failedProposals: r.failedProposals,
    };
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    r.failedReads = [];
    r.failedProposals = [];
    if (softChanged) this.prevSoft = soft;
    const last = entries[entries.length - 1];
    this.outstanding = {
      lastEntry: last ? { index: last.index, term: last.term } : undefined,
      snapshotIndex: snapshot?.metadata.index,
      committed,
      hardState: hardChanged ? hard : undefined,
    };
    return rd;
  }

  /** The shell did everything the last Ready asked: it is durable and applied. */
  advance(): void {
    const out = this.outstanding;
    assert(out !== undefined, 'advance: no outstanding Ready');
    this.outstanding = undefined;
    const r = this.raft;
    if (out.hardState) this.prevHard = out.hardState;
    if (out.snapshotIndex !== undefined) {
      r.log.stableSnapTo(out.snapshotIndex);
      r.log.appliedTo(out.snapshotIndex);
    }
    if (out.lastEntry) r.log.stableTo(out.lastEntry.index, out.lastEntry.term);
    if (out.committed.length > 0) {
      for (const e of out.committed) {
        if (e.type === EntryType.ConfChange) r.applyConfChange(confChangeOf(e), e.index);
      }
      r.log.appliedTo(out.committed[out.committed.length - 1]!.index);
      r.onApplied(out.committed);
    }
    r.onPersisted();
  }

  /** The core's event counts (elections, leaderships, ...), live and without a copy: read, never kept. */
  counters(): Readonly<RaftCounters> {
    return this.raft.counters;
  }

  /** Membership as of the applied index. */
  confState(): ConfState {
    return this.raft.confState();
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map<NodeId, ProgressStatus>();
    if (r.role === 'leader') {
      for (const [id, pr] of r.prs) {
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner, inflight: pr.inflights.count });
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      role: r.role,
      confState: r.confState(),
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      progress,
      leadTransferee: r.leadTransferee,
      quiesced: r.quiesced,
      removedHint: r.removedHint,
      counters: { ...r.counters },
    };
  }

  /** Unresolved proposals and queued reads (bounded by uncommittedBytesMax and readQueueMax). */
  backlog(): ReturnType<Raft['backlog']> {
    return this.raft.backlog();
  }
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
