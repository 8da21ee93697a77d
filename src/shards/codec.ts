/**
 * The one compact binary layout for the hot messages: raft messages between replicas and client
 * requests/replies between the main thread and the shard workers. The same bytes travel through
 * the SharedArrayBuffer rings (src/workers/ring.ts) and over the wire, so a message is encoded once
 * and never re-encoded on the way. Cold, rarely sent payloads (shard events, control) stay msgpack.
 *
 * Why this shape:
 * - Everything is little-endian, the byte order of every host we run on, so DataView reads are
 *   straight loads.
 * - A raft message starts with a fixed 64-byte header (type, flags, from, to, the scalar fields,
 *   entry count). The router reads `to` / `type` at fixed offsets without decoding the body.
 * - Terms and indexes are stored as float64: a JS number holds them exactly up to 2^53 - 1 and the
 *   codec never needs BigInt. Decode accepts only non-negative safe integers, so a corrupt field
 *   becomes an error, not a NaN that poisons the log.
 * - Entry indexes are implicit (`message.index + 1 + i`): entries of one message are contiguous.
 * - A wire frame is a run of records with the ring's 12-byte record header, so records move
 *   between a socket and a ring without being re-framed.
 * - Decoding never trusts a length: every count is checked against the bytes left before it is
 *   used, and trailing bytes are refused. Decoded byte fields are copies, because inputs are often
 *   views into ring memory that the producer reuses as soon as the read returns.
 *
 * Two kinds of failure: malformed input is a {@link CodecError} (`BadFrame`), a value for the
 * peer to report; asking to encode an invalid value is a bug and throws an {@link AssertionError}.
 */

import { CodedError } from '../errors.js';
import { AssertionError } from './raft/errors.js';
import type { Entry, EntryType, LogIndex, Message, MessageType, NodeId, Snapshot, Term } from './raft/types.js';

// ------------------------------------------------------------------ record kinds and errors

/** Kind of a ring / wire record (a u16 in the record header); names who encodes the payload. */
export const RecordKind = {
  /** Replica -> replica: an encoded raft {@link Message} ({@link encodeMessage}). */
  RaftMessage: 1,
  /** Main -> worker: a client write ({@link encodePropose}). */
  ClientPropose: 2,
  /** Main -> worker: a client read ({@link encodeRead}). */
  ClientRead: 3,
  /** Worker -> main: the answer to a propose or read ({@link encodeReply}). */
  ClientReply: 4,
  /** Worker -> main: a shard event; msgpack, not encoded here. */
  ShardEvent: 5,
  /** Control traffic; msgpack, not encoded here. */
  Control: 6,
  /**
   * Node -> node, once per tick: "this node is alive, and these of its workers run"
   * ({@link encodeLiveness}); quiet groups rely on it.
   */
  NodeHeartbeat: 7,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const KNOWN_KIND = new Uint8Array(0x10000);
for (const k of Object.values(RecordKind)) KNOWN_KIND[k] = 1;

/** True when `kind` is one of {@link RecordKind}. */
export function isRecordKind(kind: number): kind is RecordKind {
  return Number.isInteger(kind) && kind >= 0 && kind <= 0xffff && KNOWN_KIND[kind] === 1;
}

/**
 * Malformed input: truncated, oversized, trailing bytes, out-of-range fields, invalid UTF-8.
 * Always code `BadFrame`; the peer that sent it is broken or hostile, drop the frame (or the
 * connection) and report it.
 */
export class CodecError extends CodedError<'BadFrame'> {
  override readonly name = 'CodecError';
  constructor(message: string) {
    super('BadFrame', message);
  }
}

function bad(message: string): never {
  throw new CodecError(message);
}

function bug(message: string): never {
  throw new AssertionError(`codec: ${message}`);
}

// ------------------------------------------------------------------ field helpers

const U32_MAX = 0xffffffff;

const viewOf = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Writes a non-negative safe integer as float64; `+ 0` turns -0 into the one canonical zero. */
function putU53(view: DataView, off: number, v: number, field: string): void {
  if (!(Number.isSafeInteger(v) && v >= 0)) bug(`${field} must be a non-negative safe integer, got ${v}`);
  view.setFloat64(off, v + 0, true);
}

function putU32(view: DataView, off: number, v: number, field: string): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= U32_MAX)) bug(`${field} must be a u32, got ${v}`);
  view.setUint32(off, v, true);
}

