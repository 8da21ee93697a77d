/**
 * The built-in multi-tenant key-value state machine and the binary encoding of its requests and
 * replies. Requests and replies cross worker rings and the wire on every operation, so they are
 * flat little-endian layouts, written with one buffer allocation per encode.
 *
 * Requests (first byte: op; tenant: u8 length + ASCII bytes; key, prefix, startAfter: u16 length +
 * bytes; value: u32 length + bytes; a request must be consumed exactly, no trailing bytes):
 *
 * - Put    1 | tenant | key | value
 * - Delete 2 | tenant | key
 * - Cas    3 | tenant | key | expectedVersion f64 | value
 * - Get    4 | tenant | key
 * - Scan   5 | tenant | prefix | limit u32 | startAfter (length 0: from the start of the prefix)
 *
 * Put, Delete and Cas are commands (proposed, applied through the log); Get and Scan are queries
 * (served by {@link KvStateMachine.query}). A query sent as a command and the reverse are refused.
 *
 * Replies start with a status byte: 1 is an error (code: u8 length + ASCII, then the message as
 * UTF-8 up to the end); 0 is success, followed by:
 *
 * - Put    version f64
 * - Delete deleted u8
 * - Cas    swapped u8 | version f64 (the new version when swapped, else the current one)
 * - Get    found u8 | when found: version f64 | createIndex f64 | modIndex f64 | value
 * - Scan   more u8 | count u32 | count x (key | version f64 | value)
 *
 * Storage: data key = [tenant length u8][tenant][key], so a tenant's keys are contiguous and a
 * prefix scan is a range scan; the first byte is 1..64, never the host's reserved 0xff. Stored
 * value = [version f64][createIndex f64][modIndex f64][value]. `version` is 1 when the key is
 * created and grows by one on every write; a delete removes the key, and a later write creates it
 * again at version 1. `createIndex` / `modIndex` are the log indexes of the creating and of the
 * latest write.
 */
import { assert } from './raft/index.js';
import type { LogIndex } from './raft/index.js';
import type { AppliedCommand, DataReader, DataTxn, StateMachine } from './state-machine.js';
import { CodedError } from '../errors.js';
import { ByteReader, ByteWriter, utf8Length } from '../wire/index.js';

export const KvOp = {
  Put: 1,
  Delete: 2,
  Cas: 3,
  Get: 4,
  Scan: 5,
} as const;
export type KvOp = (typeof KvOp)[keyof typeof KvOp];

const OP_NAMES: Readonly<Record<KvOp, string>> = { 1: 'Put', 2: 'Delete', 3: 'Cas', 4: 'Get', 5: 'Scan' };

/** Stable codes of KV errors. Every code but the last two is sent as an error reply. */
export const KvErrorCode = {
  /** Malformed request: empty, unknown op, truncated, trailing bytes, a query proposed as a command (or the reverse), a bad expectedVersion. */
  BadRequest: 'BadRequest',
  /** Tenant is not 1..64 bytes of [A-Za-z0-9_.-]. */
  InvalidTenant: 'InvalidTenant',
  /** The key of a Put, Delete, Cas or Get is empty. */
  EmptyKey: 'EmptyKey',
  /** A key, scan prefix or startAfter is longer than `keyBytesMax`. */
  KeyTooLarge: 'KeyTooLarge',
  /** A value is longer than `valueBytesMax`. */
  ValueTooLarge: 'ValueTooLarge',
  /** A scan limit of 0 (limits above `scanLimitMax` are capped, not refused). */
  InvalidLimit: 'InvalidLimit',
  /** Thrown by {@link decodeKvReply}: the reply bytes are malformed. Never a reply. */
  BadReply: 'BadReply',
  /** Thrown by {@link resolveKvLimits}: a limit is out of range. Never a reply. */
  InvalidConfig: 'InvalidConfig',
} as const;
export type KvErrorCode = (typeof KvErrorCode)[keyof typeof KvErrorCode];

/** A KV operating error thrown by the encoders, {@link decodeKvReply} and {@link resolveKvLimits}. */
export class KvError extends CodedError<KvErrorCode> {
  override readonly name = 'KvError';
}

