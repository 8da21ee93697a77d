/**
 * The built-in multi-tenant key-value state machine and the binary encoding of its requests and
 * replies: the public face of this folder.
 *
 * - limits.ts:  size limits ({@link KvLimits}), their bounds, defaults and validation
 * - request.ts: request layouts (encoders, {@link decodeKvRequest}) and {@link checkKvRequest}
 * - reply.ts:   ops, error codes, reply layouts and {@link decodeKvReply}
 * - storage.ts: data keys and the stored value format in the shard's data database
 * - machine.ts: {@link KvStateMachine} (apply, query, validateCommand)
 */
export {
  KEY_BYTES_LIMIT,
  KV_LIMITS_DEFAULT,
  SCAN_BYTES_LIMIT,
  SCAN_ITEM_OVERHEAD_BYTES,
  SCAN_LIMIT_LIMIT,
  SCAN_REPLY_HEADER_BYTES,
  STORE_KEY_BYTES_MAX,
  VALUE_BYTES_LIMIT,
  kvBodyBytesMax,
  resolveKvLimits,
} from './limits.js';
export type { KvLimits } from './limits.js';
export {
  TENANT_BYTES_MAX,
  checkKvRequest,
  decodeKvRequest,
  encodeCas,
  encodeDelete,
  encodeDeleteIf,
  encodeGet,
  encodePut,
  encodeScan,
  encodeUsage,
  isKvCommandOp,
  isValidTenant,
  kvCommandBytesMax,
} from './request.js';
export type {
  CasRequest,
  DeleteIfRequest,
  DeleteRequest,
  GetRequest,
  KvCommand,
  KvQuery,
  KvRequest,
  PutRequest,
  ScanRequest,
  UsageRequest,
} from './request.js';
export { KvError, KvErrorCode, KvOp, decodeKvReply, encodeKvFailure } from './reply.js';
export type {
  CasReply,
  DeleteIfReply,
  DeleteReply,
  GetReply,
  KvFailure,
  KvReplies,
  KvReply,
  KvReplyOf,
  PutReply,
  ScanItem,
  ScanReply,
  UsageReply,
} from './reply.js';
export { USAGE_PREFIX, dataKey, usageKey } from './storage.js';
export type { TenantUsage } from './storage.js';
export { KvStateMachine } from './machine.js';
