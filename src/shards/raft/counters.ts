/**
 * What a raft core counts (src/shards/raft/raft.ts), read through its status; the shard host sums
 * some of them into its metrics (RaftTotals, src/shards/host-counters.ts).
 */
export interface RaftCounters {
  /** Campaigns for leadership (the vote round; pre-votes are not counted). */
  elections: number;
  /** Pre-vote rounds started. */
  preVotes: number;
  /** Times this replica became leader. */
  leaderships: number;
  /** Times this replica, as leader, stepped down. */
  stepDowns: number;
  proposalsRefused: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  /** ReadIndex quorum rounds (each serves every read queued before it). */
  readRounds: number;
  /** Reads served on a leader's lease, without a round. */
  leaseReads: number;
  /** Leadership transfers that did not finish in time. */
  transfersAborted: number;
  /** Times this replica, as leader, made its group go quiet. */
  quiesced: number;
  /** Replicating followers probed again because their match stood still too long (stall detection). */
  stallProbes: number;
  /** Messages folded into one queued before them for the same replica (Replication.queueApp, Follower.accept). */
  messagesFolded: number;
  /** Campaigns of non-members answered with a notMember hint. */
  notMemberHintsSent: number;
  /** Times this replica learned from a member that it was removed (and stopped campaigning). */
  removedHints: number;
}

/** Every counter at zero. */
export function newRaftCounters(): RaftCounters {
  return {
    elections: 0,
    preVotes: 0,
    leaderships: 0,
    stepDowns: 0,
    proposalsRefused: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    readRounds: 0,
    leaseReads: 0,
    transfersAborted: 0,
    quiesced: 0,
    stallProbes: 0,
    messagesFolded: 0,
    notMemberHintsSent: 0,
    removedHints: 0,
  };
}
