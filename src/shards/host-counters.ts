/** The shard host's counters (src/shards/host.ts), exported as metrics by its worker. */

import type { RaftCounters } from './raft/index.js';

/** Counts for metrics; monotonic. */
export interface HostCounters {
  turns: number;
  /** Turns that wrote: each one durable write (a write-ahead log record, or an LMDB commit). */
  commits: number;
  /** LMDB commits of what the write-ahead log's records hold, with the compactions due. */
  checkpoints: number;
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
    checkpoints: 0,
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

/**
 * Told how long entries took, in seconds by the host's `clock` (HostOptions.latency). Called
 * synchronously inside a turn: keep it cheap (a histogram observation).
 */
export interface HostLatency {
  /** A client proposal this replica made as leader was committed: seconds from propose() to the turn that handed it out for applying. */
  commit(seconds: number): void;
  /** `entries` committed entries of one shard were applied, durably: seconds from the turn that handed them out to the end of its commit. */
  apply(seconds: number, entries: number): void;
}

/**
 * The raft cores' event counts that the host sums over its shards (their meaning: RaftCounters).
 * Snapshots sent are left out: the host counts the same event as `snapshotsRequested`.
 */
const RAFT_TOTALS = [
  'elections',
  'preVotes',
  'leaderships',
  'stepDowns',
  'readRounds',
  'leaseReads',
  'transfersAborted',
  'quiesced',
  'stallProbes',
  'messagesFolded',
] as const satisfies readonly (keyof RaftCounters)[];

export type RaftTotals = Pick<RaftCounters, (typeof RAFT_TOTALS)[number]>;

/** Every raft total at zero. */
export function zeroRaftTotals(): RaftTotals {
  const t = {} as RaftTotals;
  for (const k of RAFT_TOTALS) t[k] = 0;
  return t;
}

/** Adds the counts of `from` (a core's counters) into `into`. */
export function addRaftTotals(into: RaftTotals, from: Readonly<RaftTotals>): void {
  for (const k of Object.keys(into) as (keyof RaftTotals)[]) into[k] += from[k];
}
