/**
 * Every error code the client API can answer, as one union. Tables over it (the HTTP status of
 * each code, whether the router retries it) are `Record<ServiceErrorCode, ...>`, so a code that
 * nobody mapped fails the typecheck instead of becoming a 500.
 *
 * The layers below own their codes (RaftErrorCode, HostErrorCode, PoolErrorCode, KvErrorCode,
 * HttpErrorCode); test/unit/api/errors.test.ts proves that each of theirs a client can meet is
 * listed here. A code outside this union (a plug-in state machine's own, a bug) is answered
 * 500 Internal and logged. The codes are stable: clients branch on them, never on messages.
 */
export const ServiceErrorCode = {
  // ------------------------------------------------ the request is wrong: do not retry it as is
  /** Malformed request (HTTP: bad percent-encoding, query or header value; KV: bad request bytes). */
  BadRequest: 'BadRequest',
  /** KV: the tenant is not 1..64 bytes of [A-Za-z0-9_.-]. */
  InvalidTenant: 'InvalidTenant',
  /** Shard host: a proposal's client id is not a non-negative integer. */
  InvalidClientId: 'InvalidClientId',
  /**
   * HTTP: `x-client-id` and `x-client-seq` are not both given, or not a client id in 2^52..2^53-1
   * and a positive sequence (src/wire/session.ts).
   */
  InvalidSession: 'InvalidSession',
  /** HTTP, KV: the key is empty. */
  EmptyKey: 'EmptyKey',
  /** HTTP, KV: a key, scan prefix or `after` is longer than the limit. */
  KeyTooLarge: 'KeyTooLarge',
  /** HTTP, KV: a scan limit out of range (HTTP: not an integer in 1..10,000; KV: 0). */
  InvalidLimit: 'InvalidLimit',
  /** HTTP: a consistency other than linearizable, lease or stale. */
  InvalidConsistency: 'InvalidConsistency',
  /** Raft: a lease read on a cluster without check-quorum; ask for another consistency. */
  LeaseReadRequiresCheckQuorum: 'LeaseReadRequiresCheckQuorum',
  /** HTTP: no route for this path. */
  NotFound: 'NotFound',
  /**
   * HTTP (auth on): no bearer token, a malformed one, or one no tenant (or this node's admin) holds
   * any more: deleted or rotated. Answered with `www-authenticate: Bearer`.
   */
  Unauthorized: 'Unauthorized',
  /**
   * HTTP (auth on): the token is valid but not for this: a tenant's token naming another tenant
   * (`x-tenant`, `?tenant=`), or asking for an admin route (tenants, roles, status, metrics).
   * Management (`iroh-raft-mgmt/0`): the caller's endpoint id has no role allowing the operation.
   */
  Forbidden: 'Forbidden',
  /** HTTP (auth on): the tenant's `requestsPerSec` on this node is spent; `retry-after` says when to come back. */
  RateLimited: 'RateLimited',
  /**
   * Router (auth on): the write would take the tenant past its `quota.bytesMax` or
   * `quota.keysMax`; it was not proposed. Reads, deletes and writes that do not grow the tenant's
   * usage are still served. Waiting does not help: delete keys, or have the admin raise the quota.
   */
  QuotaExceeded: 'QuotaExceeded',
  /** Tenant admin: a tenant of that name exists already (two admins creating it at once: one wins). */
  TenantExists: 'TenantExists',
  /** Tenant admin: no tenant of that name. */
  TenantNotFound: 'TenantNotFound',
  /** Role admin (HTTP `/v1/roles`, mgmt `roles.*`): no role is bound to that endpoint id. */
  RoleNotFound: 'RoleNotFound',
  /** Membership: the change cannot be made in the cluster's state now (it would leave no member up; concurrent changes kept winning). */
  MemberConflict: 'MemberConflict',
  /**
   * Router: the node is low on disk space (below `--disk-free-bytes-min`); writes are refused, never
   * proposed, until space is freed. Reads are served.
   */
  NoSpace: 'NoSpace',
  /**
   * HTTP: the request's `Host` is not one this node answers to (`--http-allowed-hosts`; on a
   * loopback address only the loopback names): a page on another site reaching a local node
   * through DNS rebinding is refused.
   */
  HostNotAllowed: 'HostNotAllowed',
  /** HTTP: an `expect` header other than `100-continue`, which is the only expectation served. */
  ExpectationFailed: 'ExpectationFailed',
  /** HTTP: `GET /v1/kv/<key>` of a key that does not exist. */
  KeyNotFound: 'KeyNotFound',
  /** HTTP: the route exists but not for this method. */
  MethodNotAllowed: 'MethodNotAllowed',
  /** HTTP: the request did not arrive whole in time. */
  RequestTimeout: 'RequestTimeout',
  /** Shard host: the client reused a sequence number older than its last one; the reply is gone. */
  SessionSeqStale: 'SessionSeqStale',
  /** HTTP: compare-and-set found another version than the expected one. */
  VersionMismatch: 'VersionMismatch',
  /** HTTP: the request body is longer than the server's limit. */
  PayloadTooLarge: 'PayloadTooLarge',
  /** KV: the value is longer than `valueBytesMax`. */
  ValueTooLarge: 'ValueTooLarge',
  /** Pool: the request does not fit a ring record. */
  RequestTooLarge: 'RequestTooLarge',
  /** HTTP: the request line and headers are larger than Node's limit. */
  HeadersTooLarge: 'HeadersTooLarge',
  /**
   * Worker, router: the answer does not fit a ring record or a peer frame (a value stored under
   * larger limits, or a plug-in state machine's reply); the same request fails the same way.
   */
  ReplyTooLarge: 'ReplyTooLarge',

  // ------------------------------------------------ the cluster cannot serve it now: retry
  /** Raft, router: this replica does not lead the shard, or no leader is known. */
  NotLeader: 'NotLeader',
  /** Raft: the read lost its round (the leader changed or is unknown). */
  ReadDropped: 'ReadDropped',
  /** Raft: the leader's lease has lapsed. */
  LeaseExpired: 'LeaseExpired',
  /** Pool: the worker hosting the shard is restarting. */
  WorkerUnavailable: 'WorkerUnavailable',
  /** Pool: the worker hosting the shard crashed; a write may or may not have been applied. */
  WorkerRestarted: 'WorkerRestarted',
  /** HTTP, pool, router: the node is draining or closing. */
  ShuttingDown: 'ShuttingDown',
  /** Pool, router: too much work in flight (a full ring, in-flight table or session lanes). */
  Overloaded: 'Overloaded',
  /** Raft: too many reads are queued. */
  ReadQueueFull: 'ReadQueueFull',
  /** Raft: the uncommitted log is at `uncommittedBytesMax`. */
  UncommittedBytesExceeded: 'UncommittedBytesExceeded',
  /** Raft: leadership is moving; proposals are refused until it ends. */
  TransferInProgress: 'TransferInProgress',
  /** Raft: the proposal was accepted, then removed from the log; it will never apply. */
  ProposalDropped: 'ProposalDropped',
  /** Shard host: the shard is not hosted on the replica asked (closed or moved). */
  ShardNotFound: 'ShardNotFound',
  /** Router: the node that should answer is not a member or did not answer in time. */
  Unreachable: 'Unreachable',
  /**
   * Router: this node does not know yet where client keys live: a new cluster's nodes read the
   * cluster's placement key in their first moments (`/healthz` says not ready until then); the
   * request waited for it up to its deadline. (Not raft's storage code `Unavailable`, which no
   * client meets.)
   */
  NotReady: 'NotReady',

  // ------------------------------------------------ the outcome is unknown
  /** Pool, router: no answer before the deadline; a write may still be applied. */
  Timeout: 'Timeout',
  /** Raft: the proposal was accepted but its fate cannot be known any more. */
  ProposalOutcomeUnknown: 'ProposalOutcomeUnknown',

  // ------------------------------------------------ a bug
  /** HTTP: a bug or an unknown service error; it is logged. */
  Internal: 'Internal',
} as const;
export type ServiceErrorCode = (typeof ServiceErrorCode)[keyof typeof ServiceErrorCode];

/** Whether `code` is one of the {@link ServiceErrorCode}s (false for anything else, `__proto__` included). */
export function isServiceErrorCode(code: string): code is ServiceErrorCode {
  return Object.hasOwn(ServiceErrorCode, code);
}
