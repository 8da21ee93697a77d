/**
 * The binary layouts of client work between the main thread (or the node that forwards it) and
 * the worker hosting the shard: a write ({@link ProposeFrame}), a read ({@link ReadFrame}) and the
 * answer to either ({@link ReplyFrame}). Commands, queries and reply bodies are opaque here (the
 * state machine encodes them, e.g. src/shards/kv/request.ts).
 *
 * Decoding never trusts a length, and byte fields of a decoded frame are copies (inputs are often
 * views into ring memory). Malformed input is a CodecError `BadFrame`; asking to encode an invalid
 * value is a bug (AssertionError).
 */

import { ByteReader, ByteWriter, U8_MAX, isU53, utf8Length } from './bytes.js';
import { bad, bug } from './errors.js';

/** A float64 field that must hold a non-negative safe integer; CodecError otherwise. */
function getU53(r: ByteReader, field: string): number {
  const v = r.f64();
  if (!isU53(v)) bad(`${field} is not a non-negative safe integer (${v})`);
  return v;
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

/** Bytes of a propose frame besides its command: reqId, clientId and seq. */
export const PROPOSE_FIXED_BYTES = 24;

/** Layout: `reqId f64, clientId f64, seq f64, command (the rest)`. AssertionError on bad fields. */
export function encodePropose(p: ProposeFrame): Uint8Array<ArrayBuffer> {
  const w = new ByteWriter(PROPOSE_FIXED_BYTES + p.command.length);
  w.u53(p.reqId, 'reqId');
  w.u53(p.clientId, 'clientId');
  w.u53(p.seq, 'seq');
  w.bytes(p.command);
  return w.finish();
}

/** Decodes {@link encodePropose}; `command` is a copy. CodecError `BadFrame` when malformed. */
export function decodePropose(b: Uint8Array): ProposeFrame {
  if (b.length < PROPOSE_FIXED_BYTES) bad(`propose frame of ${b.length} bytes is truncated`);
  const r = new ByteReader(b);
  return {
    reqId: getU53(r, 'reqId'),
    clientId: getU53(r, 'clientId'),
    seq: getU53(r, 'seq'),
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

/** Bytes of a read frame besides its query. */
export const READ_FIXED_BYTES = 9;

/** Layout: `reqId f64, consistency u8, query (the rest)`. AssertionError on bad fields. */
export function encodeRead(r: ReadFrame): Uint8Array<ArrayBuffer> {
  if (r.consistency !== 0 && r.consistency !== 1 && r.consistency !== 2) bug(`unknown read consistency ${r.consistency as number}`);
  const w = new ByteWriter(READ_FIXED_BYTES + r.query.length);
  w.u53(r.reqId, 'reqId');
  w.u8(r.consistency);
  w.bytes(r.query);
  return w.finish();
}

/** Decodes {@link encodeRead}; `query` is a copy. CodecError `BadFrame` when malformed. */
export function decodeRead(b: Uint8Array): ReadFrame {
  if (b.length < READ_FIXED_BYTES) bad(`read frame of ${b.length} bytes is truncated`);
  const r = new ByteReader(b);
  const reqId = getU53(r, 'reqId');
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
/** Bytes of a success reply frame besides its body: reqId f64, status u8. */
export const REPLY_FIXED_BYTES = 9;
const CODE_MAX_CHARS = U8_MAX;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Layout: `reqId f64, status u8 (0 ok, 1 error)`; ok: `body (the rest)`; error: `code length u8,
 * code ASCII, leaderHint u32, message UTF-8 (the rest)`. A lone surrogate in `message` is sent as
 * U+FFFD. AssertionError on a non-ASCII or over-long code, or bad numeric fields.
 */
export function encodeReply(r: ReplyFrame): Uint8Array<ArrayBuffer> {
  if (r.ok) {
    const w = new ByteWriter(REPLY_FIXED_BYTES + r.body.length);
    w.u53(r.reqId, 'reqId');
    w.u8(STATUS_OK);
    w.bytes(r.body);
    return w.finish();
  }
  const { code, message } = r;
  if (code.length > CODE_MAX_CHARS) bug(`error code of ${code.length} chars exceeds ${CODE_MAX_CHARS}`);
  const w = new ByteWriter(REPLY_FIXED_BYTES + 1 + code.length + 4 + utf8Length(message));
  w.u53(r.reqId, 'reqId');
  w.u8(STATUS_ERROR);
  w.u8(code.length);
  w.ascii(code, 'error code');
  w.u32(r.leaderHint, 'leaderHint');
  w.utf8(message);
  return w.finish();
}

/** Decodes {@link encodeReply}; `body` is a copy. CodecError `BadFrame` when malformed or not UTF-8. */
export function decodeReply(b: Uint8Array): ReplyFrame {
  const len = b.length;
  if (len < REPLY_FIXED_BYTES) bad(`reply frame of ${len} bytes is truncated`);
  const r = new ByteReader(b);
  const reqId = getU53(r, 'reqId');
  const status = r.u8();
  if (status === STATUS_OK) return { reqId, ok: true, body: r.copy(r.left) };
  if (status !== STATUS_ERROR) bad(`unknown reply status ${status}`);
  if (len < REPLY_FIXED_BYTES + 1) bad('error reply is truncated');
  const codeLen = r.u8();
  if (r.left < codeLen + 4) bad('error reply is truncated');
  const code = r.latin1(codeLen);
  for (let i = 0; i < codeLen; i++) if (code.charCodeAt(i) > 0x7f) bad('error code is not ASCII');
  const leaderHint = r.u32();
  let message: string;
  try {
    message = utf8Decoder.decode(r.rest());
  } catch {
    bad('error message is not valid UTF-8');
  }
  return { reqId, ok: false, code, message, leaderHint };
}
