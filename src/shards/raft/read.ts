import type { CoreView } from './core-view.js';
import { RaftErrorCode, assert } from './errors.js';
import { majority, quorumValue } from './quorum.js';
import type { RaftCounters } from './counters.js';
import { ReadOnly } from './read-only.js';
import type { QueuedRead } from './read-only.js';
import type { FailedRead, Message, NodeId, ReadState } from './types.js';
import { MessageType, NONE, emptyMessage } from './types.js';

/**
 * The lease ends this many ticks before a follower could vote again: two pay for the rounding of
 * the leader's and the follower's tick counts, the third for clocks that run at different rates
 * (up to 12 % with a 10-tick election timeout: the lease lasts under 8 ticks, the promise over 9).
 */
const LEASE_MARGIN_TICKS = 3;

/**
 * What the read path sees of the raft core: its public state, read live (the core swaps its
 * output lists at every Ready). The read path changes none of it; it only appends to the lists.
 */
export interface ReadCore extends CoreView {
  readonly voters: ReadonlySet<NodeId>;
  readonly msgs: Message[];
  readonly readStates: ReadState[];
  readonly failedReads: FailedRead[];
  readonly counters: Pick<RaftCounters, 'readRounds' | 'leaseReads'>;
  /** Ends quiet (a read is activity). */
  wake(): void;
}

/** The core's private parts the read path uses, handed over as closures so they stay private. */
export interface ReadHooks {
  /** Ticks since the node started. */
  now(): number;
  /** Sends a heartbeat to enough other voters for a quorum (see Raft.heartbeatQuorum); returns its sequence number. */
  heartbeatQuorum(): number;
}

/**
 * Linearizable reads (ReadIndex, §6.4, and leases): the decisions. A leader answers a read with
 * its commit index once a quorum acknowledged a heartbeat sent after the read arrived (a round),
 * or at once while its lease holds; a follower forwards the read to its leader. The queues and the
 * heartbeat send ticks are kept by {@link ReadOnly}.
 */
export class ReadPath {
  /** Reads waiting (leader: for a round; follower: for the leader's answer) and heartbeat send ticks. */
  readonly queue = new ReadOnly();
  /**
   * Set once this leader sent TimeoutNow: a forced election may follow, so no more lease reads
   * this term. Cleared by {@link reset} at every role change.
   */
  private leaseRevoked = false;

  constructor(
    private readonly core: ReadCore,
    private readonly hooks: ReadHooks,
  ) {}

  /** A new role or term: the lease of an earlier leadership proves nothing. */
  reset(): void {
    this.leaseRevoked = false;
    this.queue.resetHeartbeats();
  }

  /** The leader asked a follower to take over (TimeoutNow): it may win before our lease ends. */
  revokeLease(): void {
    this.leaseRevoked = true;
  }

  /** Queues a linearizable read; the answer comes as a ReadState or a FailedRead. */
  readIndex(context: number, mode: 'safe' | 'lease'): void {
    const c = this.core;
    c.wake();
    if (c.role === 'leader') {
      if (mode === 'lease') {
        const lease = this.lease();
        if (lease === 'refused') {
          c.failedReads.push({ context, code: RaftErrorCode.LeaseReadRequiresCheckQuorum });
          return;
        }
        if (lease === 'held') {
          c.counters.leaseReads++;
          c.readStates.push({ index: c.log.committed, context });
          return;
        }
        // No lease to lean on: fall back to a quorum round.
      }
      this.queueRead({ context, from: c.id, tick: this.hooks.now() });
      return;
    }
    if (c.lead === NONE) {
      c.failedReads.push({ context, code: RaftErrorCode.ReadDropped });
      return;
    }
    if (this.queue.size() >= c.cfg.readQueueMax) {
      c.failedReads.push({ context, code: RaftErrorCode.ReadQueueFull });
      return;
    }
    this.queue.add({ context, from: c.id, tick: this.hooks.now() });
    c.msgs.push({ ...emptyMessage(MessageType.ReadIndex, c.id, c.lead, c.term), context });
  }

  private committedInTerm(): boolean {
    return this.core.log.term(this.core.log.committed) === this.core.term;
  }

  /**
   * Leader: may a read be served from the lease? `refused` without check-quorum (a leader that
   * never steps down on its own has no lease to speak of); `held` while no other leader can have
   * been elected (see {@link leaseValid}) and this term has committed an entry; else `lapsed`.
   */
  private lease(): 'refused' | 'held' | 'lapsed' {
    const c = this.core;
    if (c.cfg.bugs.has('lease-read-without-check-quorum')) return this.committedInTerm() ? 'held' : 'lapsed';
    if (!c.cfg.checkQuorum) return 'refused';
    return this.committedInTerm() && this.leaseValid() ? 'held' : 'lapsed';
  }

