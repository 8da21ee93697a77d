/**
 * A peer's two-lane queue (src/io/transport/lanes.ts), without sockets: which lane a record takes,
 * what one frame carries, and what is dropped when the queue is full.
 */
import { describe, expect, it } from 'vitest';
import { RecordKind, encodeMessage, recordBytes } from '../../../src/wire/index.js';
import type { FrameRecord, WireLogIndex, WireMessageType, WireNodeId, WireTerm } from '../../../src/wire/index.js';
import { PeerQueue } from '../../../src/io/transport/lanes.js';
import type { LaneLimits } from '../../../src/io/transport/lanes.js';

const KiB = 1024;
const limits: LaneLimits = { bulkRecordBytesMin: 16 * KiB, frameBulkBytesMax: 256 * KiB, maxFrameBytes: 16 * 1024 * KiB, peerQueueBytesMax: 4 * 1024 * KiB };

/** A record with a payload of `n` bytes whose first byte names it. */
const rec = (name: number, n: number, shard = 0, kind: number = RecordKind.NodeHeartbeat): FrameRecord => {
  const payload = new Uint8Array(n);
  payload[0] = name;
  return { kind, shard, payload };
};

/** A small raft message of `type` for `shard`. */
const raft = (type: WireMessageType, shard: number): FrameRecord => ({
  kind: RecordKind.RaftMessage,
  shard,
  payload: encodeMessage({
    type,
    from: 1 as WireNodeId,
    to: 2 as WireNodeId,
    term: 1 as WireTerm,
    logTerm: 0 as WireTerm,
    index: 0 as WireLogIndex,
    entries: [],
    commit: 0 as WireLogIndex,
    reject: false,
    rejectHint: 0 as WireLogIndex,
    context: 0,
  }),
});

const names = (rs: FrameRecord[]): number[] => rs.map((r) => r.payload[0]!);
const wire = (rs: FrameRecord[]): number => rs.reduce((s, r) => s + recordBytes(r.payload.length), 0);

describe('PeerQueue', () => {
  it('puts small records queued after bulk ones first in the next frame', () => {
    const q = new PeerQueue(limits);
    for (let i = 1; i <= 8; i++) q.push(rec(i, 64 * KiB));
    q.push(rec(100, 50));
    expect(names(q.takeBatch())).toEqual([100, 1, 2, 3]); // 4 x (64 KiB + 12) > 256 KiB
  });

  it('carries at most frameBulkBytesMax of bulk per frame, and a larger bulk record alone', () => {
    const q = new PeerQueue(limits);
    for (let i = 1; i <= 10; i++) q.push(rec(i, 100 * KiB));
    q.push(rec(11, 1024 * KiB));
    q.push(rec(12, 20 * KiB));
    const frames: number[][] = [];
    while (q.size > 0) {
      const b = q.takeBatch();
      expect(wire(b) <= limits.frameBulkBytesMax || b.length === 1).toBe(true);
      frames.push(names(b));
    }
    expect(frames).toEqual([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11], [12]]);
    expect(q.bytes).toBe(0);
  });

  it('keeps the appends and snapshots of a shard with bulk queued behind it; its heartbeats and votes go first', () => {
    const q = new PeerQueue(limits);
    q.push({ ...rec(1, 64 * KiB, 7), kind: RecordKind.RaftMessage });
    const app7 = raft(1, 7);
    const snap7 = raft(9, 7);
    const hb7 = raft(7, 7);
    const vote7 = raft(3, 7);
    const app8 = raft(1, 8);
    for (const r of [app7, snap7, hb7, vote7, app8]) q.push(r);
    const b = q.takeBatch();
    expect(b.slice(0, 3)).toEqual([hb7, vote7, app8]);
    expect(b.slice(3).map((r) => r.payload.length)).toEqual([64 * KiB, app7.payload.length, snap7.payload.length]);
    // The shard's bulk is gone: its next append is small again.
    q.push(app7);
    q.push(rec(2, 64 * KiB, 9, RecordKind.RaftMessage));
    expect(q.takeBatch()[0]).toBe(app7);
  });

  it('when full, an urgent record evicts bulk ones (newest first); a bulk record evicts nothing', () => {
    const q = new PeerQueue({ ...limits, peerQueueBytesMax: 3 * (64 * KiB + 12) });
    for (let i = 1; i <= 3; i++) expect(q.push(rec(i, 64 * KiB))).toEqual({ queued: true, dropped: 0 });
    expect(q.push(rec(4, 64 * KiB))).toEqual({ queued: false, dropped: 1 });
    expect(q.push(rec(5, 100))).toEqual({ queued: true, dropped: 1 });
    expect(q.size).toBe(3);
    expect(q.bytes).toBe(2 * (64 * KiB + 12) + recordBytes(100));
    expect(names(q.takeBatch())).toEqual([5, 1, 2]);
    expect(q.size).toBe(0);
  });

  it('refuses an urgent record when urgent ones alone fill the queue', () => {
    const q = new PeerQueue({ ...limits, peerQueueBytesMax: 2 * recordBytes(1000) });
    expect(q.push(rec(1, 1000)).queued).toBe(true);
    expect(q.push(rec(2, 1000)).queued).toBe(true);
    expect(q.push(rec(3, 1000))).toEqual({ queued: false, dropped: 1 });
    expect(q.clear()).toBe(2);
    expect(q.bytes).toBe(0);
  });

  it('splits urgent records over frames at maxFrameBytes, oldest first', () => {
    const q = new PeerQueue({ ...limits, maxFrameBytes: 3 * recordBytes(1000) });
    for (let i = 1; i <= 7; i++) q.push(rec(i, 1000));
    expect(names(q.takeBatch())).toEqual([1, 2, 3]);
    expect(names(q.takeBatch())).toEqual([4, 5, 6]);
    expect(names(q.takeBatch())).toEqual([7]);
    expect(q.takeBatch()).toEqual([]);
  });
});
