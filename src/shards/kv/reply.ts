/**
 * The ops of the KV, its error codes, and the byte layout of its replies. Replies start with a
 * status byte: 1 is an error (code: u8 length + ASCII, then the message as UTF-8 up to the end);
 * 0 is success, followed by:
 *
 * - Put    version f64
 * - Delete deleted u8
 * - DeleteIf deleted u8 | version f64 (0 when deleted, else the current one: 0 = absent)
 * - Cas    swapped u8 | version f64 (the new version when swapped, else the current one)
 * - Get    found u8 | when found: version f64 | createIndex f64 | modIndex f64 | value
 * - Scan   more u8 | count u32 | count x (key | version f64 | value)
 * - Usage  keys f64 | bytes f64 (the tenant's keys in the shard, and their key + value bytes)
 *
 * (key: u16 length + bytes; value: u32 length + bytes; numbers little-endian.) The success
 * replies are written by the state machine (./machine.ts), which copies stored fields as they are.
 */
import type { LogIndex } from '../raft/index.js';
import { CodedError } from '../../errors.js';
import { ByteReader, ByteWriter, utf8Length } from '../../wire/index.js';

export const KvOp = {
  Put: 1,
  Delete: 2,
  Cas: 3,
  Get: 4,
  Scan: 5,
  /** Delete only if the key is at an expected version (a compare-and-delete). */
  DeleteIf: 6,
  /** A tenant's usage in one shard: keys and key + value bytes (a query; quotas sum it over shards). */
  Usage: 7,
} as const;
export type KvOp = (typeof KvOp)[keyof typeof KvOp];

/** Names of the ops, for messages. */
export const OP_NAMES: Readonly<Record<KvOp, string>> = { 1: 'Put', 2: 'Delete', 3: 'Cas', 4: 'Get', 5: 'Scan', 6: 'DeleteIf', 7: 'Usage' };

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
  /** Thrown by `resolveKvLimits` (./limits.ts): a limit is out of range. Never a reply. */
  InvalidConfig: 'InvalidConfig',
} as const;
export type KvErrorCode = (typeof KvErrorCode)[keyof typeof KvErrorCode];

/** A KV operating error thrown by the encoders, {@link decodeKvReply} and `resolveKvLimits` (./limits.ts). */
export class KvError extends CodedError<KvErrorCode> {
  override readonly name = 'KvError';
}

/** An error reply, and the result of a failed decode or check. */
export interface KvFailure {
  readonly ok: false;
  readonly code: KvErrorCode;
  readonly message: string;
}

export const failure = (code: KvErrorCode, message: string): KvFailure => ({ ok: false, code, message });

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
export interface DeleteIfReply {
  readonly ok: true;
  readonly op: typeof KvOp.DeleteIf;
  /** True when the key was at the expected version and is gone now. A mismatch is not an error. */
  readonly deleted: boolean;
  /** The key's current version when not deleted (0: absent); 0 when deleted. */
  readonly version: number;
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
export interface UsageReply {
  readonly ok: true;
  readonly op: typeof KvOp.Usage;
  /** Keys the tenant has in the shard. */
  readonly keys: number;
  /** Sum of those keys' key + value lengths, in bytes. */
  readonly bytes: number;
}
export interface KvReplies {
  [KvOp.Put]: PutReply;
  [KvOp.Delete]: DeleteReply;
  [KvOp.Cas]: CasReply;
  [KvOp.Get]: GetReply;
  [KvOp.Scan]: ScanReply;
  [KvOp.DeleteIf]: DeleteIfReply;
  [KvOp.Usage]: UsageReply;
}
export type KvReplyOf<O extends KvOp> = KvReplies[O] | KvFailure;
export type KvReply = KvReplyOf<KvOp>;

/** First byte of a success reply. */
export const STATUS_OK = 0;
/** First byte of an error reply. */
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
  } else if (op === KvOp.DeleteIf) {
    const deleted = flag(c);
    r = { ok: true, op, deleted, version: c.f64() };
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
  } else if (op === KvOp.Usage) {
    const keys = c.f64();
    r = { ok: true, op, keys, bytes: c.f64() };
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
