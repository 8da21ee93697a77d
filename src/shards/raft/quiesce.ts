import type { CoreView } from './core-view.js';
import { assert } from './errors.js';
import type { RaftCounters } from './counters.js';
import type { LogIndex, Message } from './types.js';
import { MessageType, NONE } from './types.js';

/**
 * What quiescence sees of the raft core: its public state, read live. Quiescence changes none of
 * it but the progresses' `recentActive` (a waking leader gives its followers a fresh check-quorum
 * period) and the `quiesced` counter.
 */
export interface QuiesceCore extends CoreView {
  readonly counters: Pick<RaftCounters, 'quiesced'>;
}

/** The core's private parts quiescence uses, handed over as closures so they stay private. */
export interface QuiesceHooks {
  /** Moves the logical clock `n` ticks on, as `n` ticks that do nothing else would. */
  advanceClock(n: number): void;
  /** Index of the membership change not applied yet, if any (see Raft). */
  pendingConfIndex(): LogIndex;
  /** Reads held: queued, in rounds, or forwarded and unanswered. */
  readsHeld(): number;
  /** Election timer back to zero. */
  restartElectionTimer(): void;
  /** Heartbeat timer back to zero and a heartbeat to every other member now. */
  heartbeatNow(): void;
  /** A heartbeat to every other member that tells it to go quiet. */
  bcastQuiesce(): void;
  /** Lifts the promise not to help elect another leader (see Raft's `leaseUntil`). */
  endPromise(): void;
}

/**
 * Quiescence: a group with nothing to do stops heartbeating. After `quiesceAfterTicks` idle ticks
 * the leader sends a last heartbeat marked `quiesce` and goes quiet; a follower whose log ends
 * exactly where the leader's does goes quiet on it. Activity (see {@link wakeOn}), a proposal, a
 * read or the shell's wake() ends it.
 */
export class Quiescence {
  /**
   * Quiet: the group was idle, so this replica neither heartbeats (leader) nor runs its election
   * timer (follower); the logical clock still advances. Any message other than the leader's
   * quiescing heartbeat, another node's campaign and late copies of the leader's own campaign
   * (and, on a leader, heartbeat responses), any proposal or read, and the shell's wake() end it.
   * A quiet follower counts as in contact with its leader (see Raft's inLease). A quiet leader
   * holds no reads and moves no leadership: it went quiet idle, and a read or a transfer wakes it.
   */
  quiesced = false;
  /** Leader: consecutive ticks the group has been idle; 0 whenever it is not. */
  private idleTicks = 0;

  constructor(
    private readonly core: QuiesceCore,
    private readonly hooks: QuiesceHooks,
  ) {}

  /** A new role or term starts awake. */
  reset(): void {
    this.quiesced = false;
    this.idleTicks = 0;
  }

  /**
   * True when a tick would only advance the logical clock: the group is quiet here and no
   * forwarded read waits to expire. It stays true until a message, proposal, read or wake() reaches
   * this node (ticks alone never end it), so a shell may leave such a node unticked and catch its
   * clock up with {@link skipTicks} before its next input.
   */
  ticksIdle(): boolean {
    return this.quiesced && (this.core.role === 'leader' || this.hooks.readsHeld() === 0);
  }

  /** Exactly what `n` ticks do to a node for which {@link ticksIdle} holds. */
  skipTicks(n: number): void {
    if (!(Number.isInteger(n) && n >= 0)) assert(false, `skipTicks: bad tick count ${n}`);
    assert(this.ticksIdle(), 'skipTicks: the node is not idle (its ticks do more than move the clock)');
    this.hooks.advanceClock(n);
  }

  /** Idle: every member matches the whole log, all of it applied, nothing queued or pending. */
  private idle(): boolean {
    const c = this.core;
    const last = c.log.lastIndex();
    if (c.leadTransferee !== NONE || c.log.committed !== last || c.log.applied !== last || this.hooks.readsHeld() > 0) return false;
    if (this.hooks.pendingConfIndex() > c.log.applied) return false;
    for (const [id, pr] of c.prs) {
      if (id !== c.id && (pr.match !== last || pr.state !== 'replicate' || pr.inflights.count > 0)) return false;
    }
    return true;
  }

  /**
   * The leader's term holds one entry, its first (the no-op of its election): nothing was proposed
   * since. A compacted predecessor (term unknown) does not count as another term's entry, so such
   * a log counts as not fresh and waits the usual idle ticks.
   */
  private onlyFirstEntry(): boolean {
    const c = this.core;
    const last = c.log.lastIndex();
    if (c.log.term(last) !== c.term) return false;
    const before = c.log.term((last - 1) as LogIndex);
    return before !== undefined && before !== c.term;
  }

  /** Leader, at the end of each tick: counts idle ticks and goes quiet after enough of them. */
  maybeQuiesce(): void {
    if (this.core.cfg.quiesceAfterTicks === 0 || this.core.role !== 'leader') return;
    if (!this.idle()) {
      this.idleTicks = 0;
      return;
    }
    if (++this.idleTicks < (this.onlyFirstEntry() ? this.core.cfg.quiesceNewLeaderAfterTicks : this.core.cfg.quiesceAfterTicks)) return;
    this.hooks.bcastQuiesce();
    this.quiesced = true;
    assert(this.hooks.readsHeld() === 0 && this.core.leadTransferee === NONE, 'a quiet leader holds no reads and no transfer');
    this.core.counters.quiesced++;
  }

  /**
   * Follower, on its leader's heartbeat `m` (already answered): goes quiet if the leader asked and
   * this log ends exactly where the leader's does.
   */
  onHeartbeat(m: Message): void {
    const c = this.core;
    if (m.quiesce === true && c.cfg.quiesceAfterTicks > 0 && this.hooks.readsHeld() === 0 && c.log.lastIndex() === m.commit && c.log.lastTerm() === c.term) {
      this.quiesced = true;
      this.hooks.restartElectionTimer();
    }
  }

  /**
   * Ends quiet. A follower restarts its election timer (so it campaigns if the leader is gone);
   * a leader heartbeats at once and gives its followers a fresh check-quorum period.
   */
  wake(): void {
    if (!this.quiesced) return;
    this.quiesced = false;
    this.idleTicks = 0;
    this.hooks.restartElectionTimer();
    if (this.core.role === 'leader') {
      for (const pr of this.core.prs.values()) pr.recentActive = true;
      this.hooks.heartbeatNow();
    }
  }

  /** What ends quiet when a message arrives on a quiet node (see {@link quiesced}). */
  wakeOn(m: Message): void {
    const c = this.core;
    if (c.role === 'leader') {
      if (m.type !== MessageType.HeartbeatResp) this.wake();
      return;
    }
    if (m.type === MessageType.Heartbeat && m.quiesce === true && m.from === c.lead && m.term === c.term) return;
    if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
      // Another node campaigns while our leader said all is well: stay quiet (in lease), refuse.
      if (m.from !== c.lead) return;
      // A campaign of the leader's own term or an older one is a late copy of what made it
      // leader (duplicated or long delayed): the leadership it won still stands, and so does
      // the promise its lease reads count on. Only a campaign of a later term says the leader
      // lost its state (a restart) and its leadership is over.
      if (m.term <= c.term && !c.cfg.bugs.has('wake-on-stale-campaign')) return;
      this.hooks.endPromise();
    }
    this.wake();
  }
}