// ------------------------------------------------------------------------------------ limits

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
   * Default 4 MiB.
   */
  readonly scanBytesMax: number;
}

export const KV_LIMITS_DEFAULT: KvLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 1 << 20,
  scanLimitMax: 10_000,
  scanBytesMax: 4 << 20,
};

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

// ------------------------------------------------------------------------------- requests

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
export type KvCommand = PutRequest | DeleteRequest | CasRequest;
export type KvQuery = GetRequest | ScanRequest;
export type KvRequest = KvCommand | KvQuery;

/** An error reply, and the result of a failed decode or check. */
export interface KvFailure {
  readonly ok: false;
  readonly code: KvErrorCode;
  readonly message: string;
}

const failure = (code: KvErrorCode, message: string): KvFailure => ({ ok: false, code, message });

export const isKvCommandOp = (op: KvOp): op is KvCommand['op'] => op === KvOp.Put || op === KvOp.Delete || op === KvOp.Cas;

const utf8 = new TextEncoder();

/** The tenant's bytes: ASCII as is (no allocation), anything else as UTF-8 (refused on arrival). */
function tenantBytes(tenant: string): string | Uint8Array {
  for (let i = 0; i < tenant.length; i++) if (tenant.charCodeAt(i) > 0x7f) return utf8.encode(tenant);
  return tenant;
}

function putTenant(w: ByteWriter, t: string | Uint8Array): void {
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
  if (op < KvOp.Put || op > KvOp.Scan) return failure(KvErrorCode.BadRequest, `unknown op ${op}`);
  const tenant = c.latin1(c.u8());
  let r: KvRequest;
  if (op === KvOp.Scan) {
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
    } else r = { op: op as typeof KvOp.Delete | typeof KvOp.Get, tenant, key };
  }
  const name = OP_NAMES[op as KvOp];
  if (c.short) return failure(KvErrorCode.BadRequest, `${name} request truncated at ${bytes.length} bytes`);
  if (c.at !== bytes.length) return failure(KvErrorCode.BadRequest, `${bytes.length - c.at} trailing bytes after a ${name} request`);
  return r;
}

const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;

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
  if ((r.op === KvOp.Put || r.op === KvOp.Cas) && r.value.length > limits.valueBytesMax) {
    return failure(KvErrorCode.ValueTooLarge, `value is ${r.value.length} bytes; valueBytesMax is ${limits.valueBytesMax}`);
  }
  return undefined;
}

// --------------------------------------------------------------------------------- replies

export interface PutReply {
  readonly ok: true;
  readonly op: typeof KvOp.Put;
  readonly version: number;
}
export interface DeleteReply {
  readonly ok: true;
  readonly op: typeof KvOp.Delete;
  readonly deleted: boolean;
}
export interface CasReply {
  readonly ok: true;
  readonly op: typeof KvOp.Cas;
  /** True when the version matched and the value was written. A mismatch is not an error. */
  readonly swapped: boolean;
  /** The new version when swapped, else the current one (0: absent). */
  readonly version: number;
}
export type GetReply =
  | { readonly ok: true; readonly op: typeof KvOp.Get; readonly found: false }
  | {
      readonly ok: true;
      readonly op: typeof KvOp.Get;
      readonly found: true;
      readonly value: Uint8Array;
      readonly version: number;
      readonly createIndex: LogIndex;
      readonly modIndex: LogIndex;
    };
export interface ScanItem {
  /** The key without the tenant prefix. */
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly version: number;
}
export interface ScanReply {
  readonly ok: true;
  readonly op: typeof KvOp.Scan;
  /** In ascending bytewise key order. */
  readonly items: ScanItem[];
  /** True when keys with the prefix remain after the last item (continue with startAfter). */
  readonly more: boolean;
}
export interface KvReplies {
  [KvOp.Put]: PutReply;
  [KvOp.Delete]: DeleteReply;
  [KvOp.Cas]: CasReply;
  [KvOp.Get]: GetReply;
  [KvOp.Scan]: ScanReply;
}
export type KvReplyOf<O extends KvOp> = KvReplies[O] | KvFailure;
export type KvReply = KvReplyOf<KvOp>;

