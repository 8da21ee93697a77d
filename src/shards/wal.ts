/**
 * A worker's write-ahead log: the durable record of what its shards' raft logs and hard states
 * gained since the store's last checkpoint (see {@link Store.logged}). One file, `wal`, beside the
 * LMDB environment; each turn appends one record and waits for one `fdatasync`. A checkpoint
 * writes everything the records hold into LMDB in one durable transaction together with the next
 * generation number, and the file starts over from its first byte under that generation.
 *
 * Record: u32 body length, u32 CRC-32 of (generation, body), u32 generation, then the body: items
 * of (u32 shard, u8 flags; flag 1: f64 term, f64 vote; flag 2: f64 first index, u32 count, then
 * per entry u8 type, f64 term, u32 length, data). A replay reads records of the current
 * generation from the start and stops at the first one that is short, fails its CRC or carries
 * another generation: bytes past the last flushed record are a torn write or an older generation.
 *
 * The file grows in steps of {@link GROW_BYTES} of written zeros, so that an `fdatasync` after a
 * record rarely has a file size to record as well.
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Entry, EntryType, LogIndex, NodeId, ShardId, Term } from './raft/index.js';
import { StoreError } from './store-error.js';

const HEADER_BYTES = 12;
const GROW_BYTES = 4 * 1024 * 1024;
const FLAG_HARD = 1;
const FLAG_ENTRIES = 2;
/** A record larger than this is not a record (a torn length): 1 GiB. */
const RECORD_BYTES_MAX = 1024 ** 3;
/**
 * A turn's items go into records of about this many bytes (an item is never split): one shard's
 * entries of a turn stay under its raft uncommittedBytesMax (64 MiB by default), so a record
 * stays far below RECORD_BYTES_MAX.
 */
export const RECORD_TARGET_BYTES = 64 * 1024 * 1024;

/** What one record says of one shard. */
export interface WalItem {
  readonly shard: ShardId;
  readonly hard?: { readonly term: Term; readonly vote: NodeId } | undefined;
  readonly entries?: readonly Entry[] | undefined;
}

/** Collects one turn's items and encodes them as the bodies of records. */
export class WalRecord {
  private readonly items: WalItem[] = [];
  private readonly sizes: number[] = [];

  add(item: WalItem): void {
    let bytes = 5 + (item.hard ? 16 : 0);
    if (item.entries) {
      bytes += 12;
      for (const e of item.entries) bytes += 13 + e.data.length;
    }
    if (bytes > RECORD_BYTES_MAX) throw new StoreError('BadWal', `shard ${item.shard} writes ${bytes} bytes in one turn, over a record's ${RECORD_BYTES_MAX}`);
    this.items.push(item);
    this.sizes.push(bytes);
  }

  empty(): boolean {
    return this.items.length === 0;
  }

  /** The records: items in order, a new record once one holds `targetBytes`. */
  encode(gen: number, targetBytes = RECORD_TARGET_BYTES): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < this.items.length;) {
      let body = 0;
      let j = i;
      while (j < this.items.length && (j === i || body + this.sizes[j]! <= targetBytes)) body += this.sizes[j++]!;
      out.push(encodeRecord(gen, this.items.slice(i, j), body));
      i = j;
    }
    return out;
  }
}