/** Reads a float64 that must be a non-negative safe integer (and not -0: one encoding per value). */
function getU53(view: DataView, off: number, field: string): number {
  const v = view.getFloat64(off, true);
  if (!(Number.isSafeInteger(v) && v >= 0) || (v === 0 && view.getUint8(off + 7) !== 0)) {
    bad(`${field} is not a non-negative safe integer (${v})`);
  }
  return v;
}

// ------------------------------------------------------------------ raft messages

/** Size of the fixed message header; {@link peekMessageTo} and friends read only this. */
export const MESSAGE_HEADER_BYTES = 64;

const M_TYPE = 0;
const M_FLAGS = 1;
const M_RESERVED = 2;
const M_FROM = 4;
const M_TO = 8;
const M_TERM = 12;
const M_LOG_TERM = 20;
const M_INDEX = 28;
const M_COMMIT = 36;
const M_REJECT_HINT = 44;
const M_CONTEXT = 52;
const M_ENTRY_COUNT = 60;

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_QUIESCE = 4;
const FLAG_COMMIT_ONLY = 8;
const FLAG_NOT_MEMBER = 16;

/** term f64, type u8, data length u32. */
const ENTRY_FIXED_BYTES = 13;
/** index f64, term f64, voter count u32, learner count u32, data length u32. */
const SNAPSHOT_FIXED_BYTES = 28;

/** Only messages that travel: 1 (App) .. 12 (ReadIndexResp); Hup (0) is local. */
const MESSAGE_TYPE_MIN = 1;
const MESSAGE_TYPE_MAX = 12;

/**
 * Encodes a raft message. Layout (little-endian), fixed 64-byte header first:
 * `type u8, flags u8 (bit0 reject, bit1 snapshot, bit2 quiesce, bit3 commit only, bit4 not member), reserved u16 = 0, from u32, to u32,
 * term f64, logTerm f64, index f64, commit f64, rejectHint f64, context f64, entry count u32`;
 * then per entry `term f64, type u8, data length u32, data` (its index is `index + 1 + i`);
 * then, with the snapshot flag, `index f64, term f64, voter count u32, voters u32...,
 * learner count u32, learners u32..., data length u32, data`.
 *
 * Throws AssertionError (a bug, not bad input) for a local-only type, ids that are not u32,
 * numeric fields that are not non-negative safe integers, or entries whose indexes do not follow
 * `index` contiguously.
 */
