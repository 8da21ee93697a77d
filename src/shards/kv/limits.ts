/**
 * The size limits of the KV: their bounds, defaults, and the check of the relations between them.
 */
import { KvError, KvErrorCode } from './reply.js';

/**
 * Largest key LMDB accepts with its default page size (lmdb-js `getMaxKeySize()`); larger keys
 * make `put`/`remove` throw, which while applying would crash every replica on the same entry.
 */
export const STORE_KEY_BYTES_MAX = 1978;
/** Most bytes a tenant takes in a data key (length byte + 64 bytes). */
const TENANT_PREFIX_BYTES_MAX = 65;
/**
 * Upper bound for `keyBytesMax`: a data key and a scan's start key (data key + one 0x00 byte after
 * `startAfter`) must stay within {@link STORE_KEY_BYTES_MAX}.
 */
export const KEY_BYTES_LIMIT = STORE_KEY_BYTES_MAX - TENANT_PREFIX_BYTES_MAX - 1;
/** Upper bound for `valueBytesMax` (1 GiB), far above what a proposal may carry. */
export const VALUE_BYTES_LIMIT = 1 << 30;
/** Upper bound for `scanBytesMax` (2 GiB). */
export const SCAN_BYTES_LIMIT = 2 ** 31;
/** Upper bound for `scanLimitMax`: the count field of a scan reply is a u32. */
export const SCAN_LIMIT_LIMIT = 0xffff_ffff;

export interface KvLimits {
  /** Longest key, scan prefix or startAfter, in bytes; 1..{@link KEY_BYTES_LIMIT}. Default 1024. */
  readonly keyBytesMax: number;
  /** Longest value, in bytes; 1..{@link VALUE_BYTES_LIMIT}. Default 1 MiB. */
  readonly valueBytesMax: number;
  /** Most items one scan returns; larger requested limits are capped to it. Default 10,000. */
  readonly scanLimitMax: number;
  /**
   * Most key + value bytes one scan returns: the scan stops before an item that would exceed it
   * (the first item always goes in) and reports `more`. At least keyBytesMax + valueBytesMax.
   * Default 1.75 MiB, so that the largest scan reply ({@link kvBodyBytesMax}) fits one record of
   * the default 4 MiB ring (the worker pool checks this relation for its ring size).
   */
  readonly scanBytesMax: number;
}

export const KV_LIMITS_DEFAULT: KvLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 1 << 20,
  scanLimitMax: 10_000,
  scanBytesMax: 7 << 18,
};

/** Scan reply before its items: status u8, more u8, count u32 (layout in ./reply.ts). */
export const SCAN_REPLY_HEADER_BYTES = 6;
/** Scan reply bytes per item besides its key and value: key length u16, version f64, value length u32. */
export const SCAN_ITEM_OVERHEAD_BYTES = 14;
/** Get reply besides the value: status u8, found u8, version, createIndex, modIndex f64, value length u32. */
const GET_REPLY_OVERHEAD_BYTES = 30;
/** Cas request besides key and value (the largest command): op u8, tenant length u8, 64 tenant bytes, key length u16, expectedVersion f64, value length u32. */
const CAS_REQUEST_OVERHEAD_BYTES = 80;
/** Scan request besides prefix and startAfter: op u8, tenant length u8, 64 tenant bytes, prefix length u16, limit u32, startAfter length u16. */
const SCAN_REQUEST_OVERHEAD_BYTES = 74;

/**
 * The largest request and reply bodies the KV exchanges under `limits`, in bytes: a compare-and-set
 * of a value of `valueBytesMax` under a key of `keyBytesMax` in a 64-byte tenant; a Get of such a
 * value, or a full scan reply (`scanBytesMax` of keys and values plus per-item overhead for
 * `scanLimitMax` items). The item a scan always lets through is at most keyBytesMax +
 * valueBytesMax <= scanBytesMax, so no scan reply is larger. Whoever carries them (the worker
 * pool's rings) checks that they fit one record.
 */
export function kvBodyBytesMax(limits: KvLimits): { readonly requestBytes: number; readonly replyBytes: number } {
  const command = CAS_REQUEST_OVERHEAD_BYTES + limits.keyBytesMax + limits.valueBytesMax;
  const scanRequest = SCAN_REQUEST_OVERHEAD_BYTES + 2 * limits.keyBytesMax;
  const get = GET_REPLY_OVERHEAD_BYTES + limits.valueBytesMax;
  const scan = SCAN_REPLY_HEADER_BYTES + SCAN_ITEM_OVERHEAD_BYTES * limits.scanLimitMax + limits.scanBytesMax;
  return { requestBytes: Math.max(command, scanRequest), replyBytes: Math.max(get, scan) };
}

/** Fills defaults and checks every limit and the relations between them. Throws KvError InvalidConfig. */
export function resolveKvLimits(partial: Partial<KvLimits> = {}): KvLimits {
  const l: KvLimits = {
    keyBytesMax: partial.keyBytesMax ?? KV_LIMITS_DEFAULT.keyBytesMax,
    valueBytesMax: partial.valueBytesMax ?? KV_LIMITS_DEFAULT.valueBytesMax,
    scanLimitMax: partial.scanLimitMax ?? KV_LIMITS_DEFAULT.scanLimitMax,
    scanBytesMax: partial.scanBytesMax ?? KV_LIMITS_DEFAULT.scanBytesMax,
  };
  const check = (name: keyof KvLimits, max: number): void => {
    const v = l[name];
    if (!Number.isInteger(v) || v <= 0 || v > max) {
      throw new KvError(KvErrorCode.InvalidConfig, `${name} must be an integer in 1..${max}, got ${v}`);
    }
  };
  check('keyBytesMax', KEY_BYTES_LIMIT);
  check('valueBytesMax', VALUE_BYTES_LIMIT);
  check('scanLimitMax', SCAN_LIMIT_LIMIT);
  check('scanBytesMax', SCAN_BYTES_LIMIT);
  if (l.scanBytesMax < l.keyBytesMax + l.valueBytesMax) {
    throw new KvError(KvErrorCode.InvalidConfig, 'scanBytesMax must be >= keyBytesMax + valueBytesMax, so one item always fits');
  }
  return l;
}
