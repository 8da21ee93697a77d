/**
 * The cluster's key -> shard function as this node knows it (src/wire/shard-hash.ts): unknown
 * from a new node's first start until it has read the cluster's choice (placement-record.ts),
 * then fixed for the process's life. The reserved tenant `_system` is known from the start, as
 * the cluster's choice itself is stored there: on the meta group (shard id `shards`, one past the
 * data shards) in clusters created by this version, else placed by the unkeyed function.
 */
import { Buffer } from 'node:buffer';
import { ServiceErrorCode } from '../api/index.js';
import type { Result } from '../api/index.js';
import type { ShardId } from '../shards/raft/index.js';
import { KEYED_HASH, UNKEYED_HASH, keyedHash, unkeyedHash } from '../wire/shard-hash.js';
import type { ShardHash } from '../wire/shard-hash.js';
import { SYSTEM_TENANT } from './tenants.js';

/** The cluster's choice: the unkeyed function, or the keyed one with its 16-byte key. */
export type PlacementChoice = { readonly hash: typeof UNKEYED_HASH } | { readonly hash: typeof KEYED_HASH; readonly key: Uint8Array };

export class PlacementHash {
  /** The cluster's choice; undefined until known, then never changes. */
  private chosen: PlacementChoice | undefined;
  /** The function of `chosen`. */
  private fn: ShardHash | undefined;
  /**
   * Requests waiting for the choice (wake-ups); each removes its own on timeout. As many as the
   * client requests in flight, which the HTTP server bounds (its connection and body limits).
   */
  private readonly waiters = new Set<() => void>();

  /**
   * @param systemOnMeta `_system` lives on the meta group (ClusterMeta.system), so every `_system`
   *   key goes to shard `shards` and a `_system` scan asks that shard alone.
   */
  constructor(
    initial?: PlacementChoice,
    readonly systemOnMeta = false,
  ) {
    if (initial !== undefined) this.set(initial);
  }

  /** The cluster's choice, once known. */
  get choice(): PlacementChoice | undefined {
    return this.chosen;
  }

  /** Name of the function client tenants are placed by; `pending` until known. */
  get name(): string {
    return this.chosen?.hash ?? 'pending';
  }

  /**
   * Fixes the choice and wakes the waiting requests. Setting it again with the same choice is a
   * no-op; with another, a bug (the cluster has one record, read linearizably): it throws.
   */
  set(choice: PlacementChoice): void {
    if (this.chosen !== undefined) {
      if (!sameChoice(this.chosen, choice)) throw new Error(`placement: the cluster's hash is ${this.chosen.hash} already; refusing ${choice.hash}`);
      return;
    }
    this.fn = choice.hash === KEYED_HASH ? keyedHash(choice.key) : unkeyedHash;
    this.chosen = choice;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** The shard of a tenant's key among `shards`; undefined while the cluster's choice is unknown (never for `_system`). */
  shardOf(tenant: string, key: Uint8Array, shards: number): ShardId | undefined {
    if (tenant === SYSTEM_TENANT) return (this.systemOnMeta ? shards : unkeyedHash.shardOf(tenant, key, shards)) as ShardId;
    return this.fn?.shardOf(tenant, key, shards) as ShardId | undefined;
  }

  /**
   * The shard of a tenant's key, waiting up to `waitMs` for the cluster's choice (a new cluster's
   * first moments): `NotReady` (retryable) when it is still unknown then.
   */
  async shardWhenKnown(tenant: string, key: Uint8Array, shards: number, waitMs: number): Promise<Result<ShardId>> {
    const now = this.shardOf(tenant, key, shards);
    if (now !== undefined) return { ok: true, value: now };
    await this.wait(waitMs);
    const later = this.shardOf(tenant, key, shards);
    if (later !== undefined) return { ok: true, value: later };
    return {
      ok: false,
      code: ServiceErrorCode.NotReady,
      message: `this node has not read the cluster's placement key yet (waited ${waitMs} ms); try again`,
    };
  }

  /** `then` with the shard of `r`'s key once known (see shardWhenKnown), else its NotReady failure. */
  async withShard<T>(
    r: { readonly tenant: string; readonly key: Uint8Array },
    shards: number,
    waitMs: number,
    then: (shard: ShardId) => Promise<Result<T>>,
  ): Promise<Result<T>> {
    const s = await this.shardWhenKnown(r.tenant, r.key, shards, waitMs);
    return s.ok ? then(s.value) : s;
  }

  /** Resolves when the choice is known or after `ms`, whichever is first. */
  private wait(ms: number): Promise<void> {
    if (this.chosen !== undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waiters.add(wake);
    });
  }

  /** Requests waiting for the choice now (for tests and status). */
  get waiting(): number {
    return this.waiters.size;
  }
}

/**
 * `hash` and, with `withKey` and a keyed hash, `placementKey` (hex) of `GET /v1/placement`: the key
 * lets its holder choose keys that land on one shard, so only callers trusted with every tenant's
 * data get it (the admin token, or any caller when auth is off).
 */
export function placementHashOf(h: PlacementHash, withKey: boolean): { hash: string; placementKey?: string } {
  const c = h.choice;
  if (withKey && c?.hash === KEYED_HASH) return { hash: c.hash, placementKey: Buffer.from(c.key).toString('hex') };
  return { hash: h.name };
}

/** Whether two choices are the same function (and key). */
export function sameChoice(a: PlacementChoice, b: PlacementChoice): boolean {
  if (a.hash !== b.hash) return false;
  return a.hash === UNKEYED_HASH || Buffer.from(a.key).equals((b as { key: Uint8Array }).key);
}
