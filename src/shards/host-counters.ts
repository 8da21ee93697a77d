/** The shard host's counters (src/shards/host.ts), exported as metrics by its worker. */

/** Counts for metrics; monotonic. */
export interface HostCounters {
  turns: number;
  commits: number;
  entriesPersisted: number;
  entriesApplied: number;
  proposals: number;
  proposalsRefused: number;
  /** Log clock entries this host wrote as leader (see HostOptions.logClock). */
  logClockEntries: number;
  replies: number;
  reads: number;
  messagesSent: number;
  snapshotsInstalled: number;
  /** Snapshots the cores asked the shell to send (see HostSink.snapshot). */
  snapshotsRequested: number;
  /** Staged snapshots stepped into a core (installed or, when stale, refused by it). */
  snapshotsStaged: number;
  /** Snap messages that came as raft messages, without data: dropped (snapshots come staged). */
  snapshotMessagesDropped: number;
  compactions: number;
  duplicateProposals: number;
  sessionsExpired: number;
  /** Ticks run (host-wide, each ticks every shard that is not quiet). */
  ticks: number;
  /**
   * Ticks that ran more than a tick after they were due, caught up in one go: the worker was
   * stalled (a long commit, a GC pause, a busy turn). Every one of them ran before the next
   * lease decision or leader message was judged.
   */
  ticksLate: number;
}

/** Every counter at zero. */
export function zeroHostCounters(): HostCounters {
  return {
    turns: 0,
    commits: 0,
    entriesPersisted: 0,
    entriesApplied: 0,
    proposals: 0,
    proposalsRefused: 0,
    logClockEntries: 0,
    replies: 0,
    reads: 0,
    messagesSent: 0,
    snapshotsInstalled: 0,
    snapshotsRequested: 0,
    snapshotsStaged: 0,
    snapshotMessagesDropped: 0,
    compactions: 0,
    duplicateProposals: 0,
    sessionsExpired: 0,
    ticks: 0,
    ticksLate: 0,
  };
}
