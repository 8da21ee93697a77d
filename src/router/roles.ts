/**
 * The role directory: which role (admin, operator, reader) each Iroh endpoint id holds for the
 * management ALPN. Bindings are records of the reserved tenant `_system` (keys
 * `roles/<endpoint id>`, next to the tenant records of tenants.ts), so a grant made through any
 * node is read on every other, through the same raft groups as any key.
 *
 * Checks read bindings through a small cache with the tenant directory's scheme: an entry lives
 * at most `cacheMs` (1 s) from the moment its read began, so a revoke made on any node stops the
 * endpoint on every node within about a second (the cache lifetime plus one read); the node that
 * made the change forgets its own entry at once. Reads of one id in flight are shared.
 */
import { Buffer } from 'node:buffer';
import { ServiceErrorCode, isEndpointId, isRole } from '../api/index.js';
import type { Failure, KvService, Result, Role, RoleBinding, RoleService } from '../api/index.js';
import { SYSTEM_TENANT, listSystemRecords } from './tenants.js';

/** Key prefix of the bindings in `_system`. */
const RECORD_PREFIX = 'roles/';

export interface RoleDirectoryOptions {
  /** Where records live (the router). */
  readonly kv: KvService;
  /** Longest a cached binding is used, in ms, counted from when its read began. Default 1,000. */
  readonly cacheMs?: number;
  /** Bindings (and absences) cached at most; the oldest go first. Default 10,000. */
  readonly cacheEntriesMax?: number;
  /** Wall clock in ms (grantedMs, cache ages). Default Date.now. */
  readonly now?: () => number;
}

interface CacheEntry {
  /** undefined: no binding. */
  readonly role: Role | undefined;
  /** When the read that found it began. */
  readonly atMs: number;
}

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const failure = (code: ServiceErrorCode, message: string): Failure => ({ ok: false, code, message });

export class RoleDirectory implements RoleService {
  private readonly kv: KvService;
  private readonly cacheMs: number;
  private readonly cacheEntriesMax: number;
  private readonly now: () => number;
  /** id -> the role as last read; in insertion order, so the first is the oldest. At most cacheEntriesMax. */
  private readonly cache = new Map<string, CacheEntry>();
  /** Reads in flight, one per id: concurrent checks of one endpoint share a read. */
  private readonly reading = new Map<string, Promise<Result<Role | undefined>>>();
  /** Bumped by every write made here: a read that began before it does not fill the cache. */
  private epoch = 0;

  constructor(opts: RoleDirectoryOptions) {
    this.kv = opts.kv;
    this.cacheMs = opts.cacheMs ?? 1_000;
    this.cacheEntriesMax = opts.cacheEntriesMax ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  roleOf(endpointId: string): Promise<Result<Role | undefined>> {
    if (!isEndpointId(endpointId)) return Promise.resolve(ok(undefined));
    const startMs = this.now();
    const hit = this.cache.get(endpointId);
    if (hit !== undefined && startMs - hit.atMs < this.cacheMs) return Promise.resolve(ok(hit.role));
    const pending = this.reading.get(endpointId);
    if (pending !== undefined) return pending;
    const epoch = this.epoch;
    const p = this.read(endpointId).then((r) => {
      this.reading.delete(endpointId);
      if (!r.ok) return r;
      const role = r.value?.role;
      if (epoch === this.epoch) this.remember(endpointId, { role, atMs: startMs });
      return ok(role);
    });
    this.reading.set(endpointId, p);
    return p;
  }

  list(): Promise<Result<RoleBinding[]>> {
    return listSystemRecords(this.kv, RECORD_PREFIX, decodeBinding);
  }

  async get(endpointId: string): Promise<Result<RoleBinding>> {
    const bad = checkId(endpointId);
    if (bad !== undefined) return bad;
    const r = await this.read(endpointId);
    if (!r.ok) return r;
    return r.value === undefined ? failure(ServiceErrorCode.RoleNotFound, `no role is bound to ${endpointId}`) : ok(r.value);
  }

  async grant(endpointId: string, role: Role): Promise<Result<RoleBinding>> {
    const bad = checkId(endpointId);
    if (bad !== undefined) return bad;
    if (!isRole(role)) return failure(ServiceErrorCode.BadRequest, `a role is admin, operator or reader, got ${JSON.stringify(role).slice(0, 40)}`);
    const binding: RoleBinding = { endpointId, role, grantedMs: this.now() };
    this.epoch++;
    const r = await this.kv.put({ tenant: SYSTEM_TENANT, key: recordKey(endpointId), value: encodeBinding(binding) });
    this.cache.delete(endpointId);
    return r.ok ? ok(binding) : r;
  }

  async revoke(endpointId: string): Promise<Result<{ readonly revoked: true }>> {
    const bad = checkId(endpointId);
    if (bad !== undefined) return bad;
    this.epoch++;
    const r = await this.kv.delete({ tenant: SYSTEM_TENANT, key: recordKey(endpointId) });
    this.cache.delete(endpointId);
    if (!r.ok) return r;
    return r.value.deleted ? ok({ revoked: true }) : failure(ServiceErrorCode.RoleNotFound, `no role is bound to ${endpointId}`);
  }

  /** Bindings cached now (for tests and metrics). */
  get cachedEntries(): number {
    return this.cache.size;
  }

  private remember(id: string, entry: CacheEntry): void {
    this.cache.delete(id);
    if (this.cache.size >= this.cacheEntriesMax) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(id, entry);
  }

  /** The stored binding, read linearizably; undefined when absent. */
  private async read(id: string): Promise<Result<RoleBinding | undefined>> {
    const r = await this.kv.get({ tenant: SYSTEM_TENANT, key: recordKey(id), consistency: 'linearizable' });
    if (!r.ok) return r;
    return r.value.found ? decodeBinding(id, r.value.value) : ok(undefined);
  }
}

function recordKey(id: string): Buffer {
  return Buffer.from(`${RECORD_PREFIX}${id}`, 'latin1');
}

function checkId(id: string): Failure | undefined {
  if (isEndpointId(id)) return undefined;
  return failure(ServiceErrorCode.BadRequest, `an endpoint id is 64 lowercase hex characters, got ${JSON.stringify(id).slice(0, 80)}`);
}

function encodeBinding(b: RoleBinding): Buffer {
  return Buffer.from(JSON.stringify({ role: b.role, grantedMs: b.grantedMs }), 'utf8');
}

/** A stored binding, checked; Internal for a record this module did not write. */
function decodeBinding(endpointId: string, bytes: Uint8Array): Result<RoleBinding> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    v = undefined;
  }
  const r = v as { role?: unknown; grantedMs?: unknown } | undefined;
  if (typeof r !== 'object' || r === null || !isRole(r.role) || typeof r.grantedMs !== 'number' || !isEndpointId(endpointId)) {
    return failure(ServiceErrorCode.Internal, 'a role record in _system is malformed');
  }
  return ok({ endpointId, role: r.role, grantedMs: r.grantedMs });
}
