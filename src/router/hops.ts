/**
 * One hop between nodes. Raft messages go from the local workers to the peer they name and come
 * in from the authenticated peer of the connection (never from whom the message claims). Client
 * requests for a shard led elsewhere are forwarded to the leader's node and wait for its answer;
 * requests forwarded here are proposed or read locally and answered back.
 */
import {
  CodecError,
  RecordKind,
  clientFrameBoundBytes,
  decodePropose,
  decodeRead,
  decodeReply,
  encodeReply,
  peekMessageFrom,
  peekMessageTo,
  peekMessageType,
} from '../wire/index.js';
import type { Outcome } from '../shards/host.js';
import { MessageType } from '../shards/raft/index.js';
import type { NodeId, ShardId } from '../shards/raft/index.js';
import type { WorkerPool } from '../workers/pool.js';
import type { Consistency, ServiceErrorCode } from '../api/index.js';
import type { Layout, Member } from './layout.js';
import type { Liveness } from './liveness.js';

/** What the router needs from the transport. */
export interface PeerLink {
  send(peerId: string, kind: number, shard: number, payload: Uint8Array): void;
  /** The largest record a peer accepts (the transport's frame limit less framing); none: unchecked. */
  readonly maxRecordBytes?: number;
}

/** The router's counters a hop moves. */
export interface HopCounters {
  forwarded: number;
  forwardedIn: number;
  spoofed: number;
  badRecords: number;
  raftIn: number;
  raftOut: number;
  raftDropped: number;
  repliesTooLarge: number;
  leadershipsRefused: number;
}

export interface HopsOptions {
  readonly self: NodeId;
  /** Data shards; the meta group's id is one past them. */
  readonly shards: number;
  readonly pool: WorkerPool;
  readonly link: PeerLink;
  readonly layout: Layout;
  readonly liveness: Liveness;
  readonly counters: HopCounters;
  /** Deadline of a request forwarded here, in ms. */
  readonly timeoutMs: number;
  readonly clock: () => number;
  /** The answer for writes while they are refused (NoSpace), else undefined. */
  readonly writeBlocked: () => Outcome | undefined;
  /** True while this node is stopping: a leadership offered to it (TimeoutNow) is refused. */
  readonly stopping: () => boolean;
}

interface Forward {
  readonly resolve: (o: Outcome) => void;
  timer: NodeJS.Timeout;
}

/** A forwarded attempt's slice: after it without an answer, the attempt ends unless the peer is still heard from (ms). */
const FORWARD_ATTEMPT_MS = 1000;
/** Slices of FORWARD_ATTEMPT_MS a forwarded attempt waits for a peer that is still heard from. */
const FORWARD_LIVE_SLICES = 3;

export const fail = (code: ServiceErrorCode, message: string, leaderHint = 0): Outcome => ({ ok: false, code, message, leaderHint });

export class Hops {
  private readonly forwards = new Map<number, Forward>();
  private nextForward = 1;

  constructor(private readonly o: HopsOptions) {}

  /** Forwarded requests waiting for their answer. */
  get inflight(): number {
    return this.forwards.size;
  }

  /** A raft message from a local worker: to the peer it names. */
  onLocalRaftMessage(shard: ShardId, payload: Uint8Array): void {
    const to = this.o.layout.byRaftId(peekMessageTo(payload));
    if (!to) {
      this.o.counters.raftDropped++;
      return;
    }
    this.o.counters.raftOut++;
    this.o.link.send(to.peerId, RecordKind.RaftMessage, shard, payload);
  }

  /**
   * Bytes of a frame from an authenticated peer, before the frame is whole: its node is there. A
   * megabyte frame takes a good part of a liveness timeout to cross the Iroh binding, and the
   * peer's liveness records wait behind it: without this, a peer sending one looked silent.
   */
  onPeerTraffic(peerId: string): void {
    const member = this.o.layout.byEndpoint(peerId);
    if (member) this.o.liveness.onTraffic(member.nodeId, this.o.clock());
  }

  /** Records from an authenticated peer. */
  onPeerRecords(peerId: string, records: readonly { kind: number; shard: number; payload: Uint8Array }[]): void {
    const member = this.o.layout.byEndpoint(peerId);
    if (!member) return;
    // Its node is there, whatever the records say (liveness records may wait behind bulk traffic).
    this.o.liveness.onTraffic(member.nodeId, this.o.clock());
    for (const r of records) {
      try {
        this.onPeerRecord(member, r.kind, r.shard as ShardId, r.payload);
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
        this.o.counters.badRecords++;
      }
    }
  }

