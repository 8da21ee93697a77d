/**
 * Operating errors of the consensus core: values with a stable `code`, safe to send across threads
 * and the wire. A broken invariant is not one of these: it is an {@link assert} failure.
 */
import { CodedError } from '../../errors.js';

export const RaftErrorCode = {
  /** This node is not the leader; `leaderHint` names the leader when known. */
  NotLeader: 'NotLeader',
  /** The uncommitted log already holds `uncommittedBytesMax`; retry later. */
  UncommittedBytesExceeded: 'UncommittedBytesExceeded',
  /** A leadership transfer is in progress; proposals are refused until it ends. */
  TransferInProgress: 'TransferInProgress',
  /** An earlier membership change is not applied yet, or the leader has not applied its first entry. */
  ConfChangePending: 'ConfChangePending',
  /** The membership change is invalid for the current configuration. */
  InvalidConfChange: 'InvalidConfChange',
  /** The proposal was accepted, then removed from the log: it will never apply. */
  ProposalDropped: 'ProposalDropped',
  /** The proposal was accepted but its fate cannot be known any more (a snapshot replaced the log). */
  ProposalOutcomeUnknown: 'ProposalOutcomeUnknown',
  /** A lease read was asked for but check-quorum is off, so no lease can be trusted. */
  LeaseReadRequiresCheckQuorum: 'LeaseReadRequiresCheckQuorum',
  /** The leader's lease has lapsed; use a ReadIndex read. */
  LeaseExpired: 'LeaseExpired',
  /** The read could not be served (leader changed or unknown); retry. */
  ReadDropped: 'ReadDropped',
  /** Too many reads are queued. */
  ReadQueueFull: 'ReadQueueFull',
  /** The transfer target is not a voter or is this node. */
  InvalidTransferTarget: 'InvalidTransferTarget',
  /** The node was removed from the group. */
  Removed: 'Removed',
  /** A configuration value is out of range. */
  InvalidConfig: 'InvalidConfig',
  /** Asked entries are compacted away. */
  Compacted: 'Compacted',
  /** Asked entries are beyond the last index. */
  Unavailable: 'Unavailable',
} as const;
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

export class RaftError extends CodedError<RaftErrorCode> {
  override readonly name = 'RaftError';
  constructor(
    code: RaftErrorCode,
    message: string,
    readonly leaderHint = 0,
  ) {
    super(code, message);
  }

  override toJSON(): { code: RaftErrorCode; message: string; leaderHint: number } {
    return { code: this.code, message: this.message, leaderHint: this.leaderHint };
  }
}

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/**
 * Invariant check; stays on in production. A failure is a bug: crash, restart, recover from disk.
 * A message built from values (a template string) is built on every call, true or not: on paths
 * taken per entry or per message, write `if (!ok) assert(false, \`...\`)` so it is built only
 * when it is thrown.
 */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new AssertionError(message);
}
