/**
 * The durable home of a worker's shards: one LMDB environment per worker, and inside it three
 * named databases per shard:
 *
 * - `s<id>/log`  raft index -> entry (type u8, term f64, data)
 * - `s<id>/meta` hard state, applied index, membership as of applied, compaction point
 * - `s<id>/data` the state machine's keys (and the host's client sessions under 0xff)
 *
 * All writes of one worker turn go into one transaction ({@link Store.commit}), committed with a
 * synchronous flush (`overlappingSync: false`): when `commit` returns, every shard's writes of the
 * turn are on disk, with one fsync for all of them (group commit).
 *
 * A root database `manifest` records the worker count the data directory was laid out with, so a
 * restart with another count refuses to start instead of opening empty shards.
 */
import { mkdirSync } from 'node:fs';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import type { DataReader, DataTxn } from './state-machine.js';
import type { ConfState, Entry, EntryType, HardState, LogIndex, NodeId, ShardId, Snapshot, SnapshotMetadata, Storage, Term } from './raft/index.js';
import { RaftError, RaftErrorCode, assert, entrySize } from './raft/index.js';
import { StoreError } from './store-error.js';
import { SnapshotReader } from './snapshot-io.js';

export { StoreError } from './store-error.js';

export interface StoreOptions {
  /** Directory of this worker's LMDB environment (created if missing). */
  readonly path: string;
  /** This worker's index and the pool's worker count; recorded at first open, checked after. */
  readonly worker: number;
  readonly workers: number;
  /** Upper bound on shards this store will hold (three named databases each). Default 1024. */
  readonly shardsMax?: number;
  /** LMDB map size in bytes (the file grows up to it). Default 8 GiB. */
  readonly mapSizeBytes?: number;
}

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