export function encodeMessage(m: Message): Uint8Array<ArrayBuffer> {
  if (!(Number.isInteger(m.type) && m.type >= MESSAGE_TYPE_MIN && m.type <= MESSAGE_TYPE_MAX)) {
    bug(`message type ${m.type} cannot be sent`);
  }
  const entries = m.entries;
  const n = entries.length;
  let size = MESSAGE_HEADER_BYTES + n * ENTRY_FIXED_BYTES;
  for (let i = 0; i < n; i++) size += entries[i]!.data.length;
  const snap = m.snapshot;
  if (snap !== undefined) {
    const cs = snap.metadata.confState;
    size += SNAPSHOT_FIXED_BYTES + 4 * (cs.voters.length + cs.learners.length) + snap.data.length;
  }

  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint8(M_TYPE, m.type);
  view.setUint8(M_FLAGS, (m.reject ? FLAG_REJECT : 0) | (snap !== undefined ? FLAG_SNAPSHOT : 0) | (m.quiesce === true ? FLAG_QUIESCE : 0) | (m.commitOnly === true ? FLAG_COMMIT_ONLY : 0) | (m.notMember === true ? FLAG_NOT_MEMBER : 0));
  // M_RESERVED stays 0.
  putU32(view, M_FROM, m.from, 'from');
  putU32(view, M_TO, m.to, 'to');
  putU53(view, M_TERM, m.term, 'term');
  putU53(view, M_LOG_TERM, m.logTerm, 'logTerm');
  putU53(view, M_INDEX, m.index, 'index');
  putU53(view, M_COMMIT, m.commit, 'commit');
  putU53(view, M_REJECT_HINT, m.rejectHint, 'rejectHint');
  putU53(view, M_CONTEXT, m.context, 'context');
  view.setUint32(M_ENTRY_COUNT, n, true);

  let off = MESSAGE_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    if (e.index !== m.index + 1 + i || !Number.isSafeInteger(e.index)) {
      bug(`entry ${i} has index ${e.index}, expected ${m.index + 1 + i} (entries follow message.index)`);
    }
    if (e.type !== 0 && e.type !== 1) bug(`entry ${i} has unknown type ${e.type as number}`);
    const len = e.data.length;
    if (len > U32_MAX) bug(`entry ${i} data of ${len} bytes exceeds u32`);
    putU53(view, off, e.term, 'entry term');
    view.setUint8(off + 8, e.type);
    view.setUint32(off + 9, len, true);
    bytes.set(e.data, off + ENTRY_FIXED_BYTES);
    off += ENTRY_FIXED_BYTES + len;
  }

  if (snap !== undefined) {
    const { index, term, confState } = snap.metadata;
    putU53(view, off, index, 'snapshot index');
    putU53(view, off + 8, term, 'snapshot term');
    off += 16;
    off = putIds(view, off, confState.voters, 'voter');
    off = putIds(view, off, confState.learners, 'learner');
    const len = snap.data.length;
    if (len > U32_MAX) bug(`snapshot data of ${len} bytes exceeds u32`);
    view.setUint32(off, len, true);
    bytes.set(snap.data, off + 4);
    off += 4 + len;
  }
  if (off !== size) bug(`message size ${off} != computed ${size}`);
  return bytes;
}

function putIds(view: DataView, off: number, ids: readonly NodeId[], field: string): number {
  const n = ids.length;
  view.setUint32(off, n, true);
  off += 4;
  for (let i = 0; i < n; i++, off += 4) putU32(view, off, ids[i]!, field);
  return off;
}

function getIds(view: DataView, off: number, n: number): NodeId[] {
  const ids: NodeId[] = [];
  for (let i = 0; i < n; i++, off += 4) ids.push(view.getUint32(off, true) as NodeId);
  return ids;
}

function checkHeader(b: Uint8Array): void {
  if (b.length < MESSAGE_HEADER_BYTES) bad(`raft message of ${b.length} bytes is shorter than its ${MESSAGE_HEADER_BYTES}-byte header`);
}

function getMessageType(b: Uint8Array): MessageType {
  const t = b[M_TYPE]!;
  if (t < MESSAGE_TYPE_MIN || t > MESSAGE_TYPE_MAX) bad(`unknown raft message type ${t}`);
  return t as MessageType;
}

/**
 * Decodes an {@link encodeMessage} encoding. `b` may be a view (e.g. into ring memory); entry and
 * snapshot data are copies. Throws CodecError `BadFrame` for anything malformed, including
 * trailing bytes.
 */
