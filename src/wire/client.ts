/**
 * The binary layouts of client work between the main thread (or the node that forwards it) and
 * the worker hosting the shard: a write ({@link ProposeFrame}), a read ({@link ReadFrame}) and the
 * answer to either ({@link ReplyFrame}). Commands, queries and reply bodies are opaque here (the
 * state machine encodes them, e.g. src/shards/kv/request.ts).
 *
 * Integer fields are unsigned LEB128 varints (src/wire/bytes.ts): forwarded frames cross the Iroh
 * binding on the main thread, where every byte costs, and request ids, client ids and sequences
 * are mostly small. Every frame starts with its reqId. The `*_FIXED_BYTES_MAX` constants are upper
 * bounds (every varint at its widest), for sizing records; {@link clientFrameBoundBytes} is what
 * limits compare, so whether a frame fits never depends on its request id.
 *
 * Decoding never trusts a length, and byte fields of a decoded frame are copies (inputs are often
 * views into ring memory). Malformed input is a CodecError `BadFrame`; asking to encode an invalid
 * value is a bug (AssertionError).
 */

import { ByteReader, ByteWriter, U32_MAX, U8_MAX, UVARINT_BYTES_MAX, isU32, utf8Length, uvarintBytes } from './bytes.js';
import { bad, bug } from './errors.js';

/**
 * Bytes of `frame`, an encoded propose, read or reply frame for `reqId`, had its reqId taken the
 * most room (8 bytes). Limits compare this, not `frame.length`, so a frame that fits a record for
 * one request id fits it for every other, and the largest that fits is the same for every caller.
 */
export function clientFrameBoundBytes(frame: Uint8Array, reqId: number): number {
  return frame.length - uvarintBytes(reqId) + UVARINT_BYTES_MAX;
}

// ------------------------------------------------------------------ propose

/**
 * A client write on its way to the shard's leader. `reqId` matches the reply on this connection;
 * `clientId` and `seq` identify the command for exactly-once application. All three are
 * non-negative safe integers; `command` is opaque to the codec.
 */
export interface ProposeFrame {
  readonly reqId: number;
  readonly clientId: number;
  readonly seq: number;
  readonly command: Uint8Array;
}

/** Most bytes of a propose frame besides its command: reqId, clientId and seq, 8 each at most. */
export const PROPOSE_FIXED_BYTES_MAX = 3 * UVARINT_BYTES_MAX;

/** Layout: `reqId v, clientId v, seq v, command (the rest)`, `v` a varint. AssertionError on bad fields. */
export function encodePropose(p: ProposeFrame): Uint8Array<ArrayBuffer> {
  const w = new ByteWriter(uvarintBytes(p.reqId) + uvarintBytes(p.clientId) + uvarintBytes(p.seq) + p.command.length);
  w.uvarint(p.reqId, 'reqId');
  w.uvarint(p.clientId, 'clientId');
  w.uvarint(p.seq, 'seq');
  w.bytes(p.command);
  return w.finish();
}

/** Decodes {@link encodePropose}; `command` is a copy. CodecError `BadFrame` when malformed. */
export function decodePropose(b: Uint8Array): ProposeFrame {
  const r = new ByteReader(b);
  return {
    reqId: r.uvarint('reqId'),
    clientId: r.uvarint('clientId'),
    seq: r.uvarint('seq'),
    command: r.copy(r.left),
  };
}

// ------------------------------------------------------------------ read

/** How fresh a read must be. */
export const ReadConsistency = {
  /** Confirmed with a quorum (ReadIndex): sees every write acknowledged before the read began. */
  Linearizable: 0,
  /** Served by a leader under a valid lease, without a quorum round; relies on bounded clock drift. */
  Lease: 1,
  /** Served from the local replica as it is: may miss recent writes. */
  Stale: 2,
} as const;
export type ReadConsistency = (typeof ReadConsistency)[keyof typeof ReadConsistency];

/** A client read. `reqId` matches the reply; `query` is opaque to the codec. */
export interface ReadFrame {
  readonly reqId: number;
  readonly consistency: ReadConsistency;
  readonly query: Uint8Array;
}

/** Most bytes of a read frame besides its query: reqId (8 at most) and consistency. */
export const READ_FIXED_BYTES_MAX = UVARINT_BYTES_MAX + 1;

