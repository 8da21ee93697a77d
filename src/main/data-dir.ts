/**
 * The data directory of one node, and everything in it:
 *
 * - `LOCK`: the pid of the one process using the directory;
 * - `cluster.json`: the shard count, replicas and members the directory was first started with;
 *   a later start must agree, since keys are placed by those;
 * - `node.key`: the Iroh secret key, the node's identity (loaded, or created once, by
 *   {@link DataDir.loadOrCreateKey}; the transport is handed the key's bytes);
 * - `worker-<w>/`: worker w's LMDB environment (the name is {@link workerDir}'s, which the
 *   worker threads use too; the store checks the worker count recorded inside it).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataDirError } from './data-dir-error.js';
import { loadOrCreateKey } from './node-key.js';
import type { KeyLogger } from './node-key.js';
import { workerDir } from '../workers/protocol.js';

export { DataDirError } from './data-dir-error.js';

/** What a data directory was first started with (`cluster.json`); a later start must agree. */
export interface ClusterLayout {
  /** Raft groups in the cluster; keys are placed by shard count. */
  readonly shards: number;
  /** Members' endpoint ids, sorted (raft node ids follow this order). */
  readonly members: readonly string[];
  /** Replicas per shard, at most the member count. */
  readonly replicas: number;
}

/** Releases a lock taken by {@link DataDir.lock}; safe to call more than once. */
export type Unlock = () => void;

export class DataDir {
  /** `LOCK`: the owner's pid, as decimal text. */
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

  /** The data directory at `path`, created (with its parents) when missing. Takes no lock. */
  static open(path: string): DataDir {
    mkdirSync(path, { recursive: true });
    return new DataDir(path);
  }

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
   * One process per data directory: the LOCK file holds the owner's pid. A lock whose process is
   * gone (killed) is taken over; a live one is refused with DataDirError `DataDirLocked`.
   */
  lock(): Unlock {
    const path = this.lockPath;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, String(process.pid), { flag: 'wx' });
        return () => rmSync(path, { force: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number(readFileSync(path, 'utf8'));
        let alive: boolean;
        try {
          alive = Number.isInteger(pid) && pid > 0 && pid !== process.pid && process.kill(pid, 0);
        } catch {
          alive = false;
        }
        if (alive) throw new DataDirError('DataDirLocked', `${this.path} is in use by process ${pid}; stop it first or use another --data directory`);
        rmSync(path, { force: true });
      }
    }
    throw new DataDirError('DataDirLocked', `${this.path}: could not take the LOCK file`);
  }

  /** The layout recorded in `cluster.json`, or undefined before the first start. */
  readCluster(): ClusterLayout | undefined {
    if (!existsSync(this.clusterPath)) return undefined;
    return JSON.parse(readFileSync(this.clusterPath, 'utf8')) as ClusterLayout;
  }

  /** Records `layout` in `cluster.json`. */
  writeCluster(layout: ClusterLayout): void {
    writeFileSync(this.clusterPath, `${JSON.stringify(layout, null, 2)}\n`);
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
