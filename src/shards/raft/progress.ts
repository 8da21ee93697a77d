import { assert } from './errors.js';
import type { LogIndex } from './types.js';

/**
 * App messages in flight to one follower, bounded by count and by entry bytes. A message is freed
 * when the follower acknowledges an index at or beyond its last entry.
 */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  /** The leader's tick count when each message was sent. */
  private readonly sentTicks: number[] = [];
  private head = 0;
  /** Entry bytes of the messages in flight. */
  bytes = 0;

  constructor(
    readonly messagesMax: number,
    readonly bytesMax: number,
  ) {}

  get count(): number {
    return this.indexes.length - this.head;
  }

  /**
   * Records a message whose last entry is `last`, whose entries weigh `size` bytes, sent at leader
   * tick `tick` (-1: a message that repeats entries sent before, whose acknowledgment cannot say
   * which copy arrived and so gives no time sample).
   */
  add(last: LogIndex, size: number, tick: number): void {
    assert(!this.full(), 'inflights: add while full');
    this.indexes.push(last);
    this.sizes.push(size);
    this.sentTicks.push(tick);
    this.bytes += size;
  }

  /** Frees every message whose last entry is <= `index`; returns the send tick of the last one freed, or -1 when none was (or it has none). */
  freeLE(index: LogIndex): number {
    let sentTick = -1;
    while (this.head < this.indexes.length && this.indexes[this.head]! <= index) {
      this.bytes -= this.sizes[this.head]!;
      sentTick = this.sentTicks[this.head]!;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.indexes.length) {
      this.indexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.sentTicks.splice(0, this.head);
      this.head = 0;
    }
    return sentTick;
  }

  full(): boolean {
    return this.count >= this.messagesMax || this.bytes >= this.bytesMax;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.sentTicks.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}

/**
 * How a follower is replicated to:
 * - probe: one App at a time until the follower's match point is found;
 * - replicate: entries are pipelined optimistically, bounded by the in-flight window;
 * - snapshot: a snapshot is on its way; nothing else is sent until it is acknowledged or times out.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one follower (or of itself). */
export class Progress {
  /** Highest index known to be durably replicated on this node; only grows within a leadership. */
  match = 0 as LogIndex;
  /** Next index to send; match < next (checked after every change to either, by {@link checkMatchBelowNext}). */
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In probe state: an App was sent and no answer came yet, so sending pauses. */
  probeSent = false;
  /** Snapshot state: index of the snapshot sent. */
  pendingSnapshot = 0 as LogIndex;
  /** Ticks spent in snapshot state; after a limit the leader probes again (the snapshot may be lost). */
  snapshotTicks = 0;
  /**
   * Replicate state: leader ticks since match last advanced while entries were outstanding. A
   * follower that stays stalled lost messages (or a whole window of them) and is probed again.
   */
  stallTicks = 0;
  /**
   * Replicate state: how many leader ticks the follower's acknowledgment of entries has taken,
   * smoothed (each sample weighs 1/8), 0 before the first sample. Survives state changes within a
   * leadership: a path that was slow stays presumed slow until acknowledgments say otherwise.
   */
  ackTicks = 0;
  /** Highest entry index sent to this follower in this leadership (resent entries give no ackTicks sample). Only grows. */
  sentMax = 0 as LogIndex;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Highest heartbeat sequence number this node acknowledged in the current leadership. */
  ackedHeartbeat = 0;
  readonly inflights: Inflights;

  constructor(
    next: LogIndex,
    public isLearner: boolean,
    inflightMessagesMax: number,
    inflightBytesMax: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
    this.checkMatchBelowNext();
  }

  /** The invariant of match and next; a comparison on success, a message only on failure. */
  private checkMatchBelowNext(): void {
    if (this.match < this.next) return;
    assert(false, `progress: match ${this.match} not below next ${this.next}`);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0 as LogIndex;
    this.snapshotTicks = 0;
    this.stallTicks = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1) as LogIndex;
    } else {
      this.resetState('probe');
      this.next = (this.match + 1) as LogIndex;
    }
    this.checkMatchBelowNext();
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = (this.match + 1) as LogIndex;
    this.checkMatchBelowNext();
  }

  /** Replicate state: entries up to `last` were sent, so the next App starts after them. */
  optimisticUpdate(last: LogIndex): void {
    this.next = (last + 1) as LogIndex;
    this.checkMatchBelowNext();
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An accepting response for `n`: raises match (and next); false when it is stale. */
  maybeUpdate(n: LogIndex): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
      this.stallTicks = 0;
    }
    if (this.next < n + 1) this.next = (n + 1) as LogIndex;
    this.checkMatchBelowNext();
    return updated;
  }

  /**
   * A rejection of the App at `rejected`; `matchHint` is the follower's guess of the last index it
   * may share. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = (this.match + 1) as LogIndex;
      this.checkMatchBelowNext();
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1) as LogIndex;
    this.probeSent = false;
    this.checkMatchBelowNext();
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
