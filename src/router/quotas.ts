/**
 * Byte and key quotas per tenant, checked by the router before a write is proposed.
 *
 * Each shard counts its tenants' usage (keys, key + value bytes) in the apply transaction of every
 * write (src/shards/kv/storage.ts), so replicas agree and snapshots carry it. A tenant's total is
 * the sum over the shards of the KV's `Usage` query, read at `lease` consistency and cached here
 * per tenant: a value older than `refreshMs` is refreshed in the background while the tenant keeps
 * writing, and one older than `maxAgeMs` is waited for. Writes let through since a refresh began
 * are charged to the cached total (each as a new key of its full size unless the key was looked
 * up), so the writes of this node do not overshoot; the refreshed sum replaces those charges.
 *
 * A soft bound: nothing makes the check and the write one transaction across shards. A tenant may
 * overshoot by what other nodes let through within one refresh (up to `maxAgeMs`), plus its writes
 * in flight while a refresh reads, never more than that.
 */
import type { Consistency, Failure, PutArgs, Result, TenantQuota, TenantUsage } from '../api/index.js';
import { ServiceErrorCode } from '../api/index.js';
import type { Outcome } from '../shards/host.js';
import { KvOp, decodeKvReply, encodeGet, encodeUsage } from '../shards/kv/index.js';
import type { ShardId } from '../shards/raft/index.js';
import { unkeyedHash } from '../wire/shard-hash.js';

export interface QuotaGuardOptions {
  /** Shards of the cluster: a tenant's usage is summed over 0..shards-1. */
  readonly shards: number;
  /** The tenant's quota (cached by the tenant directory); undefined: no such tenant or no quota. */
  readonly quotaOf: (tenant: string) => Promise<Result<TenantQuota | undefined>>;
  /** A read of one shard through the router (its leader, wherever it is). */
  readonly query: (shard: ShardId, query: Uint8Array, consistency: Consistency) => Promise<Outcome>;
  /**
   * The shard of a tenant's key (the router's placement); undefined while unknown: the write is
   * then charged as a new key. Default: the unkeyed function.
   */
  readonly shardOf?: (tenant: string, key: Uint8Array) => ShardId | undefined;
  /** Age in ms past which a tenant's cached usage is refreshed in the background. Default 500. */
  readonly refreshMs?: number;
  /** Age in ms past which a write waits for a refresh instead of using the cached usage. Default 1,000. */
  readonly maxAgeMs?: number;
  /** Tenants whose usage is cached at most; the least recently used go first. Default 10,000. */
  readonly tenantsMax?: number;
  /** Milliseconds now. Default performance.now. */
  readonly now?: () => number;
}

/** One tenant's cached usage. */
interface UsageEntry {
  /** The sum over the shards as last read; undefined until a first read succeeds. */
  usage: TenantUsage | undefined;
  /** When the read that gave `usage` began, in ms of `now`. */
  atMs: number;
  /** Charges of writes let through since `atMs` (never negative): added to `usage` by checks. */
  charged: { keys: number; bytes: number };
  /** The refresh under way, if any: one per tenant at a time. */
  refreshing: Promise<void> | undefined;
}

/** What a write adds to its tenant's usage, at most. */
interface Growth {
  readonly keys: number;
  readonly bytes: number;
}

export class QuotaGuard {
  private readonly opts: QuotaGuardOptions;
  private readonly refreshMs: number;
  private readonly maxAgeMs: number;
  private readonly tenantsMax: number;
  private readonly now: () => number;
  /** tenant -> cached usage, least recently used first. At most tenantsMax. */
  private readonly entries = new Map<string, UsageEntry>();
  readonly counters = {
    /** Writes answered QuotaExceeded. */
    refused: 0,
    /** Writes let through unchecked because no usage could be read yet (the shards did not answer). */
    unchecked: 0,
    /** Sums of usage over the shards, and those that failed. */
    refreshes: 0,
    refreshFailures: 0,
  };

  constructor(opts: QuotaGuardOptions) {
    this.opts = opts;
    this.refreshMs = opts.refreshMs ?? 500;
    this.maxAgeMs = opts.maxAgeMs ?? 1_000;
    this.tenantsMax = opts.tenantsMax ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
    if (!(this.refreshMs > 0 && this.maxAgeMs >= this.refreshMs))
      throw new RangeError(`quotas: need 0 < refreshMs <= maxAgeMs, got ${this.refreshMs}, ${this.maxAgeMs}`);
    if (!Number.isSafeInteger(this.tenantsMax) || this.tenantsMax < 1)
      throw new RangeError(`quotas: tenantsMax must be a positive integer, got ${this.tenantsMax}`);
  }

