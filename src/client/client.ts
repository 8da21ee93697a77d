/**
 * The typed client of iroh-raft's HTTP API: put, get, delete, compare-and-set and prefix scans,
 * consistency per read, an AbortSignal per call, one error class with the server's stable codes,
 * retries only where they are safe, writes applied exactly once across retries and node restarts,
 * and requests sent straight to their shard's leader.
 *
 * Exactly once: every write carries a session of this client (headers `x-client-id`,
 * `x-client-seq`; see src/wire/session.ts) from a pool of lanes, one write outstanding per lane,
 * the sequence rising per lane. A retry (after a refused connection, a reset, a NotLeader, a
 * Timeout) sends the same (id, seq), to whichever node, and the shard that already applied it
 * answers from its replicated session table instead of applying it again. Sessions live for 60 s
 * of log time after their last use (SESSION_TTL_MS): `timeoutMs` bounds a write's retries well
 * within that.
 */
import type { Consistency } from '../api/consistency.js';
import { CLIENT_ID_HEADER, CLIENT_SEQ_HEADER } from '../wire/session.js';
import { attempt } from './attempt.js';
import type { Answer, AttemptRequest } from './attempt.js';
import { RETRY_DEFAULTS, backoffMs, sleep } from './backoff.js';
import type { RetryOptions } from './backoff.js';
import { bytesFromJson, bytesOf, percentEncode, toBytes } from './bytes.js';
import type { Bytes, BytesLike } from './bytes.js';
import { ClientError, isRetryable } from './errors.js';
import { Lanes } from './lanes.js';
import type { Lane } from './lanes.js';
import { Routing } from './routing.js';
import type { Endpoint } from './routing.js';

export interface ClientOptions {
  /** Base URLs of the nodes' HTTP APIs, e.g. `['http://127.0.0.1:7070']`; at least one. */
  readonly endpoints: readonly string[];
  /** Tenant of every call (header `x-tenant`). Default `default`. */
  readonly tenant?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  /**
   * Longest time of one call, retries included, in ms: 1..50,000 (a write's retries must end
   * well within a session's 60 s lifetime). Default 10,000. Then `Timeout`.
   */
  readonly timeoutMs?: number;
  readonly retry?: RetryOptions;
  /** Writes in flight at once (session lanes): 1..65,536. Default 256. */
  readonly lanesMax?: number;
  /** Writes waiting for a lane at most; one more fails `Overloaded` at once. Default 10,000. */
  readonly writesWaitingMax?: number;
}

export interface CallOptions {
  /** Aborts the call (`Aborted`); a write may or may not have been applied, once at most. */
  readonly signal?: AbortSignal;
}

export interface ReadOptions extends CallOptions {
  /** Default `linearizable`; `lease` (the leader's lease, no quorum round); `stale` (any replica, may lag). */
  readonly consistency?: Consistency;
}

export interface PutOptions extends CallOptions {
  /** Write (delete) only if the key is at this version (put: 0 = absent; delete: 1 or more); else `VersionMismatch`. */
  readonly expectedVersion?: number;
}

export interface ScanOptions extends ReadOptions {
  /** Items per page, 1..10,000. Default 100. */
  readonly pageSize?: number;
  /** Start after this key (exclusive). */
  readonly after?: BytesLike;
}

/** A stored value and its metadata: `version` counts the key's writes; the indexes are raft log indexes. */
export interface GetResult {
  readonly value: Bytes;
  readonly version: number;
  readonly createIndex: number;
  readonly modIndex: number;
}

export interface ScanItem {
  readonly key: Bytes;
  readonly value: Bytes;
  readonly version: number;
}

/** One page of a scan: keys in byte order; `more` when keys are left after the last. */
export interface ScanPage {
  readonly items: readonly ScanItem[];
  readonly more: boolean;
}

const CONSISTENCIES: readonly string[] = ['linearizable', 'lease', 'stale'];
/** Longest the first call waits for the cluster's placement before it routes anywhere, in ms. */
const PLACEMENT_WAIT_MS = 1_000;

/** One call: what to send, and how to route and retry it. */
interface Call extends Omit<AttemptRequest, 'headers'> {
  /** The key whose shard decides the route; none: any endpoint. */
  readonly key?: Uint8Array;
  /** Goes to the shard's leader (writes, linearizable and lease reads). */
  readonly toLeader: boolean;
  /** A write: carries a session lane. */
  readonly write: boolean;
}