const STATUS_OK = 0;
const STATUS_ERROR = 1;
const KNOWN_CODES = new Set<string>(Object.values(KvErrorCode));

/** An error reply: status 1, code (u8 length + ASCII), message (UTF-8 to the end). */
export function encodeKvFailure(code: KvErrorCode, message: string): Uint8Array {
  const w = new ByteWriter(2 + code.length + utf8Length(message));
  w.u8(STATUS_ERROR);
  w.u8(code.length, 'error code length');
  w.ascii(code, 'error code');
  w.utf8(message);
  return w.finish();
}

const utf8Decoder = new TextDecoder();

/**
 * Parses reply bytes of a request with op `op`. Error replies parse the same for every op. Byte
 * fields are views into `bytes`: copy them before `bytes` is reused. Throws KvError BadReply when
 * the bytes are malformed.
 */
export function decodeKvReply<O extends KvOp>(op: O, bytes: Uint8Array): KvReplyOf<O>;
export function decodeKvReply(op: KvOp, bytes: Uint8Array): KvReply {
  const c = new ByteReader(bytes);
  const status = c.u8();
  let r: KvReply;
  if (status === STATUS_ERROR) {
    const code = c.latin1(c.u8());
    // Copy: TextDecoder refuses views of shared memory.
    const message = utf8Decoder.decode(c.rest().slice());
    if (!c.short && !KNOWN_CODES.has(code)) throw new KvError(KvErrorCode.BadReply, `unknown error code ${JSON.stringify(code)}`);
    r = failure(code as KvErrorCode, message);
  } else if (status !== STATUS_OK) {
    throw new KvError(KvErrorCode.BadReply, `bad reply status ${status}`);
  } else if (op === KvOp.Put) {
    r = { ok: true, op, version: c.f64() };
  } else if (op === KvOp.Delete) {
    r = { ok: true, op, deleted: flag(c) };
  } else if (op === KvOp.Cas) {
    const swapped = flag(c);
    r = { ok: true, op, swapped, version: c.f64() };
  } else if (op === KvOp.Get) {
    if (!flag(c)) r = { ok: true, op, found: false };
    else {
      const version = c.f64();
      const createIndex = c.f64() as LogIndex;
      const modIndex = c.f64() as LogIndex;
      r = { ok: true, op, found: true, value: c.view(c.u32()), version, createIndex, modIndex };
    }
  } else if (op === KvOp.Scan) {
    const more = flag(c);
    const count = c.u32();
    const items: ScanItem[] = [];
    for (let i = 0; i < count && !c.short; i++) {
      const key = c.view(c.u16());
      const version = c.f64();
      items.push({ key, version, value: c.view(c.u32()) });
    }
    r = { ok: true, op, items, more };
  } else {
    throw new KvError(KvErrorCode.BadReply, `unknown op ${String(op)}`);
  }
  if (c.short) throw new KvError(KvErrorCode.BadReply, `reply truncated at ${bytes.length} bytes`);
  if (c.at !== bytes.length) throw new KvError(KvErrorCode.BadReply, `${bytes.length - c.at} trailing bytes after a reply`);
  return r;
}

function flag(c: ByteReader): boolean {
  const b = c.u8();
  if (b > 1) throw new KvError(KvErrorCode.BadReply, `bad boolean byte ${b}`);
  return b === 1;
}

// ----------------------------------------------------------------------------- storage layout

/** version f64, createIndex f64, modIndex f64, in this order. */
const STORED_HEADER_BYTES = 24;

function tenantPrefixBytes(tenant: string): number {
  return 1 + tenant.length;
}

/** Writes [tenant length][tenant][key]; `tenant` must be valid (ASCII). */
function putDataKey(w: ByteWriter, tenant: string, key: Uint8Array): void {
  putTenant(w, tenant);
  w.bytes(key);
}

