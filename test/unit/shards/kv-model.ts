/**
 * A reference model of the KV state machine's semantics, written the plainest way: nested Maps,
 * a sort on every scan, no storage layout. It borrows only the byte codec from kv.ts (request
 * decoding, limit defaults); validation order, versions, indexes, CAS, delete, scan paging and
 * budgets are implemented here again, so tests comparing it with {@link KvStateMachine} check the
 * semantics, not one implementation against itself. Its replies are the objects `decodeKvReply`
 * gives for the state machine's reply bytes.
 */
import { KvErrorCode, KvOp, decodeKvRequest, resolveKvLimits } from '../../../src/shards/kv/index.js';
import type { KvFailure, KvLimits, KvReply, KvRequest, ScanItem } from '../../../src/shards/kv/index.js';
import type { LogIndex } from '../../../src/shards/raft/index.js';

/** One live key as the model holds it. */
export interface ModelEntry {
  readonly tenant: string;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly version: number;
  readonly createIndex: number;
  readonly modIndex: number;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

const fail = (code: KvErrorCode, message: string): KvFailure => ({ ok: false, code, message });

const OP_NAME: Record<number, string> = { 1: 'Put', 2: 'Delete', 3: 'Cas', 4: 'Get', 5: 'Scan', 6: 'DeleteIf', 7: 'Usage' };

export class KvModel {
  readonly limits: KvLimits;
  /** tenant -> lowercase hex of the key -> entry. Hex strings sort like the bytes they spell. */
  private readonly tenants = new Map<string, Map<string, ModelEntry>>();

  constructor(limits?: Partial<KvLimits>) {
    this.limits = resolveKvLimits(limits);
  }

  /** The reply to a proposed command applied at log index `index`. */
  apply(cmd: Uint8Array, index: number): KvReply {
    const r = this.request(cmd);
    if ('code' in r) return r;
    if (r.op === KvOp.Get || r.op === KvOp.Scan || r.op === KvOp.Usage)
      return fail(KvErrorCode.BadRequest, `${OP_NAME[r.op]} is a query; send it as a read, not a proposal`);
    const keys = this.tenants.get(r.tenant) ?? new Map<string, ModelEntry>();
    this.tenants.set(r.tenant, keys);
    const id = hex(r.key);
    const cur = keys.get(id);
    if (r.op === KvOp.Delete) {
      keys.delete(id);
      if (keys.size === 0) this.tenants.delete(r.tenant);
      return { ok: true, op: KvOp.Delete, deleted: cur !== undefined };
    }
    const currentVersion = cur?.version ?? 0;
    if (r.op === KvOp.DeleteIf) {
      const deleted = cur !== undefined && r.expectedVersion === currentVersion;
      if (deleted) keys.delete(id);
      if (keys.size === 0) this.tenants.delete(r.tenant);
      return { ok: true, op: KvOp.DeleteIf, deleted, version: deleted ? 0 : currentVersion };
    }
    if (r.op === KvOp.Cas && r.expectedVersion !== currentVersion) {
      if (keys.size === 0) this.tenants.delete(r.tenant);
      return { ok: true, op: KvOp.Cas, swapped: false, version: currentVersion };
    }
    const next: ModelEntry = {
      tenant: r.tenant,
      key: r.key.slice(),
      value: r.value.slice(),
      version: currentVersion + 1,
      createIndex: cur?.createIndex ?? index,
      modIndex: index,
    };
    keys.set(id, next);
    return r.op === KvOp.Put ? { ok: true, op: KvOp.Put, version: next.version } : { ok: true, op: KvOp.Cas, swapped: true, version: next.version };
  }