export function decodeMessage(b: Uint8Array): Message {
  checkHeader(b);
  const len = b.length;
  const view = viewOf(b);
  const type = getMessageType(b);
  const flags = view.getUint8(M_FLAGS);
  if ((flags & ~(FLAG_REJECT | FLAG_SNAPSHOT | FLAG_QUIESCE | FLAG_COMMIT_ONLY | FLAG_NOT_MEMBER)) !== 0) bad(`unknown message flags 0x${flags.toString(16)}`);
  if (view.getUint16(M_RESERVED, true) !== 0) bad('reserved header bytes are not zero');
  const from = view.getUint32(M_FROM, true) as NodeId;
  const to = view.getUint32(M_TO, true) as NodeId;
  const term = getU53(view, M_TERM, 'term') as Term;
  const logTerm = getU53(view, M_LOG_TERM, 'logTerm') as Term;
  const index = getU53(view, M_INDEX, 'index') as LogIndex;
  const commit = getU53(view, M_COMMIT, 'commit') as LogIndex;
  const rejectHint = getU53(view, M_REJECT_HINT, 'rejectHint') as LogIndex;
  const context = getU53(view, M_CONTEXT, 'context');
  const count = view.getUint32(M_ENTRY_COUNT, true);
  if (index + count > Number.MAX_SAFE_INTEGER) bad(`entry indexes beyond 2^53 - 1 (index ${index}, ${count} entries)`);

  let off = MESSAGE_HEADER_BYTES;
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    // Checks room for all remaining fixed parts, so a huge count fails at once.
    if ((count - i) * ENTRY_FIXED_BYTES > len - off) bad(`entry count ${count} exceeds the ${len}-byte message`);
    const eterm = getU53(view, off, 'entry term') as Term;
    const etype = view.getUint8(off + 8);
    if (etype > 1) bad(`unknown entry type ${etype}`);
    const dlen = view.getUint32(off + 9, true);
    off += ENTRY_FIXED_BYTES;
    if (dlen > len - off) bad(`entry data of ${dlen} bytes exceeds the message`);
    entries.push({ term: eterm, index: (index + 1 + i) as LogIndex, type: etype as EntryType, data: b.slice(off, off + dlen) });
    off += dlen;
  }

  let snapshot: Snapshot | undefined;
  if ((flags & FLAG_SNAPSHOT) !== 0) {
    if (len - off < SNAPSHOT_FIXED_BYTES) bad('snapshot header is truncated');
    const sIndex = getU53(view, off, 'snapshot index') as LogIndex;
    const sTerm = getU53(view, off + 8, 'snapshot term') as Term;
    const nv = view.getUint32(off + 16, true);
    off += 20;
    // After the voters: learner count u32 and data length u32.
    if (nv > (len - off - 8) / 4) bad(`voter count ${nv} exceeds the message`);
    const voters = getIds(view, off, nv);
    off += 4 * nv;
    const nl = view.getUint32(off, true);
    off += 4;
    if (nl > (len - off - 4) / 4) bad(`learner count ${nl} exceeds the message`);
    const learners = getIds(view, off, nl);
    off += 4 * nl;
    const dlen = view.getUint32(off, true);
    off += 4;
    if (dlen > len - off) bad(`snapshot data of ${dlen} bytes exceeds the message`);
    snapshot = { metadata: { index: sIndex, term: sTerm, confState: { voters, learners } }, data: b.slice(off, off + dlen) };
    off += dlen;
  }
  if (off !== len) bad(`${len - off} trailing bytes after the raft message`);

  const base: Message = { type, from, to, term, logTerm, index, entries, commit, reject: (flags & FLAG_REJECT) !== 0, rejectHint, context };
  let m = (flags & FLAG_QUIESCE) !== 0 ? { ...base, quiesce: true } : base;
  if ((flags & FLAG_COMMIT_ONLY) !== 0) m = { ...m, commitOnly: true };
  if ((flags & FLAG_NOT_MEMBER) !== 0) m = { ...m, notMember: true };
  return snapshot === undefined ? m : { ...m, snapshot };
}

/** The message's type, read from the fixed header only. CodecError when shorter or unknown. */
export function peekMessageType(b: Uint8Array): MessageType {
  checkHeader(b);
  return getMessageType(b);
}

/** The message's sender, read from the fixed header only. CodecError when shorter than 64 bytes. */
export function peekMessageFrom(b: Uint8Array): NodeId {
  checkHeader(b);
  return viewOf(b).getUint32(M_FROM, true) as NodeId;
}

