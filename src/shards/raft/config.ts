import { RaftError, RaftErrorCode } from './errors.js';
import type { Prng } from './prng.js';
import type { Storage } from './storage.js';
import type { LogIndex, NodeId } from './types.js';

/**
 * Deliberately injectable bugs, so the simulator can prove its checks find real violations.
 * Never set outside tests.
 */
export const BUGS = {
  'commit-previous-term': 'the leader commits an entry of an earlier term by counting replicas',
  'vote-without-log-check': 'a vote is granted without checking that the candidate log is up to date',
  'lease-read-without-check-quorum': 'a leader serves lease reads on leadership alone, check-quorum off',
  'apply-before-persist': 'acks and applies happen before the write they depend on is durable',
  'no-conflict-truncate': 'a follower keeps conflicting entries instead of truncating them',
  'wake-on-stale-campaign': "a quiet follower drops its lease promise on a late copy of its leader's own campaign message",
} as const;
export type BugName = keyof typeof BUGS;

export interface RaftConfig {
  /** This replica's id (> 0). */
  readonly id: NodeId;
  /** Stable storage the core reads; the shell writes it while handling each Ready. */
  readonly storage: Storage;
  /** The only source of randomness (election timeouts). */
  readonly prng: Prng;
  /** Last index the state machine applied before this start; default 0 (replay everything). */
  readonly applied?: LogIndex;
  /**
   * Election timeout base, in ticks; a follower waits a random number of ticks in
   * [electionTimeoutTicks, 2 * electionTimeoutTicks) before campaigning. Default 10.
   */
  readonly electionTimeoutTicks?: number;
  /** Ticks between leader heartbeats; must be < electionTimeoutTicks. Default 1. */
  readonly heartbeatIntervalTicks?: number;
  /** Run a pre-vote round before a real election, so a partitioned node cannot inflate terms. Default true. */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. Default true. */
  readonly checkQuorum?: boolean;
  /**
   * Bytes of entries (each counted as data + ENTRY_OVERHEAD_BYTES) in one App message; the first
   * entry always goes in, so a lone entry larger than this travels alone. A shell whose messages
   * have a size limit refuses proposals whose entry alone exceeds it (the shard host does, and the
   * worker pool derives this from its ring record limit: src/workers/fit.ts). Default
   * {@link APPEND_BYTES_MAX_DEFAULT}.
   */
  readonly appendBytesMax?: number;
  /** App messages in flight to one follower in replicate state. Default 256. */
  readonly inflightMessagesMax?: number;
  /** Entry bytes in flight to one follower. Default 8 MiB. */
  readonly inflightBytesMax?: number;
  /** Bytes of proposed, not yet applied entries a leader accepts; beyond it proposals fail. Default 64 MiB. */
  readonly uncommittedBytesMax?: number;
  /** Bytes of committed entries in one Ready. Default 4 MiB. */
  readonly committedBytesPerReadyMax?: number;
  /** Reads queued at a leader (waiting for a round) or at a follower (waiting for the leader). Default 4096. */
  readonly readQueueMax?: number;
  /** Ticks a leadership transfer may take before it is aborted. Default electionTimeoutTicks. */
  readonly transferTimeoutTicks?: number;
  /**
   * Idle ticks after which a leader whose followers all match its log stops heartbeating and its
   * followers stop their election timers (0: never). The shell must then wake the group's
   * replicas when it learns the leader's node is gone ({@link RawNode.wake}). Default 0.
   */
  readonly quiesceAfterTicks?: number;
  /**
   * Idle ticks after which a leader whose term holds only its own first entry (the no-op every
   * new leader appends) goes quiet, once every follower matches it. Nothing was proposed in the
   * term yet, so there is no stream of writes to expect; thousands of groups elected at once stop
   * heartbeating right after their elections instead of `quiesceAfterTicks` later. Between 1 and
   * `quiesceAfterTicks` (ignored when that is 0). Default `quiesceAfterTicks`.
   */
  readonly quiesceNewLeaderAfterTicks?: number;
  /**
   * Ticks added, per rank, to this replica's first election timeout after it starts: a replica
   * of `campaignRank` r waits r x `campaignStaggerTicks` more before its first campaign. A shell
   * that starts many groups at once ranks each group's voters so that one preferred replica
   * campaigns alone first, and the others only if it did not win. Only timing: a campaign is the
   * same campaign whenever it starts. Default 0 (no stagger).
   */
  readonly campaignStaggerTicks?: number;
  /** This replica's rank among its group's voters for {@link campaignStaggerTicks}; 0 = preferred. Default 0. */
  readonly campaignRank?: number;
  /** Test only: bugs to inject. */
  readonly bugs?: ReadonlySet<BugName>;
}

/** Default of {@link RaftConfig.appendBytesMax}: 1 MiB. */
export const APPEND_BYTES_MAX_DEFAULT = 1 << 20;

