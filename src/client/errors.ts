/**
 * The one error class of the client: a {@link ClientError} carries the server's stable `code`
 * (a ServiceErrorCode of src/api/errors.ts, the same union the HTTP API answers with) or one of the
 * client's own, the HTTP `status` (0 when no answer came) and the server's `retry-after`.
 * Callers branch on `code`, never on messages.
 */
import type { ServiceErrorCode } from '../api/errors.js';
import { CodedError } from '../errors.js';

/** Codes the client produces itself, besides the server's (Unreachable and Timeout are shared). */
export const ClientOnlyCode = {
  /** The caller's AbortSignal fired; a write may or may not have been applied. */
  Aborted: 'Aborted',
  /** The client was closed before the call. */
  ClientClosed: 'ClientClosed',
  /** The server's answer could not be read (not the API's JSON, a bad header): a bug or a wrong URL. */
  BadResponse: 'BadResponse',
  /** An argument of the call is out of range (e.g. a page size of 0); nothing was sent. */
  InvalidArgument: 'InvalidArgument',
} as const;
export type ClientOnlyCode = (typeof ClientOnlyCode)[keyof typeof ClientOnlyCode];

/**
 * Every code a call can fail with. `Unreachable`: no endpoint answered (refused, reset, or silent
 * for the attempt's deadline); `Timeout`: the call's `timeoutMs` passed (a write may still apply,
 * once: it carries the client's session).
 */
export type ClientErrorCode = ServiceErrorCode | ClientOnlyCode;

/** What a {@link ClientError} knows besides its code and message. */
export interface ClientErrorInfo {
  /** HTTP status of the answer; 0 when none came (network error, abort, the client's own checks). */
  readonly status?: number;
  /** The server's `retry-after`, in milliseconds, when it sent one. */
  readonly retryAfterMs?: number;
  /** The endpoint (base URL) that answered or failed, when one was asked. */
  readonly endpoint?: string;
  /** Other fields of the server's error object, e.g. `version` of a VersionMismatch. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** A failed call. */
export class ClientError extends CodedError<ClientErrorCode> {
  override readonly name = 'ClientError';
  /** HTTP status of the answer; 0 when none came. */
  readonly status: number;
  /** The server's `retry-after` in milliseconds; undefined when it sent none. */
  readonly retryAfterMs: number | undefined;
  /** The endpoint that answered or failed last, when one was asked. */
  readonly endpoint: string | undefined;
  /** Other fields of the server's error object (e.g. `version` of a VersionMismatch); empty when none. */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ClientErrorCode, message: string, info: ClientErrorInfo = {}) {
    super(code, message);
    this.status = info.status ?? 0;
    this.retryAfterMs = info.retryAfterMs;
    this.endpoint = info.endpoint;
    this.details = info.details ?? {};
  }
}

/**
 * Whether the client tries a failed attempt again (on another endpoint, after a backoff). Reads
 * are always safe to repeat; writes are because each carries the client's own session, so a write
 * that did apply answers the repeat from the shard's session table. Requests the server refused
 * as wrong are never repeated. Every code is listed, so a new one must be decided here.
 */
export const RETRYABLE: Readonly<Record<ClientErrorCode, boolean>> = {
  // The cluster cannot serve it now (or could not tell): another attempt may.
  NotLeader: true,
  ReadDropped: true,
  LeaseExpired: true,
  WorkerUnavailable: true,
  WorkerRestarted: true,
  ShuttingDown: true,
  Overloaded: true,
  ReadQueueFull: true,
  UncommittedBytesExceeded: true,
  TransferInProgress: true,
  ProposalDropped: true,
  ShardNotFound: true,
  Unreachable: true,
  NotReady: true,
  Timeout: true,
  ProposalOutcomeUnknown: true,
  // The request is wrong: the same request fails the same way.
  BadRequest: false,
  InvalidTenant: false,
  InvalidClientId: false,
  InvalidSession: false,
  // The endpoint's Host is not one the node answers to: a configuration to fix, not a moment to wait.
  HostNotAllowed: false,
  ExpectationFailed: false,
  // The node's disk is short: it clears only when an operator frees space, not within a call.
  NoSpace: false,
  EmptyKey: false,
  KeyTooLarge: false,
  InvalidLimit: false,
  InvalidConsistency: false,
  LeaseReadRequiresCheckQuorum: false,
  NotFound: false,
  // Credentials: a token to fix, a tenant to create; not a moment to wait.
  Unauthorized: false,
  Forbidden: false,
  TenantExists: false,
  TenantNotFound: false,
  RoleNotFound: false,
  MemberConflict: false,
  // The tenant's rate on that node is spent: the caller waits retryAfterMs (another node would
  // only spend the tenant's rate there too).
  RateLimited: false,
  // The tenant's keys or bytes are at its quota: only deletes (or a raised quota) make room.
  QuotaExceeded: false,
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
  Internal: false,
  Aborted: false,
  ClientClosed: false,
  BadResponse: false,
  InvalidArgument: false,
};

/** Whether `code` (from a server or the client) is worth another attempt; false for unknown codes. */
export function isRetryable(code: string): boolean {
  return Object.hasOwn(RETRYABLE, code) && RETRYABLE[code as ClientErrorCode];
}