/** The message's recipient, read from the fixed header only. CodecError when shorter than 64 bytes. */
export function peekMessageTo(b: Uint8Array): NodeId {
  checkHeader(b);
  return viewOf(b).getUint32(M_TO, true) as NodeId;
}

// ------------------------------------------------------------------ client frames

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

const PROPOSE_FIXED_BYTES = 24;

/** Layout: `reqId f64, clientId f64, seq f64, command (the rest)`. AssertionError on bad fields. */
export function encodePropose(p: ProposeFrame): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(PROPOSE_FIXED_BYTES + p.command.length);
  const view = new DataView(bytes.buffer);
  putU53(view, 0, p.reqId, 'reqId');
  putU53(view, 8, p.clientId, 'clientId');
  putU53(view, 16, p.seq, 'seq');
  bytes.set(p.command, PROPOSE_FIXED_BYTES);
  return bytes;
}

/** Decodes {@link encodePropose}; `command` is a copy. CodecError `BadFrame` when malformed. */
export function decodePropose(b: Uint8Array): ProposeFrame {
  if (b.length < PROPOSE_FIXED_BYTES) bad(`propose frame of ${b.length} bytes is truncated`);
  const view = viewOf(b);
  return {
    reqId: getU53(view, 0, 'reqId'),
    clientId: getU53(view, 8, 'clientId'),
    seq: getU53(view, 16, 'seq'),
    command: b.slice(PROPOSE_FIXED_BYTES),
  };
}

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

const READ_FIXED_BYTES = 9;

/** Layout: `reqId f64, consistency u8, query (the rest)`. AssertionError on bad fields. */
export function encodeRead(r: ReadFrame): Uint8Array<ArrayBuffer> {
  if (r.consistency !== 0 && r.consistency !== 1 && r.consistency !== 2) bug(`unknown read consistency ${r.consistency as number}`);
  const bytes = new Uint8Array(READ_FIXED_BYTES + r.query.length);
  const view = new DataView(bytes.buffer);
  putU53(view, 0, r.reqId, 'reqId');
  view.setUint8(8, r.consistency);
  bytes.set(r.query, READ_FIXED_BYTES);
  return bytes;
}

/** Decodes {@link encodeRead}; `query` is a copy. CodecError `BadFrame` when malformed. */
export function decodeRead(b: Uint8Array): ReadFrame {
  if (b.length < READ_FIXED_BYTES) bad(`read frame of ${b.length} bytes is truncated`);
  const view = viewOf(b);
  const reqId = getU53(view, 0, 'reqId');
  const consistency = b[8]!;
  if (consistency > 2) bad(`unknown read consistency ${consistency}`);
  return { reqId, consistency: consistency as ReadConsistency, query: b.slice(READ_FIXED_BYTES) };
}

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
/** reqId f64, status u8. */
const REPLY_FIXED_BYTES = 9;
const CODE_MAX_CHARS = 0xff;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 size of `s` as TextEncoder writes it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Layout: `reqId f64, status u8 (0 ok, 1 error)`; ok: `body (the rest)`; error: `code length u8,
 * code ASCII, leaderHint u32, message UTF-8 (the rest)`. A lone surrogate in `message` is sent as
 * U+FFFD. AssertionError on a non-ASCII or over-long code, or bad numeric fields.
 */
