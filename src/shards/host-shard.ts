/** What the shard host keeps per hosted shard and per turn (see host.ts). */
import type { LogIndex, RawNode, Ready, ShardId, Term } from './raft/index.js';
import type { AppliedEntry } from './turn-write.js';
import type { ShardStore } from './store.js';

export interface PendingProposal {
  readonly reqId: number;
  readonly term: Term;
  /** `clock()` when it was proposed, in ms (0 without a clock). */
  readonly atMs: number;
}

export interface PendingRead {
  readonly reqId: number;
  readonly query: Uint8Array;
}

/** One hosted shard: its core, its slice of the store and its outstanding client work. */
export interface Shard {
  readonly id: ShardId;
  readonly node: RawNode;
  readonly store: ShardStore;
  /**
   * Proposals this replica accepted as leader, by log index; resolved when their index is applied
   * (the applied entry's term says whether it was theirs) or when the core fails them. Several may
   * wait at one index: a leader of a later term may propose at an index whose earlier entry was
   * truncated here, and that earlier entry may still commit through another replica (Raft fig. 8),
   * so only the commit decides.
   */
  readonly proposals: Map<number, PendingProposal[]>;
  /** Reads waiting for their read index, by read context. */
  readonly reads: Map<number, PendingRead>;
  /** Reads whose index is known, waiting for applied to reach it (index order). */
  readonly readyReads: { index: LogIndex; read: PendingRead }[];
  /**
   * Host ticks this shard's core has seen (ShardHost.ticks when it is level). A shard outside
   * `ticking` falls behind; its lag is made up with skipTicks before its next input.
   */
  clock: number;
  /** logClock ms at which this host, as leader, last wrote log time for this shard (-Infinity: never). */
  logClockAtMs: number;
  /** The term of that clock entry: a step is measured only within one term (0: never). */
  logClockTerm: number;
}

/** One shard's Ready and the results of handling it inside the commit. */
export interface Turn {
  readonly shard: Shard;
  readonly rd: Ready;
  readonly applied: AppliedEntry[];
  /** `clock()` when the Ready was taken, in ms: the moment its committed entries count as committed. */
  readonly takenAtMs: number;
}
