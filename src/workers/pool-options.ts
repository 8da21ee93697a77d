/** The worker pool's options, their checks and its operating errors (see pool.ts). */
import type { ShardEvent, ShardSpec, SnapshotWish } from '../shards/host.js';
import { KvError, kvBodyBytesMax, resolveKvLimits } from '../shards/kv/index.js';
import type { KvLimits } from '../shards/kv/index.js';
import { PROPOSE_FIXED_BYTES_MAX, REPLY_FIXED_BYTES_MAX } from '../wire/index.js';
import { availableParallelism } from 'node:os';
import { resolveRecordFit } from './fit.js';
import type { RecordFit } from './fit.js';
import { maxPayloadBytes } from './ring.js';
import type { ShardId } from '../shards/raft/index.js';
import { CodedError } from '../errors.js';
import { WorkerReplyCode } from './protocol.js';
import type { WorkerInit } from './protocol.js';

/**
 * An operating error of the pool: `InvalidConfig` (bad options, or a bad shard spec at runtime),
 * `WorkerStartFailed`, `WorkerCountMismatch`, `PoolClosed`, `WorkerUnavailable` (the shard's worker
 * is restarting, or exited during the call: retry), `ShardLimit` (the worker's store holds
 * `shardsPerWorkerMax` shards).
 */
export class PoolError extends CodedError<'InvalidConfig' | 'WorkerStartFailed' | 'WorkerCountMismatch' | 'PoolClosed' | 'WorkerUnavailable' | 'ShardLimit'> {
  override readonly name = 'PoolError';
}

/** Default `startTimeoutMs`: a worker's start, and then the opening of its shards, each. */
export const START_TIMEOUT_MS = 60_000;

/** Operating errors a request can end with (besides the shard's own codes, e.g. NotLeader). */
export const PoolErrorCode = {
  /** The in-ring is full or the in-flight table is at `inflightRequestsMax`: retry later. */
  Overloaded: 'Overloaded',
  /** No reply before the deadline; the request may still be applied. */
  Timeout: 'Timeout',
  /** The worker hosting the shard crashed; the request may or may not have been applied. */
  WorkerRestarted: 'WorkerRestarted',
  /** The worker hosting the shard is restarting. */
  WorkerUnavailable: 'WorkerUnavailable',
  /** The pool is shutting down. */
  ShuttingDown: 'ShuttingDown',
  /** The request is too large for a ring record. */
  RequestTooLarge: 'RequestTooLarge',
  /** The reply is too large for a ring record (answered by the worker at once, see WorkerReplyCode). */
  ReplyTooLarge: WorkerReplyCode.ReplyTooLarge,
} as const;

