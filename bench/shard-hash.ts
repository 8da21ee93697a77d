/**
 * Nanoseconds per key of the key -> shard functions (src/wire/shard-hash.ts): the keyed SipHash-2-4
 * on 32-bit halves, the same on BigInt (the alternative it was measured against), and the unkeyed
 * FNV-1a; 16-byte keys of tenant `default`, 16 shards. Median of --runs runs of --keys keys.
 *
 *   npx tsx bench/shard-hash.ts [--keys 1000000] [--runs 5]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { keyedHash, unkeyedHash } from '../src/wire/shard-hash.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '5' } } });
const keys = Number(values.keys);
const runs = Number(values.runs);
if (!Number.isInteger(keys) || keys < 1 || !Number.isInteger(runs) || runs < 1) {
  console.error('--keys and --runs must be positive integers');
  process.exit(2);
}

const M = (1n << 64n) - 1n;
const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M;

/** SipHash-2-4 on BigInt words, for the comparison only. */
function sipBigShard(k0: bigint, k1: bigint, tenant: string, key: Uint8Array, shards: number): number {
  const msg = new Uint8Array(tenant.length + 1 + key.length);
  for (let i = 0; i < tenant.length; i++) msg[i] = tenant.charCodeAt(i) & 0xff;
  msg.set(key, tenant.length + 1);
  let v0 = k0 ^ 0x736f6d6570736575n;
  let v1 = k1 ^ 0x646f72616e646f6dn;
  let v2 = k0 ^ 0x6c7967656e657261n;
  let v3 = k1 ^ 0x7465646279746573n;
  const padded = new Uint8Array((msg.length & ~7) + 8);
  padded.set(msg);
  padded[padded.length - 1] = msg.length & 0xff;
  const dv = new DataView(padded.buffer);
  const rounds = (n: number): void => {
    for (let i = 0; i < n; i++) {
      v0 = (v0 + v1) & M;
      v1 = rotl(v1, 13n) ^ v0;
      v0 = rotl(v0, 32n);
      v2 = (v2 + v3) & M;
      v3 = rotl(v3, 16n) ^ v2;
      v0 = (v0 + v3) & M;
      v3 = rotl(v3, 21n) ^ v0;
      v2 = (v2 + v1) & M;
      v1 = rotl(v1, 17n) ^ v2;
      v2 = rotl(v2, 32n);
    }
  };
  for (let o = 0; o < padded.length; o += 8) {
    const m = dv.getBigUint64(o, true);
    v3 ^= m;
    rounds(2);
    v0 ^= m;
  }
  v2 ^= 0xffn;
  rounds(4);
  return Number((v0 ^ v1 ^ v2 ^ v3) % BigInt(shards));
}

const placementKey = randomBytes(16);
const keyed = keyedHash(placementKey);
const k0 = placementKey.readBigUInt64LE(0);
const k1 = placementKey.readBigUInt64LE(8);
const input = Array.from({ length: 4096 }, () => randomBytes(16));

const variants: readonly { name: string; fn: (key: Uint8Array) => number }[] = [
  { name: 'siphash24, 32-bit halves (keyed)', fn: (k) => keyed.shardOf('default', k, 16) },
  { name: 'siphash24, BigInt', fn: (k) => sipBigShard(k0, k1, 'default', k, 16) },
  { name: 'fnv1a32 (unkeyed)', fn: (k) => unkeyedHash.shardOf('default', k, 16) },
];

function nsPerKey(fn: (key: Uint8Array) => number, n: number): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += fn(input[i & 4095]!);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (sink < 0) console.log(sink); // keeps the loop's result alive
  return ns;
}

for (const v of variants) nsPerKey(v.fn, Math.min(keys, 200_000)); // warm-up: optimized code first
console.log(`ns per key (16-byte keys, tenant 'default', 16 shards), median of ${runs} x ${keys.toLocaleString('en-US')}; Node ${process.version}`);
for (const v of variants) {
  const n = v.name.includes('BigInt') ? Math.max(1, Math.floor(keys / 10)) : keys;
  const samples = Array.from({ length: runs }, () => nsPerKey(v.fn, n));
  console.log(`${v.name.padEnd(36)} ${median(samples).toFixed(1).padStart(8)} ns  (${Math.min(...samples).toFixed(1)} .. ${Math.max(...samples).toFixed(1)})`);
}