export class Client {
  private readonly tenant: string;
  private readonly timeoutMs: number;
  private readonly retry: Required<RetryOptions>;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly routing: Routing;
  private readonly lanes: Lanes;
  /** Set by destroy(): calls in flight end `ClientClosed`. */
  private destroyed = false;
  /** Per call in flight, its controller, so destroy() can end it. */
  private readonly controllers = new Set<AbortController>();
  private closed = false;
  /** Calls in flight, so close() can wait for them. */
  private readonly inflight = new Set<Promise<unknown>>();

  /** Throws ClientError `InvalidArgument` for an option out of range. */
  constructor(opts: ClientOptions) {
    const bad = (what: string): never => {
      throw new ClientError('InvalidArgument', `client: ${what}`);
    };
    if (opts.endpoints.length === 0) bad('endpoints must name at least one node');
    for (const e of opts.endpoints) if (!/^https?:\/\/[^/]+\/?$/.test(e)) bad(`endpoint '${e}' is not an http(s)://host:port base URL`);
    this.tenant = opts.tenant ?? 'default';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (!Number.isSafeInteger(this.timeoutMs) || this.timeoutMs < 1 || this.timeoutMs > 50_000) bad(`timeoutMs must be in 1..50000, got ${this.timeoutMs}`);
    this.retry = { ...RETRY_DEFAULTS, ...opts.retry };
    for (const [k, v] of Object.entries(this.retry)) if (!Number.isSafeInteger(v) || v < 1) bad(`retry.${k} must be a positive integer, got ${v}`);
    const lanesMax = opts.lanesMax ?? 256;
    const waitingMax = opts.writesWaitingMax ?? 10_000;
    if (!Number.isSafeInteger(lanesMax) || lanesMax < 1 || lanesMax > 65_536) bad(`lanesMax must be in 1..65536, got ${lanesMax}`);
    if (!Number.isSafeInteger(waitingMax) || waitingMax < 0) bad(`writesWaitingMax must be a non-negative integer, got ${waitingMax}`);
    this.lanes = new Lanes(lanesMax, waitingMax);
    this.headers = {
      'x-tenant': this.tenant,
      ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
    };
    this.routing = new Routing(opts.endpoints, { downMs: 1_000, refreshGapMs: 500, placementTimeoutMs: 1_000, headers: this.headers });
  }

  /** Writes `value` under `key`; the key's new version. With `expectedVersion`: VersionMismatch (412) when it differs. */
  async put(key: BytesLike, value: BytesLike, opts: PutOptions = {}): Promise<{ version: number }> {
    const k = toBytes(key);
    const query = versionQuery(opts.expectedVersion, 0);
    const a = await this.run(
      { method: 'PUT', path: `/v1/kv/${percentEncode(k)}${query}`, body: toBytes(value), key: k, toLeader: true, write: true },
      opts.signal,
    );
    return { version: numberField(jsonOf(a), 'version') };
  }

  /**
   * Compare-and-set: writes `value` only if the key is at version `expected` (0 = absent).
   * `swapped` false: it was not, and `version` is the key's current one (0 = absent).
   */
  async cas(key: BytesLike, expected: number, value: BytesLike, opts: CallOptions = {}): Promise<{ swapped: boolean; version: number }> {
    try {
      return { swapped: true, ...(await this.put(key, value, { ...opts, expectedVersion: expected })) };
    } catch (e) {
      if (e instanceof ClientError && e.code === 'VersionMismatch' && typeof e.details.version === 'number')
        return { swapped: false, version: e.details.version };
      throw e;
    }
  }

  /** The key's value and metadata, or null when it does not exist. */
  async get(key: BytesLike, opts: ReadOptions = {}): Promise<GetResult | null> {
    const k = toBytes(key);
    const c = consistencyOf(opts);
    const query = c === 'linearizable' ? '' : `?consistency=${c}`;
    let a: Answer;
    try {
      a = await this.run({ method: 'GET', path: `/v1/kv/${percentEncode(k)}${query}`, key: k, toLeader: c !== 'stale', write: false }, opts.signal);
    } catch (e) {
      if (e instanceof ClientError && e.code === 'KeyNotFound') return null;
      throw e;
    }
    const header = (name: string): number => {
      const v = Number(a.headers.get(name) ?? NaN);
      if (!Number.isSafeInteger(v)) throw new ClientError('BadResponse', `GET answer without a numeric ${name}`, { status: a.status });
      return v;
    };
    return { value: bytesOf(a.body), version: header('x-version'), createIndex: header('x-create-index'), modIndex: header('x-mod-index') };
  }