/** Layout: `reqId v, consistency u8, query (the rest)`, `v` a varint. AssertionError on bad fields. */
export function encodeRead(r: ReadFrame): Uint8Array<ArrayBuffer> {
  if (r.consistency !== 0 && r.consistency !== 1 && r.consistency !== 2) bug(`unknown read consistency ${r.consistency as number}`);
  const w = new ByteWriter(uvarintBytes(r.reqId) + 1 + r.query.length);
  w.uvarint(r.reqId, 'reqId');
  w.u8(r.consistency);
  w.bytes(r.query);
  return w.finish();
}

/** Decodes {@link encodeRead}; `query` is a copy. CodecError `BadFrame` when malformed. */
export function decodeRead(b: Uint8Array): ReadFrame {
  const r = new ByteReader(b);
  const reqId = r.uvarint('reqId');
  if (r.left < 1) bad('read frame is truncated before its consistency');
  const consistency = r.u8();
  if (consistency > 2) bad(`unknown read consistency ${consistency}`);
  return { reqId, consistency: consistency as ReadConsistency, query: r.copy(r.left) };
}

// ------------------------------------------------------------------ reply

/** A successful answer; `body` is opaque to the codec. */
export interface ReplyOk {
  readonly reqId: number;
  readonly ok: true;
  readonly body: Uint8Array;
}

/**
 * A refused or failed request, as an operating error: a stable ASCII `code` (at most 255 chars,
 * e.g. a RaftErrorCode), a human `message`, and `leaderHint`, the node id of the leader when known
 * (0 = unknown), a u32.
 */
export interface ReplyError {
  readonly reqId: number;
  readonly ok: false;
  readonly code: string;
  readonly message: string;
  readonly leaderHint: number;
}

export type ReplyFrame = ReplyOk | ReplyError;

const STATUS_OK = 0;
const STATUS_ERROR = 1;
/** Most bytes of a success reply frame besides its body: reqId (8 at most), status u8. */
export const REPLY_FIXED_BYTES_MAX = UVARINT_BYTES_MAX + 1;
const CODE_MAX_CHARS = U8_MAX;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Layout, `v` a varint: `reqId v, status u8 (0 ok, 1 error)`; ok: `body (the rest)`; error:
 * `code length u8, code ASCII, leaderHint v (u32), message UTF-8 (the rest)`. A lone surrogate in
 * `message` is sent as U+FFFD. AssertionError on a non-ASCII or over-long code, or bad numeric
 * fields.
 */
export function encodeReply(r: ReplyFrame): Uint8Array<ArrayBuffer> {
  if (r.ok) {
    const w = new ByteWriter(uvarintBytes(r.reqId) + 1 + r.body.length);
    w.uvarint(r.reqId, 'reqId');
    w.u8(STATUS_OK);
    w.bytes(r.body);
    return w.finish();
  }
  const { code, message, leaderHint } = r;
  if (code.length > CODE_MAX_CHARS) bug(`error code of ${code.length} chars exceeds ${CODE_MAX_CHARS}`);
  if (!isU32(leaderHint)) bug(`leaderHint must be a u32, got ${leaderHint}`);
  const w = new ByteWriter(uvarintBytes(r.reqId) + 2 + code.length + uvarintBytes(leaderHint) + utf8Length(message));
  w.uvarint(r.reqId, 'reqId');
  w.u8(STATUS_ERROR);
  w.u8(code.length);
  w.ascii(code, 'error code');
  w.uvarint(leaderHint, 'leaderHint');
  w.utf8(message);
  return w.finish();
}

/** Decodes {@link encodeReply}; `body` is a copy. CodecError `BadFrame` when malformed or not UTF-8. */
export function decodeReply(b: Uint8Array): ReplyFrame {
  const r = new ByteReader(b);
  const reqId = r.uvarint('reqId');
  if (r.left < 1) bad('reply frame is truncated before its status');
  const status = r.u8();
  if (status === STATUS_OK) return { reqId, ok: true, body: r.copy(r.left) };
  if (status !== STATUS_ERROR) bad(`unknown reply status ${status}`);
  if (r.left < 1) bad('error reply is truncated');
  const codeLen = r.u8();
  // The code, then a leaderHint of a byte at least.
  if (r.left < codeLen + 1) bad('error reply is truncated');
  const code = r.latin1(codeLen);
  for (let i = 0; i < codeLen; i++) if (code.charCodeAt(i) > 0x7f) bad('error code is not ASCII');
  const leaderHint = r.uvarint('leaderHint');
  if (leaderHint > U32_MAX) bad(`leaderHint ${leaderHint} is not a u32`);
  let message: string;
  try {
    message = utf8Decoder.decode(r.rest());
  } catch {
    bad('error message is not valid UTF-8');
  }
  return { reqId, ok: false, code, message, leaderHint };
}
