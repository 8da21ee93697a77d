/**
 * The key -> shard functions: SipHash-2-4 against the reference vectors of its paper (Aumasson
 * and Bernstein, "SipHash: a fast short-input PRF", appendix and vectors.h: key 00..0f, message
 * 00 01 .. of length 0..63, output as 8 little-endian bytes), the shard of a key as the whole
 * 64-bit value modulo the shard count, and the unkeyed function kept as it was.
 */
import { describe, expect, test } from 'vitest';
import { KEYED_HASH, UNKEYED_HASH, hashOfPlacement, keyedHash, sipHash24, shardOf, unkeyedHash } from '../../../src/wire/shard-hash.js';

/** SipHash-2-4 of 00 01 .. (i-1) under key 00 01 .. 0f, for i = 0..63, as little-endian hex. */
const VECTORS: readonly string[] = [
  '310e0edd47db6f72',
  'fd67dc93c539f874',
  '5a4fa9d909806c0d',
  '2d7efbd796666785',
  'b7877127e09427cf',
  '8da699cd64557618',
  'cee3fe586e46c9cb',
  '37d1018bf50002ab',
  '6224939a79f5f593',
  'b0e4a90bdf82009e',
  'f3b9dd94c5bb5d7a',
  'a7ad6b22462fb3f4',
  'fbe50e86bc8f1e75',
  '903d84c02756ea14',
  'eef27a8e90ca23f7',
  'e545be4961ca29a1',
  'db9bc2577fcc2a3f',
  '9447be2cf5e99a69',
  '9cd38d96f0b3c14b',
  'bd6179a71dc96dbb',
  '98eea21af25cd6be',
  'c7673b2eb0cbf2d0',
  '883ea3e395675393',
  'c8ce5ccd8c030ca8',
  '94af49f6c650adb8',
  'eab8858ade92e1bc',
  'f315bb5bb835d817',
  'adcf6b0763612e2f',
  'a5c91da7acaa4dde',
  '716595876650a2a6',
  '28ef495c53a387ad',
  '42c341d8fa92d832',
  'ce7cf2722f512771',
  'e37859f94623f3a7',
  '381205bb1ab0e012',
  'ae97a10fd434e015',
  'b4a31508beff4d31',
  '81396229f0907902',
  '4d0cf49ee5d4dcca',
  '5c73336a76d8bf9a',
  'd0a704536ba93e0e',
  '925958fcd6420cad',
  'a915c29bc8067318',
  '952b79f3bc0aa6d4',
  'f21df2e41d4535f9',
  '87577519048f53a9',
  '10a56cf5dfcd9adb',
  'eb75095ccd986cd0',
  '51a9cb9ecba312e6',
  '96afadfc2ce666c7',
  '72fe52975a4364ee',
  '5a1645b276d592a1',
  'b274cb8ebf87870a',
  '6f9bb4203de7b381',
  'eaecb2a30b22a87f',
  '9924a43cc1315724',
  'bd838d3aafbf8db7',
  '0b1a2a3265d51aea',
  '135079a3231ce660',
  '932b2846e4d70666',
  'e1915f5cb1eca46c',
  'f325965ca16d629f',
  '575ff28e60381be5',
  '724506eb4c328a95',
];

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i);
const KEY = bytes(16);