  /**
   * Deletes the key; `deleted` false when it did not exist. With `expectedVersion` (1 or more):
   * only if the key is at that version, else VersionMismatch (412, `details.version` the current
   * one, 0 when absent).
   */
  async delete(key: BytesLike, opts: PutOptions = {}): Promise<{ deleted: boolean }> {
    const k = toBytes(key);
    const query = versionQuery(opts.expectedVersion, 1);
    const a = await this.run({ method: 'DELETE', path: `/v1/kv/${percentEncode(k)}${query}`, key: k, toLeader: true, write: true }, opts.signal);
    const deleted = (jsonOf(a) as { deleted?: unknown }).deleted;
    if (typeof deleted !== 'boolean') throw new ClientError('BadResponse', 'DELETE answer without deleted', { status: a.status });
    return { deleted };
  }

  /**
   * The keys starting with `prefix`, in byte order, page by page (each page one request, to any
   * node; the nodes ask every shard). Stop iterating to stop asking.
   */
  async *scan(prefix: BytesLike, opts: ScanOptions = {}): AsyncGenerator<ScanPage, void, undefined> {
    const pageSize = opts.pageSize ?? 100;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 10_000) {
      throw new ClientError('InvalidArgument', `pageSize must be an integer in 1..10000, got ${pageSize}`);
    }
    const c = consistencyOf(opts);
    const base = `/v1/kv?prefix=${percentEncode(toBytes(prefix))}&limit=${pageSize}&consistency=${c}`;
    let after = opts.after === undefined ? undefined : toBytes(opts.after);
    for (;;) {
      const path = after === undefined || after.length === 0 ? base : `${base}&after=${percentEncode(after)}`;
      const page = scanPageOf(jsonOf(await this.run({ method: 'GET', path, toLeader: false, write: false }, opts.signal)));
      yield page;
      const last = page.items.at(-1);
      if (!page.more || last === undefined) return;
      after = last.key;
    }
  }

  /** `GET /v1/status` of one node (JSON, see the README). */
  async status(opts: CallOptions = {}): Promise<unknown> {
    return jsonOf(await this.run({ method: 'GET', path: '/v1/status', toLeader: false, write: false }, opts.signal));
  }

  /** Refuses new calls and waits for those in flight to end (each within its timeoutMs). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    this.routing.close();
  }

  /** Refuses new calls and ends those in flight at once (`ClientClosed`; a write may still apply, once). */
  destroy(): void {
    this.closed = true;
    this.destroyed = true;
    for (const c of this.controllers) c.abort();
    this.routing.close();
  }

  // ------------------------------------------------------------------ one call

  private run(call: Call, signal: AbortSignal | undefined): Promise<Answer> {
    if (this.closed) return Promise.reject(new ClientError('ClientClosed', 'the client is closed'));
    const p = this.send(call, signal);
    this.inflight.add(p);
    void p.then(
      () => this.inflight.delete(p),
      () => this.inflight.delete(p),
    );
    return p;
  }

  /** Sends a call, retrying what is safe to retry until it succeeds, fails for good, or its time is up. */
  private async send(call: Call, userSignal: AbortSignal | undefined): Promise<Answer> {
    // One controller per call, fired by destroy(), the caller's signal or the deadline (plain
    // listeners and a timer: AbortSignal.any and .timeout cost more per call than the request).
    const ctl = new AbortController();
    const abort = (): void => ctl.abort();
    const timer = setTimeout(abort, this.timeoutMs);
    this.controllers.add(ctl);
    userSignal?.addEventListener('abort', abort);
    if (userSignal?.aborted === true) ctl.abort();
    const signal = ctl.signal;
    let lane: Lane | undefined;
    const tried: { last?: ClientError } = {};
    try {
      await this.routing.ready(Math.min(PLACEMENT_WAIT_MS, this.timeoutMs));
      const shard = call.key === undefined ? undefined : this.routing.shardOf(this.tenant, call.key);
      let headers = this.headers;
      if (call.write) {
        lane = await this.takeLane(signal);
        lane.seq++;
        headers = { ...headers, [CLIENT_ID_HEADER]: String(lane.clientId), [CLIENT_SEQ_HEADER]: String(lane.seq) };
      }
      return await this.attempts(call, shard, { ...call, headers }, signal, tried);
    } catch (e) {
      if (!signal.aborted || (e instanceof ClientError && e.code !== 'Unreachable')) throw e;
      if (this.destroyed) throw new ClientError('ClientClosed', 'the client was destroyed');
      if (userSignal?.aborted === true) throw new ClientError('Aborted', 'the call was aborted');
      const last = tried.last === undefined ? '' : `; last: ${tried.last.code} (${tried.last.message})`;
      throw new ClientError(
        'Timeout',
        `no answer within ${this.timeoutMs} ms (timeoutMs)${last}`,
        tried.last?.endpoint === undefined ? {} : { endpoint: tried.last.endpoint },
      );
    } finally {
      clearTimeout(timer);
      this.controllers.delete(ctl);
      userSignal?.removeEventListener('abort', abort);
      if (lane !== undefined) this.lanes.give(lane);
    }
  }

  /** Attempts until one succeeds or fails for good; `tried.last` is the latest failure. */
  private async attempts(call: Call, shard: number | undefined, req: AttemptRequest, signal: AbortSignal, tried: { last?: ClientError }): Promise<Answer> {
    let avoid: Endpoint | undefined;
    const of = call.key === undefined ? undefined : { tenant: this.tenant, key: call.key };
    for (let i = 0; ; i++) {
      const keyLeader = shard === undefined && of !== undefined ? this.routing.keyLeader(of.tenant, of.key) : undefined;
      const ep = this.routing.pick(shard, call.toLeader, avoid, keyLeader);
      try {
        const a = await attempt(ep.url, req, signal, Math.min(this.retry.attemptTimeoutMs, this.timeoutMs));
        this.routing.answered(ep);
        // A tenant's token gets no x-shard: then only the key's leader is learned.
        const s = Number(a.headers.get('x-shard') ?? NaN);
        const n = Number(a.headers.get('x-node') ?? NaN);
        if (call.toLeader && Number.isSafeInteger(n)) this.routing.learned(Number.isSafeInteger(s) ? s : undefined, n, of);
        return a;
      } catch (e) {
        if (!(e instanceof ClientError)) throw e;
        tried.last = e;
        if (!isRetryable(e.code) || i + 1 >= this.retry.attemptsMax) throw e;
        if (e.status === 0) this.routing.failed(ep);
        else if (e.code === 'NotLeader' || e.code === 'Unreachable' || e.code === 'Timeout' || e.code === 'NotReady') this.routing.leaderUnknown(shard, of);
        // Another node may serve it now (a new leader, one less loaded).
        avoid = ep;
      }
      const floor = tried.last.code === 'Overloaded' ? (tried.last.retryAfterMs ?? 0) : 0;
      await sleep(backoffMs(i, this.retry, floor), signal);
    }
  }

  /** A session lane, waiting (abortably) when all are busy; Overloaded when too many writes wait. */
  private async takeLane(signal: AbortSignal): Promise<Lane> {
    const waiting = this.lanes.take();
    if (waiting === undefined) throw new ClientError('Overloaded', 'too many writes waiting for a session lane (writesWaitingMax)');
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason as Error);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([waiting, aborted]);
    } catch (e) {
      // Given up while waiting: the lane it is handed later goes straight back.
      void waiting.then((lane) => this.lanes.give(lane));
      throw e;
    } finally {
      signal.removeEventListener('abort', onAbort!);
      aborted.catch(() => undefined);
    }
  }
}

