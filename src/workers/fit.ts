/**
 * What fits one ring record, derived from the ring's size, so that no record a worker or the pool
 * writes is ever too large for its ring, for the peer's ring or for an Iroh frame. The rule:
 *
 * - A raft App message encodes to a header of at most MESSAGE_HEADER_BYTES_MAX (65) bytes plus,
 *   per entry, at most MESSAGE_ENTRY_FIXED_BYTES_MAX (14) bytes and its data (src/wire/message.ts;
 *   its fields are varints, so these are the sizes with every field at its widest). The raft core
 *   counts each entry as data + ENTRY_OVERHEAD_BYTES (24) against `appendBytesMax`, except that the
 *   first entry of an App always goes in; the shard host refuses every proposal whose entry alone
 *   exceeds `appendBytesMax` (`RequestTooLarge`), so that exception never lifts an App past the
 *   cap. An App of n >= 1 entries within the cap encodes to at most
 *   `65 + appendBytesMax - 10 * n` bytes, hence `appendBytesMax = recordBytesMax - 65 + 10`: the
 *   largest lone entry encodes to at most one record (a few bytes less even with every field at its
 *   widest, as its entry count and data length are shorter than a u32's 5 bytes), and batches of
 *   smaller entries are split by the core to fit.
 * - A client proposal travels as a propose frame (at most 24 bytes + command) through the in-ring,
 *   and through an Iroh record when it is forwarded to a remote leader; its entry is the 16-byte
 *   session header + command. The largest command must fit both.
 * - The built-in KV's largest command is a compare-and-set with the longest tenant, key and value
 *   ({@link kvCommandBytesMax}); a `valueBytesMax` whose proposal could not fit is refused when the
 *   pool is configured, never met at run time.
 * - Raft messages and forwarded requests leave the node as Iroh records, so a ring record must
 *   also fit the transport's `maxRecordBytes`.
 */
import { ENTRY_OVERHEAD_BYTES, assert } from '../shards/raft/index.js';
import { PROPOSAL_HEADER_BYTES } from '../shards/sessions.js';
import { kvCommandBytesMax } from '../shards/kv/index.js';
import type { KvLimits } from '../shards/kv/index.js';
import { MESSAGE_ENTRY_FIXED_BYTES_MAX, MESSAGE_HEADER_BYTES_MAX, PROPOSE_FIXED_BYTES_MAX } from '../wire/index.js';
import { maxPayloadBytes } from './ring.js';

/**
 * Bytes an App message adds to the entry bytes the core counts, at most: its largest header, less
 * what the core over-counts for its one guaranteed entry (at the entry's largest fixed cost).
 */
export const APPEND_OVERHEAD_BYTES = MESSAGE_HEADER_BYTES_MAX - (ENTRY_OVERHEAD_BYTES - MESSAGE_ENTRY_FIXED_BYTES_MAX);
// The core must count at least what the wire spends per entry, or many small entries would outgrow the cap.
assert(ENTRY_OVERHEAD_BYTES >= MESSAGE_ENTRY_FIXED_BYTES_MAX, 'fit: the core counts less per entry than the wire spends');

/** `appendBytesMax` whose largest App encodes to at most `recordBytesMax` bytes, whatever its field values. */
export function appendBytesMaxFor(recordBytesMax: number): number {
  return recordBytesMax - APPEND_OVERHEAD_BYTES;
}

/** Bound on the bytes of the largest App message the core sends under `appendBytesMax` (one entry of that size, every field at its widest). */
export function appendMessageBytesMax(appendBytesMax: number): number {
  return appendBytesMax + APPEND_OVERHEAD_BYTES;
}

/** Largest command a proposal can carry: its propose frame fits a record and its entry fits `appendBytesMax`. */
export function commandBytesMaxFor(recordBytesMax: number, appendBytesMax: number): number {
  return Math.min(recordBytesMax - PROPOSE_FIXED_BYTES_MAX, appendBytesMax - ENTRY_OVERHEAD_BYTES - PROPOSAL_HEADER_BYTES);
}

/** The sizes one pool works with, all in bytes. */
export interface RecordFit {
  /** Largest payload of one ring record (both rings have the same size): {@link maxPayloadBytes}. */
  readonly recordBytesMax: number;
  /** Entry bytes of one App message, passed to every shard's raft core; its App fits one record. */
  readonly appendBytesMax: number;
  /** Largest state machine command a proposal can carry (in the ring, forwarded, and as an entry). */
  readonly commandBytesMax: number;
}

export interface FitOptions {
  /** Bytes of each ring (a power of two). */
  readonly ringBytes: number;
  /** An `appendBytesMax` asked for explicitly; at most the derived one. */
  readonly appendBytesMax?: number | undefined;
  /** The transport's `maxRecordBytes`, when records leave the node. */
  readonly peerRecordBytesMax?: number | undefined;
  /** The built-in KV's limits, resolved; undefined for a plug-in state machine (its proposals are checked one by one). */
  readonly kvLimits?: Pick<KvLimits, 'keyBytesMax' | 'valueBytesMax'> | undefined;
}

/** Derives the sizes and checks that they hold together; returns the problem as a sentence when they do not. */
export function resolveRecordFit(o: FitOptions): RecordFit | { readonly problem: string } {
  const recordBytesMax = maxPayloadBytes(o.ringBytes);
  if (o.peerRecordBytesMax !== undefined && recordBytesMax > o.peerRecordBytesMax) {
    return {
      problem: `a ring record of ${recordBytesMax} bytes (ringBytes ${o.ringBytes}) does not fit the transport's maxRecordBytes (${o.peerRecordBytesMax})`,
    };
  }
  const derived = appendBytesMaxFor(recordBytesMax);
  const appendBytesMax = o.appendBytesMax ?? derived;
  if (!Number.isInteger(appendBytesMax) || appendBytesMax <= 0 || appendBytesMax > derived) {
    return {
      problem: `raft.appendBytesMax must be an integer in 1..${derived} (a ring record of ${recordBytesMax} bytes less ${APPEND_OVERHEAD_BYTES} of App overhead), got ${appendBytesMax}`,
    };
  }
  const commandBytesMax = commandBytesMaxFor(recordBytesMax, appendBytesMax);
  if (commandBytesMax < 1) return { problem: `raft.appendBytesMax ${appendBytesMax} leaves no room for a proposal` };
  if (o.kvLimits !== undefined) {
    const need = kvCommandBytesMax(o.kvLimits);
    if (need > commandBytesMax) {
      const valueFits = o.kvLimits.valueBytesMax - (need - commandBytesMax);
      return {
        problem:
          `kvLimits.valueBytesMax ${o.kvLimits.valueBytesMax} with keyBytesMax ${o.kvLimits.keyBytesMax} makes proposals of up to ${need} command bytes, ` +
          `but a raft message or ring record carries at most ${commandBytesMax} (ringBytes ${o.ringBytes}, appendBytesMax ${appendBytesMax}); ` +
          `lower valueBytesMax to ${Math.max(valueFits, 0)} or use larger rings`,
      };
    }
  }
  return { recordBytesMax, appendBytesMax, commandBytesMax };
}