export interface PoolOptions {
  /** Data directory; worker w keeps its LMDB environment in `workerDir(dataDir, w)` (`<dataDir>/worker-<w>`). */
  readonly dataDir: string;
  /** Worker threads. Default: the number of cores. */
  readonly workers?: number;
  /** This node's replica id in its shards. Default 1. */
  readonly nodeId?: number;
  /** Shards to host (each on worker `shard % workers`). */
  readonly shards: readonly ShardSpec[];
  /**
   * Bytes of each ring (power of two). Default 4 MiB. One record carries at most
   * `maxPayloadBytes(ringBytes)` (about half of it); every shard's `appendBytesMax` is derived from
   * that (see fit.ts), and with the built-in KV the largest request and reply its limits allow must
   * fit one record (see `kvBodyBytesMax`), or the pool refuses to start with InvalidConfig.
   */
  readonly ringBytes?: number;
  /**
   * The transport's `maxRecordBytes` when raft messages and forwarded requests leave this node:
   * a ring record larger than it is refused with InvalidConfig.
   */
  readonly peerRecordBytesMax?: number;
  /**
   * Payload bytes a worker keeps for its full out-ring (its outbox) before it drops raft messages
   * and stops taking client requests (they then get `Overloaded`). Default: `ringBytes`.
   */
  readonly outboxBytesMax?: number;
  /** Milliseconds per raft tick. Default 100. */
  readonly tickMs?: number;
  /** Requests waiting for a reply across all workers. Default 65,536. */
  readonly inflightRequestsMax?: number;
  /**
   * Request payload bytes waiting for a reply across all workers; a request that would go beyond
   * it is answered `Overloaded` at once (one request is always taken when none waits). The count
   * bound alone (`inflightRequestsMax`) would let 65,536 requests of 1 MiB pin 64 GiB.
   * Default 64 MiB.
   */
  readonly inflightBytesMax?: number;
  /** Default request deadline in milliseconds. Default 5,000. */
  readonly requestTimeoutMs?: number;
  /** How long close() waits for in-flight requests before stopping workers. Default 5,000 ms. */
  readonly closeTimeoutMs?: number;
  /**
   * How long a worker may take to say it started, and then to open its shards, before the start
   * (or restart) fails with WorkerStartFailed and the worker is stopped. Default 60,000 ms.
   */
  readonly startTimeoutMs?: number;
  /**
   * Shards one worker's store may hold (three LMDB named databases each): the store is sized for
   * it at start, and `WorkerPool.openShard` beyond it is refused with ShardLimit. Default:
   * the larger of 1,024 and the shards per worker at start.
   */
  readonly shardsPerWorkerMax?: number;
  readonly raft?: WorkerInit['raft'];
  readonly compactEveryEntries?: number;
  readonly compactKeepEntries?: number;
  /** Limits of the built-in KV (defaults: KV_LIMITS_DEFAULT); checked against the ring record size. */
  readonly kvLimits?: Partial<KvLimits>;
  readonly stateMachine?: { readonly module: string; readonly options?: unknown };
  /** Worker entry: default the compiled `worker.js` beside this file. */
  readonly workerUrl?: URL;
  /** Extra workerData for a bootstrap entry (tests load TypeScript through one). */
  readonly workerData?: Record<string, unknown>;
  /** Compression and checksums of exported snapshots run in this many piscina threads. Default 1. */
  readonly snapshotThreads?: number;
  /** piscina task module for snapshot chunks: default the compiled `chunk-task.js` beside this file. */
  readonly chunkTaskUrl?: URL;
  readonly chunkTaskData?: unknown;
  /** Seed for election timeouts; default random per start. */
  readonly seed?: number;
  /** Raft messages a worker sends to another replica (payload: the binary message layout; a copy). */
  readonly onRaftMessage?: (shard: ShardId, payload: Uint8Array) => void;
  readonly onShardEvent?: (shard: ShardId, e: ShardEvent) => void;
  /** A shard's core wants a follower to get a snapshot (the router streams it; see src/router/snapshots.ts). */
  readonly onSnapshotRequest?: (shard: ShardId, wish: SnapshotWish) => void;
}

/**
 * Resolves the KV limits and checks that the largest request and reply they allow fit one ring
 * record, so no KV answer is ever too large to carry. PoolError InvalidConfig otherwise.
 */
export function checkKvLimits(partial: Partial<KvLimits> | undefined, ringBytes: number): KvLimits {
  let limits: KvLimits;
  try {
    limits = resolveKvLimits(partial);
  } catch (e) {
    if (e instanceof KvError) throw new PoolError('InvalidConfig', `kvLimits: ${e.message}`);
    throw e;
  }
  // An invalid ring size is refused by Ring.allocate with its own message.
  if (!Number.isInteger(ringBytes) || ringBytes < 64 || (ringBytes & (ringBytes - 1)) !== 0) return limits;
  const recordMax = maxPayloadBytes(ringBytes);
  const { requestBytes, replyBytes } = kvBodyBytesMax(limits);
  if (PROPOSE_FIXED_BYTES_MAX + requestBytes > recordMax) {
    throw new PoolError(
      'InvalidConfig',
      `kvLimits: a write of valueBytesMax (${limits.valueBytesMax}) under keyBytesMax (${limits.keyBytesMax}) takes ${PROPOSE_FIXED_BYTES_MAX + requestBytes} bytes, ` +
        `more than one record of a ${ringBytes}-byte ring carries (${recordMax}); lower the limits or raise ringBytes`,
    );
  }
  if (REPLY_FIXED_BYTES_MAX + replyBytes > recordMax) {
    throw new PoolError(
      'InvalidConfig',
      `kvLimits: the largest reply (a Get of valueBytesMax ${limits.valueBytesMax}, or a scan of scanBytesMax ${limits.scanBytesMax} ` +
        `with ${limits.scanLimitMax} items) takes ${REPLY_FIXED_BYTES_MAX + replyBytes} bytes, more than one record of a ${ringBytes}-byte ring carries (${recordMax}); ` +
        `lower scanBytesMax, scanLimitMax or valueBytesMax, or raise ringBytes`,
    );
  }
  return limits;
}

