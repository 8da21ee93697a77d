/**
 * The tenant directory: tenant records kept in the replicated KV itself, under the reserved
 * tenant `_system` (keys `tenants/<name>`), until the cluster has a metadata group of its own.
 * Clients cannot name `_system` (names starting with `_` are refused), so only this module reads
 * or writes it, through the same raft groups as any key: a record written on one node is read on
 * every other.
 *
 * Every write is conditional on the record's version (create: "must not exist"; rotate: "still at
 * the version read"), so two admins creating one name, or rotating one tenant, cannot both win.
 *
 * Token checks read records through a small cache: an entry lives at most `cacheMs` (1 s) from
 * the moment its read began, so a delete or rotation made on any node stops the old token on
 * every node within about a second (the cache lifetime plus one read). The node that made the
 * change forgets its own entry at once.
 */
import { Buffer } from 'node:buffer';
import { ServiceErrorCode, isClientTenantName } from '../api/index.js';
import type { Failure, IssuedToken, KvService, Principal, Refusal, Result, TenantInfo, TenantQuota, TenantService } from '../api/index.js';
import { ADMIN_TOKEN_NAME, mintToken, parseToken, secretMatches } from './tokens.js';

/** The reserved tenant that holds the records. */
export const SYSTEM_TENANT = '_system';
/** Key prefix of the records in {@link SYSTEM_TENANT}. */
const RECORD_PREFIX = 'tenants/';
/** Records read per scan page by list(). */
const LIST_PAGE = 1000;
/** Tries of a rotation that keeps meeting a concurrent one before it gives up. */
const ROTATE_TRIES = 4;

export interface TenantDirectoryOptions {
  /** Where records live (the router). */
  readonly kv: KvService;
  /** SHA-256 of this node's admin token secret (see tokens.ts). */
  readonly adminSecretHash: Uint8Array;
  /** Longest a cached record is used, in ms, counted from when its read began. Default 1,000. */
  readonly cacheMs?: number;
  /** Records (and absences) cached at most; the oldest go first. Default 10,000. */
  readonly cacheEntriesMax?: number;
  /** Wall clock in ms (records' createdMs, cache ages). Default Date.now. */
  readonly now?: () => number;
  /** A tenant's usage as this node's quota check last counted it, shown by list(). Default: none shown. */
  readonly usage?: (tenant: string) => TenantInfo['usage'];
}

/** What is stored per tenant: its info and the hash of its token's secret (never the token). */
interface StoredTenant extends TenantInfo {
  readonly secretHash: Buffer;
}

interface CacheEntry {
  /** null: no such tenant. */
  readonly record: StoredTenant | null;
  /** When the read that found it began. */
  readonly atMs: number;
}

const MALFORMED: Refusal = { kind: 'refused', reason: 'Malformed' };
const WRONG_SECRET: Refusal = { kind: 'refused', reason: 'WrongSecret' };
const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const failure = (code: ServiceErrorCode, message: string): Failure => ({ ok: false, code, message });

export class TenantDirectory implements TenantService {
  private readonly kv: KvService;
  private readonly adminSecretHash: Uint8Array;
  private readonly cacheMs: number;
  private readonly cacheEntriesMax: number;
  private readonly now: () => number;
  private readonly usage: ((tenant: string) => TenantInfo['usage']) | undefined;
  /** name -> the record as last read; in insertion order, so the first is the oldest. At most cacheEntriesMax. */
  private readonly cache = new Map<string, CacheEntry>();
  /** Reads in flight, one per name: concurrent checks of one tenant share a read. */
  private readonly reading = new Map<string, Promise<Result<StoredTenant | null>>>();
  /** Bumped by every write made here: a read that began before it does not fill the cache. */
  private epoch = 0;

  constructor(opts: TenantDirectoryOptions) {
    this.kv = opts.kv;
    this.adminSecretHash = opts.adminSecretHash;
    this.cacheMs = opts.cacheMs ?? 1_000;
    this.cacheEntriesMax = opts.cacheEntriesMax ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.usage = opts.usage;
  }

  /**
   * The quota of a client tenant, read through the same cache as tokens (at most `cacheMs` old);
   * undefined for a tenant without a record and for reserved names (no read).
   */
  async quotaOf(name: string): Promise<Result<TenantQuota | undefined>> {
    if (!isClientTenantName(name)) return ok(undefined);
    const r = await this.cached(name);
    return r.ok ? ok(r.value?.quota) : r;
  }