export type ResolvedConfig = Required<Omit<RaftConfig, 'bugs'>> & { readonly bugs: ReadonlySet<BugName> };

/** Fills defaults and checks every value and the relations between them. */
export function resolveConfig(c: RaftConfig): ResolvedConfig {
  const electionTimeoutTicks = c.electionTimeoutTicks ?? 10;
  const r: ResolvedConfig = {
    id: c.id,
    storage: c.storage,
    prng: c.prng,
    applied: c.applied ?? (0 as LogIndex),
    electionTimeoutTicks,
    heartbeatIntervalTicks: c.heartbeatIntervalTicks ?? 1,
    preVote: c.preVote ?? true,
    // The injected bug describes a leader that trusts leadership alone, with check-quorum off.
    checkQuorum: c.bugs?.has('lease-read-without-check-quorum') === true ? false : (c.checkQuorum ?? true),
    appendBytesMax: c.appendBytesMax ?? APPEND_BYTES_MAX_DEFAULT,
    inflightMessagesMax: c.inflightMessagesMax ?? 256,
    inflightBytesMax: c.inflightBytesMax ?? 8 << 20,
    uncommittedBytesMax: c.uncommittedBytesMax ?? 64 << 20,
    committedBytesPerReadyMax: c.committedBytesPerReadyMax ?? 4 << 20,
    readQueueMax: c.readQueueMax ?? 4096,
    transferTimeoutTicks: c.transferTimeoutTicks ?? electionTimeoutTicks,
    quiesceAfterTicks: c.quiesceAfterTicks ?? 0,
    quiesceNewLeaderAfterTicks: c.quiesceNewLeaderAfterTicks ?? c.quiesceAfterTicks ?? 0,
    campaignStaggerTicks: c.campaignStaggerTicks ?? 0,
    campaignRank: c.campaignRank ?? 0,
    bugs: c.bugs ?? new Set(),
  };
  const positive = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v <= 0) throw new RaftError(RaftErrorCode.InvalidConfig, `${name} must be a positive integer, got ${v}`);
  };
  positive('id', r.id);
  positive('electionTimeoutTicks', r.electionTimeoutTicks);
  positive('heartbeatIntervalTicks', r.heartbeatIntervalTicks);
  positive('appendBytesMax', r.appendBytesMax);
  positive('inflightMessagesMax', r.inflightMessagesMax);
  positive('inflightBytesMax', r.inflightBytesMax);
  positive('uncommittedBytesMax', r.uncommittedBytesMax);
  positive('committedBytesPerReadyMax', r.committedBytesPerReadyMax);
  positive('readQueueMax', r.readQueueMax);
  positive('transferTimeoutTicks', r.transferTimeoutTicks);
  if (r.heartbeatIntervalTicks >= r.electionTimeoutTicks) {
    throw new RaftError(RaftErrorCode.InvalidConfig, 'heartbeatIntervalTicks must be < electionTimeoutTicks');
  }
  if (r.electionTimeoutTicks < 3) {
    // Elections need room for randomized timeouts; the lease (LEASE_MARGIN_TICKS below the
    // election timeout) then lasts at most a tick, and falls back to ReadIndex rounds.
    throw new RaftError(RaftErrorCode.InvalidConfig, 'electionTimeoutTicks must be >= 3');
  }
  if (!Number.isInteger(r.quiesceAfterTicks) || r.quiesceAfterTicks < 0)
    throw new RaftError(RaftErrorCode.InvalidConfig, 'quiesceAfterTicks must be an integer >= 0');
  const q = r.quiesceNewLeaderAfterTicks;
  if (r.quiesceAfterTicks > 0 && (!Number.isInteger(q) || q < 1 || q > r.quiesceAfterTicks))
    throw new RaftError(RaftErrorCode.InvalidConfig, `quiesceNewLeaderAfterTicks must be an integer in [1, quiesceAfterTicks], got ${q}`);
  for (const [name, v] of [
    ['campaignStaggerTicks', r.campaignStaggerTicks],
    ['campaignRank', r.campaignRank],
  ] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RaftError(RaftErrorCode.InvalidConfig, `${name} must be an integer >= 0, got ${v}`);
  }
  if (!Number.isInteger(r.applied) || r.applied < 0) throw new RaftError(RaftErrorCode.InvalidConfig, 'applied must be >= 0');
  return r;
}

/**
 * A rank for {@link RaftConfig.campaignRank}: `self`'s place among the group's `voters` in id order,
 * rotated by the group's number, so each node is the preferred replica (rank 0) of an even share of
 * the groups, and first elections spread leaders as a leader balance would. 0 for a replica that
 * is not a voter (it does not campaign).
 */
export function campaignRankOf(group: number, self: NodeId, voters: readonly NodeId[]): number {
  const sorted = [...voters].sort((a, b) => a - b);
  const i = sorted.indexOf(self);
  if (i < 0) return 0;
  return (i - (group % sorted.length) + sorted.length) % sorted.length;
}
