/**
 * The binary layout of a raft message between replicas. The same bytes travel through the rings
 * and over the wire, so a message is encoded once, by the worker of its sender, and decoded once,
 * by the worker of its recipient; the router in between reads only the first few bytes (type,
 * flags, from, to).
 *
 * Why this shape:
 * - Every integer but the type, the flags and an entry's type is an unsigned LEB128 varint (see
 *   src/wire/bytes.ts). Every byte of a raft message passes the Iroh binding on the main thread,
 *   at some 50-150 ns a byte, and most fields are small: ids, terms, counts and lengths take one or
 *   two bytes, an index of 100,000 three. At such values a heartbeat or an append response takes
 *   15-18 bytes where a fixed header took 64, and an entry 3-5 bytes besides its data where it
 *   took 13.
 * - The router still reads `type`, `from` and `to` without decoding the body: they come first
 *   (type u8, flags u8, from, to), and reading two varints costs a few byte loads.
 * - Terms and indexes are at most 2^53 - 1 (8 varint bytes); ids are u32 (5). Decode accepts one
 *   encoding per value (no over-long or padded varints), so a corrupt field becomes an error, and
 *   re-encoding what was decoded gives back the same bytes.
 * - Entry indexes are implicit (`message.index + 1 + i`): entries of one message are contiguous.
 * - Decoding never trusts a length: every count is checked against the bytes left before it is
 *   used (an entry takes at least 3 bytes, an id 1), and trailing bytes are refused. Decoded byte
 *   fields are copies, because inputs are often views into ring memory that the producer reuses as
 *   soon as the read returns.
 * - Sizes vary with the values, so what sizes rings and Apps (src/workers/fit.ts) uses upper
 *   bounds: {@link MESSAGE_HEADER_BYTES_MAX} and {@link MESSAGE_ENTRY_FIXED_BYTES_MAX}.
 *
 * The wire layer imports nothing, not even the raft core's types: it describes the message it lays
 * out in types of its own ({@link WireMessage}), whose ids carry the same brands as the core's, so
 * the core's `Message` is a `WireMessage` and a decoded `WireMessage` is a core `Message`; the
 * compiler checks both wherever the two meet.
 */

import { ByteReader, ByteWriter, U32_MAX, UVARINT_BYTES_MAX, UVARINT_U32_BYTES_MAX, isU32, uvarintBytes } from './bytes.js';
import { bad, bug } from './errors.js';

// ------------------------------------------------------------------ the shape it lays out

/** A replica id (a u32, as a varint on the wire); the raft core's `NodeId`. */
export type WireNodeId = number & { readonly __brand: 'NodeId' };
/** A raft term (a non-negative safe integer, as a varint on the wire); the raft core's `Term`. */
export type WireTerm = number & { readonly __brand: 'Term' };
/** A log index (a non-negative safe integer, as a varint on the wire); the raft core's `LogIndex`. */
export type WireLogIndex = number & { readonly __brand: 'LogIndex' };

/**
 * The raft core's message types, by number. Only 1 (App) .. 12 (ReadIndexResp) travel; 0 (Hup) is
 * local, and encoding it is a bug. The core names them (its `MessageType`).
 */
export type WireMessageType = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12;

/** The raft core's entry types: 0 normal, 1 configuration change. */
export type WireEntryType = 0 | 1;

export interface WireEntry {
  readonly term: WireTerm;
  readonly index: WireLogIndex;
  readonly type: WireEntryType;
  readonly data: Uint8Array;
}

export interface WireSnapshot {
  readonly metadata: {
    readonly index: WireLogIndex;
    readonly term: WireTerm;
    readonly confState: { readonly voters: readonly WireNodeId[]; readonly learners: readonly WireNodeId[] };
  };
  readonly data: Uint8Array;
}

/** The fields of a raft message this layout carries: all of the raft core's `Message`. */
export interface WireMessage {
  readonly type: WireMessageType;
  readonly from: WireNodeId;
  readonly to: WireNodeId;
  readonly term: WireTerm;
  readonly logTerm: WireTerm;
  readonly index: WireLogIndex;
  readonly entries: readonly WireEntry[];
  readonly commit: WireLogIndex;
  readonly reject: boolean;
  readonly rejectHint: WireLogIndex;
  readonly context: number;
  readonly snapshot?: WireSnapshot | undefined;
  readonly quiesce?: boolean | undefined;
  readonly commitOnly?: boolean | undefined;
  readonly notMember?: boolean | undefined;
}

