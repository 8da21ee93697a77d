/**
 * How the KV lays out its data in the shard's data database.
 *
 * Data key = [tenant length u8][tenant][key], so a tenant's keys are contiguous and a prefix scan
 * is a range scan; the first byte is 1..64, never the host's reserved 0xff. Stored value =
 * [version f64][createIndex f64][modIndex f64][value]. `version` is 1 when the key is created and
 * grows by one on every write; a delete removes the key, and a later write creates it again at
 * version 1. `createIndex` / `modIndex` are the log indexes of the creating and of the latest
 * write.
 */
import { assert } from '../raft/index.js';
import { ByteWriter } from '../../wire/index.js';
import { isValidTenant, putTenant } from './request.js';

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
  assert(isValidTenant(tenant), `dataKey: invalid tenant ${JSON.stringify(tenant)}`);
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
  assert(stored.length >= STORED_HEADER_BYTES, `kv: stored value of ${stored.length} bytes is shorter than its header`);
}
