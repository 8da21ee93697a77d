/**
 * A peer's queue of records, in two lanes, so that large records never hold up small ones.
 *
 * Why: the Iroh binding costs tens of nanoseconds per byte on the main thread, so a frame of many
 * MiB takes a long time to write. With one FIFO, the heartbeats, votes and append responses of
 * every shard, and the node's liveness records, queued behind megabytes of raft appends: followers
 * timed out, elected, and the new leaders resent the same megabytes.
 *
 * - `urgent`: every record not in the bulk lane. A frame carries all of them first.
 * - `bulk`: records whose payload exceeds `bulkRecordBytesMin`, and the raft appends and snapshot
 *   messages of a shard that already has a record in the bulk lane (a shard's log entries stay in
 *   order; an append overtaking a larger one would be refused by the follower and make the leader
 *   resend from the gap). A frame carries at most `frameBulkBytesMax` bytes of them, or a single
 *   larger record alone, so an urgent record waits at most about one such frame.
 *
 * When the queue is full, an urgent record evicts bulk records (newest first; raft resends them);
 * a bulk record never evicts anything.
 */

import assert from 'node:assert/strict';
import { RecordKind, peekMessageType, recordBytes } from '../../wire/index.js';
import type { FrameRecord } from '../../wire/index.js';

/** Raft message types whose order within a shard matters to the follower: App (1) and Snap (9). */
const ORDERED_TYPES: ReadonlySet<number> = new Set([1, 9]);

export interface LaneLimits {
  /** Records with a payload above this many bytes go to the bulk lane. */
  readonly bulkRecordBytesMin: number;
  /** Bulk bytes (on the wire) one frame carries at most, unless a single bulk record is larger. */
  readonly frameBulkBytesMax: number;
  /** Largest frame, in bytes (on the wire). */
  readonly maxFrameBytes: number;
  /** Bytes (on the wire) queued in both lanes together, at most. */
  readonly peerQueueBytesMax: number;
}

export class PeerQueue {
  /** Small records, oldest first; their wire size sums to `urgentBytes`. */
  private urgent: FrameRecord[] = [];
  private urgentBytes = 0;
  /** Large records (and those ordered after them in their shard), oldest first; wire size sums to `bulkBytes`. */
  private bulk: FrameRecord[] = [];
  private bulkBytes = 0;
  /** Records per shard in `bulk`; a shard with none has no entry. */
  private readonly bulkPerShard = new Map<number, number>();

  constructor(private readonly limits: LaneLimits) {}

  /** Records queued in both lanes. */
  get size(): number {
    return this.urgent.length + this.bulk.length;
  }

  /** Bytes (on the wire) queued in both lanes; at most `peerQueueBytesMax`. */
  get bytes(): number {
    return this.urgentBytes + this.bulkBytes;
  }

  /**
   * Queues a record. Returns the number of records dropped to make room or refused: 0 when it was
   * queued without loss; when the record itself is refused it is counted in the result too, and
   * `queued` says whether it went in.
   */
  push(r: FrameRecord): { queued: boolean; dropped: number } {
    const w = recordBytes(r.payload.length);
    const max = this.limits.peerQueueBytesMax;
    const isBulk = this.isBulk(r);
    let dropped = 0;
    if (!isBulk) {
      while (this.bytes + w > max && this.bulk.length > 0) {
        this.forgetBulk(this.bulk.pop()!);
        dropped++;
      }
    }
    if (this.bytes + w > max) return { queued: false, dropped: dropped + 1 };
    if (isBulk) {
      this.bulk.push(r);
      this.bulkBytes += w;
      this.bulkPerShard.set(r.shard, (this.bulkPerShard.get(r.shard) ?? 0) + 1);
    } else {
      this.urgent.push(r);
      this.urgentBytes += w;
    }
    assert(this.bytes <= max, 'peer queue: bytes within peerQueueBytesMax');
    return { queued: true, dropped };
  }

  /**
   * The next frame's records: urgent ones first (oldest first, at least one), then bulk ones up to
   * `frameBulkBytesMax` (a larger single record when the frame has no bulk yet), all within
   * `maxFrameBytes`. Empty only when the queue is.
   */
  takeBatch(): FrameRecord[] {
    const { maxFrameBytes, frameBulkBytesMax } = this.limits;
    let frameBytes = 0;
    let n = 0;
    while (n < this.urgent.length) {
      const w = recordBytes(this.urgent[n]!.payload.length);
      if (n > 0 && frameBytes + w > maxFrameBytes) break;
      frameBytes += w;
      n++;
    }
    const out = n === this.urgent.length ? this.urgent : this.urgent.slice(0, n);
    this.urgent = n === this.urgent.length ? [] : this.urgent.slice(n);
    this.urgentBytes -= frameBytes;
    let bulkTaken = 0;
    let m = 0;
    while (m < this.bulk.length) {
      const w = recordBytes(this.bulk[m]!.payload.length);
      const fitsFrame = frameBytes + w <= maxFrameBytes || out.length + m === 0;
      const fitsBulk = bulkTaken + w <= frameBulkBytesMax || m === 0;
      if (!fitsFrame || !fitsBulk) break;
      frameBytes += w;
      bulkTaken += w;
      m++;
    }
    for (const r of this.bulk.splice(0, m)) {
      this.forgetBulk(r);
      out.push(r);
    }
    assert(out.length > 0 || this.size === 0, 'peer queue: a batch is empty only when the queue is');
    assert(this.urgentBytes >= 0 && this.bulkBytes >= 0, 'peer queue: byte counts stay non-negative');
    return out;
  }

  /** Empties both lanes; returns the number of records dropped. */
  clear(): number {
    const n = this.size;
    this.urgent = [];
    this.urgentBytes = 0;
    this.bulk = [];
    this.bulkBytes = 0;
    this.bulkPerShard.clear();
    return n;
  }

  private isBulk(r: FrameRecord): boolean {
    if (r.payload.length > this.limits.bulkRecordBytesMin) return true;
    if (r.kind !== RecordKind.RaftMessage || !this.bulkPerShard.has(r.shard)) return false;
    try {
      return ORDERED_TYPES.has(peekMessageType(r.payload));
    } catch {
      // Not a raft message the wire layer can read: the receiver refuses it either way.
      return false;
    }
  }

  /** Takes a record that left the bulk lane out of its byte and shard counts. */
  private forgetBulk(r: FrameRecord): void {
    this.bulkBytes -= recordBytes(r.payload.length);
    const c = this.bulkPerShard.get(r.shard)!;
    assert(c > 0, 'peer queue: a bulk record is counted under its shard');
    if (c === 1) this.bulkPerShard.delete(r.shard);
    else this.bulkPerShard.set(r.shard, c - 1);
  }
}
