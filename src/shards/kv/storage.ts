/**
 * How the KV lays out its data in the shard's data database.
 *
 * Data key = [tenant length u8][tenant][key], so a tenant's keys are contiguous and a prefix scan
 * is a range scan; the first byte is 1..64, never the host's reserved 0xff. Stored value =
 * [version f64][createIndex f64][modIndex f64][value]. `version` is 1 when the key is created and
 * grows by one on every write; a delete removes the key, and a later write creates it again at
 * version 1. `createIndex` / `modIndex` are the log indexes of the creating and of the latest
 * write.
 *
 * Usage key = [0x00][tenant length u8][tenant], value = [keys f64][bytes f64]: how many keys the
 * tenant has in this shard and the sum of their key + value lengths (stored headers not counted).
 * A data key never starts with 0x00 (a tenant is at least one byte long), and neither does the
 * host's reserved range (0xff), so client keys cannot reach a usage record, and no scan of a
 * tenant's range meets one. Kept in the same apply transaction as the write it counts; absent
 * when the tenant has no key in the shard.
 */
import { assert } from '../raft/index.js';
import { ByteReader, ByteWriter } from '../../wire/index.js';
import type { DataReader, DataTxn } from '../state-machine.js';
import { isValidTenant, putTenant } from './request.js';

/** First byte of the KV's own records (tenant usage); no data key starts with it. */
export const USAGE_PREFIX = 0x00;
/** keys f64, bytes f64. */
export const USAGE_BYTES = 16;

/** A tenant's usage in one shard: keys, and the sum of their key + value lengths in bytes. */
export interface TenantUsage {
  readonly keys: number;
  readonly bytes: number;
}

/** The usage record's key of a valid tenant: [0x00][tenant length][tenant]. */
export function usageKey(tenant: string): Uint8Array {
  const w = new ByteWriter(1 + tenantPrefixBytes(tenant));
  w.u8(USAGE_PREFIX);
  putTenant(w, tenant);
  return w.finish();
}

/** The tenant's usage as stored (zero when it has no record). */
export function readUsage(view: DataReader, tenant: string): TenantUsage {
  const v = view.get(usageKey(tenant));
  if (v === undefined) return { keys: 0, bytes: 0 };
  if (v.length !== USAGE_BYTES) assert(false, `kv: usage record of ${v.length} bytes`);
  const r = new ByteReader(v);
  return { keys: r.f64(), bytes: r.f64() };
}

/**
 * Adds `keys` and `bytes` (either may be negative) to the tenant's usage in this transaction;
 * removes the record when the tenant has no key left. Counts never go below zero: keys written
 * before this version counted usage were never added, so deleting them could take a count below
 * zero; it stops at zero instead (the same on every replica: they hold the same keys), and those
 * keys stay uncounted until deleted. Both counts are integers; the property test in
 * test/unit/shards/kv.test.ts proves them equal to what the tenant's keys add up to.
 */
export function addUsage(txn: DataTxn, tenant: string, keys: number, bytes: number): void {
  if (keys === 0 && bytes === 0) return;
  const k = usageKey(tenant);
  const cur = readUsage(txn, tenant);
  const next = { keys: Math.max(0, cur.keys + keys), bytes: Math.max(0, cur.bytes + bytes) };
  if (!(Number.isSafeInteger(next.keys) && Number.isSafeInteger(next.bytes)))
    assert(false, `kv: usage of ${tenant} would be ${next.keys} keys, ${next.bytes} bytes`);
  if (next.keys === 0) {
    txn.remove(k);
    return;
  }
  const w = new ByteWriter(USAGE_BYTES);
  w.f64(next.keys);
  w.f64(next.bytes);
  txn.put(k, w.finish());
}

/** version f64, createIndex f64, modIndex f64, in this order. */
export const STORED_HEADER_BYTES = 24;

export function tenantPrefixBytes(tenant: string): number {
  return 1 + tenant.length;
}

/** Writes [tenant length][tenant][key]; `tenant` must be valid (ASCII). */
export function putDataKey(w: ByteWriter, tenant: string, key: Uint8Array): void {
  putTenant(w, tenant);
  w.bytes(key);
}

/** The data-database key of `key` in `tenant`: [tenant length u8][tenant ASCII][key]. */
export function dataKey(tenant: string, key: Uint8Array): Uint8Array {
  if (!isValidTenant(tenant)) assert(false, `dataKey: invalid tenant ${JSON.stringify(tenant)}`);
  return checkedDataKey(tenant, key);
}

/** {@link dataKey} for a tenant that `checkKvRequest` (./request.ts) already accepted. */
export function checkedDataKey(tenant: string, key: Uint8Array): Uint8Array {
  const w = new ByteWriter(tenantPrefixBytes(tenant) + key.length);
  putDataKey(w, tenant, key);
  return w.finish();
}

/** The first key after every key that starts with `prefix` (which must not be all 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  assert(n > 0, 'prefixEnd: prefix is all 0xff');
  const end = prefix.slice(0, n);
  end[n - 1] = end[n - 1]! + 1;
  return end;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function storedValue(version: number, createIndex: number, modIndex: number, value: Uint8Array): Uint8Array {
  const w = new ByteWriter(STORED_HEADER_BYTES + value.length);
  w.f64(version);
  w.f64(createIndex);
  w.f64(modIndex);
  w.bytes(value);
  return w.finish();
}

export function checkStored(stored: Uint8Array): void {
  if (stored.length < STORED_HEADER_BYTES) assert(false, `kv: stored value of ${stored.length} bytes is shorter than its header`);
}
