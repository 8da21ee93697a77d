/**
 * The durable home of a worker's shards: one LMDB environment per worker, and inside it three
 * named databases per shard:
 *
 * - `s<id>/log`  raft index -> entry (type u8, term f64, data)
 * - `s<id>/meta` hard state, applied index, membership as of applied, compaction point
 * - `s<id>/data` the state machine's keys (and the host's client sessions under 0xff)
 *
 * beside it a write-ahead log (wal.ts), and in memory, per shard, what waits for a checkpoint.
 *
 * A worker turn is logged ({@link Store.logged}): the log entries and hard states its shards
 * write go into one record of the write-ahead log, on disk with one `fdatasync` when the turn's
 * writes return (group commit: every shard of the worker in one record); the data it applies and
 * the applied indexes wait in memory, where reads see them. A checkpoint ({@link Store.commit},
 * every ~100 ms with writes waiting, and before anything that reads LMDB alone) writes all of
 * that into LMDB in one durable transaction, so a commit carries hundreds of entries instead of a
 * turn's few. A restart replays the write-ahead log into the log (and hard state) and applies
 * again from the applied index of the last checkpoint: applying is a deterministic function of
 * the log, and LMDB's data and applied index change together, in one transaction.
 *
 * A root database `manifest` records the worker count the data directory was laid out with, so a
 * restart with another count refuses to start instead of opening empty shards.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import type { ConfState, LogIndex, NodeId, ShardId, Term } from './raft/index.js';
import { assert } from './raft/index.js';
import { StoreError } from './store-error.js';
import { ShardStore } from './shard-store.js';
import { Wal, WalRecord } from './wal.js';
import type { WalItem } from './wal.js';

export { StoreError } from './store-error.js';
export { RESERVED_PREFIX, ShardStore } from './shard-store.js';
export { decodeDataDump, encodeDataDump } from './data-dump.js';

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
  /**
   * Turns write their log entries and hard states to the write-ahead log and the rest waits in
   * memory for a checkpoint (default true); false: every turn is one durable LMDB commit.
   */
  readonly wal?: boolean;
  /** A checkpoint is due this long after the last one, with writes waiting. Default 100 ms (see README, Figures). */
  readonly checkpointMs?: number;
  /** ... or once the write-ahead log holds this many bytes. Default 16 MiB. */
  readonly checkpointBytes?: number;
  /** Told how long each durable write took: a turn's write-ahead log records, a checkpoint. */
  readonly observe?: StoreObserver | undefined;
}

/** Durations of the store's durable writes, in seconds (metrics). */
export interface StoreObserver {
  /** A logged turn's records written and flushed (write and `fdatasync`). */
  walSync(seconds: number): void;
  /** A checkpoint's LMDB transaction, written and flushed. */
  checkpoint(seconds: number): void;
}

/** One worker's LMDB environment, and its write-ahead log. */
export class Store {
  private readonly env: RootDatabase;
  private readonly shardsDb: Database<{ created: true }, number>;
  private readonly walDb: Database<number, string>;
  private readonly shards = new Map<ShardId, ShardStore>();
  private mode: 'commit' | 'logged' | 'replay' | undefined;
  private closed = false;
  private failed = false;
  private readonly wal: Wal;
  private record: WalRecord | undefined;
  /** Shards with writes that wait for a checkpoint. */
  private readonly pending = new Set<ShardStore>();
  private lastCheckpointMs = performance.now();
  /** Durable LMDB commits so far (observability and tests). */
  commits = 0;