/**
 * The pool's options checked and with their defaults: worker count, record sizes and what each
 * worker is started with. PoolError InvalidConfig naming the option otherwise.
 */
export function resolvePool(opts: PoolOptions): {
  workers: number;
  fit: RecordFit;
  init: Omit<WorkerInit, 'worker' | 'inRing' | 'outRing'>;
  inflightRequestsMax: number;
  inflightBytesMax: number;
} {
  const workers = opts.workers ?? availableParallelism();
  const check = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min) throw new PoolError('InvalidConfig', `${name} must be an integer >= ${min}, got ${v}`);
  };
  check('workers', workers, 1);
  const ringBytes = opts.ringBytes ?? 4 << 20;
  if (!Number.isInteger(ringBytes) || ringBytes < 1024 || ringBytes > 1 << 30 || (ringBytes & (ringBytes - 1)) !== 0) {
    throw new PoolError('InvalidConfig', `ringBytes must be a power of two in [1024, 2^30], got ${ringBytes}`);
  }
  let kvLimits: KvLimits | undefined;
  try {
    kvLimits = opts.stateMachine === undefined ? resolveKvLimits(opts.kvLimits) : undefined;
  } catch (e) {
    if (!(e instanceof KvError)) throw e;
    throw new PoolError('InvalidConfig', `kvLimits: ${e.message}`);
  }
  const fit = resolveRecordFit({ ringBytes, appendBytesMax: opts.raft?.appendBytesMax, peerRecordBytesMax: opts.peerRecordBytesMax, kvLimits });
  if ('problem' in fit) throw new PoolError('InvalidConfig', fit.problem);
  const shardsPerWorker = Math.ceil(opts.shards.length / workers);
  const init = {
    workers,
    dataDir: opts.dataDir,
    nodeId: opts.nodeId ?? 1,
    seed: opts.seed ?? Math.floor(Math.random() * 2 ** 31),
    tickMs: opts.tickMs ?? 100,
    outboxBytesMax: opts.outboxBytesMax ?? opts.ringBytes ?? 4 << 20,
    shardsMax: opts.shardsPerWorkerMax ?? Math.max(1024, shardsPerWorker),
    raft: { ...opts.raft, appendBytesMax: fit.appendBytesMax },
    compactEveryEntries: opts.compactEveryEntries ?? 10_000,
    compactKeepEntries: opts.compactKeepEntries ?? 1_000,
    kvLimits: opts.stateMachine ? opts.kvLimits : checkKvLimits(opts.kvLimits, opts.ringBytes ?? 4 << 20),
    stateMachine: opts.stateMachine ? { module: opts.stateMachine.module, options: opts.stateMachine.options } : undefined,
  };
  const inflightRequestsMax = opts.inflightRequestsMax ?? 65_536;
  const inflightBytesMax = opts.inflightBytesMax ?? 64 << 20;
  check('tickMs', init.tickMs, 1);
  check('outboxBytesMax', init.outboxBytesMax, 1);
  check('nodeId', init.nodeId, 1);
  check('inflightRequestsMax', inflightRequestsMax, 1);
  check('inflightBytesMax', inflightBytesMax, 1);
  check('requestTimeoutMs', opts.requestTimeoutMs ?? 5000, 1);
  check('startTimeoutMs', opts.startTimeoutMs ?? START_TIMEOUT_MS, 1);
  const ids = new Set<number>();
  for (const s of opts.shards) {
    check('shard id', s.shard, 0);
    if (ids.has(s.shard)) throw new PoolError('InvalidConfig', `shard ${s.shard} is listed twice`);
    ids.add(s.shard);
  }
  return { workers, fit, init, inflightRequestsMax, inflightBytesMax };
}
