/**
 * Snapshot transfer: the SnapshotRequest record a worker hands the router when its raft core wants
 * a follower to get a snapshot, and the messages of a snapshot stream between two nodes (ALPN
 * `iroh-raft-snap/0`, one connection per transfer, never the raft message path).
 *
 * A stream, the sender (dialer) first; every message is `length u32, body` and the body's first
 * byte says what it is:
 *
 *   sender:    Offer
 *   receiver:  Answer (Accept, or Busy / Stale / Refused and the stream ends)
 *   sender:    Chunk, Chunk, ..., End
 *   receiver:  Answer (Installed, or why not)
 *
 * A chunk carries a piece of the shard's data dump (the raw bytes are a sequence of key/value
 * pairs, cut at pair boundaries), deflated, with the crc32 of its raw bytes; End carries the count
 * of chunks, the raw byte total and the crc32 over all raw bytes, so the receiver installs nothing
 * until every chunk and the whole agree. Malformed input is a CodecError `BadFrame`.
 */

import { ByteReader, ByteWriter, U16_MAX, isU32, isU53 } from './bytes.js';
import { bad, bug } from './errors.js';

/** ALPN of snapshot streams. */
export const SNAPSHOT_ALPN = 'iroh-raft-snap/0';

/** Largest snapshot stream message, length prefix excluded: a chunk of up to 4 MiB raw that deflate could not shrink, plus headers. */
export const SNAPSHOT_MESSAGE_BYTES_MAX = (4 << 20) + 64 * 1024;

// ------------------------------------------------------------------ the SnapshotRequest record

/** A raft core's wish that `to` get a snapshot of the shard (at `index` or later), from leader `from` of `term`. */
export interface SnapshotRequest {
  readonly from: number;
  readonly to: number;
  readonly term: number;
  readonly index: number;
}

const REQUEST_BYTES = 4 + 4 + 8 + 8;

/** Layout: `from u32, to u32, term f64, index f64`. */
export function encodeSnapshotRequest(r: SnapshotRequest): Uint8Array<ArrayBuffer> {
  const w = new ByteWriter(REQUEST_BYTES);
  w.u32(r.from, 'from');
  w.u32(r.to, 'to');
  w.u53(r.term, 'term');
  w.u53(r.index, 'index');
  return w.finish();
}

/** Decodes {@link encodeSnapshotRequest}; CodecError `BadFrame` for another length or bad numbers. */
export function decodeSnapshotRequest(b: Uint8Array): SnapshotRequest {
  if (b.length !== REQUEST_BYTES) bad(`snapshot request of ${b.length} bytes, expected ${REQUEST_BYTES}`);
  const r = new ByteReader(b);
  const from = r.u32();
  const to = r.u32();
  const term = u53(r.f64(), 'term');
  const index = u53(r.f64(), 'index');
  return { from, to, term, index };
}

// ------------------------------------------------------------------ stream messages

export const SnapMessageType = { Offer: 1, Answer: 2, Chunk: 3, End: 4 } as const;
export type SnapMessageType = (typeof SnapMessageType)[keyof typeof SnapMessageType];

/**
 * The receiver's answers. To an Offer: Accept (send the chunks), Busy (too many transfers now:
 * retry later), Stale (it already holds this index or later), Refused (no such shard here, or
 * the offer does not fit it). To End: Installed (handed to the shard's raft core), or the reason
 * the transfer failed (ChecksumMismatch, BadStream).
 */
export const SnapAnswer = { Accept: 0, Busy: 1, Stale: 2, Refused: 3, Installed: 4, ChecksumMismatch: 5, BadStream: 6 } as const;
export type SnapAnswer = (typeof SnapAnswer)[keyof typeof SnapAnswer];
const ANSWER_NAMES = new Map<number, string>(Object.entries(SnapAnswer).map(([k, v]) => [v, k]));

/** Name of an answer code, for logs and errors. */
export const snapAnswerName = (a: number): string => ANSWER_NAMES.get(a) ?? `unknown(${a})`;

export interface SnapOffer {
  readonly type: typeof SnapMessageType.Offer;
  readonly shard: number;
  /** The raft message header: the leader that sent it, the follower, the leader's term. */
  readonly from: number;
  readonly to: number;
  readonly term: number;
  /** The snapshot: the last index it covers, that entry's term, the membership as of it. */
  readonly index: number;
  readonly indexTerm: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
}

export interface SnapAnswerMessage {
  readonly type: typeof SnapMessageType.Answer;
  readonly answer: SnapAnswer;
  /** With Busy: how long the sender should wait before it offers again (ms). */
  readonly retryAfterMs: number;
}

export interface SnapChunk {
  readonly type: typeof SnapMessageType.Chunk;
  /** Position from 0; chunks come in order. */
  readonly index: number;
  /** Raw (inflated) bytes of the chunk. */
  readonly rawLength: number;
  /** crc32 of the raw bytes. */
  readonly crc32: number;
  /** Raw deflate stream of the raw bytes. */
  readonly compressed: Uint8Array;
}

