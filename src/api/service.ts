/**
 * The contract between the client API (src/io/http) and the node (the router): what a request
 * asks and what it comes to. Keys and values are bytes; tenants are text.
 */
import type { Consistency } from './consistency.js';

/**
 * A failed request: an operating error with a stable `code`. The code is a
 * {@link ServiceErrorCode} as a rule; any other (a plug-in state machine's, a bug) is answered
 * 500 Internal and logged.
 */
export interface Failure {
  readonly ok: false;
  readonly code: string;
  readonly message: string;
}

/** What a request came to: its value, or a {@link Failure}. */
export type Result<T> = { readonly ok: true; readonly value: T } | Failure;

/**
 * A client's own session for one write (headers `x-client-id`, `x-client-seq`): the shard applies
 * a (clientId, seq) once however often it is sent, through whichever node. `clientId` is in
 * CLIENT_ID_MIN..CLIENT_ID_MAX (src/wire/session.ts), `seq` a positive safe integer.
 */
export interface Session {
  readonly clientId: number;
  readonly seq: number;
}

/**
 * A write of `value` under `key`; with `expectedVersion`, a compare-and-set (0 = the key must not
 * exist). Without `session` the node proposes under one of its own sessions (exactly once only
 * while that node runs).
 */
export interface PutArgs {
  readonly tenant: string;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly expectedVersion?: number;
  readonly session?: Session;
}

/** `swapped` false: a compare-and-set found another version, `version` (0 when the key is absent). */
/**
 * Where a request was served: its shard, and the node (raft id, as in `GET /v1/status`) that
 * answered it. For writes and linearizable or lease reads that is the shard's leader, so a client
 * that sends the shard's next requests straight there saves a forward.
 */
export interface Served {
  readonly shard: number;
  readonly node: number;
}

export interface PutResult {
  readonly version: number;
  readonly swapped: boolean;
  readonly served?: Served;
}

/** A delete of `key`; with `expectedVersion` (1 or more), only if the key is at that version. */
export interface DeleteArgs {
  readonly tenant: string;
  readonly key: Uint8Array;
  readonly expectedVersion?: number;
  readonly session?: Session;
}

export interface DeleteResult {
  /** The key existed (and, with expectedVersion, was at that version) and is gone now. */
  readonly deleted: boolean;
  /** With expectedVersion and not deleted: the key's current version (0: absent). */
  readonly version?: number;
  readonly served?: Served;
}

export interface GetArgs {
  readonly tenant: string;
  readonly key: Uint8Array;
  readonly consistency: Consistency;
}

/** The value and its metadata: `version` counts the key's writes, the indexes are log indexes. */
export type GetResult = (
  | { readonly found: false }
  | { readonly found: true; readonly value: Uint8Array; readonly version: number; readonly createIndex: number; readonly modIndex: number }
) & { readonly served?: Served };

/** Keys of `tenant` with `prefix`, greater than `startAfter` (when given), in byte order, at most `limit`. */
export interface ScanArgs {
  readonly tenant: string;
  readonly prefix: Uint8Array;
  readonly limit: number;
  readonly startAfter?: Uint8Array;
  readonly consistency: Consistency;
}

export interface ScanItem {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly version: number;
}

export interface ScanResult {
  readonly items: ScanItem[];
  /** Some keys were left out: ask again with the last key as `startAfter`. */
  readonly more: boolean;
}

/** Metrics in a text exposition format, e.g. Prometheus'. */
export interface MetricsText {
  readonly contentType: string;
  readonly body: string;
}

export interface Health {
  /** The node can serve: every local shard knows a leader. */
  readonly ok: boolean;
  /** JSON-serializable. */
  readonly detail: unknown;
}

/**
 * Where keys live and who leads, as this node knows it (`GET /v1/placement`): enough for a client
 * to send a key's requests straight to its shard's leader.
 */
export interface Placement {
  /** This node's raft id (as `node` in `GET /v1/status`). */
  readonly node: number;
  readonly shards: number;
  /** Replicas per shard. */
  readonly replicas: number;
  /**
   * Name of the cluster's key -> shard function: KEYED_HASH or UNKEYED_HASH of
   * src/wire/shard-hash.ts, or `pending` while this node has not read the cluster's choice yet.
   */
  readonly hash: string;
  /**
   * The keyed hash's 16-byte key as 32 hex digits, only for callers trusted with it (the admin
   * token, or anyone when auth is off): with it, a client computes each key's shard itself.
   */
  readonly placementKey?: string;
  /** Per shard: the raft id of its leader as this node knows it, null when unknown. */
  readonly leaders: readonly (number | null)[];
}

/**
 * What the client API needs from the node. Operating errors are {@link Failure}s; a throw is a
 * bug (answered 500 Internal and logged).
 */
export interface KvService {
  put(r: PutArgs): Promise<Result<PutResult>>;
  delete(r: DeleteArgs): Promise<Result<DeleteResult>>;
  get(r: GetArgs): Promise<Result<GetResult>>;
  scan(r: ScanArgs): Promise<Result<ScanResult>>;
  /** JSON-serializable. */
  status(): Promise<unknown>;
  /** `withKey`: include the placement key (the caller may know it). Default false. */
  placement(withKey?: boolean): Placement;
  metrics(): Promise<MetricsText>;
  health(): Health;
}
