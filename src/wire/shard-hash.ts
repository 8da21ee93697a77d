/**
 * The key -> shard function, shared by the router (src/router/placement.ts) and the client
 * (src/client), so a client computes the same shard as every node and can send a request straight
 * to the shard's leader.
 *
 * FNV-1a (32 bits) over the tenant's bytes, a 0 byte, then the key's bytes, modulo the shard count:
 * stable across versions, platforms and restarts, so a key never moves while the shard count stays.
 * Tenants are ASCII (the KV refuses any other), so a tenant's bytes are its char codes; only the
 * low byte of each is hashed.
 */

/** Name of {@link shardOf}, as `GET /v1/placement` reports it (`hash`); a new function gets a new name. */
export const SHARD_HASH = 'fnv1a32(tenant,0,key)%shards';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** The shard of `key` of `tenant` among `shards` (a positive integer): 0..shards-1. */
export function shardOf(tenant: string, key: Uint8Array, shards: number): number {
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
  return (h >>> 0) % shards;
}