/** The same hash, from the paper's description, on BigInt (slow, obviously right): the oracle for the shard values. */
function sipBig(key: Uint8Array, msg: Uint8Array): bigint {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M;
  const le = (b: Uint8Array, o: number): bigint => {
    let x = 0n;
    for (let i = 7; i >= 0; i--) x = (x << 8n) | BigInt(b[o + i] ?? 0);
    return x;
  };
  const k0 = le(key, 0);
  const k1 = le(key, 8);
  const v: [bigint, bigint, bigint, bigint] = [k0 ^ 0x736f6d6570736575n, k1 ^ 0x646f72616e646f6dn, k0 ^ 0x6c7967656e657261n, k1 ^ 0x7465646279746573n];
  const round = (): void => {
    v[0] = (v[0] + v[1]) & M;
    v[1] = rotl(v[1], 13n) ^ v[0];
    v[0] = rotl(v[0], 32n);
    v[2] = (v[2] + v[3]) & M;
    v[3] = rotl(v[3], 16n) ^ v[2];
    v[0] = (v[0] + v[3]) & M;
    v[3] = rotl(v[3], 21n) ^ v[0];
    v[2] = (v[2] + v[1]) & M;
    v[1] = rotl(v[1], 17n) ^ v[2];
    v[2] = rotl(v[2], 32n);
  };
  const padded = new Uint8Array((msg.length & ~7) + 8);
  padded.set(msg);
  padded[padded.length - 1] = msg.length & 0xff;
  for (let o = 0; o < padded.length; o += 8) {
    const m = le(padded, o);
    v[3] = v[3] ^ m;
    round();
    round();
    v[0] = v[0] ^ m;
  }
  v[2] = v[2] ^ 0xffn;
  for (let i = 0; i < 4; i++) round();
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

describe('SipHash-2-4', () => {
  test('matches the 64 reference vectors of the paper', () => {
    expect(VECTORS).toHaveLength(64);
    for (let i = 0; i < 64; i++) expect(hex(sipHash24(KEY, bytes(i))), `message of ${i} bytes`).toBe(VECTORS[i]);
  });

  test('the worked example of the paper: 15 bytes 00..0e give a129ca6149be45e5', () => {
    const out = sipHash24(KEY, bytes(15));
    expect(Buffer.from(out).readBigUInt64LE(0)).toBe(0xa129ca6149be45e5n);
  });

  test('long messages and high bytes (carries across the 32-bit halves) agree with a BigInt rendering', () => {
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    for (const len of [0, 7, 8, 9, 255, 256, 257, 1000, 4097]) {
      const msg = Uint8Array.from({ length: len }, () => 0x80 | next());
      const key = Uint8Array.from({ length: 16 }, () => 0xf0 | next());
      expect(Buffer.from(sipHash24(key, msg)).readBigUInt64LE(0), `length ${len}`).toBe(sipBig(key, msg));
    }
  });

  test('a key of another length than 16 bytes is a RangeError', () => {
    expect(() => keyedHash(bytes(15))).toThrow(RangeError);
    expect(() => sipHash24(bytes(17), bytes(1))).toThrow(/16 bytes/);
  });
});

describe('shard of a key', () => {
  const msgOf = (tenant: string, key: Uint8Array): Uint8Array => Uint8Array.from([...Buffer.from(tenant, 'latin1'), 0, ...key]);

  test('keyed: SipHash-2-4 of tenant, 0, key under the placement key; the whole 64-bit value modulo the shard count', () => {
    const h = keyedHash(KEY);
    expect(h.name).toBe(KEYED_HASH);
    for (const shards of [1, 3, 16, 1000, 65536]) {
      for (const [tenant, key] of [
        ['default', Buffer.from('k1')],
        ['acme', Buffer.from('a much longer key that spans several blocks')],
        ['t', new Uint8Array(0)],
      ] as const) {
        expect(h.shardOf(tenant, key, shards)).toBe(Number(sipBig(KEY, msgOf(tenant, key)) % BigInt(shards)));
      }
    }
  });

  test('keyed: another placement key places the same keys elsewhere', () => {
    const a = keyedHash(KEY);
    const b = keyedHash(bytes(16).map((x) => x ^ 0x5a));
    const keys = Array.from({ length: 64 }, (_, i) => Buffer.from(`key-${i}`));
    const moved = keys.filter((k) => a.shardOf('t', k, 16) !== b.shardOf('t', k, 16)).length;
    expect(moved).toBeGreaterThan(32);
  });

  test('unkeyed: FNV-1a 32 of tenant, 0, key modulo the shard count, unchanged', () => {
    expect(unkeyedHash.name).toBe(UNKEYED_HASH);
    expect(UNKEYED_HASH).toBe('fnv1a32(tenant,0,key)%shards');
    // Values of the function as placed data of existing clusters: they must never change.
    expect(shardOf('default', Buffer.from('k1'), 16)).toBe(6);
    expect(shardOf('acme', Buffer.from('user/42'), 1000)).toBe(265);
    expect(shardOf('_system', Buffer.from('tenants/acme'), 7)).toBe(4);
    let h = 0x811c9dc5;
    for (const b of msgOf('default', Buffer.from('hello'))) h = Math.imul(h ^ b, 0x01000193);
    expect(unkeyedHash.shardOf('default', Buffer.from('hello'), 1000)).toBe((h >>> 0) % 1000);
  });

  test('hashOfPlacement: the function a placement answer names; none for pending, unknown names, or a keyed hash without its key', () => {
    expect(hashOfPlacement(UNKEYED_HASH)).toBe(unkeyedHash);
    const k = hashOfPlacement(KEYED_HASH, Buffer.from(KEY).toString('hex'))!;
    expect(k.name).toBe(KEYED_HASH);
    expect(k.shardOf('t', Buffer.from('x'), 1000)).toBe(keyedHash(KEY).shardOf('t', Buffer.from('x'), 1000));
    for (const [hash, key] of [
      ['pending', undefined],
      ['md5(key)%shards', undefined],
      [KEYED_HASH, undefined],
      [KEYED_HASH, '00'],
      [KEYED_HASH, 'Z'.repeat(32)],
    ] as const) {
      expect(hashOfPlacement(hash, key), `${hash} ${key}`).toBeUndefined();
    }
  });
});
