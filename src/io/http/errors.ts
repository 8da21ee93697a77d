/**
 * Errors of the client API. Every error response is `{"error":{"code","message"}}` (some add
 * fields, e.g. `version` on VersionMismatch) with the status that {@link statusByCode} gives its
 * code. The codes are stable: clients branch on them, never on messages.
 */
import { isServiceErrorCode } from '../../api/index.js';
import type { ServiceErrorCode } from '../../api/index.js';
import { CodedError } from '../../errors.js';

/** Codes the HTTP layer produces itself (the service's own codes pass through {@link statusByCode}). */
export const HttpErrorCode = {
  /** Malformed request: bad percent-encoding, a bad query or header value, an unparsable request. */
  BadRequest: 'BadRequest',
  /** No route for this path. */
  NotFound: 'NotFound',
  /** The route exists but not for this method; the `allow` header lists the methods it takes. */
  MethodNotAllowed: 'MethodNotAllowed',
  /** `GET /v1/kv/<key>`: the key does not exist. */
  KeyNotFound: 'KeyNotFound',
  /** Compare-and-set failed: the key's version is not the expected one; `version` is the current one (0 = absent). */
  VersionMismatch: 'VersionMismatch',
  /** The request body is longer than `maxBodyBytes`; the connection is closed after the reply. */
  PayloadTooLarge: 'PayloadTooLarge',
  /** `x-client-id` and `x-client-seq` not both given, or out of range (a client id in 2^52..2^53-1, a sequence from 1). */
  InvalidSession: 'InvalidSession',
  /** The key is empty (`PUT` or `DELETE /v1/kv/`). */
  EmptyKey: 'EmptyKey',
  /** The key, scan prefix or `after` is longer than `maxKeyBytes` (counted after percent-decoding). */
  KeyTooLarge: 'KeyTooLarge',
  /** A scan `limit` that is not an integer in 1..10,000. */
  InvalidLimit: 'InvalidLimit',
  /** A `consistency` other than linearizable, lease or stale. */
  InvalidConsistency: 'InvalidConsistency',
  /** Auth on: no valid bearer token (missing, malformed, deleted or rotated); `www-authenticate: Bearer`. */
  Unauthorized: 'Unauthorized',
  /** Auth on: the token may not do this (another tenant's keys, an admin route). */
  Forbidden: 'Forbidden',
  /** Auth on: the tenant's requestsPerSec on this node is spent; `retry-after` in seconds. */
  RateLimited: 'RateLimited',
  /** A tenant name that is not 1..64 of [A-Za-z0-9_.-], or that starts with `_` (reserved). */
  InvalidTenant: 'InvalidTenant',
  /** An `expect` header other than `100-continue` (417). */
  ExpectationFailed: 'ExpectationFailed',
  /** The `Host` header names a host outside the server's allowed hosts (421). */
  HostNotAllowed: 'HostNotAllowed',
  /** The request did not arrive whole within `requestTimeoutMs` (or its headers within `headersTimeoutMs`). */
  RequestTimeout: 'RequestTimeout',
  /** The request line and headers are larger than Node's header limit (16 KiB). */
  HeadersTooLarge: 'HeadersTooLarge',
  /** The server is draining or closing; retry on another node or later. */
  ShuttingDown: 'ShuttingDown',
  /** No room to read the body within `bodyWaitMs` (`bodiesBytesMax` held by other requests); nothing was done. */
  Overloaded: 'Overloaded',
  /** A bug or an unknown service error; it is logged. */
  Internal: 'Internal',
  /** Thrown by `HttpServer.start` for an option out of range. Never a response. */
  InvalidConfig: 'InvalidConfig',
} as const satisfies Record<string, ServiceErrorCode | 'InvalidConfig'>;
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

/** How a code is answered: the status, and `retry-after` (seconds) for errors worth retrying. */
export interface StatusRule {
  readonly status: number;
  readonly retryAfterS?: number;
}

const retry = (status: number): StatusRule => ({ status, retryAfterS: 1 });

/**
 * Code -> status, for every code the client API can answer (the HTTP layer's and the service's:
 * KV, shard host, raft, pool, router). Exhaustive: a new {@link ServiceErrorCode} fails the
 * typecheck until it has a row here. A code outside the union is answered 500 `Internal` and
 * logged ({@link statusRuleOf} gives undefined for it).
 */
