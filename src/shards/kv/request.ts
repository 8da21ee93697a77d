/**
 * The byte layout of KV requests, and their check against the limits. Requests cross worker rings
 * and the wire on every operation, so they are flat little-endian layouts, written with one buffer
 * allocation per encode.
 *
 * Requests (first byte: op; tenant: u8 length + ASCII bytes; key, prefix, startAfter: u16 length +
 * bytes; value: u32 length + bytes; a request must be consumed exactly, no trailing bytes):
 *
 * - Put    1 | tenant | key | value
 * - Delete 2 | tenant | key
 * - Cas    3 | tenant | key | expectedVersion f64 | value
 * - Get    4 | tenant | key
 * - Scan   5 | tenant | prefix | limit u32 | startAfter (length 0: from the start of the prefix)
 * - DeleteIf 6 | tenant | key | expectedVersion f64
 * - Usage  7 | tenant
 *
 * Put, Delete, Cas and DeleteIf are commands (proposed, applied through the log); Get, Scan and Usage are queries
 * (served by `KvStateMachine.query`). A query sent as a command and the reverse are refused.
 */
import { ByteReader, ByteWriter } from '../../wire/index.js';
import { KEY_BYTES_LIMIT, VALUE_BYTES_LIMIT } from './limits.js';
import type { KvLimits } from './limits.js';
import { KvError, KvErrorCode, KvOp, OP_NAMES, failure } from './reply.js';
import type { KvFailure } from './reply.js';

export interface PutRequest {
  readonly op: typeof KvOp.Put;
  readonly tenant: string;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}
export interface DeleteRequest {
  readonly op: typeof KvOp.Delete;
  readonly tenant: string;
  readonly key: Uint8Array;
}
export interface CasRequest {
  readonly op: typeof KvOp.Cas;
  readonly tenant: string;
  readonly key: Uint8Array;
  /** The version the key must have for the write to happen; 0 means "absent". */
  readonly expectedVersion: number;
  readonly value: Uint8Array;
}
export interface DeleteIfRequest {
  readonly op: typeof KvOp.DeleteIf;
  readonly tenant: string;
  readonly key: Uint8Array;
  /** The version the key must have to be deleted: 1 or more (a key at version 0 does not exist). */
  readonly expectedVersion: number;
}
export interface GetRequest {
  readonly op: typeof KvOp.Get;
  readonly tenant: string;
  readonly key: Uint8Array;
}
export interface ScanRequest {
  readonly op: typeof KvOp.Scan;
  readonly tenant: string;
  readonly prefix: Uint8Array;
  readonly limit: number;
  /** Return only keys after this one; undefined starts at the first key with the prefix. */
  readonly startAfter: Uint8Array | undefined;
}
/** The tenant's usage (keys, key + value bytes) in the shard asked. */
export interface UsageRequest {
  readonly op: typeof KvOp.Usage;
  readonly tenant: string;
}
export type KvCommand = PutRequest | DeleteRequest | CasRequest | DeleteIfRequest;
export type KvQuery = GetRequest | ScanRequest | UsageRequest;
export type KvRequest = KvCommand | KvQuery;

export const isKvCommandOp = (op: KvOp): op is KvCommand['op'] => op === KvOp.Put || op === KvOp.Delete || op === KvOp.Cas || op === KvOp.DeleteIf;

const utf8 = new TextEncoder();

/** The tenant's bytes: ASCII as is (no allocation), anything else as UTF-8 (refused on arrival). */
function tenantBytes(tenant: string): string | Uint8Array {
  for (let i = 0; i < tenant.length; i++) if (tenant.charCodeAt(i) > 0x7f) return utf8.encode(tenant);
  return tenant;
}

export function putTenant(w: ByteWriter, t: string | Uint8Array): void {
  w.u8(t.length, 'tenant length');
  if (typeof t === 'string') w.ascii(t, 'tenant');
  else w.bytes(t);
}

function checkTenantEncodable(t: string | Uint8Array): void {
  if (t.length > 0xff) throw new KvError(KvErrorCode.InvalidTenant, `tenant is ${t.length} bytes; at most 64 are allowed`);
}

function checkKeyEncodable(field: string, k: Uint8Array): void {
  if (k.length > 0xffff) throw new KvError(KvErrorCode.KeyTooLarge, `${field} is ${k.length} bytes; at most ${KEY_BYTES_LIMIT} are allowed`);
}

function checkValueEncodable(v: Uint8Array): void {
  if (v.length > 0xffff_ffff) throw new KvError(KvErrorCode.ValueTooLarge, `value is ${v.length} bytes; at most ${VALUE_BYTES_LIMIT} are allowed`);
}