export interface SnapEnd {
  readonly type: typeof SnapMessageType.End;
  readonly chunks: number;
  readonly rawBytes: number;
  /** crc32 over the raw bytes of all chunks, in order. */
  readonly crc32: number;
}

export type SnapMessage = SnapOffer | SnapAnswerMessage | SnapChunk | SnapEnd;

/** Type u8, index u32, raw length u32, crc32 u32. */
const CHUNK_HEADER_BYTES = 13;
const MAGIC = 0x4e535249; // "IRSN" little-endian
const VERSION = 1;

/** Encodes a stream message body (without its length prefix). AssertionError for invalid values. */
export function encodeSnapMessage(m: SnapMessage): Uint8Array<ArrayBuffer> {
  switch (m.type) {
    case SnapMessageType.Offer: {
      if (m.voters.length > U16_MAX || m.learners.length > U16_MAX) bug('snapshot offer: membership too large');
      const w = new ByteWriter(64 + 4 * (m.voters.length + m.learners.length));
      w.u8(m.type);
      w.u32(MAGIC);
      w.u8(VERSION);
      w.u32(m.shard, 'shard');
      w.u32(m.from, 'from');
      w.u32(m.to, 'to');
      w.u53(m.term, 'term');
      w.u53(m.index, 'index');
      w.u53(m.indexTerm, 'index term');
      w.u16(m.voters.length);
      for (const v of m.voters) w.u32(v, 'voter');
      w.u16(m.learners.length);
      for (const v of m.learners) w.u32(v, 'learner');
      return w.finish();
    }
    case SnapMessageType.Answer: {
      const w = new ByteWriter(6);
      w.u8(m.type);
      w.u8(m.answer);
      w.u32(m.retryAfterMs, 'retryAfterMs');
      return w.finish();
    }
    case SnapMessageType.Chunk: {
      const w = new ByteWriter(CHUNK_HEADER_BYTES + m.compressed.length);
      w.u8(m.type);
      w.u32(m.index, 'chunk index');
      w.u32(m.rawLength, 'raw length');
      w.u32(m.crc32, 'crc32');
      w.bytes(m.compressed);
      return w.finish();
    }
    case SnapMessageType.End: {
      const w = new ByteWriter(17);
      w.u8(m.type);
      w.u32(m.chunks, 'chunks');
      w.u53(m.rawBytes, 'raw bytes');
      w.u32(m.crc32, 'crc32');
      return w.finish();
    }
  }
}

/** Decodes a stream message body; CodecError `BadFrame` for anything malformed. */
export function decodeSnapMessage(b: Uint8Array): SnapMessage {
  if (b.length === 0) bad('empty snapshot stream message');
  if (b.length > SNAPSHOT_MESSAGE_BYTES_MAX) bad(`snapshot stream message of ${b.length} bytes exceeds ${SNAPSHOT_MESSAGE_BYTES_MAX}`);
  const r = new ByteReader(b);
  const type = r.u8();
  switch (type) {
    case SnapMessageType.Offer: {
      if (r.u32() !== MAGIC) bad('snapshot offer: bad magic');
      const version = r.u8();
      if (version !== VERSION) bad(`snapshot offer: version ${version}, this node speaks ${VERSION}`);
      const shard = r.u32();
      const from = r.u32();
      const to = r.u32();
      const term = u53(r.f64(), 'term');
      const index = u53(r.f64(), 'index');
      const indexTerm = u53(r.f64(), 'index term');
      const voters = ids(r);
      const learners = ids(r);
      if (!r.done) bad('snapshot offer: trailing bytes');
      return { type, shard, from, to, term, index, indexTerm, voters, learners };
    }
    case SnapMessageType.Answer: {
      const answer = r.u8();
      if (!ANSWER_NAMES.has(answer)) bad(`snapshot answer ${answer} is unknown`);
      const retryAfterMs = r.u32();
      if (!r.done) bad('snapshot answer: trailing bytes');
      return { type, answer: answer as SnapAnswer, retryAfterMs };
    }
    case SnapMessageType.Chunk: {
      if (b.length < CHUNK_HEADER_BYTES + 1) bad(`snapshot chunk of ${b.length} bytes is truncated`);
      const index = r.u32();
      const rawLength = r.u32();
      const crc32 = r.u32();
      if (rawLength === 0) bad('snapshot chunk of 0 raw bytes');
      return { type, index, rawLength, crc32, compressed: r.rest() };
    }
    case SnapMessageType.End: {
      const chunks = r.u32();
      const rawBytes = u53(r.f64(), 'raw bytes');
      const crc32 = r.u32();
      if (!r.done) bad('snapshot end: trailing bytes');
      return { type, chunks, rawBytes, crc32 };
    }
    default:
      return bad(`snapshot stream message type ${type} is unknown`);
  }
}

function ids(r: ByteReader): number[] {
  const n = r.u16();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = r.u32();
    if (id === 0 || !isU32(id)) bad('snapshot offer: node id 0');
    out.push(id);
  }
  return out;
}

function u53(v: number, field: string): number {
  if (!isU53(v)) bad(`${field} ${v} is not a non-negative safe integer`);
  return v;
}