  /**
   * Whether a write of `value` under `key` may be proposed for `tenant`: undefined
   * when it may, else the `QuotaExceeded` failure (or the directory's failure to read the quota).
   * A write is refused only when it would grow the tenant past a bound: near a bound, the key is
   * looked up, so an overwrite that does not grow usage passes.
   */
  async check(write: Pick<PutArgs, 'tenant' | 'key' | 'value'>): Promise<Failure | undefined> {
    const { tenant, key, value } = write;
    const q = await this.opts.quotaOf(tenant);
    if (!q.ok) return q;
    const quota = q.value;
    if (quota === undefined || (quota.bytesMax === undefined && quota.keysMax === undefined)) return undefined;
    const e = await this.current(tenant);
    if (e.usage === undefined) {
      this.counters.unchecked++;
      return undefined;
    }
    const used = (u: TenantUsage): TenantUsage => ({ keys: u.keys + e.charged.keys, bytes: u.bytes + e.charged.bytes });
    let growth: Growth = { keys: 1, bytes: key.length + value.length };
    if (over(quota, used(e.usage), growth) !== undefined) {
      // Near a bound: what the write really adds depends on whether the key exists, and its size.
      const shard = this.opts.shardOf ? this.opts.shardOf(tenant, key) : (unkeyedHash.shardOf(tenant, key, this.opts.shards) as ShardId);
      const old = shard === undefined ? undefined : await this.storedBytes(shard, tenant, key);
      if (old !== undefined) growth = { keys: 0, bytes: key.length + value.length - old };
      // Counted again after the read: checks that passed meanwhile have charged their writes.
      const why = over(quota, used(e.usage ?? { keys: 0, bytes: 0 }), growth);
      if (why !== undefined) {
        this.counters.refused++;
        return { ok: false, code: ServiceErrorCode.QuotaExceeded, message: `tenant '${tenant}': ${why}; not written (delete keys to make room)` };
      }
    }
    e.charged.keys += Math.max(0, growth.keys);
    e.charged.bytes += Math.max(0, growth.bytes);
    return undefined;
  }

  /** The tenant's usage as last counted here, with its age in ms; undefined when none is cached. */
  cached(tenant: string): (TenantUsage & { ageMs: number }) | undefined {
    const e = this.entries.get(tenant);
    if (e?.usage === undefined) return undefined;
    return { keys: e.usage.keys, bytes: e.usage.bytes, ageMs: Math.max(0, Math.round(this.now() - e.atMs)) };
  }

  /** Tenants with cached usage (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** The tenant's entry, refreshed as its age asks: awaited when missing or past maxAgeMs, else in the background past refreshMs. */
  private async current(tenant: string): Promise<UsageEntry> {
    let e = this.entries.get(tenant);
    if (e === undefined) {
      e = { usage: undefined, atMs: -Infinity, charged: { keys: 0, bytes: 0 }, refreshing: undefined };
      if (this.entries.size >= this.tenantsMax) {
        const oldest = this.entries.keys().next();
        if (oldest.done !== true) this.entries.delete(oldest.value);
      }
    } else this.entries.delete(tenant);
    this.entries.set(tenant, e); // most recently used last
    const age = this.now() - e.atMs;
    if (e.usage === undefined || age >= this.maxAgeMs) await this.refresh(tenant, e);
    else if (age >= this.refreshMs) void this.refresh(tenant, e);
    return e;
  }

  private refresh(tenant: string, e: UsageEntry): Promise<void> {
    if (e.refreshing !== undefined) return e.refreshing;
    const startMs = this.now();
    const before = { ...e.charged };
    // A read that throws (a reply that does not decode) counts as failed: a background refresh must never reject.
    const read = this.sum(tenant).catch(() => undefined);
    e.refreshing = read.then((total) => {
      e.refreshing = undefined;
      this.counters.refreshes++;
      if (total === undefined) {
        this.counters.refreshFailures++;
        // Keep the last sum, and try again in the background on the next write rather than make
        // every write wait for shards that do not answer.
        if (e.usage !== undefined) e.atMs = Math.max(e.atMs, startMs - this.refreshMs);
        return;
      }
      // Writes charged before the read began are in the sum (when applied by then).
      e.usage = total;
      e.atMs = startMs;
      e.charged.keys = Math.max(0, e.charged.keys - before.keys);
      e.charged.bytes = Math.max(0, e.charged.bytes - before.bytes);
    });
    return e.refreshing;
  }

  /** The tenant's usage summed over every shard; undefined when a shard did not answer. */
  private async sum(tenant: string): Promise<TenantUsage | undefined> {
    const q = encodeUsage(tenant);
    const parts = await Promise.all(Array.from({ length: this.opts.shards }, (_, s) => this.opts.query(s as ShardId, q, 'lease')));
    let keys = 0;
    let bytes = 0;
    for (const o of parts) {
      if (!o.ok) return undefined;
      const r = decodeKvReply(KvOp.Usage, o.body);
      if (!r.ok) return undefined;
      keys += r.keys;
      bytes += r.bytes;
    }
    return { keys, bytes };
  }

  /** Key + value bytes of `key` as stored now; undefined when absent (or the read failed: counted as new). */
  private async storedBytes(shard: ShardId, tenant: string, key: Uint8Array): Promise<number | undefined> {
    const o = await this.opts.query(shard, encodeGet(tenant, key), 'lease');
    if (!o.ok) return undefined;
    const r = decodeKvReply(KvOp.Get, o.body);
    return r.ok && r.found ? key.length + r.value.length : undefined;
  }
}

/** Why `growth` on top of `used` goes past `quota`, or undefined when it stays within. */
function over(quota: TenantQuota, used: TenantUsage, growth: Growth): string | undefined {
  if (quota.keysMax !== undefined && growth.keys > 0 && used.keys + growth.keys > quota.keysMax) {
    return `a new key past keysMax ${quota.keysMax} (${used.keys} keys held)`;
  }
  if (quota.bytesMax !== undefined && growth.bytes > 0 && used.bytes + growth.bytes > quota.bytesMax) {
    return `${growth.bytes} more bytes past bytesMax ${quota.bytesMax} (${used.bytes} bytes held)`;
  }
  return undefined;
}
