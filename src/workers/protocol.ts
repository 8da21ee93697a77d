import type { KvLimits } from '../shards/kv/index.js';
import type { RaftConfig } from '../shards/raft/index.js';

/**
 * Codes a worker answers a client request with on its own (besides the shard host's and the state
 * machine's). `ReplyTooLarge`: the reply does not fit one out-ring record; it replaces the reply
 * at once instead of being dropped, so the caller never waits for a deadline.
 */
export const WorkerReplyCode = {
  ReplyTooLarge: 'ReplyTooLarge',
} as const;

/**
 * Directory of worker `worker`'s LMDB environment inside the data directory `dataDir`: the one
 * place that names it (the worker opens its store there; src/main/data-dir.ts shows it).
 */
export function workerDir(dataDir: string, worker: number): string {
  return `${dataDir}/worker-${worker}`;
}

/** What the pool hands each worker thread at start (structured-cloned, rings shared). */
export interface WorkerInit {
  readonly worker: number;
  readonly workers: number;
  /** The node's data directory; this worker's LMDB environment is {@link workerDir}(dataDir, worker). */
  readonly dataDir: string;
  readonly nodeId: number;
  readonly seed: number;
  /** main -> worker records (raft messages in, client proposals and reads). */
  readonly inRing: SharedArrayBuffer;
  /** worker -> main records (raft messages out, client replies, shard events). */
  readonly outRing: SharedArrayBuffer;
  readonly tickMs: number;
  /**
   * Payload bytes the worker's outbox may hold for a full out-ring before it counts as full: then
   * raft messages are dropped (raft resends) and client requests stay in the in-ring. The worker
   * never blocks on the out-ring. See outbox.ts.
   */
  readonly outboxBytesMax: number;
  readonly shardsMax: number;
  readonly raft: Omit<RaftConfig, 'id' | 'storage' | 'prng' | 'applied' | 'bugs'>;
  readonly compactEveryEntries: number;
  readonly compactKeepEntries: number;
  readonly kvLimits: Partial<KvLimits> | undefined;
  /** A module exporting `createStateMachine(options)`, instead of the built-in KV. */
  readonly stateMachine: { readonly module: string; readonly options: unknown } | undefined;
}

/** Messages a worker posts outside comlink. */
export type WorkerNotice = { readonly type: 'started' } | { readonly type: 'start-failed'; readonly code: string; readonly message: string };