// ------------------------------------------------------------------ the layout

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_QUIESCE = 4;
const FLAG_COMMIT_ONLY = 8;
const FLAG_NOT_MEMBER = 16;
const FLAGS_KNOWN = FLAG_REJECT | FLAG_SNAPSHOT | FLAG_QUIESCE | FLAG_COMMIT_ONLY | FLAG_NOT_MEMBER;

/**
 * Most bytes of a message before its entries: type and flags (1 each), from and to (u32, 5 each),
 * term, logTerm, index, commit, rejectHint and context (8 each), entry count (a u32, 5). An upper
 * bound for sizing (src/workers/fit.ts); a message with small fields takes 11.
 */
export const MESSAGE_HEADER_BYTES_MAX = 2 + 2 * UVARINT_U32_BYTES_MAX + 6 * UVARINT_BYTES_MAX + UVARINT_U32_BYTES_MAX;

/**
 * Most bytes of an entry in a message besides its data: term (8), type u8, data length (a u32, 5).
 * An upper bound for sizing (src/workers/fit.ts); an entry of a small term and data under 16 KiB
 * takes 3 or 4.
 */
export const MESSAGE_ENTRY_FIXED_BYTES_MAX = UVARINT_BYTES_MAX + 1 + UVARINT_U32_BYTES_MAX;

/** Fewest bytes of an entry: a one-byte term, its type, a one-byte data length (data empty). */
const ENTRY_BYTES_MIN = 3;
/** Fewest bytes of a snapshot section: index, term, voter count, learner count, data length. */
const SNAPSHOT_BYTES_MIN = 5;

/** Only messages that travel: 1 (App) .. 12 (ReadIndexResp); Hup (0) is local. */
const MESSAGE_TYPE_MIN = 1;
const MESSAGE_TYPE_MAX = 12;

/**
 * Encodes a raft message. Layout, every `v` an unsigned LEB128 varint (src/wire/bytes.ts):
 * `type u8, flags u8 (bit0 reject, bit1 snapshot, bit2 quiesce, bit3 commit only, bit4 not member),
 * from v (u32), to v (u32), term v, logTerm v, index v, commit v, rejectHint v, context v,
 * entry count v`; then per entry `term v, type u8, data length v, data` (its index is
 * `index + 1 + i`); then, with the snapshot flag, `index v, term v, voter count v, voters v...,
 * learner count v, learners v..., data length v, data`.
 *
 * Throws AssertionError (a bug, not bad input) for a local-only type, ids that are not u32,
 * numeric fields that are not non-negative safe integers, or entries whose indexes do not follow
 * `index` contiguously.
 */
export function encodeMessage(m: WireMessage): Uint8Array<ArrayBuffer> {
  if (!(Number.isInteger(m.type) && m.type >= MESSAGE_TYPE_MIN && m.type <= MESSAGE_TYPE_MAX)) {
    bug(`message type ${m.type} cannot be sent`);
  }
  const entries = m.entries;
  const n = entries.length;
  const snap = m.snapshot;
  const size = messageBytes(m);
  const w = new ByteWriter(size);
  w.u8(m.type);
  w.u8(
    (m.reject ? FLAG_REJECT : 0) |
      (snap !== undefined ? FLAG_SNAPSHOT : 0) |
      (m.quiesce === true ? FLAG_QUIESCE : 0) |
      (m.commitOnly === true ? FLAG_COMMIT_ONLY : 0) |
      (m.notMember === true ? FLAG_NOT_MEMBER : 0),
  );
  putId(w, m.from, 'from');
  putId(w, m.to, 'to');
  w.uvarint(m.term, 'term');
  w.uvarint(m.logTerm, 'logTerm');
  w.uvarint(m.index, 'index');
  w.uvarint(m.commit, 'commit');
  w.uvarint(m.rejectHint, 'rejectHint');
  w.uvarint(m.context, 'context');
  // MESSAGE_HEADER_BYTES_MAX counts the entry count as a u32.
  if (n > U32_MAX) bug(`${n} entries exceed u32`);
  w.uvarint(n, 'entry count');

  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    if (e.index !== m.index + 1 + i || !Number.isSafeInteger(e.index)) {
      bug(`entry ${i} has index ${e.index}, expected ${m.index + 1 + i} (entries follow message.index)`);
    }
    if (e.type !== 0 && e.type !== 1) bug(`entry ${i} has unknown type ${e.type as number}`);
    const len = e.data.length;
    // MESSAGE_ENTRY_FIXED_BYTES_MAX counts the data length as a u32.
    if (len > U32_MAX) bug(`entry ${i} data of ${len} bytes exceeds u32`);
    w.uvarint(e.term, 'entry term');
    w.u8(e.type);
    w.uvarint(len, 'entry data length');
    w.bytes(e.data);
  }

  if (snap !== undefined) {
    const { index, term, confState } = snap.metadata;
    w.uvarint(index, 'snapshot index');
    w.uvarint(term, 'snapshot term');
    putIds(w, confState.voters, 'voter');
    putIds(w, confState.learners, 'learner');
    w.uvarint(snap.data.length, 'snapshot data length');
    w.bytes(snap.data);
  }
  if (w.at !== size) bug(`message size ${w.at} != computed ${size}`);
  return w.finish();
}