  private constructor(readonly options: Required<StoreOptions>) {
    mkdirSync(options.path, { recursive: true });
    this.env = open({
      path: options.path,
      maxDbs: options.shardsMax * 3 + 5,
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
    this.walDb = this.env.openDB({ name: 'wal' });
    this.wal = new Wal(join(options.path, 'wal'), this.walDb.get('generation') ?? 1);
    try {
      this.replayWal();
    } catch (e) {
      this.wal.close();
      this.env.close().catch(() => undefined);
      throw e;
    }
  }

  static open(opts: StoreOptions): Store {
    return new Store({
      shardsMax: 1024,
      mapSizeBytes: 8 * 1024 ** 3,
      wal: true,
      checkpointMs: 100,
      checkpointBytes: 16 * 1024 ** 2,
      observe: undefined,
      ...opts,
    });
  }

  /**
   * What the write-ahead log holds goes back into the shards, then into LMDB by a checkpoint,
   * which also starts the next generation (so no record of this one is read again).
   */
  private replayWal(): void {
    this.mode = 'replay';
    try {
      for (const it of this.wal.replay()) if (this.has(it.shard)) this.shard(it.shard).replay(it);
    } finally {
      this.mode = undefined;
    }
    this.commit(() => undefined);
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
    assert(this.mode === undefined, 'store: batch inside a commit');
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
    assert(this.mode === undefined, 'store: drop inside a commit');
    if (!this.has(id)) return false;
    // A checkpoint with the drop: no record of the write-ahead log names the shard afterwards, so a
    // later create of the same id starts empty after a restart too.
    this.commit(() => {
      // Opened (or reopened) here, so the handles dropped are this transaction's own; drop with
      // delete frees each name and its slot of maxDbs.
      this.env.openDB<Buffer, number>({ name: `s${id}/log`, encoding: 'binary' }).dropSync();
      this.metaDb(id).dropSync();
      this.env.openDB<Buffer, Buffer>({ name: `s${id}/data`, encoding: 'binary', keyEncoding: 'binary' }).dropSync();
      this.shardsDb.removeSync(id);
    });
    this.shards.delete(id);
    assert(!this.has(id), `store: shard ${id} still listed after drop`);
    return true;
  }

  private metaDb(id: ShardId): Database<unknown, string> {
    return this.env.openDB<unknown, string>({ name: `s${id}/meta` });
  }

  /**
   * A checkpoint and `fn` in one write transaction, committed durably: first what the shards hold
   * for a checkpoint, then what `fn` writes (straight into LMDB), then the write-ahead log's next
   * generation; when this returns, all of it is on disk and the log starts over. If `fn` throws,
   * nothing is written and the error propagates; if writes were waiting, the store then refuses
   * further use (`StoreFailed`: they are in the write-ahead log still, for the reopening).
   */
  commit(fn: () => void): void {
    this.usable();
    assert(this.mode === undefined, 'store: nested commit');
    // Records carry it as a u32; only equality matters, so it wraps (after 4e9 checkpoints).
    const gen = this.wal.generation() >= 0xffffffff ? 1 : this.wal.generation() + 1;
    const waited = this.pending.size > 0;
    const t0 = performance.now();
    this.mode = 'commit';
    try {
      this.env.transactionSync(() => {
        // From here `fn` reads and writes LMDB alone, and the shards' mirrors say so.
        for (const ss of this.pending) {
          ss.writePending();
          ss.clearPending();
        }
        this.pending.clear();
        fn();
        this.walDb.putSync('generation', gen);
      });
    } catch (e) {
      if (waited) this.failed = true;
      throw e;
    } finally {
      this.mode = undefined;
    }
    this.wal.restart(gen);
    this.lastCheckpointMs = performance.now();
    this.options.observe?.checkpoint((this.lastCheckpointMs - t0) / 1000);
    this.commits++;
  }

  /**
   * Runs `fn` as a logged turn: the log entries and hard states it writes go into one record of
   * the write-ahead log, durable (one `fdatasync`) when this returns; its other writes (applied
   * data, applied index) wait in memory for a checkpoint, and every read sees them meanwhile. A
   * restart replays the log from the applied index of the last checkpoint. If `fn` throws half
   * way, or its record cannot be written, the store refuses all further use (`StoreFailed`): the
   * worker must stop and reopen it.
   * Without a write-ahead log (`wal: false`) this is {@link commit}.
   */
  logged(fn: () => void): void {
    if (!this.options.wal) return this.commit(fn);
    this.usable();
    assert(this.mode === undefined, 'store: nested commit');
    this.mode = 'logged';
    const rec = new WalRecord();
    this.record = rec;
    try {
      fn();
    } catch (e) {
      this.failed = true;
      throw e;
    } finally {
      this.mode = undefined;
      this.record = undefined;
    }
    if (rec.empty()) return;
    const t0 = performance.now();
    try {
      this.wal.append(rec);
      this.options.observe?.walSync((performance.now() - t0) / 1000);
    } catch (e) {
      // The shards' memory holds the turn; the disk may not (a full disk, an I/O error).
      this.failed = true;
      throw e;
    }
  }

  /** True when writes have waited long enough, or the write-ahead log has grown enough, for a checkpoint. */
  checkpointDue(): boolean {
    if (this.pending.size === 0) return false;
    return this.wal.size() >= this.options.checkpointBytes || performance.now() - this.lastCheckpointMs >= this.options.checkpointMs;
  }

  /** Records and bytes appended to the write-ahead log so far. */
  walTotals(): { records: number; bytes: number } {
    return { records: this.wal.records, bytes: this.wal.bytes };
  }

  isLogging(): boolean {
    return this.mode === 'logged' || this.mode === 'replay';
  }

  /** A shard's write of a logged turn: into this turn's record. */
  walAdd(ss: ShardStore, item: WalItem): void {
    assert(this.record !== undefined, 'store: a write-ahead log item outside a logged turn');
    this.record.add(item);
    this.pending.add(ss);
  }

  touch(ss: ShardStore): void {
    this.pending.add(ss);
  }

  /** The write-ahead log's items as its file holds them now (tests check what is durable). */
  walItems(): WalItem[] {
    return [...this.wal.replay()];
  }

  assertInCommit(): void {
    assert(this.mode !== undefined, 'store: write outside commit()');
  }

  private usable(): void {
    if (this.closed) throw new StoreError('StoreClosed', 'store is closed');
    if (this.failed) throw new StoreError('StoreFailed', 'a logged turn failed half way: reopen the store');
  }

  /** A checkpoint of what waits, then closes the environment. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pending.size > 0 && !this.failed) this.commit(() => undefined);
    this.closed = true;
    this.shards.clear();
    this.wal.close();
    await this.env.close();
  }
}