function encodeRecord(gen: number, items: readonly WalItem[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + bytes);
  out.writeUInt32LE(bytes, 0);
  out.writeUInt32LE(gen, 8);
  let at = HEADER_BYTES;
  for (const it of items) {
    out.writeUInt32LE(it.shard, at);
    out.writeUInt8((it.hard ? FLAG_HARD : 0) | (it.entries ? FLAG_ENTRIES : 0), at + 4);
    at += 5;
    if (it.hard) {
      out.writeDoubleLE(it.hard.term, at);
      out.writeDoubleLE(it.hard.vote, at + 8);
      at += 16;
    }
    if (it.entries) {
      out.writeDoubleLE(it.entries[0]?.index ?? 0, at);
      out.writeUInt32LE(it.entries.length, at + 8);
      at += 12;
      for (const e of it.entries) {
        out.writeUInt8(e.type, at);
        out.writeDoubleLE(e.term, at + 1);
        out.writeUInt32LE(e.data.length, at + 9);
        out.set(e.data, at + 13);
        at += 13 + e.data.length;
      }
    }
  }
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

function decodeBody(body: Buffer): WalItem[] {
  const items: WalItem[] = [];
  let at = 0;
  const need = (n: number): void => {
    if (at + n > body.length) throw new StoreError('BadWal', `write-ahead log record truncated at byte ${at}`);
  };
  while (at < body.length) {
    need(5);
    const shard = body.readUInt32LE(at) as ShardId;
    const flags = body.readUInt8(at + 4);
    at += 5;
    let hard: WalItem['hard'];
    let entries: Entry[] | undefined;
    if (flags & FLAG_HARD) {
      need(16);
      hard = { term: body.readDoubleLE(at) as Term, vote: body.readDoubleLE(at + 8) as NodeId };
      at += 16;
    }
    if (flags & FLAG_ENTRIES) {
      need(12);
      let index = body.readDoubleLE(at);
      const count = body.readUInt32LE(at + 8);
      at += 12;
      entries = [];
      for (let i = 0; i < count; i++) {
        need(13);
        const type = body.readUInt8(at) as EntryType;
        const term = body.readDoubleLE(at + 1) as Term;
        const len = body.readUInt32LE(at + 9);
        at += 13;
        need(len);
        entries.push({ index: index++ as LogIndex, term, type, data: Uint8Array.prototype.slice.call(body, at, at + len) });
        at += len;
      }
    }
    items.push({ shard, hard, entries });
  }
  return items;
}

/** The file and where the next record goes. */
export class Wal {
  private readonly fd: number;
  private pos = 0;
  private allocated: number;
  /** Records appended and bytes written since the last {@link restart} (checkpoint policy, metrics). */
  records = 0;
  bytes = 0;

  constructor(
    readonly path: string,
    private gen: number,
  ) {
    const created = !existsSync(path);
    closeSync(openSync(path, 'a'));
    this.fd = openSync(path, 'r+');
    this.allocated = fstatSync(this.fd).size;
    if (created) {
      // Its name must outlive a power loss as surely as the records it will hold.
      const dir = openSync(dirname(path), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    }
  }

  generation(): number {
    return this.gen;
  }

  /** Every item of every valid record of the current generation, in order. */
  *replay(): Generator<WalItem> {
    const header = Buffer.alloc(HEADER_BYTES);
    let at = 0;
    for (;;) {
      if (readSync(this.fd, header, 0, HEADER_BYTES, at) < HEADER_BYTES) return;
      const len = header.readUInt32LE(0);
      if (header.readUInt32LE(8) !== this.gen || len > RECORD_BYTES_MAX) return;
      const rec = Buffer.allocUnsafe(HEADER_BYTES + len);
      if (readSync(this.fd, rec, 0, rec.length, at) < rec.length) return;
      if (crc32(rec.subarray(8)) !== rec.readUInt32LE(4)) return;
      yield* decodeBody(rec.subarray(HEADER_BYTES));
      at += rec.length;
    }
  }

  /**
   * Appends a turn's records and returns once they are on disk (one `fdatasync`). A replay after
   * a crash in between finds a prefix of them: nothing of the turn was acknowledged yet.
   */
  append(rec: WalRecord, targetBytes?: number): void {
    const bufs = rec.encode(this.gen, targetBytes);
    const total = bufs.reduce((n, b) => n + b.length, 0);
    if (this.pos + total > this.allocated) this.grow(this.pos + total);
    let at = this.pos;
    for (const buf of bufs) {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off, at + off);
      at += buf.length;
    }
    fdatasyncSync(this.fd);
    this.pos = at;
    this.records += bufs.length;
    this.bytes += total;
  }

  /** Bytes of records in the current generation. */
  size(): number {
    return this.pos;
  }

  /** After a checkpoint made generation `gen` durable: the next record goes to the file's start. */
  restart(gen: number): void {
    this.gen = gen;
    this.pos = 0;
  }

  close(): void {
    closeSync(this.fd);
  }

  private grow(needed: number): void {
    const target = Math.max(needed, this.allocated + GROW_BYTES);
    const zeros = Buffer.alloc(Math.min(GROW_BYTES, target - this.allocated));
    for (let at = this.allocated; at < target; at += zeros.length) {
      writeSync(this.fd, zeros, 0, Math.min(zeros.length, target - at), at);
    }
    this.allocated = target;
  }
}