export function encodeReply(r: ReplyFrame): Uint8Array<ArrayBuffer> {
  if (r.ok) {
    const bytes = new Uint8Array(REPLY_FIXED_BYTES + r.body.length);
    const view = new DataView(bytes.buffer);
    putU53(view, 0, r.reqId, 'reqId');
    view.setUint8(8, STATUS_OK);
    bytes.set(r.body, REPLY_FIXED_BYTES);
    return bytes;
  }
  const { code, message } = r;
  if (code.length > CODE_MAX_CHARS) bug(`error code of ${code.length} chars exceeds ${CODE_MAX_CHARS}`);
  const msgBytes = utf8Length(message);
  const msgAt = REPLY_FIXED_BYTES + 1 + code.length + 4;
  const bytes = new Uint8Array(msgAt + msgBytes);
  const view = new DataView(bytes.buffer);
  putU53(view, 0, r.reqId, 'reqId');
  view.setUint8(8, STATUS_ERROR);
  view.setUint8(REPLY_FIXED_BYTES, code.length);
  for (let i = 0; i < code.length; i++) {
    const c = code.charCodeAt(i);
    if (c > 0x7f) bug(`error code ${JSON.stringify(code)} is not ASCII`);
    bytes[REPLY_FIXED_BYTES + 1 + i] = c;
  }
  putU32(view, msgAt - 4, r.leaderHint, 'leaderHint');
  const { written } = utf8Encoder.encodeInto(message, bytes.subarray(msgAt));
  if (written !== msgBytes) bug(`UTF-8 length ${written} != computed ${msgBytes}`);
  return bytes;
}

/** Decodes {@link encodeReply}; `body` is a copy. CodecError `BadFrame` when malformed or not UTF-8. */
export function decodeReply(b: Uint8Array): ReplyFrame {
  const len = b.length;
  if (len < REPLY_FIXED_BYTES) bad(`reply frame of ${len} bytes is truncated`);
  const view = viewOf(b);
  const reqId = getU53(view, 0, 'reqId');
  const status = b[8]!;
  if (status === STATUS_OK) return { reqId, ok: true, body: b.slice(REPLY_FIXED_BYTES) };
  if (status !== STATUS_ERROR) bad(`unknown reply status ${status}`);
  if (len < REPLY_FIXED_BYTES + 1) bad('error reply is truncated');
  const codeLen = b[REPLY_FIXED_BYTES]!;
  const msgAt = REPLY_FIXED_BYTES + 1 + codeLen + 4;
  if (len < msgAt) bad('error reply is truncated');
  let code = '';
  for (let i = REPLY_FIXED_BYTES + 1; i < REPLY_FIXED_BYTES + 1 + codeLen; i++) {
    const c = b[i]!;
    if (c > 0x7f) bad('error code is not ASCII');
    code += String.fromCharCode(c);
  }
  const leaderHint = view.getUint32(msgAt - 4, true);
  let message: string;
  try {
    message = utf8Decoder.decode(b.subarray(msgAt));
  } catch {
    bad('error message is not valid UTF-8');
  }
  return { reqId, ok: false, code, message, leaderHint };
}

// ------------------------------------------------------------------ node liveness

/**
 * What a node says of itself in a {@link RecordKind.NodeHeartbeat} record. Only these records
 * keep a peer counted as alive: raft traffic from one healthy worker says nothing about the
 * shards of another, dead one.
 */
export interface LivenessFrame {
  /**
   * Per worker thread of the sender, by index (the sender hosts shard `s` on worker
   * `s % running.length`): true while the worker runs, so the shards it hosts can lead. Empty:
   * the sender did not say (the payload of the previous layout, which was empty and sent only
   * while every worker ran): every worker counts as running.
   */
  readonly running: readonly boolean[];
}

/** Worker count u16. */
const LIVENESS_FIXED_BYTES = 2;
const LIVENESS_WORKERS_MAX = 0xffff;

/**
 * Layout: `workers u16, running bitmap (ceil(workers / 8) bytes: bit w & 7 of byte w >> 3 set
 * when worker w runs; the bits past workers are zero)`; no payload at all when `running` is
 * empty. AssertionError for more than 65,535 workers.
 */
