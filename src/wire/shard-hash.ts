/**
 * The key -> shard functions, shared by the router (src/router/placement.ts) and the client
 * (src/client), so a client that knows its cluster's function computes the same shard as every
 * node and can send a request straight to the shard's leader.
 *
 * Two functions, both stable across versions, platforms and restarts (a key never moves while
 * the shard count stays); a cluster uses one for all its client tenants, chosen once:
 *
 * - {@link KEYED_HASH}, for clusters created by this version: SipHash-2-4 (64-bit output) under
 *   the cluster's 128-bit placement key, over the tenant's bytes, a 0 byte, then the key's bytes;
 *   the 64-bit value modulo the shard count. Without the placement key, nobody can choose keys that
 *   land on one shard (SipHash is a pseudorandom function of its key). The whole 64-bit value, not
 *   its high 32 bits: it is what `u64 % shards` gives in any other language (a client in Go or Rust
 *   needs no special rule), and it costs one more multiply here; either way the bias towards low
 *   shards is below shards / 2^32 (2^-16 at the 65,536 shards allowed), far under the noise.
 * - {@link UNKEYED_HASH}: FNV-1a (32 bits) over the same bytes, modulo the shard count. Clusters
 *   created before the keyed hash keep it (their data stays where it is), and the reserved tenant
 *   `_system` always uses it: its keys are the nodes' own, and the placement key itself lives
 *   there, so it must be found before that key is known.
 *
 * Tenants are ASCII (the KV refuses any other), so a tenant's bytes are its char codes; only the
 * low byte of each is hashed. Pure arithmetic on 32-bit halves: no BigInt on the hot path.
 */

/** Name of the unkeyed function, as `GET /v1/placement` reports it (`hash`). */
export const UNKEYED_HASH = 'fnv1a32(tenant,0,key)%shards';
/** Name of the keyed function, as `GET /v1/placement` reports it (`hash`). */
export const KEYED_HASH = 'siphash24(k;tenant,0,key)%shards';
/** Bytes of a placement key. */
export const PLACEMENT_KEY_BYTES = 16;

/** A key -> shard function with its name. */
export interface ShardHash {
  /** {@link UNKEYED_HASH} or {@link KEYED_HASH}. */
  readonly name: string;
  /** The shard of `key` of `tenant` among `shards` (a positive integer): 0..shards-1. */
  shardOf(tenant: string, key: Uint8Array, shards: number): number;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** The unkeyed shard of `key` of `tenant` among `shards` (a positive integer): 0..shards-1. */
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

/** The unkeyed function (see the module doc). */
export const unkeyedHash: ShardHash = { name: UNKEYED_HASH, shardOf };

/** The keyed function under `placementKey` (16 bytes; RangeError otherwise). */
export function keyedHash(placementKey: Uint8Array): ShardHash {
  const k = sipKey(placementKey);
  return {
    name: KEYED_HASH,
    shardOf: (tenant, key, shards) => {
      const msg = message(tenant, key);
      sip24(k, msg, tenant.length + 1 + key.length);
      // The whole 64-bit value modulo shards, as a u64 % n elsewhere would give:
      // (hi * 2^32 + lo) mod n, each product below 2^53 for n <= 2^26.
      const n = shards;
      return ((OUT[1]! % n) * (TWO_32 % n) + (OUT[0]! % n)) % n;
    },
  };
}

/**
 * The function `GET /v1/placement` names: `hash` and, for the keyed one, `placementKey` (32 hex
 * digits); undefined for a name this version does not know, `pending`, or a keyed hash without
 * its key (a tenant's token is not given it).
 */
export function hashOfPlacement(hash: string, placementKey?: string): ShardHash | undefined {
  if (hash === UNKEYED_HASH) return unkeyedHash;
  if (hash !== KEYED_HASH || placementKey === undefined || !/^[0-9a-f]{32}$/.test(placementKey)) return undefined;
  return keyedHash(Uint8Array.from({ length: PLACEMENT_KEY_BYTES }, (_, i) => parseInt(placementKey.slice(2 * i, 2 * i + 2), 16)));
}

/**
 * SipHash-2-4 of `msg` under `key` (16 bytes), as the 8 bytes of its 64-bit output in little-endian
 * order (the byte order of the reference test vectors). For tests and other implementations.
 */
export function sipHash24(key: Uint8Array, msg: Uint8Array): Uint8Array {
  const scratch = grow(msg.length);
  scratch.set(msg);
  sip24(sipKey(key), scratch, msg.length);
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, OUT[0]!, true);
  dv.setUint32(4, OUT[1]!, true);
  return out;
}

const TWO_32 = 0x1_0000_0000;

/** A SipHash key as four 32-bit words: k0 low, k0 high, k1 low, k1 high. */
type SipKey = readonly [number, number, number, number];

function sipKey(key: Uint8Array): SipKey {
  if (key.length !== PLACEMENT_KEY_BYTES) throw new RangeError(`a placement key is ${PLACEMENT_KEY_BYTES} bytes, got ${key.length}`);
  const w = (i: number): number => (key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24)) >>> 0;
  return [w(0), w(4), w(8), w(12)];
}