  async authenticate(token: string): Promise<Result<Principal | Refusal>> {
    const t = parseToken(token);
    if (t === undefined || (t.name !== ADMIN_TOKEN_NAME && !isClientTenantName(t.name))) return ok(MALFORMED);
    if (t.name === ADMIN_TOKEN_NAME) return ok(secretMatches(t.secret, this.adminSecretHash) ? { kind: 'admin' } : WRONG_SECRET);
    const r = await this.cached(t.name);
    if (!r.ok) return r;
    const rec = r.value;
    if (rec === null) return ok({ kind: 'refused', reason: 'NoSuchTenant', tenant: t.name });
    if (!secretMatches(t.secret, rec.secretHash)) return ok(WRONG_SECRET);
    return ok({ kind: 'tenant', tenant: rec.name, quota: rec.quota });
  }

  async create(name: string, quota: TenantQuota): Promise<Result<IssuedToken>> {
    const bad = checkName(name) ?? checkQuota(quota);
    if (bad !== undefined) return bad;
    const { token, secretHash } = mintToken(name);
    const rec: StoredTenant = { name, quota: { ...quota }, createdMs: this.now(), generation: 1, secretHash };
    this.epoch++;
    const r = await this.kv.put({ tenant: SYSTEM_TENANT, key: recordKey(name), value: encodeRecord(rec), expectedVersion: 0 });
    this.cache.delete(name);
    if (!r.ok) return r;
    if (!r.value.swapped) return failure(ServiceErrorCode.TenantExists, `tenant '${name}' exists`);
    return ok({ tenant: info(rec), token });
  }

  async list(): Promise<Result<TenantInfo[]>> {
    return listSystemRecords(this.kv, RECORD_PREFIX, (_, value) => {
      const rec = decodeRecord(value);
      if (!rec.ok) return rec;
      const used = this.usage?.(rec.value.name);
      return ok(used === undefined ? info(rec.value) : { ...info(rec.value), usage: used });
    });
  }

  async delete(name: string): Promise<Result<{ readonly deleted: true }>> {
    const bad = checkName(name);
    if (bad !== undefined) return bad;
    this.epoch++;
    const r = await this.kv.delete({ tenant: SYSTEM_TENANT, key: recordKey(name) });
    this.cache.delete(name);
    if (!r.ok) return r;
    if (!r.value.deleted) return failure(ServiceErrorCode.TenantNotFound, `no tenant '${name}'`);
    return ok({ deleted: true });
  }

  async rotate(name: string): Promise<Result<IssuedToken>> {
    const bad = checkName(name);
    if (bad !== undefined) return bad;
    let token = '';
    const r = await this.update(name, 'nothing was rotated', (record) => {
      const minted = mintToken(name);
      token = minted.token;
      return { ...record, generation: record.generation + 1, secretHash: minted.secretHash };
    });
    return r.ok ? ok({ tenant: r.value, token }) : r;
  }

  async setQuota(name: string, quota: TenantQuota): Promise<Result<TenantInfo>> {
    const bad = checkName(name) ?? checkQuota(quota);
    if (bad !== undefined) return bad;
    return this.update(name, 'its quota was not set', (record) => ({ ...record, quota: { ...quota } }));
  }

  /**
   * Replaces the record of `name` by `change(record)` with compare-and-set on its version; if it
   * was deleted or changed by another admin meanwhile, reads again (so no change is lost), up to
   * ROTATE_TRIES times, then Overloaded (`undone` says what did not happen).
   */
  private async update(name: string, undone: string, change: (record: StoredTenant) => StoredTenant): Promise<Result<TenantInfo>> {
    for (let i = 0; i < ROTATE_TRIES; i++) {
      const cur = await this.read(name);
      if (!cur.ok) return cur;
      if (cur.value === null) return failure(ServiceErrorCode.TenantNotFound, `no tenant '${name}'`);
      const { record, version } = cur.value;
      const next = change(record);
      this.epoch++;
      const r = await this.kv.put({ tenant: SYSTEM_TENANT, key: recordKey(name), value: encodeRecord(next), expectedVersion: version });
      this.cache.delete(name);
      if (!r.ok) return r;
      if (r.value.swapped) return ok(info(next));
    }
    return failure(ServiceErrorCode.Overloaded, `tenant '${name}' kept being changed by other admins (${ROTATE_TRIES} tries); ${undone}, try again`);
  }

  /** The record of `name`, from the cache when fresh enough, else read (one read per name at a time). */
  private cached(name: string): Promise<Result<StoredTenant | null>> {
    const startMs = this.now();
    const hit = this.cache.get(name);
    if (hit !== undefined && startMs - hit.atMs < this.cacheMs) return Promise.resolve(ok(hit.record));
    const pending = this.reading.get(name);
    if (pending !== undefined) return pending;
    const epoch = this.epoch;
    const p = this.read(name).then((r) => {
      this.reading.delete(name);
      if (!r.ok) return r;
      const record = r.value?.record ?? null;
      if (epoch === this.epoch) this.remember(name, { record, atMs: startMs });
      return ok(record);
    });
    this.reading.set(name, p);
    return p;
  }

