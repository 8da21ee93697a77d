/**
 * One shard's part of a worker's store (see store.ts): its three named LMDB databases, the mirror
 * of its meta, and what its logged turns wrote that waits for a checkpoint.
 */
import type { Database } from 'lmdb';
import type { DataReader, DataTxn } from './state-machine.js';
import type { ConfState, Entry, EntryType, HardState, LogIndex, ShardId, Snapshot, SnapshotMetadata, Storage, Term } from './raft/index.js';
import { RaftError, RaftErrorCode, assert, entrySize } from './raft/index.js';
import { SnapshotReader } from './snapshot-io.js';
import { decodeDataDump } from './data-dump.js';
import type { Store } from './store.js';
import type { WalItem } from './wal.js';

/**
 * First byte of the data keys the host keeps for itself (client sessions), so snapshots carry
 * them with the state machine's keys. State machines never write keys starting with it.
 */
export const RESERVED_PREFIX = 0xff;

const EMPTY = new Uint8Array(0);
const LOG_TYPE = 0;
const LOG_TERM = 1;
const LOG_HEADER_BYTES = 9;

function encodeLogEntry(e: Entry): Buffer {
  const out = Buffer.allocUnsafe(LOG_HEADER_BYTES + e.data.length);
  out.writeUInt8(e.type, LOG_TYPE);
  out.writeDoubleLE(e.term, LOG_TERM);
  out.set(e.data, LOG_HEADER_BYTES);
  return out;
}

function decodeLogEntry(index: LogIndex, b: Uint8Array): Entry {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    index,
    type: view.getUint8(LOG_TYPE) as EntryType,
    term: view.getFloat64(LOG_TERM, true) as Term,
    data: b.slice(LOG_HEADER_BYTES),
  };
}

/** The membership as of the applied index, and where the log was last compacted. */
interface ShardMeta {
  hard: HardState;
  applied: LogIndex;
  conf: ConfState;
  /** Index of the last entry of the log compacted away (0 for none) and its term. */
  compacted: { index: LogIndex; term: Term };
}

/** Node's own latin1 decoder, which takes any Uint8Array (undocumented: checked once, with a fallback). */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

/**
 * A key of the data database as a map key: latin1 keeps one char per byte, and the byte order.
 * Every read and write of applied data makes one, so no Buffer object is made for it: about three
 * times as fast for short keys (measured: 85 against 240 ns for 20 bytes).
 */