/**
 * Encoders write any field that fits its length field, and throw KvError (InvalidTenant,
 * KeyTooLarge, ValueTooLarge, InvalidLimit) only for one that does not; the limits of the
 * state machine are checked when the request arrives.
 */
function encodeKeyed(op: KvOp, tenant: string, key: Uint8Array, tail: number): ByteWriter {
  const t = tenantBytes(tenant);
  checkTenantEncodable(t);
  checkKeyEncodable('key', key);
  const w = new ByteWriter(1 + 1 + t.length + 2 + key.length + tail);
  w.u8(op);
  putTenant(w, t);
  w.u16(key.length, 'key length');
  w.bytes(key);
  return w;
}

export function encodePut(tenant: string, key: Uint8Array, value: Uint8Array): Uint8Array {
  checkValueEncodable(value);
  const w = encodeKeyed(KvOp.Put, tenant, key, 4 + value.length);
  w.u32(value.length, 'value length');
  w.bytes(value);
  return w.finish();
}

export function encodeDelete(tenant: string, key: Uint8Array): Uint8Array {
  return encodeKeyed(KvOp.Delete, tenant, key, 0).finish();
}

/** Deletes the key only if it is at `expectedVersion` (1 or more; the state machine refuses others). */
export function encodeDeleteIf(tenant: string, key: Uint8Array, expectedVersion: number): Uint8Array {
  const w = encodeKeyed(KvOp.DeleteIf, tenant, key, 8);
  w.f64(expectedVersion);
  return w.finish();
}

/** `expectedVersion` 0 means "write only if the key is absent". */
export function encodeCas(tenant: string, key: Uint8Array, expectedVersion: number, value: Uint8Array): Uint8Array {
  checkValueEncodable(value);
  const w = encodeKeyed(KvOp.Cas, tenant, key, 8 + 4 + value.length);
  w.f64(expectedVersion); // any number: the state machine refuses a bad one (BadRequest)
  w.u32(value.length, 'value length');
  w.bytes(value);
  return w.finish();
}

export function encodeGet(tenant: string, key: Uint8Array): Uint8Array {
  return encodeKeyed(KvOp.Get, tenant, key, 0).finish();
}

/** The tenant's usage in the shard that answers (a query). */
export function encodeUsage(tenant: string): Uint8Array {
  const t = tenantBytes(tenant);
  checkTenantEncodable(t);
  const w = new ByteWriter(1 + 1 + t.length);
  w.u8(KvOp.Usage);
  putTenant(w, t);
  return w.finish();
}

/**
 * `limit`: most items wanted (1..; capped by the server's `scanLimitMax`). `startAfter`: the last
 * key of the previous page, to continue after it; an empty array means none.
 */
export function encodeScan(tenant: string, prefix: Uint8Array, limit: number, startAfter?: Uint8Array): Uint8Array {
  const t = tenantBytes(tenant);
  const after = startAfter ?? EMPTY;
  checkTenantEncodable(t);
  checkKeyEncodable('prefix', prefix);
  checkKeyEncodable('startAfter', after);
  if (!Number.isInteger(limit) || limit < 0 || limit > 0xffff_ffff) {
    throw new KvError(KvErrorCode.InvalidLimit, `scan limit must be an integer in 1..${0xffff_ffff}, got ${limit}`);
  }
  const w = new ByteWriter(1 + 1 + t.length + 2 + prefix.length + 4 + 2 + after.length);
  w.u8(KvOp.Scan);
  putTenant(w, t);
  w.u16(prefix.length, 'prefix length');
  w.bytes(prefix);
  w.u32(limit, 'scan limit');
  w.u16(after.length, 'startAfter length');
  w.bytes(after);
  return w.finish();
}

const EMPTY = new Uint8Array(0);

/**
 * Parses request bytes. Checks structure only (BadRequest: empty, unknown op, truncated, trailing
 * bytes); {@link checkKvRequest} checks tenant, sizes and limits. Byte fields of the result are
 * views into `bytes` (plain Uint8Arrays, even when `bytes` is a Buffer): copy them before `bytes`
 * is reused.
 */
