/**
 * `iroh-raft`: the engine as a library. Host shards in worker threads with a {@link WorkerPool},
 * propose commands and read through it; the built-in multi-tenant KV's request and reply codecs
 * are here, and so is the {@link StateMachine} interface for a state machine of your own (a module
 * exporting `createStateMachine(options)`, given to the pool as `stateMachine`).
 *
 * The HTTP client of a running cluster is `iroh-raft/client` (src/client); the node itself is the
 * `iroh-raft` command (src/main/cli.ts).
 */
export { WorkerPool, PoolError, PoolErrorCode } from './workers/pool.js';
export type { Membership, MembershipAnswer, MembershipChange, PoolOptions } from './workers/pool.js';
export type { Consistency, Outcome, ShardSpec } from './shards/host.js';
export type { AppliedCommand, DataReader, DataTxn, StateMachine } from './shards/state-machine.js';
export {
  KV_LIMITS_DEFAULT,
  KvError,
  KvErrorCode,
  KvOp,
  KvStateMachine,
  decodeKvReply,
  encodeCas,
  encodeDelete,
  encodeGet,
  encodePut,
  encodeScan,
  encodeUsage,
} from './shards/kv/index.js';
export type { CasReply, DeleteReply, GetReply, KvFailure, KvLimits, KvReply, PutReply, ScanItem, ScanReply, UsageReply } from './shards/kv/index.js';
export { nodeId, shardId } from './shards/raft/index.js';
export type { LogIndex, NodeId, ShardId, Term } from './shards/raft/index.js';
export { CodedError } from './errors.js';