/** The exact size of `m`'s encoding, so the writer allocates once; the writer checks each value as it writes it. */
function messageBytes(m: WireMessage): number {
  const entries = m.entries;
  let size =
    2 +
    uvarintBytes(m.from) +
    uvarintBytes(m.to) +
    uvarintBytes(m.term) +
    uvarintBytes(m.logTerm) +
    uvarintBytes(m.index) +
    uvarintBytes(m.commit) +
    uvarintBytes(m.rejectHint) +
    uvarintBytes(m.context) +
    uvarintBytes(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const len = e.data.length;
    size += uvarintBytes(e.term) + 1 + uvarintBytes(len) + len;
  }
  const snap = m.snapshot;
  if (snap !== undefined) {
    const { index, term, confState } = snap.metadata;
    const len = snap.data.length;
    size += uvarintBytes(index) + uvarintBytes(term) + idsBytes(confState.voters) + idsBytes(confState.learners) + uvarintBytes(len) + len;
  }
  return size;
}

function putId(w: ByteWriter, id: number, field: string): void {
  if (!isU32(id)) bug(`${field} must be a u32, got ${id}`);
  w.uvarint(id, field);
}

function idsBytes(ids: readonly WireNodeId[]): number {
  let n = uvarintBytes(ids.length);
  for (let i = 0; i < ids.length; i++) n += uvarintBytes(ids[i]!);
  return n;
}

function putIds(w: ByteWriter, ids: readonly WireNodeId[], field: string): void {
  const n = ids.length;
  w.uvarint(n, `${field} count`);
  for (let i = 0; i < n; i++) putId(w, ids[i]!, field);
}

/** A replica id: a varint that must hold a u32; CodecError otherwise. */
function getId(r: ByteReader, field: string): WireNodeId {
  const v = r.uvarint(field);
  if (v > U32_MAX) bad(`${field} ${v} is not a u32`);
  return v as WireNodeId;
}

function getIds(r: ByteReader, n: number, field: string): WireNodeId[] {
  const ids: WireNodeId[] = [];
  for (let i = 0; i < n; i++) ids.push(getId(r, field));
  return ids;
}

function getMessageType(b: Uint8Array): WireMessageType {
  const t = b[0]!;
  if (!(t >= MESSAGE_TYPE_MIN && t <= MESSAGE_TYPE_MAX)) bad(`unknown raft message type ${t}`);
  return t as WireMessageType;
}

/**
 * Decodes an {@link encodeMessage} encoding. `b` may be a view (e.g. into ring memory); entry and
 * snapshot data are copies. Throws CodecError `BadFrame` for anything malformed, including
 * trailing bytes.
 */
