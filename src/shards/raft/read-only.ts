import type { LogIndex, NodeId } from './types.js';

/** A read waiting for its index. */
export interface QueuedRead {
  readonly context: number;
  /** Who asked: this node, or a follower that forwarded it. */
  readonly from: NodeId;
  /** Tick it was queued at (follower side: forwarded reads whose answer got lost expire). */
  readonly tick: number;
}

/** One ReadIndex quorum round: every read queued before it started is released by it. */
interface ReadRound {
  /** Heartbeat sequence number that carries the round; acks of it or later ones count. */
  readonly seq: number;
  /** Commit index when the round started: the reads' index. */
  readonly index: LogIndex;
  readonly reads: QueuedRead[];
}

/**
 * The bookkeeping of linearizable reads: reads waiting for a round (leader) or for the leader's
 * answer (follower), the rounds in flight (at most one, so reads queued meanwhile batch into the
 * next), and the send tick of recent heartbeats for the lease. Decisions stay in the raft state
 * machine; this only keeps the queues, each bounded by the caller's `readQueueMax` checks.
 */
export class ReadOnly {
  /** Leader: reads waiting for the next round. Follower: reads forwarded to the leader. */
  private pending: QueuedRead[] = [];
  private rounds: ReadRound[] = [];
  /** Last heartbeat sequence number; only grows, across terms too. */
  heartbeatSeq = 0;
  /** Send tick of recent heartbeat sequence numbers, oldest first. */
  private heartbeatTicks: { seq: number; tick: number }[] = [];

  /** Reads held: pending plus in rounds. */
  size(): number {
    return this.pending.length + this.rounds.reduce((s, r) => s + r.reads.length, 0);
  }

  pendingCount(): number {
    return this.pending.length;
  }

  roundsInFlight(): number {
    return this.rounds.length;
  }

  add(r: QueuedRead): void {
    this.pending.push(r);
  }

  /** Starts a round carried by heartbeat `seq` with every pending read. False when none waits or a round is in flight. */
  startRound(seq: number, index: LogIndex): boolean {
    if (this.pending.length === 0 || this.rounds.length > 0) return false;
    this.rounds.push({ seq, index, reads: this.pending });
    this.pending = [];
    return true;
  }

  /** Releases the rounds a quorum acknowledged (`acked(seq)`), oldest first. */
  completeRounds(acked: (seq: number) => boolean): { index: LogIndex; reads: QueuedRead[] }[] {
    const done: { index: LogIndex; reads: QueuedRead[] }[] = [];
    while (this.rounds.length > 0 && acked(this.rounds[0]!.seq)) done.push(this.rounds.shift()!);
    return done;
  }

  /** Removes the forwarded read with `context`, if still waiting. */
  take(context: number, from: NodeId): QueuedRead | undefined {
    const i = this.pending.findIndex((r) => r.context === context && r.from === from);
    return i < 0 ? undefined : this.pending.splice(i, 1)[0];
  }

  /** Removes reads queued at or before `deadlineTick`. */
  expire(deadlineTick: number): QueuedRead[] {
    if (this.pending.length === 0 || this.pending[0]!.tick > deadlineTick) return [];
    const gone = this.pending.filter((r) => r.tick <= deadlineTick);
    this.pending = this.pending.filter((r) => r.tick > deadlineTick);
    return gone;
  }

  /** Removes every read, in rounds and pending. */
  drain(): QueuedRead[] {
    const all = [...this.rounds.flatMap((r) => r.reads), ...this.pending];
    this.rounds = [];
    this.pending = [];
    return all;
  }

  /** A new heartbeat sequence number sent at `now`; ticks older than `keepTicks` are forgotten. */
  nextHeartbeat(now: number, keepTicks: number): number {
    const seq = ++this.heartbeatSeq;
    this.heartbeatTicks.push({ seq, tick: now });
    while (this.heartbeatTicks.length > 0 && this.heartbeatTicks[0]!.tick + keepTicks < now) this.heartbeatTicks.shift();
    return seq;
  }

  /** Tick heartbeat `seq` was sent at, if still remembered. */
  sentTick(seq: number): number | undefined {
    return this.heartbeatTicks.find((h) => h.seq === seq)?.tick;
  }

  /** A new leadership: heartbeat send times of an earlier one prove nothing. */
  resetHeartbeats(): void {
    this.heartbeatTicks = [];
  }
}
