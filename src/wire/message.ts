/**
 * The binary layout of a raft message between replicas. The same bytes travel through the rings
 * and over the wire, so a message is encoded once, by the worker of its sender, and decoded once,
 * by the worker of its recipient; the router in between reads only the fixed header.
 *
 * Why this shape:
 * - A message starts with a fixed 64-byte header (type, flags, from, to, the scalar fields, entry
 *   count). The router reads `to` / `type` at fixed offsets without decoding the body.
 * - Terms and indexes are float64 (see src/wire/bytes.ts). Decode accepts only non-negative safe
 *   integers, so a corrupt field becomes an error, not a NaN that poisons the log.
 * - Entry indexes are implicit (`message.index + 1 + i`): entries of one message are contiguous.
 * - Decoding never trusts a length: every count is checked against the bytes left before it is
 *   used, and trailing bytes are refused. Decoded byte fields are copies, because inputs are often
 *   views into ring memory that the producer reuses as soon as the read returns.
 *
 * The wire layer imports nothing, not even the raft core's types: it describes the message it lays
 * out in types of its own ({@link WireMessage}), whose ids carry the same brands as the core's, so
 * the core's `Message` is a `WireMessage` and a decoded `WireMessage` is a core `Message`; the
 * compiler checks both wherever the two meet.
 */

import { ByteReader, ByteWriter, U32_MAX, isU53 } from './bytes.js';
import { bad, bug } from './errors.js';

// ------------------------------------------------------------------ the shape it lays out

/** A replica id (u32 on the wire); the raft core's `NodeId`. */
export type WireNodeId = number & { readonly __brand: 'NodeId' };
/** A raft term (float64 on the wire); the raft core's `Term`. */
export type WireTerm = number & { readonly __brand: 'Term' };
/** A log index (float64 on the wire); the raft core's `LogIndex`. */
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
  readonly snapshot?: WireSnapshot;
  readonly quiesce?: boolean;
  readonly commitOnly?: boolean;
  readonly notMember?: boolean;
}

// ------------------------------------------------------------------ the layout

/** Size of the fixed message header; {@link peekMessageTo} and friends read only this. */
export const MESSAGE_HEADER_BYTES = 64;

const M_TYPE = 0;
const M_FLAGS = 1;
const M_FROM = 4;
const M_TO = 8;

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_QUIESCE = 4;
const FLAG_COMMIT_ONLY = 8;
const FLAG_NOT_MEMBER = 16;
const FLAGS_KNOWN = FLAG_REJECT | FLAG_SNAPSHOT | FLAG_QUIESCE | FLAG_COMMIT_ONLY | FLAG_NOT_MEMBER;

/** Bytes of an entry in a message besides its data: term f64, type u8, data length u32. */
export const MESSAGE_ENTRY_FIXED_BYTES = 13;
const ENTRY_FIXED_BYTES = MESSAGE_ENTRY_FIXED_BYTES;
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
export function encodeMessage(m: WireMessage): Uint8Array<ArrayBuffer> {
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

  const w = new ByteWriter(size);
  w.u8(m.type);
  w.u8(
    (m.reject ? FLAG_REJECT : 0) |
      (snap !== undefined ? FLAG_SNAPSHOT : 0) |
      (m.quiesce === true ? FLAG_QUIESCE : 0) |
      (m.commitOnly === true ? FLAG_COMMIT_ONLY : 0) |
      (m.notMember === true ? FLAG_NOT_MEMBER : 0),
  );
  w.u16(0); // reserved
  w.u32(m.from, 'from');
  w.u32(m.to, 'to');
  w.u53(m.term, 'term');
  w.u53(m.logTerm, 'logTerm');
  w.u53(m.index, 'index');
  w.u53(m.commit, 'commit');
  w.u53(m.rejectHint, 'rejectHint');
  w.u53(m.context, 'context');
  w.u32(n, 'entry count');

  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    if (e.index !== m.index + 1 + i || !Number.isSafeInteger(e.index)) {
      bug(`entry ${i} has index ${e.index}, expected ${m.index + 1 + i} (entries follow message.index)`);
    }
    if (e.type !== 0 && e.type !== 1) bug(`entry ${i} has unknown type ${e.type as number}`);
    const len = e.data.length;
    if (len > U32_MAX) bug(`entry ${i} data of ${len} bytes exceeds u32`);
    w.u53(e.term, 'entry term');
    w.u8(e.type);
    w.u32(len);
    w.bytes(e.data);
  }

  if (snap !== undefined) {
    const { index, term, confState } = snap.metadata;
    w.u53(index, 'snapshot index');
    w.u53(term, 'snapshot term');
    putIds(w, confState.voters, 'voter');
    putIds(w, confState.learners, 'learner');
    const len = snap.data.length;
    if (len > U32_MAX) bug(`snapshot data of ${len} bytes exceeds u32`);
    w.u32(len);
    w.bytes(snap.data);
  }
  if (w.at !== size) bug(`message size ${w.at} != computed ${size}`);
  return w.finish();
}

function putIds(w: ByteWriter, ids: readonly WireNodeId[], field: string): void {
  const n = ids.length;
  w.u32(n, `${field} count`);
  for (let i = 0; i < n; i++) w.u32(ids[i]!, field);
}

function getIds(r: ByteReader, n: number): WireNodeId[] {
  const ids: WireNodeId[] = [];
  for (let i = 0; i < n; i++) ids.push(r.u32() as WireNodeId);
  return ids;
}

