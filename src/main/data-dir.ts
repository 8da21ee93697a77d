/**
 * The data directory of one node, and everything in it:
 *
 * - `LOCK`: the pid of the one process using the directory (the lock itself is an abstract socket
 *   on Linux, see {@link DataDir.lock});
 * - `cluster.json`: the shard count, replicas and members the directory was first started with;
 *   a later start must agree, since keys are placed by those; and the cluster's key -> shard
 *   function once this node has read it;
 * - `node.key`: the Iroh secret key, the node's identity (loaded, or created once, by
 *   {@link DataDir.loadOrCreateKey}; the transport is handed the key's bytes);
 * - `worker-<w>/`: worker w's LMDB environment (the name is {@link workerDir}'s, which the
 *   worker threads use too; the store checks the worker count recorded inside it).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DataDirError } from './data-dir-error.js';
import { keyServed, loadOrCreateKey, markKeyServed } from './node-key.js';
import { syncDir, writeAtomic } from './durable-write.js';
import type { KeyLogger } from './node-key.js';
import { workerDir } from '../workers/protocol.js';
import { LOCK_KIND, lockDir } from './dir-lock.js';
import type { LockKind, Unlock } from './dir-lock.js';

export { DataDirError } from './data-dir-error.js';
export { syncDir, writeAtomic } from './durable-write.js';
export type { LockKind, Unlock } from './dir-lock.js';

/** What a data directory was first started with (`cluster.json`); a later start must agree. */
export interface ClusterLayout {
  /** Raft groups in the cluster; keys are placed by shard count. */
  readonly shards: number;
  /** Members' endpoint ids, sorted (raft node ids follow this order). */
  readonly members: readonly string[];
  /** Replicas per shard, at most the member count. */
  readonly replicas: number;
  /**
   * Worker stores (`worker-<w>/`) this node has run with: recorded once the stores of its first
   * start exist, so a later start knows that this node has voted and acknowledged writes (see
   * {@link DataDir.checkStores}). Absent before that, and in directories of older versions.
   */
  readonly workers?: number;
  /**
   * The cluster's key -> shard function for client tenants, as this node read it from the
   * cluster's record (src/router/placement-record.ts): `{"hash": KEYED_HASH, "key": "<32 hex>"}`
   * or `{"hash": UNKEYED_HASH}`, kept so a restart routes at once; `{"hash": "pending"}` in a
   * directory created by this version before that read. Absent in directories of older versions:
   * their cluster placed keys with the unkeyed function and keeps it.
   */
  readonly placement?: ClusterPlacement;
  /**
   * This node's raft id when it joined an existing cluster (`--join`); founders derive theirs from
   * the sorted `members`. A joined node's `members` is empty: the meta group (and `meta.json`) has them.
   */
  readonly node?: number;
  /**
   * `meta`: the reserved tenant `_system` (tenants, roles, the placement record) lives on the meta
   * group, set in directories this version creates and taken from the cluster's record on a join.
   * Absent in directories of clusters created before: their `_system` records stay on the data
   * shards, where they were written.
   */
  readonly system?: 'meta';
  /** True once this node created its founding replica of the meta group (or holds none by placement). */
  readonly meta?: boolean;
}

/** {@link ClusterLayout.placement}: the names are those of src/wire/shard-hash.ts. */
export type ClusterPlacement = { readonly hash: string; readonly key?: string };

export class DataDir {
  /** `LOCK`: the lock holder's pid, as decimal text. */
  readonly lockPath: string;
  /** `cluster.json`: the {@link ClusterLayout}, as JSON. */
  readonly clusterPath: string;
  /** `node.key`: the Iroh secret key as 64 lowercase hex characters (mode 0600). */
  readonly keyPath: string;

  private constructor(readonly path: string) {
    this.lockPath = join(path, 'LOCK');
    this.clusterPath = join(path, 'cluster.json');
    this.keyPath = join(path, 'node.key');
  }