const keyOf: (k: Uint8Array) => string =
  typeof latin1Slice === 'function' ? (k) => latin1Slice.call(k, 0, k.length) : (k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');

/**
 * One shard's slice of the store: the raft {@link Storage} the core reads, plus the writes the
 * shard host makes inside {@link Store.commit} or {@link Store.logged}. The in-memory fields mirror
 * what is committed; a failed transaction crashes the worker (the mirror is rebuilt from disk on
 * restart).
 *
 * Between checkpoints a shard's writes of logged turns wait here: log entries past `dbLast` in
 * `tail` (durable in the write-ahead log), hard state and applied index in `meta` with a flag,
 * data writes in `overlay` (null: removed). Every read looks at them first.
 */
export class ShardStore implements Storage {
  private meta: ShardMeta;
  private first: LogIndex;
  private last: LogIndex;
  /** Last index whose LMDB log entry is current, and the last LMDB holds (a truncation may lie between). */
  private dbLast: LogIndex;
  private dbStoredLast: LogIndex;
  /** Entries dbLast + 1 .. last, not yet in LMDB. */
  private tail: Entry[] = [];
  private hardDirty = false;
  private appliedDirty = false;
  private readonly overlay = new Map<string, Buffer | null>();

  constructor(
    readonly id: ShardId,
    private readonly store: Store,
    private readonly log: Database<Buffer, number>,
    private readonly metaDb: Database<unknown, string>,
    readonly data: Database<Buffer, Buffer>,
  ) {
    const hard = metaDb.get('hard') as HardState | undefined;
    assert(hard !== undefined, `shard ${id}: meta has no hard state`);
    this.meta = {
      hard,
      applied: metaDb.get('applied') as LogIndex,
      conf: metaDb.get('conf') as ConfState,
      compacted: metaDb.get('compacted') as ShardMeta['compacted'],
    };
    this.first = (this.meta.compacted.index + 1) as LogIndex;
    let last = this.meta.compacted.index;
    for (const k of log.getKeys({ reverse: true, limit: 1 })) last = k as LogIndex;
    this.last = Math.max(last, this.meta.compacted.index) as LogIndex;
    this.dbLast = this.last;
    this.dbStoredLast = this.last;
  }

  // ------------------------------------------------------------------ Storage (reads)

  initialState(): { hardState: HardState; confState: ConfState } {
    // The commit index is written only with term and vote changes (it is volatile in raft and
    // re-learned from the leader); what is applied is known committed.
    const hard = this.meta.hard;
    return { hardState: { ...hard, commit: Math.max(hard.commit, this.meta.applied) as LogIndex }, confState: this.meta.conf };
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    if (lo < this.first) throw new RaftError(RaftErrorCode.Compacted, `entries: ${lo} is compacted (first ${this.first})`);
    if (hi > this.last + 1) throw new RaftError(RaftErrorCode.Unavailable, `entries: ${hi - 1} is beyond last ${this.last}`);
    const out: Entry[] = [];
    let bytes = 0;
    const dbHi = Math.min(hi, this.dbLast + 1);
    if (lo < dbHi) {
      for (const { key, value } of this.log.getRange({ start: lo, end: dbHi })) {
        const e = decodeLogEntry(key as LogIndex, value);
        if (e.index !== lo + out.length) assert(false, `shard ${this.id}: log hole at ${lo + out.length}`);
        bytes += entrySize(e);
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
    }
    for (let i = Math.max(lo, this.dbLast + 1); i < hi; i++) {
      const e = this.tail[i - this.dbLast - 1];
      if (e === undefined || e.index !== i) assert(false, `shard ${this.id}: log hole at ${i}`);
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    if (!(out.length > 0 || lo >= hi)) assert(false, `shard ${this.id}: entries [${lo}, ${hi}) missing`);
    return out;
  }

  term(i: LogIndex): Term {
    if (i === this.meta.compacted.index) return this.meta.compacted.term;
    if (i < this.first) throw new RaftError(RaftErrorCode.Compacted, `term: ${i} is compacted`);
    if (i > this.last) throw new RaftError(RaftErrorCode.Unavailable, `term: ${i} is unavailable`);
    if (i > this.dbLast) return this.tail[i - this.dbLast - 1]!.term;
    const b = this.log.getBinary(i);
    if (b === undefined) assert(false, `shard ${this.id}: log hole at ${i}`);
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getFloat64(LOG_TERM, true) as Term;
  }

  firstIndex(): LogIndex {
    return this.first;
  }

  lastIndex(): LogIndex {
    return this.last;
  }

  /**
   * The snapshot the raft core offers a follower: its metadata at the applied index, no data. The
   * data never travels inside a raft message: the shell streams it from {@link openSnapshotReader}
   * (at this index or a later one) and the follower installs it from a staged file.
   */
  snapshot(): Snapshot {
    const applied = this.meta.applied;
    return { metadata: { index: applied, term: this.term(applied), confState: this.meta.conf }, data: EMPTY };
  }

  /**
   * A reader of the data as of now, from one read transaction: its metadata is the applied index
   * (with its term and membership) of that same view, since applying and recording the applied
   * index share a transaction and this worker commits synchronously. Close it when done.
   */
  openSnapshotReader(): SnapshotReader {
    // The reader sees LMDB only: what waits for a checkpoint goes there first.
    if (this.hasPending()) this.store.commit(() => undefined);
    const txn = this.data.useReadTransaction();
    try {
      const metadata: SnapshotMetadata = { index: this.meta.applied, term: this.term(this.meta.applied), confState: this.meta.conf };
      return new SnapshotReader(metadata, this.data, txn);
    } catch (e) {
      txn.done();
      throw e;
    }
  }

  /**
   * The hard state, applied index and last log index a restart would find: read from the database
   * and the write-ahead log's file rather than from this object's mirror (tests use it to check
   * that nothing is acknowledged before it is stored).
   */
  readStored(): { hard: HardState; applied: LogIndex; lastIndex: LogIndex } {
    let last = this.meta.compacted.index;
    for (const k of this.log.getKeys({ reverse: true, limit: 1 })) last = Math.max(last, k) as LogIndex;
    let hard = this.metaDb.get('hard') as HardState;
    for (const it of this.store.walItems()) {
      if (it.shard !== this.id) continue;
      if (it.hard) hard = { ...hard, term: it.hard.term, vote: it.hard.vote };
      const end = it.entries?.[it.entries.length - 1];
      if (end) last = end.index;
    }
    return { hard, applied: this.metaDb.get('applied') as LogIndex, lastIndex: last };
  }

  /** The hard state last committed. */
  hardState(): HardState {
    return this.meta.hard;
  }

  /** Index of the last entry applied to the data (committed together with the data). */
  applied(): LogIndex {
    return this.meta.applied;
  }

  confState(): ConfState {
    return this.meta.conf;
  }

  /** Index of the last compacted entry (0: none). */
  compactedIndex(): LogIndex {
    return this.meta.compacted.index;
  }

  /** Read-only view of the data as applied (the database and what waits for a checkpoint). */
  reader(): DataReader {
    return this.access;
  }

  /** True while this shard has writes that wait for a checkpoint. */
  hasPending(): boolean {
    return this.tail.length > 0 || this.dbLast !== this.dbStoredLast || this.hardDirty || this.appliedDirty || this.overlay.size > 0;
  }

  /** True inside a logged turn: writes wait here for a checkpoint (no compaction then). */
  logging(): boolean {
    return this.store.isLogging();
  }

  // ------------------------------------------------------------------ writes (inside Store.commit or Store.logged)

  /**
   * Appends entries, replacing any conflicting suffix: into LMDB inside {@link Store.commit}, into
   * the turn's write-ahead log record and this shard's tail inside {@link Store.logged}.
   */
  append(entries: readonly Entry[]): void {
    this.store.assertInCommit();
    if (entries.length === 0) return;
    const lo = entries[0]!.index;
    if (!(lo >= this.first && lo <= this.last + 1)) assert(false, `shard ${this.id}: append at ${lo} outside [${this.first}, ${this.last + 1}]`);
    if (this.store.isLogging()) {
      this.store.walAdd(this, { shard: this.id, entries });
      this.appendTail(entries);
      return;
    }
    for (let i = lo; i <= this.last; i++) this.log.removeSync(i);
    for (const e of entries) this.log.putSync(e.index, encodeLogEntry(e));
    this.last = entries[entries.length - 1]!.index;
    this.dbLast = this.last;
    this.dbStoredLast = this.last;
  }

  private appendTail(entries: readonly Entry[]): void {
    const lo = entries[0]!.index;
    if (lo <= this.dbLast) {
      // A conflict reaches into LMDB's part: it is cut there at the next checkpoint.
      this.dbLast = (lo - 1) as LogIndex;
      this.tail = [];
    } else {
      this.tail.length = lo - this.dbLast - 1;
    }
    for (const e of entries) this.tail.push(e);
    this.last = entries[entries.length - 1]!.index;
  }

  /** At a store's opening: what one write-ahead log item says of this shard. */
  replay(it: WalItem): void {
    if (it.entries) {
      const entries = it.entries.filter((e) => e.index >= this.first);
      if (entries.length > 0) {
        const lo = entries[0]!.index;
        if (lo > this.last + 1) assert(false, `shard ${this.id}: write-ahead log appends at ${lo} after ${this.last}`);
        this.appendTail(entries);
        this.store.touch(this);
      }
    }
    if (it.hard) {
      this.meta.hard = { ...this.meta.hard, term: it.hard.term, vote: it.hard.vote };
      this.hardDirty = true;
      this.store.touch(this);
    }
  }

  /** Inside a checkpoint's transaction: writes what waits here into LMDB. */
  writePending(): void {
    for (let i = this.dbLast + 1; i <= this.dbStoredLast; i++) this.log.removeSync(i);
    for (const e of this.tail) this.log.putSync(e.index, encodeLogEntry(e));
    if (this.hardDirty) this.metaDb.putSync('hard', this.meta.hard);
    if (this.appliedDirty) {
      this.metaDb.putSync('applied', this.meta.applied);
      this.metaDb.putSync('conf', this.meta.conf);
    }
    for (const [k, v] of this.overlay) {
      const key = Buffer.from(k, 'latin1');
      if (v === null) this.data.removeSync(key);
      else this.data.putSync(key, v);
    }
  }

  /** Right after: the transaction holds it all (if it aborts, the store stops: see Store.commit). */
  clearPending(): void {
    this.dbLast = this.last;
    this.dbStoredLast = this.last;
    this.tail = [];
    this.hardDirty = false;
    this.appliedDirty = false;
    this.overlay.clear();
  }

  /**
   * Stores term and vote. A change of the commit index alone is not written: it would cost a
   * page per shard per turn, and raft does not need it durable (see {@link initialState}).
   */
  setHardState(h: HardState): void {
    this.store.assertInCommit();
    const stored = this.meta.hard;
    if (h.term !== stored.term || h.vote !== stored.vote) {
      if (this.store.isLogging()) {
        this.store.walAdd(this, { shard: this.id, hard: { term: h.term, vote: h.vote } });
        this.hardDirty = true;
      } else {
        this.metaDb.putSync('hard', h);
      }
      this.meta.hard = h;
    }
  }

  /** Records the applied index and the membership as of it (same transaction as the data writes). */
  setApplied(index: LogIndex, conf: ConfState): void {
    this.store.assertInCommit();
    if (index < this.meta.applied) assert(false, `shard ${this.id}: applied goes back ${this.meta.applied} -> ${index}`);
    if (this.store.isLogging()) {
      this.appliedDirty = true;
      this.store.touch(this);
    } else {
      this.metaDb.putSync('applied', index);
      if (conf !== this.meta.conf) this.metaDb.putSync('conf', conf);
    }
    this.meta.applied = index;
    this.meta.conf = conf;
  }

  /** The data database for a state machine applying inside this transaction. */
  txn(): DataTxn {
    this.store.assertInCommit();
    return this.access;
  }

  /** Reads a host-reserved key (first byte 0xff) of the data database. */
  reservedGet(key: Uint8Array): Uint8Array | undefined {
    assert(key[0] === RESERVED_PREFIX, 'reservedGet: key outside the reserved range');
    return this.get(key);
  }

  /** Writes a host-reserved key (first byte 0xff) inside {@link Store.commit}. */
  reservedPut(key: Uint8Array, value: Uint8Array): void {
    this.store.assertInCommit();
    assert(key[0] === RESERVED_PREFIX, 'reservedPut: key outside the reserved range');
    this.put(key, value);
  }

  /** Removes a host-reserved key inside {@link Store.commit}. */
  reservedRemove(key: Uint8Array): void {
    this.store.assertInCommit();
    assert(key[0] === RESERVED_PREFIX, 'reservedRemove: key outside the reserved range');
    this.remove(key);
  }

  /** Host-reserved keys starting with `prefix`, in key order (copies). */
  reservedScan(prefix: Uint8Array): { key: Uint8Array; value: Uint8Array }[] {
    assert(prefix[0] === RESERVED_PREFIX, 'reservedScan: prefix outside the reserved range');
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (const { key, value } of this.range(prefix, end, Infinity)) out.push({ key: Uint8Array.from(key), value: Uint8Array.from(value) });
    return out;
  }

  // ------------------------------------------------------------------ data, through the overlay

  private readonly access: DataTxn = {
    get: (key) => this.get(key),
    put: (key, value) => {
      assert(key.length > 0 && key[0] !== RESERVED_PREFIX, 'state machine keys must not start with 0xff');
      this.store.assertInCommit();
      this.put(key, value);
    },
    remove: (key) => {
      this.store.assertInCommit();
      this.remove(key);
    },
    range: (start, end, limit) => this.range(start, end, limit),
  };

  private get(key: Uint8Array): Uint8Array | undefined {
    if (this.overlay.size > 0) {
      const v = this.overlay.get(keyOf(key));
      if (v !== undefined) return v ?? undefined;
    }
    return this.data.get(Buffer.from(key.buffer, key.byteOffset, key.byteLength));
  }

  private put(key: Uint8Array, value: Uint8Array): void {
    if (this.store.isLogging()) {
      this.overlay.set(keyOf(key), Buffer.from(value));
      this.store.touch(this);
    } else {
      this.data.putSync(Buffer.from(key), Buffer.from(value));
    }
  }

  private remove(key: Uint8Array): void {
    if (this.store.isLogging()) {
      this.overlay.set(keyOf(key), null);
      this.store.touch(this);
    } else {
      this.data.removeSync(Buffer.from(key));
    }
  }

  /** Keys in [start, end) in key order, at most `limit`: LMDB's merged with the overlay's. */
  private range(start: Uint8Array, end: Uint8Array, limit: number): Iterable<{ key: Uint8Array; value: Uint8Array }> {
    if (this.overlay.size === 0) {
      const opts = Number.isFinite(limit) ? { start: Buffer.from(start), end: Buffer.from(end), limit } : { start: Buffer.from(start), end: Buffer.from(end) };
      return this.data.getRange(opts) as Iterable<{ key: Uint8Array; value: Uint8Array }>;
    }
    const db = this.data.getRange({ start: Buffer.from(start), end: Buffer.from(end) });
    const lo = keyOf(start);
    const hi = keyOf(end);
    const mine = [...this.overlay].filter(([k]) => k >= lo && k < hi).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return mergeRange(db as Iterable<{ key: Buffer; value: Buffer }>, mine, limit);
  }

  /**
   * Replaces log, data and membership by a snapshot, atomically (inside {@link Store.commit}). The
   * data comes from `pairs` (a staged dump, read piece by piece) or else from `snap.data`; either
   * must have been checked whole before (a throw here aborts the whole commit).
   */
  installSnapshot(snap: Snapshot, pairs?: Iterable<{ key: Uint8Array; value: Uint8Array }>): void {
    this.store.assertInCommit();
    assert(!this.store.isLogging() && !this.hasPending(), `shard ${this.id}: a snapshot installs in a checkpoint's commit`);
    const { index, term, confState } = snap.metadata;
    if (pairs === undefined) {
      // Validate the whole dump before touching anything.
      for (const _ of decodeDataDump(snap.data)) {
        /* throws BadSnapshot */
      }
    }
    this.data.clearSync();
    for (const { key, value } of pairs ?? decodeDataDump(snap.data)) this.data.putSync(Buffer.from(key), Buffer.from(value));
    for (let i = this.first; i <= this.last; i++) this.log.removeSync(i);
    const compacted = { index, term };
    this.metaDb.putSync('compacted', compacted);
    this.metaDb.putSync('applied', index);
    this.metaDb.putSync('conf', confState);
    this.meta = { ...this.meta, applied: index, conf: confState, compacted };
    this.first = (index + 1) as LogIndex;
    this.last = index;
    this.dbLast = index;
    this.dbStoredLast = index;
  }

  /**
   * Drops log entries up to `index` (<= applied). Snapshots are taken at the applied index (see
   * {@link snapshot}), so the compaction point needs no data of its own.
   */
  compact(index: LogIndex): void {
    this.store.assertInCommit();
    assert(!this.store.isLogging(), `shard ${this.id}: compaction runs in a checkpoint's commit`);
    if (index <= this.meta.compacted.index) return;
    assert(index <= this.meta.applied, `shard ${this.id}: compact ${index} beyond applied ${this.meta.applied}`);
    const compacted = { index, term: this.term(index) };
    for (let i = this.first; i <= index; i++) this.log.removeSync(i);
    this.metaDb.putSync('compacted', compacted);
    this.meta.compacted = compacted;
    this.first = (index + 1) as LogIndex;
  }
}

/** The database's pairs with the overlay's (sorted, null: removed) laid over them, at most `limit`. */
function* mergeRange(
  db: Iterable<{ key: Buffer; value: Buffer }>,
  mine: readonly [string, Buffer | null][],
  limit: number,
): Generator<{ key: Uint8Array; value: Uint8Array }> {
  let i = 0;
  let n = 0;
  for (const { key, value } of db) {
    const k = key.toString('latin1');
    for (; i < mine.length && mine[i]![0] < k; i++) {
      const [mk, mv] = mine[i]!;
      if (mv === null) continue;
      yield { key: Buffer.from(mk, 'latin1'), value: mv };
      if (++n >= limit) return;
    }
    if (i < mine.length && mine[i]![0] === k) {
      const mv = mine[i++]![1];
      if (mv === null) continue;
      yield { key, value: mv };
    } else {
      yield { key, value };
    }
    if (++n >= limit) return;
  }
  for (; i < mine.length; i++) {
    const [mk, mv] = mine[i]!;
    if (mv === null) continue;
    yield { key: Buffer.from(mk, 'latin1'), value: mv };
    if (++n >= limit) return;
  }
}