export const statusByCode: Readonly<Record<ServiceErrorCode, StatusRule>> = {
  // Client mistakes.
  BadRequest: { status: 400 },
  InvalidClientId: { status: 400 },
  InvalidSession: { status: 400 },
  InvalidTenant: { status: 400 },
  EmptyKey: { status: 400 },
  KeyTooLarge: { status: 400 },
  InvalidLimit: { status: 400 },
  InvalidConsistency: { status: 400 },
  // A lease read on a cluster without check-quorum: ask for another consistency.
  LeaseReadRequiresCheckQuorum: { status: 400 },
  NotFound: { status: 404 },
  Unauthorized: { status: 401 },
  Forbidden: { status: 403 },
  TenantNotFound: { status: 404 },
  RoleNotFound: { status: 404 },
  MemberConflict: { status: 409 },
  TenantExists: { status: 409 },
  // The tenant's own rate: retry-after is computed from its bucket, not fixed here.
  RateLimited: { status: 429 },
  // Not 429: waiting does not free room, and clients and proxies retry a 429. Not 413: the request
  // itself may be small. 403, as storage services answer a spent storage quota: the tenant may not
  // store more until it deletes keys or its quota is raised. No retry-after.
  QuotaExceeded: { status: 403 },
  HostNotAllowed: { status: 421 },
  ExpectationFailed: { status: 417 },
  NoSpace: { status: 507 },
  KeyNotFound: { status: 404 },
  MethodNotAllowed: { status: 405 },
  RequestTimeout: { status: 408 },
  SessionSeqStale: { status: 409 },
  VersionMismatch: { status: 412 },
  PayloadTooLarge: { status: 413 },
  ValueTooLarge: { status: 413 },
  RequestTooLarge: { status: 413 },
  HeadersTooLarge: { status: 431 },
  // The node cannot carry the answer in its configuration (not the client's request body): a
  // server-side limit, not a bug, and not worth retrying.
  ReplyTooLarge: { status: 500 },
  // The cluster cannot serve it now; the same request may succeed in a moment.
  NotLeader: retry(503),
  ReadDropped: retry(503),
  LeaseExpired: retry(503),
  WorkerUnavailable: retry(503),
  WorkerRestarted: retry(503),
  ShuttingDown: retry(503),
  Overloaded: retry(503),
  ReadQueueFull: retry(503),
  UncommittedBytesExceeded: retry(503),
  TransferInProgress: retry(503),
  ProposalDropped: retry(503),
  ShardNotFound: retry(503),
  Unreachable: retry(503),
  NotReady: retry(503),
  // The outcome is unknown: the write may or may not have been applied.
  Timeout: { status: 504 },
  ProposalOutcomeUnknown: { status: 504 },
  Internal: { status: 500 },
};

/** The rule of a code from anywhere (a service's reply, a wire): undefined when it is not a {@link ServiceErrorCode}. */
export function statusRuleOf(code: string): StatusRule | undefined {
  return isServiceErrorCode(code) ? statusByCode[code] : undefined;
}

/**
 * An error answered to the client. `extra` fields are added to the JSON error object (they must
 * not be named code or message); `headers` are added to the response (e.g. `allow`).
 */
export class HttpError extends CodedError<HttpErrorCode | ServiceErrorCode> {
  override readonly name = 'HttpError';
  /** The response status: the code's in {@link statusByCode}, else 500. */
  readonly status: number;
  /** Response headers: the ones given, plus `retry-after` when the code's rule has one. */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    code: HttpErrorCode | ServiceErrorCode,
    message: string,
    readonly extra: Readonly<Record<string, unknown>> = {},
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
    const rule = statusRuleOf(code);
    this.status = rule?.status ?? 500;
    this.headers = rule?.retryAfterS === undefined ? headers : { 'retry-after': String(rule.retryAfterS), ...headers };
  }

  /** The response body's `error` object. */
  override toJSON(): { code: HttpErrorCode | ServiceErrorCode; message: string } & Record<string, unknown> {
    return { ...this.extra, code: this.code, message: this.message };
  }
}

/**
 * Throws HttpError MethodNotAllowed (with an `allow` header) unless `method` is one of `methods`
 * (`'GET, HEAD'`, as the header lists them).
 */
export function allow(method: string, methods: string): void {
  if (!methods.split(', ').includes(method)) {
    throw new HttpError(HttpErrorCode.MethodNotAllowed, `method ${method} is not allowed here (allowed: ${methods})`, {}, { allow: methods });
  }
}