/** The data-database key of `key` in `tenant`: [tenant length u8][tenant ASCII][key]. */
export function dataKey(tenant: string, key: Uint8Array): Uint8Array {
  assert(isValidTenant(tenant), `dataKey: invalid tenant ${JSON.stringify(tenant)}`);
  return checkedDataKey(tenant, key);
}

/** {@link dataKey} for a tenant that {@link checkKvRequest} already accepted. */
function checkedDataKey(tenant: string, key: Uint8Array): Uint8Array {
  const w = new ByteWriter(tenantPrefixBytes(tenant) + key.length);
  putDataKey(w, tenant, key);
  return w.finish();
}

/** The first key after every key that starts with `prefix` (which must not be all 0xff). */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  assert(n > 0, 'prefixEnd: prefix is all 0xff');
  const end = prefix.slice(0, n);
  end[n - 1] = end[n - 1]! + 1;
  return end;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function storedValue(version: number, createIndex: number, modIndex: number, value: Uint8Array): Uint8Array {
  const w = new ByteWriter(STORED_HEADER_BYTES + value.length);
  w.f64(version);
  w.f64(createIndex);
  w.f64(modIndex);
  w.bytes(value);
  return w.finish();
}

function checkStored(stored: Uint8Array): void {
  assert(stored.length >= STORED_HEADER_BYTES, `kv: stored value of ${stored.length} bytes is shorter than its header`);
}

// ------------------------------------------------------------------------------ state machine

/** status u8, version f64. */
const PUT_REPLY_BYTES = 9;
/** status u8, swapped u8, version f64. */
const CAS_REPLY_BYTES = 10;
/** status u8, more u8, count u32. */
const SCAN_HEADER_BYTES = 6;

/**
 * The multi-tenant KV. Deterministic: its state is the data database, its only inputs the command
 * bytes and the entry index. Bad input is answered with an error reply ({@link KvErrorCode}); it
 * never throws for bad input, and an exception from it is a broken invariant.
 */
export class KvStateMachine implements StateMachine {
  readonly limits: KvLimits;

  /** Throws KvError InvalidConfig for a limit out of range (see {@link resolveKvLimits}). */
  constructor(limits?: Partial<KvLimits>) {
    this.limits = resolveKvLimits(limits);
  }

  /** Decodes and checks; the request is a {@link KvFailure} when it may not run as `kind`. */
  private parse(bytes: Uint8Array, kind: 'command' | 'query'): KvRequest | KvFailure {
    const r = decodeKvRequest(bytes);
    if ('code' in r) return r;
    const bad = checkKvRequest(r, this.limits);
    if (bad) return bad;
    const isCommand = isKvCommandOp(r.op);
    if (kind === 'command' && !isCommand) return failure(KvErrorCode.BadRequest, `${OP_NAMES[r.op]} is a query; send it as a read, not a proposal`);
    if (kind === 'query' && isCommand) return failure(KvErrorCode.BadRequest, `${OP_NAMES[r.op]} is a command; propose it, not a read`);
    return r;
  }

  validateCommand(command: Uint8Array): { code: string; message: string } | undefined {
    const r = this.parse(command, 'command');
    return 'code' in r ? { code: r.code, message: r.message } : undefined;
  }

  apply(txn: DataTxn, cmd: AppliedCommand): Uint8Array {
    const r = this.parse(cmd.command, 'command');
    if ('code' in r) return encodeKvFailure(r.code, r.message);
    switch (r.op) {
      case KvOp.Put:
        return this.write(txn, r.tenant, r.key, r.value, cmd.index, undefined);
      case KvOp.Cas:
        return this.write(txn, r.tenant, r.key, r.value, cmd.index, r.expectedVersion);
      case KvOp.Delete: {
        const k = checkedDataKey(r.tenant, r.key);
        const found = txn.get(k) !== undefined;
        if (found) txn.remove(k);
        return new Uint8Array([STATUS_OK, found ? 1 : 0]);
      }
      default:
        assert(false, `kv: query op ${r.op} passed the command check`);
    }
  }

