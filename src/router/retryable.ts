/** Which failures the router tries again within a request's deadline. */
import { isServiceErrorCode } from '../api/index.js';
import type { ServiceErrorCode } from '../api/index.js';

/**
 * Whether a request that failed with a code is tried again (with the same session) until its
 * deadline: when another attempt may reach a leader, a running worker or a live node, and the
 * session makes a write that did apply answer without applying twice. Every code is listed, so a
 * new one must be decided here; a code outside ServiceErrorCode is not retried.
 */
const RETRYABLE: Readonly<Record<ServiceErrorCode, boolean>> = {
  NotLeader: true,
  ReadDropped: true,
  LeaseExpired: true,
  WorkerUnavailable: true,
  WorkerRestarted: true,
  ProposalDropped: true,
  ProposalOutcomeUnknown: true,
  Unreachable: true,
  // A leadership transfer (balancing, a replica moving away) ends within an election timeout,
  // and the proposal it refused was never appended: the next attempt reaches the new leader.
  TransferInProgress: true,
  // The same request would fail the same way.
  BadRequest: false,
  InvalidTenant: false,
  InvalidClientId: false,
  InvalidSession: false,
  EmptyKey: false,
  KeyTooLarge: false,
  InvalidLimit: false,
  InvalidConsistency: false,
  LeaseReadRequiresCheckQuorum: false,
  NotFound: false,
  Unauthorized: false,
  Forbidden: false,
  RateLimited: false,
  QuotaExceeded: false,
  TenantExists: false,
  TenantNotFound: false,
  RoleNotFound: false,
  MemberConflict: false,
  HostNotAllowed: false,
  ExpectationFailed: false,
  NoSpace: false,
  KeyNotFound: false,
  MethodNotAllowed: false,
  RequestTimeout: false,
  SessionSeqStale: false,
  VersionMismatch: false,
  PayloadTooLarge: false,
  ValueTooLarge: false,
  RequestTooLarge: false,
  HeadersTooLarge: false,
  ReplyTooLarge: false,
  // The router has waited for the placement key for the whole deadline already.
  NotReady: false,
  // Load and shutdown: the client backs off (HTTP retry-after), the router does not pile on.
  ShuttingDown: false,
  Overloaded: false,
  ReadQueueFull: false,
  UncommittedBytesExceeded: false,
  ShardNotFound: false,
  // The deadline has passed, or a bug.
  Timeout: false,
  Internal: false,
};

/** Whether a request that failed with `code` is tried again (see RETRYABLE). */
export const retryable = (code: string): boolean => isServiceErrorCode(code) && RETRYABLE[code];
