/**
 * The wire layer: the byte layouts shared by the SharedArrayBuffer rings and the Iroh frames, as
 * etcd keeps its in `raftpb`. A leaf: it imports nothing outside this folder (a lint rule says so),
 * so the rings, the transport, the router and the shards all build on it.
 *
 * - `record.ts`: the record header (length, kind, shard) and padding, {@link RecordKind}, and the
 *   frame of records the transport sends.
 * - `message.ts`: raft messages, varint-packed, starting with the type, from and to the router
 *   reads without decoding the body.
 * - `client.ts`: client writes, reads and replies (varint-packed too); `liveness.ts`: a node's
 *   heartbeat payload.
 * - `snapshot.ts`: the SnapshotRequest record and the messages of a snapshot stream.
 * - `shard-hash.ts`: the key -> shard function; `session.ts`: the id space of client sessions (both
 *   shared with the client library, src/client).
 * - `bytes.ts`: the one byte writer and reader under all of them (and the KV encodings), varints
 *   included.
 * - `errors.ts`: malformed input is a {@link CodecError} (`BadFrame`); asking to encode an invalid
 *   value is a bug, an {@link AssertionError}.
 *
 * Cold, rarely sent payloads (shard events, control, snapshot metadata) stay msgpack, outside this
 * folder.
 */

export { AssertionError, CodecError } from './errors.js';
export {
  ByteReader,
  ByteWriter,
  U16_MAX,
  U32_MAX,
  U8_MAX,
  UVARINT_BYTES_MAX,
  UVARINT_U32_BYTES_MAX,
  isU32,
  isU53,
  pooledBytes,
  pooledCopy,
  utf8Length,
  uvarintBytes,
} from './bytes.js';
export {
  RECORD_HEADER_BYTES,
  RecordKind,
  decodeFrame,
  encodeFrame,
  isRecordKind,
  recordBytes,
  recordKindAt,
  recordLengthAt,
  recordPadBytes,
  recordShardAt,
  writeRecordHeader,
} from './record.js';
export type { DecodedRecord, FrameRecord } from './record.js';
export {
  MESSAGE_ENTRY_FIXED_BYTES_MAX,
  MESSAGE_HEADER_BYTES_MAX,
  decodeMessage,
  encodeMessage,
  peekMessageFrom,
  peekMessageTo,
  peekMessageType,
} from './message.js';
export type { WireEntry, WireEntryType, WireLogIndex, WireMessage, WireMessageType, WireNodeId, WireSnapshot, WireTerm } from './message.js';
export {
  PROPOSE_FIXED_BYTES_MAX,
  READ_FIXED_BYTES_MAX,
  REPLY_FIXED_BYTES_MAX,
  ReadConsistency,
  clientFrameBoundBytes,
  decodePropose,
  decodeRead,
  decodeReply,
  encodePropose,
  encodeRead,
  encodeReply,
} from './client.js';
export type { ProposeFrame, ReadFrame, ReplyError, ReplyFrame, ReplyOk } from './client.js';
export { LEADS_TAG, LOAD_TAG, STOPPING_TAG, decodeLiveness, encodeLiveness, isStopping, leadsOf, leadsSection, stoppingSection } from './liveness.js';
export {
  SNAPSHOT_ALPN,
  SNAPSHOT_MESSAGE_BYTES_MAX,
  SnapAnswer,
  SnapMessageType,
  decodeSnapMessage,
  decodeSnapshotRequest,
  encodeSnapMessage,
  encodeSnapshotRequest,
  snapAnswerName,
} from './snapshot.js';
export type { SnapChunk, SnapEnd, SnapMessage, SnapOffer, SnapshotRequest } from './snapshot.js';
export type { LivenessFrame, LivenessSection, NodeLoad } from './liveness.js';
export { KEYED_HASH, PLACEMENT_KEY_BYTES, UNKEYED_HASH, hashOfPlacement, keyedHash, sipHash24, shardOf, unkeyedHash } from './shard-hash.js';
export type { ShardHash } from './shard-hash.js';
export { CLIENT_ID_HEADER, CLIENT_ID_MAX, CLIENT_ID_MIN, CLIENT_SEQ_HEADER, ROUTER_ID_LIMIT, isClientId } from './session.js';
