/**
 * The discovery message's layout (src/io/discovery/wire.ts): what encodes decodes to itself, the
 * largest body is what DISC_BODY_BYTES_MAX says, every rule of the layout refuses with BadFrame,
 * and seeded random bytes and mutations of valid bodies are refused or decoded, never anything else.
 */
import { describe, expect, test } from 'vitest';
import { DISC_BODY_BYTES_MAX, DiscoveryWireError, decodeAnnouncement, encodeAnnouncement } from '../../../../src/io/discovery/index.js';
import type { Announcement } from '../../../../src/io/discovery/index.js';
import { Prng } from '../../../../src/shards/raft/prng.js';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);
const sample: Announcement = {
  self: { generation: 1_765_000_000_123, addrs: ['127.0.0.1:7001', '[::1]:7001'] },
  gossip: [
    { id: ID_A, generation: 7, addrs: ['10.0.0.2:9'] },
    { id: ID_B, generation: 2 ** 53 - 1, addrs: ['[2001:db8::1]:65535'] },
  ],
};

/** Bytes of `a` with `f` applied to a copy. */
const mutate = (a: Announcement, f: (b: Uint8Array) => Uint8Array): Uint8Array => f(Uint8Array.from(encodeAnnouncement(a)));

describe('layout', () => {
  test('an announcement decodes to itself', () => {
    expect(decodeAnnouncement(encodeAnnouncement(sample))).toEqual(sample);
    const lone: Announcement = { self: { generation: 1, addrs: ['1.2.3.4:5'] }, gossip: [] };
    expect(decodeAnnouncement(encodeAnnouncement(lone))).toEqual(lone);
  });

  test('the largest announcement is exactly DISC_BODY_BYTES_MAX bytes', () => {
    const addrs = Array.from({ length: 16 }, (_, i) => `[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff${(i + 16).toString(16)}]:65535`);
    expect(addrs.every((a) => a.length === 47)).toBe(true);
    const gossip = Array.from({ length: 64 }, (_, i) => ({ id: i.toString(16).padStart(64, '0'), generation: 2 ** 53 - 1, addrs }));
    const body = encodeAnnouncement({ self: { generation: 2 ** 53 - 1, addrs }, gossip });
    expect(body.length).toBe(DISC_BODY_BYTES_MAX);
    expect(decodeAnnouncement(body).gossip).toHaveLength(64);
  });

  test('the encoder refuses what the decoder would (a bug in the caller)', () => {
    expect(() => encodeAnnouncement({ self: { generation: 0, addrs: ['1.2.3.4:5'] }, gossip: [] })).toThrow(DiscoveryWireError);
    expect(() => encodeAnnouncement({ self: { generation: 1, addrs: [] }, gossip: [] })).toThrow(/1..16 addresses/);
    expect(() => encodeAnnouncement({ self: { generation: 1, addrs: ['[::0001]:5'] }, gossip: [] })).toThrow(/not canonical/);
    expect(() => encodeAnnouncement({ self: sample.self, gossip: [sample.gossip[0]!, sample.gossip[0]!] })).toThrow(/repeated/);
  });
});