  private onPeerRecord(from: Member, kind: number, shard: ShardId, payload: Uint8Array): void {
    // The meta group's id is one past the data shards.
    if (shard > this.o.shards) {
      this.o.counters.badRecords++;
      return;
    }
    switch (kind) {
      case RecordKind.RaftMessage:
        // The sender is the connection's peer, never what the message claims.
        if (peekMessageFrom(payload) !== from.nodeId || peekMessageTo(payload) !== this.o.self) {
          this.o.counters.spoofed++;
          return;
        }
        this.o.counters.raftIn++;
        // A node that is stopping would win the election and then leave the shard to wait for
        // another: its peer's transfer times out instead, and that peer keeps leading meanwhile.
        if (this.o.stopping() && peekMessageType(payload) === MessageType.TimeoutNow) {
          this.o.counters.leadershipsRefused++;
          return;
        }
        this.o.pool.deliver(shard, payload);
        return;
      case RecordKind.ClientPropose: {
        const p = decodePropose(payload);
        this.o.counters.forwardedIn++;
        const blocked = this.o.writeBlocked();
        if (blocked !== undefined) return this.answer(from, shard, p.reqId, blocked);
        void this.o.pool
          .propose(shard, { clientId: p.clientId, seq: p.seq, command: p.command }, this.o.timeoutMs)
          .then((o) => this.answer(from, shard, p.reqId, o));
        return;
      }
      case RecordKind.ClientRead: {
        const r = decodeRead(payload);
        const consistency: Consistency = r.consistency === 1 ? 'lease' : r.consistency === 2 ? 'stale' : 'linearizable';
        this.o.counters.forwardedIn++;
        void this.o.pool.read(shard, r.query, consistency, this.o.timeoutMs).then((o) => this.answer(from, shard, r.reqId, o));
        return;
      }
      case RecordKind.NodeHeartbeat:
        // A payload that does not decode is counted there and ignored: it refreshes nothing.
        this.o.liveness.onRecord(from.nodeId, payload, this.o.clock());
        return;
      case RecordKind.ClientReply: {
        const r = decodeReply(payload);
        const f = this.forwards.get(r.reqId);
        if (!f) return;
        this.forwards.delete(r.reqId);
        clearTimeout(f.timer);
        const { reqId: _id, ...o } = r;
        f.resolve(o);
        return;
      }
      default:
        this.o.counters.badRecords++;
    }
  }

  /**
   * Answers a forwarded request. A reply larger than a peer record (it came out of a ring larger
   * than the link's limit) becomes ReplyTooLarge, so the asking node hears at once instead of
   * retrying until its deadline. Sizes are measured with the widest reqId, so the largest reply
   * that fits does not depend on the request's id.
   */
  private answer(to: Member, shard: ShardId, reqId: number, o: Outcome): void {
    let bytes = encodeReply({ reqId, ...o });
    const max = this.o.link.maxRecordBytes;
    const bound = clientFrameBoundBytes(bytes, reqId);
    if (max !== undefined && bound > max) {
      this.o.counters.repliesTooLarge++;
      bytes = encodeReply({ reqId, ...fail('ReplyTooLarge', `the reply of ${bound} bytes exceeds the ${max} bytes of a peer record`) });
    }
    this.o.link.send(to.peerId, RecordKind.ClientReply, shard, bytes);
  }

  /**
   * Sends a client request to node `to` and waits for its answer (see below for how long).
   * Errors: Unreachable (not a member, or no answer in time), RequestTooLarge (beyond a peer record).
   */
  forward(to: NodeId, kind: number, shard: ShardId, build: (reqId: number) => Uint8Array, timeoutMs: number): Promise<Outcome> {
    const m = this.o.layout.byRaftId(to);
    if (!m) return Promise.resolve(fail('Unreachable', `node ${to} is not a member`));
    const reqId = this.nextForward++;
    const payload = build(reqId);
    const max = this.o.link.maxRecordBytes;
    // Measured with the widest reqId, so whether a request fits does not depend on its id.
    const bound = clientFrameBoundBytes(payload, reqId);
    if (max !== undefined && bound > max) {
      return Promise.resolve(fail('RequestTooLarge', `the request of ${bound} bytes exceeds the ${max} bytes of a peer record`));
    }
    this.o.counters.forwarded++;
    this.o.link.send(m.peerId, kind, shard, payload);
    // A hop waits in slices of FORWARD_ATTEMPT_MS: after a slice without an answer it is given up
    // (and retried, with the same session) if the peer went silent or its worker for the shard
    // stopped, so a leader that died costs one slice, not the whole request. A live leader gets up
    // to FORWARD_LIVE_SLICES slices: it may be slow (megabytes queued ahead of this write), and a
    // copy sent now would only queue behind the first; after that the answer counts as lost.
    const deadline = performance.now() + Math.min(timeoutMs, FORWARD_ATTEMPT_MS * FORWARD_LIVE_SLICES);
    return new Promise<Outcome>((resolve) => {
      const arm = (): NodeJS.Timeout =>
        setTimeout(
          () => {
            const left = deadline - performance.now();
            const entry = this.forwards.get(reqId);
            if (entry !== undefined && left > 0 && this.o.liveness.reachable(to, shard)) {
              entry.timer = arm();
              return;
            }
            this.forwards.delete(reqId);
            resolve(fail('Unreachable', `no answer from node ${to} within ${Math.round(timeoutMs - Math.max(0, left))} ms`));
          },
          Math.max(0, Math.min(deadline - performance.now(), FORWARD_ATTEMPT_MS)),
        );
      this.forwards.set(reqId, { resolve, timer: arm() });
    });
  }

  /** Fails the forwards in flight with ShuttingDown. */
  close(): void {
    for (const [id, f] of this.forwards) {
      clearTimeout(f.timer);
      f.resolve(fail('ShuttingDown', 'the node is shutting down'));
      this.forwards.delete(id);
    }
  }
}