  /**
   * The data directory at `path`, created (with its parents) when missing. Takes no lock. It holds
   * every tenant's data and the node's key, so only its owner may enter it: it is made mode 0700,
   * also when it existed with access for group or others (`tightened` then says from which mode).
   * What is inside needs no mode of its own then.
   */
  static open(path: string): DataDir {
    const first = mkdirSync(path, { recursive: true, mode: 0o700 });
    // A directory made here must survive a crash as the files in it do (a node key that vanished
    // with its directory would come back as a new identity): each new entry is flushed in its parent.
    if (first !== undefined)
      for (let d = resolve(path); ; d = dirname(d)) {
        try {
          syncDir(dirname(d));
        } catch (e) {
          // A parent this user may enter but not read (mode 0711) cannot be opened to flush it.
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'EACCES' && code !== 'EPERM') throw e;
        }
        if (d === resolve(first)) break;
      }
    const mode = statSync(path).mode & 0o777;
    const dir = new DataDir(path);
    if ((mode & 0o077) !== 0) {
      chmodSync(path, mode & 0o700);
      dir.tightened = mode;
    }
    return dir;
  }

  /** The mode `open` found and took group and other access from, if it did. */
  tightened: number | undefined;

  /**
   * The node's secret key (32 bytes) from `node.key`, created once (mode 0600, atomically, never
   * overwriting) when missing. DataDirError `BadKeyFile` when the file cannot be read or holds no key.
   */
  loadOrCreateKey(log: KeyLogger): Promise<Uint8Array> {
    return loadOrCreateKey(this.keyPath, log);
  }

  /** Directory of worker `worker`'s LMDB environment. */
  workerDir(worker: number): string {
    return workerDir(this.path, worker);
  }

  /**
   * One process per data directory, for the life of the process: on Linux an abstract Unix socket
   * named after the directory's device and inode, which the kernel releases when the process ends
   * (also by SIGKILL); elsewhere the pid file `LOCK` (see `dir-lock.ts` for both and their limits).
   * `LOCK` holds the holder's pid either way. Per process: a second call in the same process
   * succeeds. DataDirError `DataDirLocked` (naming the holder's pid when known) when another
   * process holds it.
   */
  lock(kind: LockKind = LOCK_KIND): Promise<Unlock> {
    return lockDir(this.path, this.lockPath, kind);
  }

  /**
   * Whether this node's identity has served a replica (`node.key` marked, see src/main/node-key.ts):
   * with no `cluster.json`, the rest of the directory was lost, not never made.
   */
  keyServed(): boolean {
    return keyServed(this.keyPath);
  }

  /** Marks `node.key` served (once; before the node votes or acknowledges anything). */
  markKeyServed(): void {
    markKeyServed(this.keyPath);
  }

  /** The layout recorded in `cluster.json`, or undefined before the first start. */
  readCluster(): ClusterLayout | undefined {
    if (!existsSync(this.clusterPath)) return undefined;
    return JSON.parse(readFileSync(this.clusterPath, 'utf8')) as ClusterLayout;
  }

  /**
   * Records `layout` in `cluster.json`, atomically: a temporary file, flushed, renamed over it, and
   * the directory flushed, so a crash leaves the old file or the new one, never a torn one.
   */
  writeCluster(layout: ClusterLayout): void {
    writeAtomic(this.clusterPath, `${JSON.stringify(layout, null, 2)}\n`);
  }

  /**
   * The amnesia guard: refuses with DataDirError `StoresLost` when `have` records worker stores
   * and one of them is gone (deleted, a disk lost) while the rest of the directory, the node key
   * among it, is here.
   */
  checkStores(have: ClusterLayout): void {
    if (have.workers === undefined) return;
    const lost: string[] = [];
    for (let w = 0; w < have.workers; w++) {
      const dir = workerDir(this.path, w);
      if (!existsSync(join(dir, 'data.mdb'))) lost.push(dir);
    }
    if (lost.length === 0) return;
    throw new DataDirError(
      'StoresLost',
      `${lost.join(', ')}: the store is gone, but this node has run with it (cluster.json records ${have.workers} worker stores) and its node.key is here. ` +
        'Starting would make it a replica that forgot its votes and the entries it acknowledged: it could help elect a leader that lacks committed writes. ' +
        'Restore the stores from a backup of this directory; or, for a member of a cluster of several nodes, start it with its --peers or as it joined: it then rejoins as a new replica under a new raft id; a node alone has no member to readmit it.',
    );
  }

  /**
   * Records, once the first start's stores exist, that this node has run with `workers` stores.
   * First flushes the directories that name the stores' files (`worker-<w>/` and this directory):
   * LMDB flushes its files but not their names, and a store whose name a crash lost is a node
   * that forgot its votes. Runs before the node votes or acknowledges anything.
   */
  recordStores(workers: number): void {
    const have = this.readCluster();
    if (have === undefined || have.workers !== undefined) return;
    for (let w = 0; w < workers; w++) syncDir(workerDir(this.path, w));
    syncDir(this.path);
    this.writeCluster({ ...have, workers });
  }

  /** Records that the meta group's founding replica exists here (or was never placed here). */
  recordMeta(): void {
    const have = this.readCluster();
    if (have === undefined || have.meta === true) return;
    this.writeCluster({ ...have, meta: true });
  }

  /** Records the cluster's key -> shard function once this node has read it (see {@link ClusterLayout.placement}). */
  recordPlacement(placement: ClusterPlacement): void {
    const have = this.readCluster();
    if (have === undefined) throw new DataDirError('ClusterMismatch', `${this.clusterPath} is gone while the node runs`);
    this.writeCluster({ ...have, placement });
  }

  /**
   * Records `want` at the first start; later, refuses a start whose shard count, replicas or
   * members differ from the recorded ones with DataDirError `ClusterMismatch`, naming the settings
   * to use.
   */
  checkCluster(want: ClusterLayout): void {
    const have = this.readCluster();
    if (have === undefined) {
      this.writeCluster(want);
      return;
    }
    this.checkStores(have);
    const problems: string[] = [];
    if (have.shards !== want.shards) problems.push(`--shards ${have.shards} (asked ${want.shards}; keys are placed by shard count)`);
    if (have.replicas !== want.replicas) problems.push(`--replicas ${have.replicas} (asked ${want.replicas})`);
    if (JSON.stringify(have.members) !== JSON.stringify(want.members))
      problems.push(`the same members (${have.members.length} then, ${want.members.length} now: pass the same --peers)`);
    if (problems.length > 0) {
      throw new DataDirError(
        'ClusterMismatch',
        `${this.path} belongs to a cluster started with ${problems.join(' and ')}; start with those settings, or use another --data directory`,
      );
    }
  }
}