/** The hash's output: low 32 bits, high 32 bits (written by sip24). */
const OUT = new Uint32Array(2);
/** Reused message buffer, grown as needed (the wire is used by one thread per copy of it). */
let SCRATCH = new Uint8Array(256);

/** A scratch buffer with room for `len` bytes and the zero padding of the last block. */
function grow(len: number): Uint8Array {
  const need = (len & ~7) + 8;
  if (SCRATCH.length < need) SCRATCH = new Uint8Array(Math.max(need, SCRATCH.length * 2));
  return SCRATCH;
}

/** tenant's bytes, 0, key's bytes in the scratch buffer. */
function message(tenant: string, key: Uint8Array): Uint8Array {
  const tl = tenant.length;
  const buf = grow(tl + 1 + key.length);
  for (let i = 0; i < tl; i++) buf[i] = tenant.charCodeAt(i) & 0xff;
  buf[tl] = 0;
  // A loop, not set(): keys are short, and set()'s call costs more than copying them.
  for (let i = 0, o = tl + 1; i < key.length; i++, o++) buf[o] = key[i]!;
  return buf;
}

/** The little-endian 32-bit word at `o`, as a signed 32-bit integer. */
function le32(buf: Uint8Array, o: number): number {
  return buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24);
}

/**
 * Pads `buf[0..len)` to whole 8-byte blocks: the last block holds the bytes after the full ones,
 * zero padded, and len mod 256 in its top byte. Returns the number of full blocks before it.
 */
function padLastBlock(buf: Uint8Array, len: number): number {
  const full = len >>> 3;
  for (let i = len; i < full * 8 + 7; i++) buf[i] = 0;
  buf[full * 8 + 7] = len & 0xff;
  return full;
}

/**
 * SipHash-2-4 of `buf[0..len)` under `k` into OUT; `buf` must hold len rounded down to 8, plus 8
 * bytes. Each 64-bit word is a pair of 32-bit halves (h: high, l: low); additions carry from the
 * low half into the high one, rotations move bits across the halves.
 */
function sip24(k: SipKey, buf: Uint8Array, len: number): void {
  // v0..v3 = k0, k1, k0, k1 xor "somepseudorandomlygeneratedbytes".
  let v0l = (k[0] ^ 0x70736575) | 0;
  let v0h = (k[1] ^ 0x736f6d65) | 0;
  let v1l = (k[2] ^ 0x6e646f6d) | 0;
  let v1h = (k[3] ^ 0x646f7261) | 0;
  let v2l = (k[0] ^ 0x6e657261) | 0;
  let v2h = (k[1] ^ 0x6c796765) | 0;
  let v3l = (k[2] ^ 0x79746573) | 0;
  let v3h = (k[3] ^ 0x74656462) | 0;
  const full = padLastBlock(buf, len);
  let t: number;
  // Blocks 0..full are compressed with 2 rounds each; pass full + 1 is the finalization (4 rounds).
  for (let b = 0; b <= full + 1; b++) {
    const fin = b > full;
    if (fin) v2l = (v2l ^ 0xff) | 0;
    else {
      v3l ^= le32(buf, b * 8);
      v3h ^= le32(buf, b * 8 + 4);
    }
    for (let r = fin ? -2 : 0; r < 2; r++) {
      // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
      t = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (t >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = t;
      t = v1h;
      v1h = (v1h << 13) | (v1l >>> 19) | 0;
      v1l = (v1l << 13) | (t >>> 19) | 0;
      v1l = (v1l ^ v0l) | 0;
      v1h = (v1h ^ v0h) | 0;
      t = v0l;
      v0l = v0h;
      v0h = t;
      // v2 += v3; v3 <<<= 16; v3 ^= v2
      t = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (t >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = t;
      t = v3h;
      v3h = (v3h << 16) | (v3l >>> 16) | 0;
      v3l = (v3l << 16) | (t >>> 16) | 0;
      v3l = (v3l ^ v2l) | 0;
      v3h = (v3h ^ v2h) | 0;
      // v0 += v3; v3 <<<= 21; v3 ^= v0
      t = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (t >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
      v0l = t;
      t = v3h;
      v3h = (v3h << 21) | (v3l >>> 11) | 0;
      v3l = (v3l << 21) | (t >>> 11) | 0;
      v3l = (v3l ^ v0l) | 0;
      v3h = (v3h ^ v0h) | 0;
      // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
      t = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (t >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
      v2l = t;
      t = v1h;
      v1h = (v1h << 17) | (v1l >>> 15) | 0;
      v1l = (v1l << 17) | (t >>> 15) | 0;
      v1l = (v1l ^ v2l) | 0;
      v1h = (v1h ^ v2h) | 0;
      t = v2l;
      v2l = v2h;
      v2h = t;
    }
    if (!fin) {
      v0l ^= le32(buf, b * 8);
      v0h ^= le32(buf, b * 8 + 4);
    }
  }
  OUT[0] = v0l ^ v1l ^ v2l ^ v3l;
  OUT[1] = v0h ^ v1h ^ v2h ^ v3h;
}
