/**
 * What a worker has for its out-ring but could not write yet. The worker never blocks on a full
 * out-ring: a blocked worker thread would stop ticking and stepping every shard it hosts (their
 * leases and election timers judge ticks, see ShardHost.catchUp) and stop answering its control
 * API. Records wait here instead, in the order they were produced, and leave as the main thread
 * frees room.
 *
 * Small records leave before bulk ones (see {@link Outbox}). Bounds, by class of record:
 * - raft messages wait only while the outbox holds less than `bytesMax` (small ones: twice that);
 *   past it they are dropped and counted: raft resends what matters (appends are retried,
 *   heartbeats recur);
 * - client replies are never dropped: each answers a request the worker already took from its
 *   in-ring, and while {@link Outbox.full} holds the worker takes no new client request (it
 *   leaves them in the in-ring, which fills, so the pool answers new work `Overloaded`). Replies
 *   therefore grow past `bytesMax` only by the answers to work taken before the outbox filled;
 * - shard events are coalesced: a shard's event still waiting is replaced by its newer one
 *   (routing needs the latest leader and role only), so they number at most the hosted shards.
 */
import { assert } from '../shards/raft/index.js';

/** How a record may be treated while the out-ring is full. */
/** `append`: a raft App, which must not overtake an earlier App of its shard; `message`: any other raft message. */
export type OutClass = 'message' | 'append' | 'reply' | 'event';

/** The producer side of the out-ring, as the outbox uses it. */
export interface OutRing {
  tryWrite(kind: number, shard: number, payload: Uint8Array): boolean;
}

interface Held {
  readonly kind: number;
  readonly shard: number;
  readonly cls: OutClass;
  /** Replaced in place when a newer event of the same shard arrives (events only). */
  payload: Uint8Array;
}

/** Counts for metrics; monotonic. */
export interface OutboxCounters {
  /** Records that had to wait here because the out-ring was full. */
  held: number;
  /** Raft messages dropped: out-ring full and the outbox at `bytesMax`. */
  messagesDropped: number;
  /** Waiting shard events replaced by a newer event of the same shard. */
  eventsCoalesced: number;
}

/** Payload bytes above which a record waits in the bulk lane (an App of large entries, a large reply). */
export const OUTBOX_BULK_BYTES_MIN = 16 * 1024;

/** A FIFO that drops its written prefix now and then, so a long backlog costs O(1) per record. */
class Lane {
  private items: Held[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  peek(): Held | undefined {
    return this.items[this.head];
  }

  push(h: Held): void {
    this.items.push(h);
  }

  shift(): void {
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

export class Outbox {
  /**
   * Records waiting, in two lanes, each oldest first: small records (heartbeats, votes, append
   * responses, replies, events) and bulk ones (above OUTBOX_BULK_BYTES_MIN: appends of large
   * entries, large replies). Small records leave first: a heartbeat behind megabytes of appends
   * would arrive late and cost the shard its leader, and raft takes messages in any order.
   * Invariant: both lanes are empty whenever nothing waits (then a new record goes straight to
   * the ring), so within a lane order is kept.
   */
  private readonly small = new Lane();
  private readonly bulk = new Lane();
  /** Payload bytes of the waiting records, both lanes. */
  private bytesHeld = 0;
  /**
   * Apps waiting in the bulk lane, by shard. A shard's later Apps wait behind them in the same
   * lane: an App overtaking an earlier, larger App of its shard would be refused by the follower
   * and make the leader send everything again. (Other raft messages may overtake: raft takes them
   * in any order.)
   */
  private readonly bulkByShard = new Map<number, number>();
  /** The waiting event of each shard that has one (an entry of a lane). */
  private readonly events = new Map<number, Held>();
  readonly counters: OutboxCounters = { held: 0, messagesDropped: 0, eventsCoalesced: 0 };

  /**
   * `bytesMax`: payload bytes at which the outbox counts as full: bulk raft messages are dropped
   * and the worker stops taking client requests; small raft messages are dropped only at twice
   * that. At least one ring record, so any record can wait.
   */
  constructor(
    private readonly ring: OutRing,
    readonly bytesMax: number,
  ) {
    assert(Number.isInteger(bytesMax) && bytesMax > 0, `outbox bytesMax must be a positive integer, got ${bytesMax}`);
  }

  /** Records waiting. */
  records(): number {
    return this.small.size + this.bulk.size;
  }

  /** Payload bytes waiting. */
  bytes(): number {
    return this.bytesHeld;
  }

  /** At or past `bytesMax`: take no new client work; bulk raft messages are dropped. */
  full(): boolean {
    return this.bytesHeld >= this.bytesMax;
  }

  /** Payload bytes of the next record to leave (what the ring must fit next); 0 when none waits. */
  nextBytes(): number {
    return (this.small.peek() ?? this.bulk.peek())?.payload.length ?? 0;
  }

  /**
   * Writes `payload` to the ring, or keeps it until the ring has room (never waits). A raft
   * message that finds the outbox full is dropped and counted (a small one only at twice the
   * bound); replies and events always stay.
   */
  push(kind: number, shard: number, payload: Uint8Array, cls: OutClass): void {
    if (this.records() > 0) this.flush();
    if (this.records() === 0 && this.ring.tryWrite(kind, shard, payload)) return;
    const isBulk = payload.length > OUTBOX_BULK_BYTES_MIN || (cls === 'append' && this.bulkByShard.has(shard));
    if (cls === 'event') {
      const waiting = this.events.get(shard);
      if (waiting !== undefined) {
        this.bytesHeld += payload.length - waiting.payload.length;
        waiting.payload = payload;
        this.counters.eventsCoalesced++;
        return;
      }
    } else if ((cls === 'message' || cls === 'append') && this.bytesHeld >= (isBulk ? this.bytesMax : 2 * this.bytesMax)) {
      this.counters.messagesDropped++;
      return;
    }
    const h: Held = { kind, shard, cls, payload };
    if (isBulk && cls !== 'event') {
      this.bulk.push(h);
      if (cls === 'append') this.bulkByShard.set(shard, (this.bulkByShard.get(shard) ?? 0) + 1);
    } else {
      this.small.push(h);
    }
    this.bytesHeld += payload.length;
    if (cls === 'event') this.events.set(shard, h);
    this.counters.held++;
  }

  /** Writes waiting records, small ones first, while the ring takes them. Returns how many left. */
  flush(): number {
    let n = 0;
    for (const lane of [this.small, this.bulk]) {
      for (let h = lane.peek(); h !== undefined; h = lane.peek()) {
        if (!this.ring.tryWrite(h.kind, h.shard, h.payload)) {
          // The ring is full: nothing more leaves now (a smaller bulk record must not overtake).
          return this.flushed(n);
        }
        lane.shift();
        this.bytesHeld -= h.payload.length;
        if (lane === this.bulk && h.cls === 'append') {
          const n = this.bulkByShard.get(h.shard)! - 1;
          if (n === 0) this.bulkByShard.delete(h.shard);
          else this.bulkByShard.set(h.shard, n);
        }
        if (h.cls === 'event' && this.events.get(h.shard) === h) this.events.delete(h.shard);
        n++;
      }
    }
    return this.flushed(n);
  }

  private flushed(n: number): number {
    assert(this.bytesHeld >= 0, 'outbox: negative byte count');
    assert(this.records() > 0 || this.bytesHeld === 0, 'outbox: bytes held with no record');
    return n;
  }
}
