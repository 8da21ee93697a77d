/**
 * Where data lives. A key belongs to shard `hash(tenant, key) % shards` (FNV-1a over the tenant's
 * bytes, a 0 byte, then the key's bytes: stable across versions, platforms and restarts, so a
 * key never moves while the shard count stays). A shard's replicas are `replicas` consecutive
 * members, starting at `shard % members`, in the order of the sorted member list.
 */
import type { NodeId, ShardId } from '../shards/raft/index.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function shardOf(tenant: string, key: Uint8Array, shards: number): ShardId {
  let h = FNV_OFFSET;
  for (let i = 0; i < tenant.length; i++) {
    h ^= tenant.charCodeAt(i) & 0xff;
    h = Math.imul(h, FNV_PRIME);
  }
  h = Math.imul(h, FNV_PRIME); // the 0 separator
  for (let i = 0; i < key.length; i++) {
    h ^= key[i]!;
    h = Math.imul(h, FNV_PRIME);
  }
  return ((h >>> 0) % shards) as ShardId;
}

/** The replica set of `shard`: `replicas` members (sorted ids), consecutive from `shard % n`. */
export function replicasOf(shard: ShardId, members: readonly NodeId[], replicas: number): NodeId[] {
  const sorted = [...members].sort((a, b) => a - b);
  const n = sorted.length;
  const out: NodeId[] = [];
  for (let i = 0; i < Math.min(replicas, n); i++) out.push(sorted[(shard + i) % n]!);
  return out;
}

/** Shards whose replica set includes `self`, with their voters. */
export function localShards(self: NodeId, members: readonly NodeId[], shards: number, replicas: number): { shard: ShardId; voters: NodeId[] }[] {
  const out: { shard: ShardId; voters: NodeId[] }[] = [];
  for (let s = 0; s < shards; s++) {
    const voters = replicasOf(s as ShardId, members, replicas);
    if (voters.includes(self)) out.push({ shard: s as ShardId, voters });
  }
  return out;
}