export function decodeKvRequest(bytes: Uint8Array): KvRequest | KvFailure {
  if (bytes.length === 0) return failure(KvErrorCode.BadRequest, 'empty request');
  const c = new ByteReader(bytes);
  const op = c.u8();
  if (op < KvOp.Put || op > KvOp.Usage) return failure(KvErrorCode.BadRequest, `unknown op ${op}`);
  const tenant = c.latin1(c.u8());
  let r: KvRequest;
  if (op === KvOp.Usage) {
    r = { op, tenant };
  } else if (op === KvOp.Scan) {
    const prefix = c.view(c.u16());
    const limit = c.u32();
    const after = c.view(c.u16());
    r = { op, tenant, prefix, limit, startAfter: after.length === 0 ? undefined : after };
  } else {
    const key = c.view(c.u16());
    if (op === KvOp.Put) r = { op, tenant, key, value: c.view(c.u32()) };
    else if (op === KvOp.Cas) {
      const expectedVersion = c.f64();
      r = { op, tenant, key, expectedVersion, value: c.view(c.u32()) };
    } else if (op === KvOp.DeleteIf) r = { op, tenant, key, expectedVersion: c.f64() };
    else r = { op: op as typeof KvOp.Delete | typeof KvOp.Get, tenant, key };
  }
  const name = OP_NAMES[op as KvOp];
  if (c.short) return failure(KvErrorCode.BadRequest, `${name} request truncated at ${bytes.length} bytes`);
  if (c.at !== bytes.length) return failure(KvErrorCode.BadRequest, `${bytes.length - c.at} trailing bytes after a ${name} request`);
  return r;
}

/** Longest valid tenant, in bytes (ASCII only; see {@link isValidTenant}). */
export const TENANT_BYTES_MAX = 64;
const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Bytes of the largest command that passes {@link checkKvRequest} under `limits`: a compare-and-set
 * with the longest tenant, key and value (`op u8, tenant length u8, tenant, key length u16, key,
 * expectedVersion f64, value length u32, value`; a put is 8 bytes shorter). What a proposal must be
 * able to carry through a ring record and a raft message (src/workers/fit.ts).
 */
export function kvCommandBytesMax(limits: Pick<KvLimits, 'keyBytesMax' | 'valueBytesMax'>): number {
  return 1 + 1 + TENANT_BYTES_MAX + 2 + limits.keyBytesMax + 8 + 4 + limits.valueBytesMax;
}

/** True when `tenant` is 1..64 characters of [A-Za-z0-9_.-]. */
export const isValidTenant = (tenant: string): boolean => TENANT.test(tenant);

/**
 * Checks a decoded request against the limits, in a fixed order (tenant, key or prefix and
 * startAfter, expectedVersion, value, scan limit) so every replica reports the same first problem.
 */
export function checkKvRequest(r: KvRequest, limits: KvLimits): KvFailure | undefined {
  if (!isValidTenant(r.tenant)) {
    return failure(KvErrorCode.InvalidTenant, `tenant must be 1..64 bytes of [A-Za-z0-9_.-], got ${JSON.stringify(r.tenant)}`);
  }
  if (r.op === KvOp.Usage) return undefined;
  const tooLarge = (field: string, b: Uint8Array): KvFailure | undefined =>
    b.length > limits.keyBytesMax ? failure(KvErrorCode.KeyTooLarge, `${field} is ${b.length} bytes; keyBytesMax is ${limits.keyBytesMax}`) : undefined;
  if (r.op === KvOp.Scan) {
    const bad = tooLarge('prefix', r.prefix) ?? (r.startAfter && tooLarge('startAfter', r.startAfter));
    if (bad) return bad;
    if (r.limit === 0) return failure(KvErrorCode.InvalidLimit, 'scan limit must be at least 1');
    return undefined;
  }
  if (r.key.length === 0) return failure(KvErrorCode.EmptyKey, 'key must not be empty');
  const bad = tooLarge('key', r.key);
  if (bad) return bad;
  if (r.op === KvOp.Cas && !(Number.isSafeInteger(r.expectedVersion) && r.expectedVersion >= 0)) {
    return failure(KvErrorCode.BadRequest, `expectedVersion must be a non-negative integer, got ${r.expectedVersion}`);
  }
  if (r.op === KvOp.DeleteIf && !(Number.isSafeInteger(r.expectedVersion) && r.expectedVersion >= 1)) {
    return failure(KvErrorCode.BadRequest, `a conditional delete's expectedVersion must be a positive integer, got ${r.expectedVersion}`);
  }
  if ((r.op === KvOp.Put || r.op === KvOp.Cas) && r.value.length > limits.valueBytesMax) {
    return failure(KvErrorCode.ValueTooLarge, `value is ${r.value.length} bytes; valueBytesMax is ${limits.valueBytesMax}`);
  }
  return undefined;
}