export function decodeMessage(b: Uint8Array): WireMessage {
  if (b.length < 2) bad(`raft message of ${b.length} bytes is shorter than its type and flags`);
  const type = getMessageType(b);
  const r = new ByteReader(b, 1);
  const flags = r.u8();
  if ((flags & ~FLAGS_KNOWN) !== 0) bad(`unknown message flags 0x${flags.toString(16)}`);
  const from = getId(r, 'from');
  const to = getId(r, 'to');
  const term = r.uvarint('term') as WireTerm;
  const logTerm = r.uvarint('logTerm') as WireTerm;
  const index = r.uvarint('index') as WireLogIndex;
  const commit = r.uvarint('commit') as WireLogIndex;
  const rejectHint = r.uvarint('rejectHint') as WireLogIndex;
  const context = r.uvarint('context');
  const count = r.uvarint('entry count');
  if (index + count > Number.MAX_SAFE_INTEGER) bad(`entry indexes beyond 2^53 - 1 (index ${index}, ${count} entries)`);

  const entries: WireEntry[] = [];
  for (let i = 0; i < count; i++) {
    // Room for every entry left at its smallest, so a huge count fails at once.
    if ((count - i) * ENTRY_BYTES_MIN > r.left) bad(`entry count ${count} exceeds the ${b.length}-byte message`);
    const eterm = r.uvarint('entry term') as WireTerm;
    const etype = r.u8();
    if (etype > 1) bad(`unknown entry type ${etype}`);
    const dlen = r.uvarint('entry data length');
    if (dlen > r.left) bad(`entry data of ${dlen} bytes exceeds the message`);
    entries.push({ term: eterm, index: (index + 1 + i) as WireLogIndex, type: etype as WireEntryType, data: r.copy(dlen) });
  }

  let snapshot: WireSnapshot | undefined;
  if ((flags & FLAG_SNAPSHOT) !== 0) {
    if (r.left < SNAPSHOT_BYTES_MIN) bad('snapshot section is truncated');
    const sIndex = r.uvarint('snapshot index') as WireLogIndex;
    const sTerm = r.uvarint('snapshot term') as WireTerm;
    const nv = r.uvarint('voter count');
    // After the voters (a byte each at least): learner count and data length, a byte each at least.
    if (nv > r.left - 2) bad(`voter count ${nv} exceeds the message`);
    const voters = getIds(r, nv, 'voter');
    const nl = r.uvarint('learner count');
    if (nl > r.left - 1) bad(`learner count ${nl} exceeds the message`);
    const learners = getIds(r, nl, 'learner');
    const dlen = r.uvarint('snapshot data length');
    if (dlen > r.left) bad(`snapshot data of ${dlen} bytes exceeds the message`);
    snapshot = { metadata: { index: sIndex, term: sTerm, confState: { voters, learners } }, data: r.copy(dlen) };
  }
  if (r.short) bug('message decode read past the end after checking every length');
  if (!r.done) bad(`${r.left} trailing bytes after the raft message`);

  // Every field present, in the order the raft core's emptyMessage lays them out: every decoded
  // message has the same hidden class, whichever flags it carries.
  return {
    type,
    from,
    to,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject: (flags & FLAG_REJECT) !== 0,
    rejectHint,
    context,
    snapshot,
    quiesce: (flags & FLAG_QUIESCE) !== 0 ? true : undefined,
    commitOnly: (flags & FLAG_COMMIT_ONLY) !== 0 ? true : undefined,
    notMember: (flags & FLAG_NOT_MEMBER) !== 0 ? true : undefined,
  };
}

// ------------------------------------------------------------------ peeks, for the router

// The router peeks at every message on the main thread: a peek reads the type, the flags byte and
// the from and to varints (a few byte loads), and refuses a payload too short for them, so a
// message it routes has at least its addressing intact. It does not check the rest.

/** Reads from and to after type and flags; `to` when `wantTo`. CodecError when they are not all there. */
function peekId(b: Uint8Array, wantTo: boolean): WireNodeId {
  // Ids below 128 (most clusters'): one byte each, read in place.
  if (b.length >= 4 && b[2]! < 0x80 && b[3]! < 0x80) return (wantTo ? b[3]! : b[2]!) as WireNodeId;
  if (b.length < 2) bad(`raft message of ${b.length} bytes is shorter than its type and flags`);
  const r = new ByteReader(b, 2);
  const from = getId(r, 'from');
  const to = getId(r, 'to');
  return wantTo ? to : from;
}

/** The message's type, from its first byte. CodecError when unknown or shorter than type, flags, from and to. */
export function peekMessageType(b: Uint8Array): WireMessageType {
  peekId(b, true);
  return getMessageType(b);
}

/** The message's sender. CodecError when shorter than type, flags, from and to. */
export function peekMessageFrom(b: Uint8Array): WireNodeId {
  return peekId(b, false);
}

/** The message's recipient. CodecError when shorter than type, flags, from and to. */
export function peekMessageTo(b: Uint8Array): WireNodeId {
  return peekId(b, true);
}