  /** Put, or Cas when `expected` is set: the write happens only if the current version equals it. */
  private write(txn: DataTxn, tenant: string, key: Uint8Array, value: Uint8Array, index: LogIndex, expected: number | undefined): Uint8Array {
    const k = checkedDataKey(tenant, key);
    const old = txn.get(k);
    let current = 0;
    let createIndex: number = index;
    if (old !== undefined) {
      checkStored(old);
      const r = new ByteReader(old);
      current = r.f64();
      createIndex = r.f64();
    }
    const swapped = expected === undefined || expected === current;
    const version = swapped ? current + 1 : current;
    if (swapped) txn.put(k, storedValue(version, createIndex, index, value));
    const w = new ByteWriter(expected === undefined ? PUT_REPLY_BYTES : CAS_REPLY_BYTES);
    w.u8(STATUS_OK);
    if (expected !== undefined) w.u8(swapped ? 1 : 0);
    w.f64(version);
    return w.finish();
  }

  query(view: DataReader, request: Uint8Array): Uint8Array {
    const r = this.parse(request, 'query');
    if ('code' in r) return encodeKvFailure(r.code, r.message);
    switch (r.op) {
      case KvOp.Get:
        return get(view, r);
      case KvOp.Scan:
        return this.scan(view, r);
      default:
        assert(false, `kv: command op ${r.op} passed the query check`);
    }
  }

  private scan(view: DataReader, r: ScanRequest): Uint8Array {
    const lo = checkedDataKey(r.tenant, r.prefix);
    const hi = prefixEnd(lo);
    let start = lo;
    if (r.startAfter !== undefined) {
      // The smallest key after startAfter is startAfter + 0x00.
      const w = new ByteWriter(tenantPrefixBytes(r.tenant) + r.startAfter.length + 1);
      putDataKey(w, r.tenant, r.startAfter);
      w.u8(0);
      const after = w.finish();
      if (compareBytes(after, start) > 0) start = after;
    }
    const limit = Math.min(r.limit, this.limits.scanLimitMax);
    const w = new ByteWriter(SCAN_HEADER_BYTES + 256);
    w.u8(STATUS_OK);
    w.u8(0); // more, known at the end
    w.u32(0); // count, known at the end
    let count = 0;
    let payload = 0;
    let more = false;
    if (compareBytes(start, hi) < 0) {
      const skip = tenantPrefixBytes(r.tenant);
      // Copy each entry at once: a database may reuse the arrays it hands out on the next step.
      for (const { key, value } of view.range(start, hi, limit + 1)) {
        checkStored(value);
        assert(key.length > skip && compareBytes(key, start) >= 0 && compareBytes(key, hi) < 0, 'kv: range returned a key outside [start, end)');
        const keyBytes = key.length - skip;
        const valueBytes = value.length - STORED_HEADER_BYTES;
        // The first item always goes in, so paging makes progress even past a lowered limit.
        if (count === limit || (count > 0 && payload + keyBytes + valueBytes > this.limits.scanBytesMax)) {
          more = true;
          break;
        }
        w.u16(keyBytes, 'key length');
        w.bytes(key.subarray(skip));
        w.bytes(value.subarray(0, 8)); // version, already f64 LE
        w.u32(valueBytes, 'value length');
        w.bytes(value.subarray(STORED_HEADER_BYTES));
        count++;
        payload += keyBytes + valueBytes;
      }
    }
    w.u8At(1, more ? 1 : 0, 'more');
    w.u32At(2, count, 'count');
    return w.finish();
  }
}

function get(view: DataReader, r: GetRequest): Uint8Array {
  const stored = view.get(checkedDataKey(r.tenant, r.key));
  if (stored === undefined) return new Uint8Array([STATUS_OK, 0]);
  checkStored(stored);
  const valueBytes = stored.length - STORED_HEADER_BYTES;
  const w = new ByteWriter(2 + STORED_HEADER_BYTES + 4 + valueBytes);
  w.u8(STATUS_OK);
  w.u8(1); // found
  w.bytes(stored.subarray(0, STORED_HEADER_BYTES)); // version, createIndex, modIndex: f64 LE
  w.u32(valueBytes, 'value length');
  w.bytes(stored.subarray(STORED_HEADER_BYTES));
  return w.finish();
}