describe('every rule refuses with BadFrame', () => {
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['empty', () => new Uint8Array(0), /shorter than the header/],
    ['wrong magic', () => mutate(sample, (b) => ((b[0] = 0x58), b)), /magic/],
    ['other version', () => mutate(sample, (b) => ((b[4] = 2), b)), /version 2/],
    ['reserved byte set', () => mutate(sample, (b) => ((b[5] = 1), b)), /reserved/],
    ['more gossip than allowed', () => mutate(sample, (b) => ((b[6] = 65), b)), /65 gossip entries/],
    ['gossip count past the entries', () => mutate(sample, (b) => ((b[6] = 3), b)), /truncated in gossip 2/],
    ['gossip count short of the entries', () => mutate(sample, (b) => ((b[6] = 1), b)), /bytes after the last entry/],
    ['generation 0', () => encodeWith({ generation: 0 }), /generation 0/],
    ['generation past 2^53 - 1', () => mutate(sample, (b) => ((b[7] = 0x00), (b[8] = 0x20), b)), /past 2\^53/],
    ['no address', () => mutate(sample, (b) => ((b[15] = 0), b)), /0 addresses/],
    ['17 addresses', () => mutate(sample, (b) => ((b[15] = 17), b)), /17 addresses/],
    ['a host name', () => encodeWith({ addr: 'localhost:70' }), /not a canonical/],
    ['a non-canonical IPv6', () => encodeWith({ addr: '[::0001]:7001' }), /not a canonical/],
    ['port 0', () => encodeWith({ addr: '1.2.3.4:0' }), /not a canonical/],
    ['an address twice', () => encodeWith({ addr2: '127.0.0.1:7001' }), /listed twice/],
    ['a gossip id twice', () => rawTwice(), /id listed twice/],
    ['a byte after the end', () => Uint8Array.from([...encodeAnnouncement(sample), 0]), /1 bytes after/],
    ['one byte short', () => encodeAnnouncement(sample).subarray(0, -1), /truncated/],
  ];
  for (const [name, make, why] of cases) {
    test(name, () => {
      let err: unknown;
      try {
        decodeAnnouncement(make());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DiscoveryWireError);
      expect((err as DiscoveryWireError).code).toBe('BadFrame');
      expect((err as Error).message).toMatch(why);
    });
  }
});

describe('seeded random input is refused or decoded, never anything else', () => {
  test('random bytes and byte flips of a valid body (seed printed)', () => {
    const seed = Number(process.env.FUZZ_SEED ?? 20261206);
    const rng = new Prng(seed);
    const valid = encodeAnnouncement(sample);
    let refused = 0;
    let decoded = 0;
    for (let i = 0; i < 5_000; i++) {
      let b: Uint8Array;
      if (i % 2 === 0) {
        b = Uint8Array.from({ length: rng.nextU32() % 200 }, () => rng.nextU32() & 0xff);
        if (i % 4 === 0 && b.length >= 7) b.set([0x49, 0x52, 0x44, 0x53, 1, 0], 0);
      } else {
        b = Uint8Array.from(valid);
        for (let k = 1 + (rng.nextU32() % 3); k > 0; k--) b[rng.nextU32() % b.length] = rng.nextU32() & 0xff;
      }
      try {
        const a = decodeAnnouncement(b);
        // Whatever decodes re-encodes to the same bytes: one encoding per value.
        expect(Buffer.from(encodeAnnouncement(a)).equals(Buffer.from(b)), `seed ${seed} case ${i}`).toBe(true);
        decoded++;
      } catch (e) {
        if (!(e instanceof DiscoveryWireError)) throw new Error(`seed ${seed} case ${i}: ${String(e)}`, { cause: e });
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(4_000);
    expect(decoded).toBeGreaterThan(0);
  });
});

/** The sample's bytes with its first address or second address replaced (same length or not), or generation 0. */
function encodeWith(o: { generation?: number; addr?: string; addr2?: string }): Uint8Array {
  const self = encodeAnnouncement({ self: { generation: 1, addrs: ['127.0.0.1:7001', '127.0.0.2:7001'] }, gossip: [] });
  const b = Array.from(self);
  if (o.generation !== undefined) for (let i = 7; i < 15; i++) b[i] = 0;
  const first = 16;
  const len1 = b[first]!;
  const second = first + 1 + len1;
  if (o.addr2 !== undefined) b.splice(second, 1 + b[second]!, o.addr2.length, ...Buffer.from(o.addr2, 'latin1'));
  if (o.addr !== undefined) b.splice(first, 1 + len1, o.addr.length, ...Buffer.from(o.addr, 'latin1'));
  return Uint8Array.from(b);
}

/** A body whose two gossip entries carry the same id. */
function rawTwice(): Uint8Array {
  const b = Array.from(
    encodeAnnouncement({
      self: sample.self,
      gossip: [
        { id: ID_A, generation: 1, addrs: ['1.1.1.1:1'] },
        { id: ID_B, generation: 1, addrs: ['1.1.1.1:1'] },
      ],
    }),
  );
  const firstId = b.indexOf(0xaa);
  const secondId = b.indexOf(0xbb);
  for (let i = 0; i < 32; i++) b[secondId + i] = b[firstId + i]!;
  return Uint8Array.from(b);
}