export function encodeLiveness(f: LivenessFrame): Uint8Array<ArrayBuffer> {
  const workers = f.running.length;
  if (workers > LIVENESS_WORKERS_MAX) bug(`${workers} workers exceed ${LIVENESS_WORKERS_MAX}`);
  if (workers === 0) return new Uint8Array(0);
  const bytes = new Uint8Array(LIVENESS_FIXED_BYTES + Math.ceil(workers / 8));
  new DataView(bytes.buffer).setUint16(0, workers, true);
  for (let w = 0; w < workers; w++) if (f.running[w]) bytes[LIVENESS_FIXED_BYTES + (w >> 3)]! |= 1 << (w & 7);
  return bytes;
}

/**
 * Decodes {@link encodeLiveness}. CodecError `BadFrame` for a payload of one byte, a worker count
 * of 0, a length other than the count says, or a set bit past the count.
 */
export function decodeLiveness(b: Uint8Array): LivenessFrame {
  if (b.length === 0) return { running: [] };
  if (b.length < LIVENESS_FIXED_BYTES) bad(`liveness payload of ${b.length} bytes is truncated`);
  const workers = viewOf(b).getUint16(0, true);
  if (workers === 0) bad('liveness payload names 0 workers');
  const want = LIVENESS_FIXED_BYTES + Math.ceil(workers / 8);
  if (b.length !== want) bad(`liveness payload for ${workers} workers must be ${want} bytes, got ${b.length}`);
  const running: boolean[] = [];
  for (let w = 0; w < workers; w++) running.push((b[LIVENESS_FIXED_BYTES + (w >> 3)]! & (1 << (w & 7))) !== 0);
  const last = b[want - 1]!;
  if (workers % 8 !== 0 && last >> (workers % 8) !== 0) bad('liveness payload sets bits past its worker count');
  return { running };
}

// ------------------------------------------------------------------ wire frames

/** Size of a record header, the same in a ring and on the wire: len u32, kind u16, pad u16, shard u32. */
export const RECORD_HEADER_BYTES = 12;

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

const padOf = (len: number): number => (4 - (len & 3)) & 3;

/**
 * Concatenates records as the ring lays them out: `len u32 (payload bytes), kind u16, pad u16 = 0,
 * shard u32, payload, zero padding to a multiple of 4`. AssertionError for an unknown kind or a
 * shard that is not a u32.
 */
export function encodeFrame(records: readonly FrameRecord[]): Uint8Array<ArrayBuffer> {
  const n = records.length;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const len = records[i]!.payload.length;
    size += RECORD_HEADER_BYTES + len + padOf(len);
  }
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    if (!isRecordKind(r.kind)) bug(`unknown record kind ${r.kind}`);
    const len = r.payload.length;
    if (len > U32_MAX) bug(`record payload of ${len} bytes exceeds u32`);
    view.setUint32(off, len, true);
    view.setUint16(off + 4, r.kind, true);
    putU32(view, off + 8, r.shard, 'shard');
    bytes.set(r.payload, off + RECORD_HEADER_BYTES);
    off += RECORD_HEADER_BYTES + len + padOf(len);
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
  const view = viewOf(b);
  const out: DecodedRecord[] = [];
  let off = 0;
  while (off < len) {
    if (len - off < RECORD_HEADER_BYTES) bad(`record header truncated at byte ${off}`);
    const plen = view.getUint32(off, true);
    const kind = view.getUint16(off + 4, true);
    if (plen > maxRecordBytes) bad(`record of ${plen} bytes exceeds ${maxRecordBytes}`);
    if (KNOWN_KIND[kind] !== 1) bad(`unknown record kind ${kind}`);
    if (view.getUint16(off + 6, true) !== 0) bad('record pad field is not zero');
    const shard = view.getUint32(off + 8, true);
    const start = off + RECORD_HEADER_BYTES;
    const end = start + plen;
    const next = end + padOf(plen);
    if (next > len) bad(`record of ${plen} bytes at byte ${off} exceeds the ${len}-byte frame`);
    for (let i = end; i < next; i++) if (b[i] !== 0) bad('record padding is not zero');
    out.push({ kind: kind as RecordKind, shard, payload: b.slice(start, end) });
    off = next;
  }
  return out;
}