/** `?version=N` for an expected version of at least `min`; '' without one. InvalidArgument when out of range. */
function versionQuery(expected: number | undefined, min: number): string {
  if (expected === undefined) return '';
  if (!Number.isSafeInteger(expected) || expected < min)
    throw new ClientError('InvalidArgument', `expectedVersion must be an integer of at least ${min}, got ${expected}`);
  return `?version=${expected}`;
}

function consistencyOf(opts: ReadOptions): Consistency {
  const c = opts.consistency ?? 'linearizable';
  if (!CONSISTENCIES.includes(c)) throw new ClientError('InvalidArgument', `consistency must be linearizable, lease or stale, got '${String(c)}'`);
  return c;
}

function jsonOf(a: Answer): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(a.body));
  } catch {
    throw new ClientError('BadResponse', `the answer (HTTP ${a.status}) is not JSON`, { status: a.status });
  }
}

function numberField(v: unknown, name: string): number {
  const n = (v as Record<string, unknown> | null)?.[name];
  if (typeof n !== 'number') throw new ClientError('BadResponse', `the answer has no numeric ${name}`);
  return n;
}

function scanPageOf(v: unknown): ScanPage {
  const body = v as { items?: unknown; more?: unknown } | null;
  if (!Array.isArray(body?.items) || typeof body.more !== 'boolean') throw new ClientError('BadResponse', 'the scan answer has no items or more');
  const items = body.items.map((it: { key?: unknown; value?: unknown; version?: unknown }) => {
    const key = bytesFromJson(it.key);
    const value = bytesFromJson(it.value);
    if (key === undefined || value === undefined || typeof it.version !== 'number') throw new ClientError('BadResponse', 'a scan item is malformed');
    return { key, value, version: it.version };
  });
  return { items, more: body.more };
}