/** A float64 field that must hold a non-negative safe integer; CodecError otherwise. */
function getU53(r: ByteReader, field: string): number {
  const v = r.f64();
  if (!isU53(v)) bad(`${field} is not a non-negative safe integer (${v})`);
  return v;
}

function checkHeader(b: Uint8Array): void {
  if (b.length < MESSAGE_HEADER_BYTES) bad(`raft message of ${b.length} bytes is shorter than its ${MESSAGE_HEADER_BYTES}-byte header`);
}

function getMessageType(b: Uint8Array): WireMessageType {
  const t = b[M_TYPE]!;
  if (t < MESSAGE_TYPE_MIN || t > MESSAGE_TYPE_MAX) bad(`unknown raft message type ${t}`);
  return t as WireMessageType;
}

/**
 * Decodes an {@link encodeMessage} encoding. `b` may be a view (e.g. into ring memory); entry and
 * snapshot data are copies. Throws CodecError `BadFrame` for anything malformed, including
 * trailing bytes.
 */
export function decodeMessage(b: Uint8Array): WireMessage {
  checkHeader(b);
  const type = getMessageType(b);
  const r = new ByteReader(b, M_FLAGS);
  const flags = r.u8();
  if ((flags & ~FLAGS_KNOWN) !== 0) bad(`unknown message flags 0x${flags.toString(16)}`);
  if (r.u16() !== 0) bad('reserved header bytes are not zero');
  const from = r.u32() as WireNodeId;
  const to = r.u32() as WireNodeId;
  const term = getU53(r, 'term') as WireTerm;
  const logTerm = getU53(r, 'logTerm') as WireTerm;
  const index = getU53(r, 'index') as WireLogIndex;
  const commit = getU53(r, 'commit') as WireLogIndex;
  const rejectHint = getU53(r, 'rejectHint') as WireLogIndex;
  const context = getU53(r, 'context');
  const count = r.u32();
  if (r.at !== MESSAGE_HEADER_BYTES) bug(`message header read ${r.at} bytes, not ${MESSAGE_HEADER_BYTES}`);
  if (index + count > Number.MAX_SAFE_INTEGER) bad(`entry indexes beyond 2^53 - 1 (index ${index}, ${count} entries)`);

  const entries: WireEntry[] = [];
  for (let i = 0; i < count; i++) {
    // Checks room for all remaining fixed parts, so a huge count fails at once.
    if ((count - i) * ENTRY_FIXED_BYTES > r.left) bad(`entry count ${count} exceeds the ${b.length}-byte message`);
    const eterm = getU53(r, 'entry term') as WireTerm;
    const etype = r.u8();
    if (etype > 1) bad(`unknown entry type ${etype}`);
    const dlen = r.u32();
    if (dlen > r.left) bad(`entry data of ${dlen} bytes exceeds the message`);
    entries.push({ term: eterm, index: (index + 1 + i) as WireLogIndex, type: etype as WireEntryType, data: r.copy(dlen) });
  }

  let snapshot: WireSnapshot | undefined;
  if ((flags & FLAG_SNAPSHOT) !== 0) {
    if (r.left < SNAPSHOT_FIXED_BYTES) bad('snapshot header is truncated');
    const sIndex = getU53(r, 'snapshot index') as WireLogIndex;
    const sTerm = getU53(r, 'snapshot term') as WireTerm;
    const nv = r.u32();
    // After the voters: learner count u32 and data length u32.
    if (nv > (r.left - 8) / 4) bad(`voter count ${nv} exceeds the message`);
    const voters = getIds(r, nv);
    const nl = r.u32();
    if (nl > (r.left - 4) / 4) bad(`learner count ${nl} exceeds the message`);
    const learners = getIds(r, nl);
    const dlen = r.u32();
    if (dlen > r.left) bad(`snapshot data of ${dlen} bytes exceeds the message`);
    snapshot = { metadata: { index: sIndex, term: sTerm, confState: { voters, learners } }, data: r.copy(dlen) };
  }
  if (r.short) bug('message decode read past the end after checking every length');
  if (!r.done) bad(`${r.left} trailing bytes after the raft message`);

  const base: WireMessage = { type, from, to, term, logTerm, index, entries, commit, reject: (flags & FLAG_REJECT) !== 0, rejectHint, context };
  let m = (flags & FLAG_QUIESCE) !== 0 ? { ...base, quiesce: true } : base;
  if ((flags & FLAG_COMMIT_ONLY) !== 0) m = { ...m, commitOnly: true };
  if ((flags & FLAG_NOT_MEMBER) !== 0) m = { ...m, notMember: true };
  return snapshot === undefined ? m : { ...m, snapshot };
}

/** The message's type, read from the fixed header only. CodecError when shorter or unknown. */
export function peekMessageType(b: Uint8Array): WireMessageType {
  checkHeader(b);
  return getMessageType(b);
}

/** The message's sender, read from the fixed header only. CodecError when shorter than 64 bytes. */
export function peekMessageFrom(b: Uint8Array): WireNodeId {
  checkHeader(b);
  return new ByteReader(b, M_FROM).u32() as WireNodeId;
}

/** The message's recipient, read from the fixed header only. CodecError when shorter than 64 bytes. */
export function peekMessageTo(b: Uint8Array): WireNodeId {
  checkHeader(b);
  return new ByteReader(b, M_TO).u32() as WireNodeId;
}
