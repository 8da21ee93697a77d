/**
 * A shard's snapshot as a stream of bytes, never as one buffer: the leader reads its data database
 * in pieces from one LMDB read transaction (a consistent view, whatever is written meanwhile), and
 * the follower installs from a file the shell staged chunk by chunk. Both sides hold at most one
 * piece in memory, whatever the size of the shard.
 *
 * The bytes are the data dump of store.ts: a sequence of (key length u32, key, value length u32,
 * value); a piece always ends at a pair boundary.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { Database, Transaction } from 'lmdb';
import type { LogIndex, NodeId, SnapshotMetadata, Term } from './raft/index.js';
import { StoreError } from './store-error.js';

/** A raft core's wish that a follower get a snapshot; the header of the Snap message it would have sent. */
export interface SnapshotWish {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  readonly index: LogIndex;
}

/** A snapshot the shell received and staged: who sent it in which term, and what it covers. */
export interface StagedSnapshot {
  readonly from: NodeId;
  readonly term: Term;
  readonly metadata: SnapshotMetadata;
  /** The dump file (see snapshot-io.ts); the host owns it from now on and deletes it. */
  readonly path: string;
}

/** Largest key or value a dump may hold (1 GiB): anything larger is a corrupt length. */
const PAIR_PART_BYTES_MAX = 1 << 30;

/**
 * Reads one shard's data from a read transaction opened at construction: `metadata` is the
 * applied index, its term and the membership as of that transaction. close() releases the
 * transaction (a long-lived one keeps LMDB from reusing pages).
 */
export class SnapshotReader {
  /** The last key handed out; the next piece starts after it. */
  private after: Buffer | undefined;
  private finished = false;
  private closed = false;
  /** Raw bytes handed out so far. */
  bytes = 0;

  constructor(
    readonly metadata: SnapshotMetadata,
    private readonly data: Database<Buffer, Buffer>,
    private readonly txn: Transaction,
  ) {}

  /**
   * The next piece of at least one pair and at most `maxBytes` (or one pair, when a pair alone is
   * larger), or undefined once every pair was read.
   */
  next(maxBytes: number): Uint8Array<ArrayBuffer> | undefined {
    if (this.closed) throw new StoreError('StoreClosed', 'snapshot reader is closed');
    if (this.finished) return undefined;
    const parts: Buffer[] = [];
    let size = 0;
    let last: Buffer | undefined;
    const range = this.data.getRange(this.after === undefined ? { transaction: this.txn } : { start: this.after, transaction: this.txn });
    for (const { key, value } of range) {
      if (this.after !== undefined && last === undefined && Buffer.compare(key, this.after) === 0) continue;
      const n = 8 + key.length + value.length;
      if (parts.length > 0 && size + n > maxBytes) {
        this.after = last;
        return this.emit(parts, size);
      }
      const rec = Buffer.allocUnsafe(n);
      rec.writeUInt32LE(key.length, 0);
      rec.set(key, 4);
      rec.writeUInt32LE(value.length, 4 + key.length);
      rec.set(value, 8 + key.length);
      parts.push(rec);
      size += n;
      last = Buffer.from(key);
    }
    this.finished = true;
    if (parts.length === 0) return undefined;
    return this.emit(parts, size);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.txn.done();
  }

  private emit(parts: Buffer[], size: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    this.bytes += size;
    return out;
  }
}

/**
 * The pairs of a dump file, read `pieceBytes` at a time (a pair larger than a piece is read
 * whole). StoreError `BadSnapshot` for a truncated file or an impossible length.
 */
export function* readDumpFile(path: string, pieceBytes = 1 << 20): Generator<{ key: Uint8Array; value: Uint8Array }> {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.alloc(0);
    let at = 0;
    let pos = 0;
    let eof = false;
    /** Makes `n` bytes available at `at`, reading more; false at a clean end of file. */
    const need = (n: number): boolean => {
      if (buf.length - at >= n) return true;
      const rest = buf.subarray(at);
      const grown = Buffer.allocUnsafe(Math.max(n, pieceBytes));
      rest.copy(grown, 0);
      let have = rest.length;
      while (have < n && !eof) {
        const got = readSync(fd, grown, have, grown.length - have, pos);
        if (got === 0) eof = true;
        pos += got;
        have += got;
      }
      buf = grown.subarray(0, have);
      at = 0;
      return have >= n;
    };
    const take = (what: string): Uint8Array => {
      if (!need(4)) throw new StoreError('BadSnapshot', `snapshot dump ${path} truncated at byte ${pos - (buf.length - at)} (${what} length)`);
      const n = buf.readUInt32LE(at);
      at += 4;
      if (n > PAIR_PART_BYTES_MAX) throw new StoreError('BadSnapshot', `snapshot dump ${path}: ${what} of ${n} bytes`);
      if (!need(n)) throw new StoreError('BadSnapshot', `snapshot dump ${path} truncated in a ${what} of ${n} bytes`);
      const out = buf.subarray(at, at + n);
      at += n;
      return out;
    };
    for (;;) {
      if (!need(1)) return;
      const key = take('key');
      const value = take('value');
      yield { key, value };
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads a whole dump file once, checking its structure; returns its pair count. StoreError `BadSnapshot`. */
export function checkDumpFile(path: string): number {
  let n = 0;
  for (const _ of readDumpFile(path)) n++;
  return n;
}