  private remember(name: string, entry: CacheEntry): void {
    this.cache.delete(name);
    if (this.cache.size >= this.cacheEntriesMax) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(name, entry);
  }

  /** The stored record and its KV version, read linearizably; null when absent. */
  private async read(name: string): Promise<Result<{ record: StoredTenant; version: number } | null>> {
    const r = await this.kv.get({ tenant: SYSTEM_TENANT, key: recordKey(name), consistency: 'linearizable' });
    if (!r.ok) return r;
    if (!r.value.found) return ok(null);
    const rec = decodeRecord(r.value.value);
    return rec.ok ? ok({ record: rec.value, version: r.value.version }) : rec;
  }

  /** Records cached now (for tests and metrics). */
  get cachedEntries(): number {
    return this.cache.size;
  }
}

function recordKey(name: string): Buffer {
  return Buffer.from(`${RECORD_PREFIX}${name}`, 'latin1');
}

function info(rec: StoredTenant): TenantInfo {
  return { name: rec.name, quota: rec.quota, createdMs: rec.createdMs, generation: rec.generation };
}

function checkName(name: string): Failure | undefined {
  if (isClientTenantName(name)) return undefined;
  return failure(
    ServiceErrorCode.InvalidTenant,
    `a tenant name is 1..64 of [A-Za-z0-9_.-] and does not start with '_' (reserved), got ${JSON.stringify(name).slice(0, 100)}`,
  );
}

/** Largest requestsPerSec accepted (beyond it a bucket would never be the limit anyway). */
export const REQUESTS_PER_SEC_MAX = 1_000_000;

/** BadRequest unless every quota field is in range (requestsPerSec in (0, 1e6]; bytesMax, keysMax positive safe integers). */
export function checkQuota(quota: TenantQuota): Failure | undefined {
  const rps = quota.requestsPerSec;
  if (!(rps === undefined || (typeof rps === 'number' && Number.isFinite(rps) && rps > 0 && rps <= REQUESTS_PER_SEC_MAX))) {
    return failure(ServiceErrorCode.BadRequest, `quota.requestsPerSec must be a number in (0, ${REQUESTS_PER_SEC_MAX}], got ${JSON.stringify(rps)}`);
  }
  for (const field of ['bytesMax', 'keysMax'] as const) {
    const v = quota[field];
    if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) {
      return failure(ServiceErrorCode.BadRequest, `quota.${field} must be a positive safe integer, got ${JSON.stringify(v)}`);
    }
  }
  return undefined;
}

function encodeRecord(rec: StoredTenant): Buffer {
  const { secretHash, ...rest } = rec;
  return Buffer.from(JSON.stringify({ ...rest, secretHash: secretHash.toString('hex') }), 'utf8');
}

/** A stored record, checked field by field; Internal for one this module did not write. */
function decodeRecord(bytes: Uint8Array): Result<StoredTenant> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    v = undefined;
  }
  const r = v as Partial<Record<keyof StoredTenant, unknown>> | undefined;
  const hash = typeof r?.secretHash === 'string' && /^[0-9a-f]{64}$/.test(r.secretHash) ? Buffer.from(r.secretHash, 'hex') : undefined;
  if (
    r === undefined ||
    typeof r.name !== 'string' ||
    typeof r.createdMs !== 'number' ||
    typeof r.generation !== 'number' ||
    typeof r.quota !== 'object' ||
    r.quota === null ||
    hash === undefined
  ) {
    return failure(ServiceErrorCode.Internal, 'a tenant record in _system is malformed');
  }
  return ok({ name: r.name, quota: r.quota, createdMs: r.createdMs, generation: r.generation, secretHash: hash });
}

/**
 * Every record of `_system` under `prefix`, read linearizably a page at a time, each decoded by
 * `decode(id, value)` (id: the key after the prefix); the first failure is the answer.
 */
export async function listSystemRecords<T>(kv: KvService, prefix: string, decode: (id: string, value: Uint8Array) => Result<T>): Promise<Result<T[]>> {
  const out: T[] = [];
  let startAfter: Uint8Array | undefined;
  for (;;) {
    const page = await kv.scan({
      tenant: SYSTEM_TENANT,
      prefix: Buffer.from(prefix),
      limit: LIST_PAGE,
      consistency: 'linearizable',
      ...(startAfter === undefined ? {} : { startAfter }),
    });
    if (!page.ok) return page;
    for (const item of page.value.items) {
      const d = decode(Buffer.from(item.key).toString('latin1').slice(prefix.length), item.value);
      if (!d.ok) return d;
      out.push(d.value);
    }
    const last = page.value.items.at(-1);
    if (!page.value.more || last === undefined) return ok(out);
    startAfter = last.key;
  }
}