  /** True while no other leader can have been elected: a quorum acked a heartbeat sent recently. */
  private leaseValid(): boolean {
    const c = this.core;
    if (this.leaseRevoked || c.leadTransferee !== NONE) return false;
    const seq = quorumValue(c.voters, (id) => (id === c.id ? this.queue.heartbeatSeq : (c.prs.get(id)?.ackedHeartbeat ?? 0)));
    if (seq === 0) return false;
    const sent = this.queue.sentTick(seq);
    if (sent === undefined) return false;
    return this.hooks.now() - sent < c.cfg.electionTimeoutTicks - LEASE_MARGIN_TICKS + 1;
  }

  /** Leader: queues a read (its own or a follower's) for the next round. */
  queueRead(r: QueuedRead): void {
    if (this.queue.size() >= this.core.cfg.readQueueMax) {
      this.rejectRead(r, RaftErrorCode.ReadQueueFull);
      return;
    }
    this.queue.add(r);
    this.maybeStartReadRound();
  }

  /** One round at a time: reads queued while a round is in flight ride the next one together. */
  maybeStartReadRound(): void {
    const c = this.core;
    if (c.role !== 'leader' || this.queue.pendingCount() === 0 || this.queue.roundsInFlight() > 0) return;
    // The commit index is only trustworthy as a read index once this term committed an entry.
    if (!this.committedInTerm()) return;
    // A leader that is the only voter is its own quorum; one that is not a voter asks the voters.
    const seq = c.voters.size === 1 && c.voters.has(c.id) ? ++this.queue.heartbeatSeq : this.hooks.heartbeatQuorum();
    const started = this.queue.startRound(seq, c.log.committed);
    assert(started && this.queue.roundsInFlight() === 1 && this.queue.pendingCount() === 0, 'read rounds: one at a time, carrying every pending read');
    c.counters.readRounds++;
    this.maybeCompleteReadRounds();
  }

  /** Leader: answers the reads of every round a quorum acknowledged, then starts the next round. */
  maybeCompleteReadRounds(): void {
    const c = this.core;
    if (c.role !== 'leader') return;
    const acked = (seq: number): boolean => {
      let acks = 0;
      for (const v of c.voters) {
        if (v === c.id || (c.prs.get(v)?.ackedHeartbeat ?? 0) >= seq) acks++;
      }
      return acks >= majority(c.voters.size);
    };
    for (const round of this.queue.completeRounds(acked)) {
      for (const r of round.reads) {
        if (r.from === c.id) c.readStates.push({ index: round.index, context: r.context });
        else c.msgs.push({ ...emptyMessage(MessageType.ReadIndexResp, c.id, r.from, c.term), index: round.index, context: r.context });
      }
    }
    this.maybeStartReadRound();
  }

  /** Follower: the leader's answer to a read this node forwarded. */
  handleReadIndexResp(m: Message): void {
    const c = this.core;
    if (this.queue.take(m.context, c.id) === undefined) return;
    if (m.reject) c.failedReads.push({ context: m.context, code: RaftErrorCode.ReadDropped });
    else c.readStates.push({ index: m.index, context: m.context });
  }

  private rejectRead(r: QueuedRead, code: RaftErrorCode): void {
    const c = this.core;
    if (r.from === c.id) c.failedReads.push({ context: r.context, code });
    else c.msgs.push({ ...emptyMessage(MessageType.ReadIndexResp, c.id, r.from, c.term), context: r.context, reject: true });
  }

  /** A leader losing its role fails every read it was holding. */
  failReads(wasLeader: boolean): void {
    if (!wasLeader) return;
    for (const r of this.queue.drain()) this.rejectRead(r, RaftErrorCode.ReadDropped);
  }

  /**
   * A forwarded read whose request or answer was lost would wait forever and hold a queue slot:
   * after an election timeout it fails (ReadDropped), and the client may retry.
   */
  expireForwardedReads(): void {
    for (const r of this.queue.expire(this.hooks.now() - this.core.cfg.electionTimeoutTicks)) {
      this.core.failedReads.push({ context: r.context, code: RaftErrorCode.ReadDropped });
    }
  }

  /** A follower whose leader changed fails the reads it forwarded: their answers may never come. */
  failForwardedReads(): void {
    if (this.core.role === 'leader') return;
    for (const r of this.queue.drain()) this.core.failedReads.push({ context: r.context, code: RaftErrorCode.ReadDropped });
  }
}
