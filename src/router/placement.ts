/**
 * Where data lives. A key belongs to shard `hash(tenant, key) % shards`, the function in
 * src/wire/shard-hash.ts (shared with the client; stable across versions, platforms and restarts,
 * so a key never moves while the shard count stays). A shard's replicas are `replicas` consecutive
 * members, starting at `shard % members`, in the order of the sorted member list.
 */
import type { Served } from '../api/index.js';
import type { NodeId, ShardId } from '../shards/raft/index.js';
import { shardOf as wireShardOf } from '../wire/shard-hash.js';

/** The shard of a tenant's key (the function every node and client shares, src/wire/shard-hash.ts). */
export function shardOf(tenant: string, key: Uint8Array, shards: number): ShardId {
  return wireShardOf(tenant, key, shards) as ShardId;
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

/** `{ served }` for a request's outcome: its shard and the node that answered, when one did. */
export function served(shard: ShardId, o: { readonly node?: NodeId }): { served?: Served } {
  return o.node === undefined ? {} : { served: { shard, node: o.node } };
}
