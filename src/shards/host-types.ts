/** The shard host's interface types: its options, its sink, what its calls answer (see host.ts). */
import type { Message, NodeId, RaftConfig, Role, ShardId, Term } from './raft/index.js';
import type { HostLatency } from './host-counters.js';
import type { Outcome } from './sessions.js';
import { SESSION_SEQ_STALE } from './sessions.js';
import type { SnapshotWish } from './snapshot-io.js';
import type { StateMachine } from './state-machine.js';
import type { Store } from './store.js';

/**
 * How a read is served: after a quorum round (default), on the leader's lease, or from local state.
 * The same type as src/api's Consistency, which shards may not import (test/unit/api holds them equal).
 */
export type Consistency = 'linearizable' | 'lease' | 'stale';

/** What a leadership transfer request answers (see ShardHost.transferLeader). */
export type TransferAnswer = 'started' | 'not-leader' | 'invalid-target' | 'target-behind' | 'absent';

/** The answer to one client request. */
export type ClientReply = Outcome & { readonly reqId: number };

/** A change of a shard's leader or of this replica's role, for routing. */
export interface ShardEvent {
  readonly lead: NodeId;
  readonly term: Term;
  readonly role: Role;
}

/** Where the host's output goes. Calls happen in the order the durability rule allows. */
export interface HostSink {
  /** A raft message for another replica of `shard`. */
  send(shard: ShardId, m: Message): void;
  /** The answer to a proposal or read this host received. */
  reply(shard: ShardId, r: ClientReply): void;
  /** Leader or role change of `shard` on this replica. */
  event(shard: ShardId, e: ShardEvent): void;
  /**
   * The core wants follower `to` to get a snapshot (at `index` or later): the shell streams it
   * from {@link ShardHost.openSnapshot} here to {@link ShardHost.installStaged} there. A snapshot
   * never travels as a raft message (it would not fit a ring record or a frame).
   */
  snapshot(shard: ShardId, req: SnapshotWish): void;
}

export interface ShardSpec {
  readonly shard: ShardId;
  /** Founding voters when the shard is created here; empty for a replica that joins later. */
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
}

export interface HostOptions {
  readonly store: Store;
  readonly stateMachine: StateMachine;
  readonly sink: HostSink;
  /** This node's replica id in every shard it hosts. */
  readonly nodeId: NodeId;
  /** Seed for the shards' election-timeout PRNGs (mixed with the shard id). */
  readonly seed: number;
  /** Raft settings shared by all shards (ids, storage and PRNG are filled in). */
  readonly raft?: Omit<RaftConfig, 'id' | 'storage' | 'prng' | 'applied'>;
  /** Applied entries between log compactions. Default 10,000. */
  readonly compactEveryEntries?: number;
  /** Entries kept behind the applied index at compaction, for followers that lag a little. Default 1,000. */
  readonly compactKeepEntries?: number;
  /**
   * Monotonic milliseconds (the worker passes `performance.now`; only the shell reads a clock).
   * With it the host keeps its ticks level with real time by itself ({@link ShardHost.catchUp}),
   * also right before each decision a tick count stands for real time in: a lease read, a
   * message from a leader or a candidate. Without it (tests, simulations), ticks come only from
   * {@link ShardHost.tick}.
   */
  readonly clock?: () => number;
  /** Milliseconds per tick when `clock` is given. Default 100. */
  readonly tickMs?: number;
  /**
   * A monotonic clock in ms (performance.now), for log time: as leader the host writes into the
   * log how far it moved since its previous clock entry of the same term (at most every
   * LOG_CLOCK_EVERY_MS, before a client proposal with a session), and client sessions expire only
   * after SESSION_TTL_MS of log time (see sessions.ts). Without it no log time is written, and
   * sessions never expire.
   */
  readonly logClock?: () => number;
  /** Told commit and apply latencies (needs `clock`; without one nothing is measured). */
  readonly latency?: HostLatency;
  /** Test only: send what depends on a write before the write is durable (breaks the durability rule). */
  readonly unsafeSendBeforePersist?: boolean;
}

export const HostErrorCode = {
  ShardNotFound: 'ShardNotFound',
  /** A proposal's client id is not a non-negative integer (negative ids are the host's own). */
  InvalidClientId: 'InvalidClientId',
  /** The client reused a sequence number older than its last one: the reply is gone. */
  SessionSeqStale: SESSION_SEQ_STALE,
  /** The proposal's entry alone exceeds `appendBytesMax`: no raft message could carry it. */
  RequestTooLarge: 'RequestTooLarge',
} as const;
