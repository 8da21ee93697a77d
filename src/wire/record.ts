/**
 * Records and frames: the envelope of every message between threads and between nodes.
 *
 * A record is a 12-byte header, `length u32 (payload bytes), kind u16, pad u16 = 0, shard u32`
 * (little-endian), then the payload, then zero padding to a multiple of 4 bytes. The
 * SharedArrayBuffer rings (src/workers/ring.ts) lay records out this way, and a wire frame
 * (src/io/transport/) is a run of records in the same layout, so records move between a socket
 * and a ring without being re-framed, and the router routes them by their header alone.
 */

import { U32_MAX, isU32, pooledBytes, pooledCopy } from './bytes.js';
import { bad, bug } from './errors.js';

/** Kind of a ring / wire record (a u16 in the record header); names who encodes the payload. */
export const RecordKind = {
  /** Replica -> replica: an encoded raft message (`encodeMessage`, src/wire/message.ts). */
  RaftMessage: 1,
  /** Main -> worker: a client write (`encodePropose`, src/wire/client.ts). */
  ClientPropose: 2,
  /** Main -> worker: a client read (`encodeRead`). */
  ClientRead: 3,
  /** Worker -> main: the answer to a propose or read (`encodeReply`). */
  ClientReply: 4,
  /** Worker -> main: a shard event; msgpack, not a layout of this folder. */
  ShardEvent: 5,
  /** Control traffic; msgpack, not a layout of this folder. */
  Control: 6,
  /**
   * Node -> node, once per tick: "this node is alive, and these of its workers run", and about
   * once a second its client load (`encodeLiveness`, src/wire/liveness.ts); quiet groups rely on it.
   */
  NodeHeartbeat: 7,
  /** Worker -> main: a raft core wants a follower to get a snapshot (`encodeSnapshotRequest`, src/wire/snapshot.ts). */
  SnapshotRequest: 8,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const KNOWN_KIND = new Uint8Array(0x10000);
for (const k of Object.values(RecordKind)) KNOWN_KIND[k] = 1;

/** True when `kind` is one of {@link RecordKind}. */
export function isRecordKind(kind: number): kind is RecordKind {
  return Number.isInteger(kind) && kind >= 0 && kind <= 0xffff && KNOWN_KIND[kind] === 1;
}

// ------------------------------------------------------------------ the record header

/** Size of a record header, the same in a ring and on the wire: len u32, kind u16, pad u16, shard u32. */
export const RECORD_HEADER_BYTES = 12;

const R_LENGTH = 0;
const R_KIND = 4;
const R_PAD = 6;
const R_SHARD = 8;

/** Zero bytes after a payload of `payloadBytes`, so that the next record starts 4-byte aligned. */
export const recordPadBytes = (payloadBytes: number): number => (4 - (payloadBytes & 3)) & 3;

/** Bytes one record with a payload of `payloadBytes` takes in a ring or a frame: header, payload, padding. */
export const recordBytes = (payloadBytes: number): number => RECORD_HEADER_BYTES + payloadBytes + recordPadBytes(payloadBytes);

/**
 * Writes a record header at byte `at` of `view` (pad field included). Checks nothing: `length`
 * and `shard` must be u32s and `kind` a u16, which the caller has checked (its own error).
 */
export function writeRecordHeader(view: DataView, at: number, length: number, kind: number, shard: number): void {
  view.setUint32(at + R_LENGTH, length, true);
  view.setUint16(at + R_KIND, kind, true);
  view.setUint16(at + R_PAD, 0, true);
  view.setUint32(at + R_SHARD, shard, true);
}

/** Payload bytes of the record whose header starts at byte `at` of `view`. */
export const recordLengthAt = (view: DataView, at: number): number => view.getUint32(at + R_LENGTH, true);

/** Kind (not checked) of the record whose header starts at byte `at` of `view`. */
export const recordKindAt = (view: DataView, at: number): number => view.getUint16(at + R_KIND, true);

/** Shard of the record whose header starts at byte `at` of `view`. */
export const recordShardAt = (view: DataView, at: number): number => view.getUint32(at + R_SHARD, true);

const recordPadAt = (view: DataView, at: number): number => view.getUint16(at + R_PAD, true);

// ------------------------------------------------------------------ frames

/** One record to put in a frame: `kind` a {@link RecordKind}, `shard` a u32 shard id. */
export interface FrameRecord {
  readonly kind: number;
  readonly shard: number;
  readonly payload: Uint8Array;
}

/** One record taken from a frame; `payload` is a copy. */
export interface DecodedRecord {
  readonly kind: RecordKind;
  readonly shard: number;
  readonly payload: Uint8Array<ArrayBuffer>;
}

/**
 * Concatenates records as the ring lays them out: `len u32 (payload bytes), kind u16, pad u16 = 0,
 * shard u32, payload, zero padding to a multiple of 4`. AssertionError for an unknown kind or a
 * shard that is not a u32.
 */
export function encodeFrame(records: readonly FrameRecord[]): Uint8Array<ArrayBuffer> {
  const n = records.length;
  let size = 0;
  for (let i = 0; i < n; i++) size += recordBytes(records[i]!.payload.length);
  const bytes = pooledBytes(size);
  const view = new DataView(bytes.buffer, bytes.byteOffset, size);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    if (!isRecordKind(r.kind)) bug(`unknown record kind ${r.kind}`);
    const len = r.payload.length;
    if (len > U32_MAX) bug(`record payload of ${len} bytes exceeds u32`);
    if (!isU32(r.shard)) bug(`shard must be a u32, got ${r.shard}`);
    writeRecordHeader(view, off, len, r.kind, r.shard);
    bytes.set(r.payload, off + RECORD_HEADER_BYTES);
    off += recordBytes(len);
  }
  return bytes;
}

/**
 * Splits a frame into its records (payloads copied). `maxRecordBytes` caps one record's payload,
 * in bytes. CodecError `BadFrame` on a truncated header or payload, a payload beyond
 * `maxRecordBytes`, a non-zero pad field or padding byte, or an unknown kind.
 */
export function decodeFrame(b: Uint8Array, maxRecordBytes: number): DecodedRecord[] {
  if (!(Number.isSafeInteger(maxRecordBytes) && maxRecordBytes >= 0)) bug(`maxRecordBytes must be a non-negative integer, got ${maxRecordBytes}`);
  const len = b.length;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: DecodedRecord[] = [];
  let off = 0;
  while (off < len) {
    if (len - off < RECORD_HEADER_BYTES) bad(`record header truncated at byte ${off}`);
    const plen = recordLengthAt(view, off);
    const kind = recordKindAt(view, off);
    if (plen > maxRecordBytes) bad(`record of ${plen} bytes exceeds ${maxRecordBytes}`);
    if (KNOWN_KIND[kind] !== 1) bad(`unknown record kind ${kind}`);
    if (recordPadAt(view, off) !== 0) bad('record pad field is not zero');
    const shard = recordShardAt(view, off);
    const start = off + RECORD_HEADER_BYTES;
    const end = start + plen;
    const next = end + recordPadBytes(plen);
    if (next > len) bad(`record of ${plen} bytes at byte ${off} exceeds the ${len}-byte frame`);
    for (let i = end; i < next; i++) if (b[i] !== 0) bad('record padding is not zero');
    out.push({ kind: kind as RecordKind, shard, payload: pooledCopy(b.subarray(start, end)) });
    off = next;
  }
  return out;
}