/** Snapshot data: the data database as a sequence of (key length u32, key, value length u32, value). */
export function encodeDataDump(pairs: Iterable<{ key: Uint8Array; value: Uint8Array }>): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const { key, value } of pairs) {
    // One copy per pair: range results may be views the database reuses.
    const rec = Buffer.allocUnsafe(8 + key.length + value.length);
    rec.writeUInt32LE(key.length, 0);
    rec.set(key, 4);
    rec.writeUInt32LE(value.length, 4 + key.length);
    rec.set(value, 8 + key.length);
    parts.push(rec);
    size += rec.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function* decodeDataDump(b: Uint8Array): Generator<{ key: Uint8Array; value: Uint8Array }> {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  const take = (): Uint8Array => {
    if (at + 4 > b.length) throw new StoreError('BadSnapshot', `snapshot data truncated at byte ${at}`);
    const n = view.getUint32(at, true);
    at += 4;
    if (at + n > b.length) throw new StoreError('BadSnapshot', `snapshot data truncated at byte ${at}`);
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  while (at < b.length) {
    const key = take();
    const value = take();
    yield { key, value };
  }
}

/** The membership as of the applied index, and where the log was last compacted. */
interface ShardMeta {
  hard: HardState;
  applied: LogIndex;
  conf: ConfState;
  /** Index of the last entry of the log compacted away (0 for none) and its term. */
  compacted: { index: LogIndex; term: Term };
}

/**
 * One shard's slice of the store: the raft {@link Storage} the core reads, plus the writes the
 * shard host makes inside {@link Store.commit}. The in-memory fields mirror what is committed; a
 * failed transaction crashes the worker (the mirror is rebuilt from disk on restart).
 */
export class ShardStore implements Storage {
  private meta: ShardMeta;
  private first: LogIndex;
  private last: LogIndex;

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
    for (const { key, value } of this.log.getRange({ start: lo, end: hi })) {
      const e = decodeLogEntry(key as LogIndex, value);
      assert(e.index === lo + out.length, `shard ${this.id}: log hole at ${lo + out.length}`);
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    assert(out.length > 0 || lo >= hi, `shard ${this.id}: entries [${lo}, ${hi}) missing`);
    return out;
  }

  term(i: LogIndex): Term {
    if (i === this.meta.compacted.index) return this.meta.compacted.term;
    if (i < this.first) throw new RaftError(RaftErrorCode.Compacted, `term: ${i} is compacted`);
    if (i > this.last) throw new RaftError(RaftErrorCode.Unavailable, `term: ${i} is unavailable`);
    const b = this.log.getBinary(i);
    assert(b !== undefined, `shard ${this.id}: log hole at ${i}`);
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
   * The hard state and applied index as stored on disk, read from the database rather than from
   * this object's mirror (tests use it to check that nothing is acknowledged before it is stored).
   */
  readStored(): { hard: HardState; applied: LogIndex; lastIndex: LogIndex } {
    let last = this.meta.compacted.index;
    for (const k of this.log.getKeys({ reverse: true, limit: 1 })) last = Math.max(last, k) as LogIndex;
    return { hard: this.metaDb.get('hard') as HardState, applied: this.metaDb.get('applied') as LogIndex, lastIndex: last };
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

  /** Read-only view of the data database as committed. */
  reader(): DataReader {
    return dataAccess(this.data);
  }

  // ------------------------------------------------------------------ writes (inside Store.commit)

  /** Appends entries, replacing any conflicting suffix. Must run inside {@link Store.commit}. */
  append(entries: readonly Entry[]): void {
    this.store.assertInCommit();
    if (entries.length === 0) return;
    const lo = entries[0]!.index;
    assert(lo >= this.first && lo <= this.last + 1, `shard ${this.id}: append at ${lo} outside [${this.first}, ${this.last + 1}]`);
    for (let i = lo; i <= this.last; i++) this.log.removeSync(i);
    for (const e of entries) this.log.putSync(e.index, encodeLogEntry(e));
    this.last = entries[entries.length - 1]!.index;
  }

  /**
   * Stores term and vote. A change of the commit index alone is not written: it would cost a
   * page per shard per turn, and raft does not need it durable (see {@link initialState}).
   */
  setHardState(h: HardState): void {
    this.store.assertInCommit();
    const stored = this.meta.hard;
    if (h.term !== stored.term || h.vote !== stored.vote) {
      this.metaDb.putSync('hard', h);
      this.meta.hard = h;
    }
  }

  /** Records the applied index and the membership as of it (same transaction as the data writes). */
  setApplied(index: LogIndex, conf: ConfState): void {
    this.store.assertInCommit();
    assert(index >= this.meta.applied, `shard ${this.id}: applied goes back ${this.meta.applied} -> ${index}`);
    this.metaDb.putSync('applied', index);
    if (conf !== this.meta.conf) this.metaDb.putSync('conf', conf);
    this.meta.applied = index;
    this.meta.conf = conf;
  }

  /** The data database for a state machine applying inside this transaction. */
  txn(): DataTxn {
    this.store.assertInCommit();
    return dataAccess(this.data);
  }

  /** Reads a host-reserved key (first byte 0xff) of the data database. */
  reservedGet(key: Uint8Array): Uint8Array | undefined {
    assert(key[0] === RESERVED_PREFIX, 'reservedGet: key outside the reserved range');
    return this.data.get(Buffer.from(key.buffer, key.byteOffset, key.byteLength));
  }

  /** Writes a host-reserved key (first byte 0xff) inside {@link Store.commit}. */
  reservedPut(key: Uint8Array, value: Uint8Array): void {
    this.store.assertInCommit();
    assert(key[0] === RESERVED_PREFIX, 'reservedPut: key outside the reserved range');
    this.data.putSync(Buffer.from(key), Buffer.from(value));
  }

  /** Removes a host-reserved key inside {@link Store.commit}. */
  reservedRemove(key: Uint8Array): void {
    this.store.assertInCommit();
    assert(key[0] === RESERVED_PREFIX, 'reservedRemove: key outside the reserved range');
    this.data.removeSync(Buffer.from(key));
  }

  /** Host-reserved keys starting with `prefix`, in key order (copies). */
  reservedScan(prefix: Uint8Array): { key: Uint8Array; value: Uint8Array }[] {
    assert(prefix[0] === RESERVED_PREFIX, 'reservedScan: prefix outside the reserved range');
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (const { key, value } of this.data.getRange({ start: Buffer.from(prefix), end }))
      out.push({ key: Uint8Array.from(key), value: Uint8Array.from(value) });
    return out;
  }

  /**
   * Replaces log, data and membership by a snapshot, atomically (inside {@link Store.commit}). The
   * data comes from `pairs` (a staged dump, read piece by piece) or else from `snap.data`; either
   * must have been checked whole before (a throw here aborts the whole commit).
   */
  installSnapshot(snap: Snapshot, pairs?: Iterable<{ key: Uint8Array; value: Uint8Array }>): void {
    this.store.assertInCommit();
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
  }

  /**
   * Drops log entries up to `index` (<= applied). Snapshots are taken at the applied index (see
   * {@link snapshot}), so the compaction point needs no data of its own.
   */
  compact(index: LogIndex): void {
    this.store.assertInCommit();
    if (index <= this.meta.compacted.index) return;
    assert(index <= this.meta.applied, `shard ${this.id}: compact ${index} beyond applied ${this.meta.applied}`);
    const compacted = { index, term: this.term(index) };
    for (let i = this.first; i <= index; i++) this.log.removeSync(i);
    this.metaDb.putSync('compacted', compacted);
    this.meta.compacted = compacted;
    this.first = (index + 1) as LogIndex;
  }
}

function dataAccess(db: Database<Buffer, Buffer>): DataTxn {
  return {
    get: (key) => db.get(Buffer.from(key.buffer, key.byteOffset, key.byteLength)),
    put: (key, value) => {
      assert(key.length > 0 && key[0] !== RESERVED_PREFIX, 'state machine keys must not start with 0xff');
      db.putSync(Buffer.from(key), Buffer.from(value));
    },
    remove: (key) => {
      db.removeSync(Buffer.from(key));
    },
    range: (start, end, limit) => db.getRange({ start: Buffer.from(start), end: Buffer.from(end), limit }) as Iterable<{ key: Uint8Array; value: Uint8Array }>,
  };
}

/**
 * First byte of the data keys the host keeps for itself (client sessions), so snapshots carry
 * them with the state machine's keys. State machines never write keys starting with it.
 */
export const RESERVED_PREFIX = 0xff;

/** One worker's LMDB environment. */
export class Store {
  private readonly env: RootDatabase;
  private readonly shardsDb: Database<{ created: true }, number>;
  private readonly shards = new Map<ShardId, ShardStore>();
  private inCommit = false;
  private closed = false;
  /** Durable commits so far (observability and tests). */
  commits = 0;

  private constructor(readonly options: Required<StoreOptions>) {
    mkdirSync(options.path, { recursive: true });
    this.env = open({
      path: options.path,
      maxDbs: options.shardsMax * 3 + 4,
      mapSize: options.mapSizeBytes,
      // Durability: a commit returns after the data is flushed, not merely visible.
      overlappingSync: false,
      noSync: false,
    });
    const manifest = this.env.openDB<{ workers: number; worker: number }, string>({ name: 'manifest' });
    const m = manifest.get('layout');
    if (m === undefined) {
      manifest.putSync('layout', { workers: options.workers, worker: options.worker });
    } else if (m.workers !== options.workers || m.worker !== options.worker) {
      this.env.close().catch(() => undefined);
      throw new StoreError(
        'WorkerCountMismatch',
        `${options.path} holds the shards of worker ${m.worker} of ${m.workers}; this start asks for worker ${options.worker} of ${options.workers}. ` +
          `Start with --workers ${m.workers} (shards are placed by shard % workers).`,
      );
    }
    this.shardsDb = this.env.openDB({ name: 'shards' });
  }

  static open(opts: StoreOptions): Store {
    return new Store({ shardsMax: 1024, mapSizeBytes: 8 * 1024 ** 3, ...opts });
  }

  /** Shards this store holds on disk. */
  shardIds(): ShardId[] {
    return [...this.shardsDb.getKeys({})].map((k) => k as ShardId);
  }

  has(id: ShardId): boolean {
    return this.shardsDb.get(id) !== undefined;
  }

  /**
   * Creates a new shard: a founding member starts from a snapshot at index 1 holding `members`
   * (see raft `initialSnapshot`); a replica added later passes empty voters and catches up by
   * snapshot. Throws ShardExists.
   */
  create(id: ShardId, voters: readonly NodeId[], learners: readonly NodeId[] = []): ShardStore {
    if (this.has(id)) throw new StoreError('ShardExists', `shard ${id} already exists`);
    const founding = voters.length > 0 || learners.length > 0;
    const confState: ConfState = { voters: [...voters], learners: [...learners] };
    const at = (founding ? 1 : 0) as LogIndex;
    const t = (founding ? 1 : 0) as Term;
    this.env.transactionSync(() => {
      const meta = this.metaDb(id);
      meta.putSync('hard', { term: t, vote: 0, commit: at });
      meta.putSync('applied', at);
      meta.putSync('conf', confState);
      meta.putSync('compacted', { index: at, term: t });
      this.shardsDb.putSync(id, { created: true });
    });
    this.commits++;
    return this.shard(id);
  }

  /**
   * Runs `fn` in one durable write transaction; the {@link create}s inside it become child
   * transactions, so creating thousands of shards at a first start costs one flush, not one (and
   * the named databases' creation) per shard. If `fn` throws, nothing it wrote stays.
   */
  batch<T>(fn: () => T): T {
    if (this.closed) throw new StoreError('StoreClosed', 'store is closed');
    assert(!this.inCommit, 'store: batch inside a commit');
    try {
      return this.env.transactionSync(fn);
    } catch (e) {
      // Shards it created are gone again: forget their handles too.
      for (const id of [...this.shards.keys()]) if (!this.has(id)) this.shards.delete(id);
      throw e;
    }
  }

  /** Opens an existing shard. Throws ShardNotFound. */
  shard(id: ShardId): ShardStore {
    if (this.closed) throw new StoreError('StoreClosed', 'store is closed');
    const open = this.shards.get(id);
    if (open) return open;
    if (!this.has(id)) throw new StoreError('ShardNotFound', `shard ${id} is not in ${this.options.path}`);
    if (this.shards.size >= this.options.shardsMax) {
      throw new StoreError('ShardExists', `store holds shardsMax=${this.options.shardsMax} shards`);
    }
    const s = new ShardStore(
      id,
      this,
      this.env.openDB<Buffer, number>({ name: `s${id}/log`, encoding: 'binary' }),
      this.metaDb(id),
      this.env.openDB<Buffer, Buffer>({ name: `s${id}/data`, encoding: 'binary', keyEncoding: 'binary' }),
    );
    this.shards.set(id, s);
    return s;
  }

  /**
   * Deletes everything this store holds for shard `id`: its log, meta and data databases (their
   * names are freed, so a later {@link create} starts empty) and its entry in the shard list, in
   * one durable transaction (a crash leaves either all of it or none). False when the store does
   * not hold the shard. The caller must have stopped using the shard first: its host closed, its
   * snapshot readers closed (LMDB closes a dropped database's handle, which an open reader still
   * uses). StoreError `StoreClosed` after close.
   */
  drop(id: ShardId): boolean {
    if (this.closed) throw new StoreError('StoreClosed', 'store is closed');
    assert(!this.inCommit, 'store: drop inside a commit');
    if (!this.has(id)) return false;
    this.env.transactionSync(() => {
      // Opened (or reopened) here, so the handles dropped are this transaction's own; drop with
      // delete frees each name and its slot of maxDbs.
      this.env.openDB<Buffer, number>({ name: `s${id}/log`, encoding: 'binary' }).dropSync();
      this.metaDb(id).dropSync();
      this.env.openDB<Buffer, Buffer>({ name: `s${id}/data`, encoding: 'binary', keyEncoding: 'binary' }).dropSync();
      this.shardsDb.removeSync(id);
    });
    this.shards.delete(id);
    this.commits++;
    assert(!this.has(id), `store: shard ${id} still listed after drop`);
    return true;
  }

  private metaDb(id: ShardId): Database<unknown, string> {
    return this.env.openDB<unknown, string>({ name: `s${id}/meta` });
  }

  /**
   * Runs `fn` in one write transaction and commits it durably: when this returns, everything `fn`
   * wrote is on disk. If `fn` throws, nothing is written and the error propagates.
   */
  commit(fn: () => void): void {
    if (this.closed) throw new StoreError('StoreClosed', 'store is closed');
    assert(!this.inCommit, 'store: nested commit');
    this.inCommit = true;
    try {
      this.env.transactionSync(fn);
    } finally {
      this.inCommit = false;
    }
    this.commits++;
  }

  assertInCommit(): void {
    assert(this.inCommit, 'store: write outside commit()');
  }

  /** Closes the environment after pending work (there is none between turns). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.shards.clear();
    await this.env.close();
  }
}