  /** The reply to a read. */
  query(req: Uint8Array): KvReply {
    const r = this.request(req);
    if ('code' in r) return r;
    if (r.op !== KvOp.Get && r.op !== KvOp.Scan && r.op !== KvOp.Usage) {
      return fail(KvErrorCode.BadRequest, `${OP_NAME[r.op]} is a command; propose it, not a read`);
    }
    const keys = this.tenants.get(r.tenant);
    if (r.op === KvOp.Usage) return { ok: true, op: KvOp.Usage, ...this.usage(r.tenant) };
    if (r.op === KvOp.Get) {
      const e = keys?.get(hex(r.key));
      if (!e) return { ok: true, op: KvOp.Get, found: false };
      return {
        ok: true,
        op: KvOp.Get,
        found: true,
        value: e.value.slice(),
        version: e.version,
        createIndex: e.createIndex as LogIndex,
        modIndex: e.modIndex as LogIndex,
      };
    }
    const prefix = hex(r.prefix);
    const after = r.startAfter === undefined ? undefined : hex(r.startAfter);
    const ids = [...(keys?.keys() ?? [])].filter((k) => k.startsWith(prefix) && (after === undefined || k > after)).sort();
    const limit = Math.min(r.limit, this.limits.scanLimitMax);
    const items: ScanItem[] = [];
    let bytes = 0;
    for (const id of ids) {
      const e = keys!.get(id)!;
      const size = e.key.length + e.value.length;
      if (items.length === limit || (items.length > 0 && bytes + size > this.limits.scanBytesMax)) break;
      items.push({ key: e.key.slice(), value: e.value.slice(), version: e.version });
      bytes += size;
    }
    return { ok: true, op: KvOp.Scan, items, more: items.length < ids.length };
  }

  /** The tenant's keys and their key + value bytes, counted from its live keys (no running total). */
  usage(tenant: string): { keys: number; bytes: number } {
    let bytes = 0;
    const keys = this.tenants.get(tenant);
    for (const e of keys?.values() ?? []) bytes += e.key.length + e.value.length;
    return { keys: keys?.size ?? 0, bytes };
  }

  /** Tenants with at least one key, by name. */
  tenantNames(): string[] {
    return [...this.tenants.keys()].sort();
  }

  /** Every live key, ordered by tenant then key. */
  entries(): ModelEntry[] {
    const out: ModelEntry[] = [];
    for (const keys of this.tenants.values()) out.push(...keys.values());
    return sortEntries(out);
  }

  /** Decodes and checks a request in the documented order: tenant, key sizes, expectedVersion, value, limit. */
  private request(bytes: Uint8Array): KvRequest | KvFailure {
    const r = decodeKvRequest(bytes);
    if ('code' in r) return r;
    const l = this.limits;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(r.tenant)) {
      return fail(KvErrorCode.InvalidTenant, `tenant must be 1..64 bytes of [A-Za-z0-9_.-], got ${JSON.stringify(r.tenant)}`);
    }
    if (r.op === KvOp.Usage) return r;
    if (r.op === KvOp.Scan) {
      if (r.prefix.length > l.keyBytesMax) return fail(KvErrorCode.KeyTooLarge, `prefix is ${r.prefix.length} bytes; keyBytesMax is ${l.keyBytesMax}`);
      if (r.startAfter && r.startAfter.length > l.keyBytesMax) {
        return fail(KvErrorCode.KeyTooLarge, `startAfter is ${r.startAfter.length} bytes; keyBytesMax is ${l.keyBytesMax}`);
      }
      if (r.limit < 1) return fail(KvErrorCode.InvalidLimit, 'scan limit must be at least 1');
      return r;
    }
    if (r.key.length === 0) return fail(KvErrorCode.EmptyKey, 'key must not be empty');
    if (r.key.length > l.keyBytesMax) return fail(KvErrorCode.KeyTooLarge, `key is ${r.key.length} bytes; keyBytesMax is ${l.keyBytesMax}`);
    if (r.op === KvOp.Cas && (!Number.isInteger(r.expectedVersion) || r.expectedVersion < 0 || r.expectedVersion > Number.MAX_SAFE_INTEGER)) {
      return fail(KvErrorCode.BadRequest, `expectedVersion must be a non-negative integer, got ${r.expectedVersion}`);
    }
    if (r.op === KvOp.DeleteIf && (!Number.isInteger(r.expectedVersion) || r.expectedVersion < 1 || r.expectedVersion > Number.MAX_SAFE_INTEGER)) {
      return fail(KvErrorCode.BadRequest, `a conditional delete's expectedVersion must be a positive integer, got ${r.expectedVersion}`);
    }
    if ((r.op === KvOp.Put || r.op === KvOp.Cas) && r.value.length > l.valueBytesMax) {
      return fail(KvErrorCode.ValueTooLarge, `value is ${r.value.length} bytes; valueBytesMax is ${l.valueBytesMax}`);
    }
    return r;
  }
}

/** Orders entries like {@link KvModel.entries}: tenant, then key bytes. */
export function sortEntries(list: readonly ModelEntry[]): ModelEntry[] {
  const keyed = list.map((e) => ({ sort: `${e.tenant}\u0000${hex(e.key)}`, e }));
  keyed.sort((a, b) => (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : 0));
  return keyed.map((x) => x.e);
}
