/**
 * Discovery over real Iroh endpoints on 127.0.0.1 (each node a real Transport handing
 * `iroh-raft-discovery/0` connections to a Discovery over its address book): one exchange teaches
 * both sides; a member restarted on another port is learned by the others and the raft transport
 * dials it there; a node that knows only a stale ticket learns a moved member from a third
 * member's gossip, proved by dialing it; a stranger is closed at once (NotMember) and changes
 * nothing; a seeded fuzz of frames from a member changes nothing, a stale generation never
 * overrides a newer one, and the node keeps answering.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, test } from 'vitest';
import {
  AddressBook,
  DISC_ALPN,
  DISC_ALPN_BYTES,
  DISC_BODY_BYTES_MAX,
  Discovery,
  decodeAnnouncement,
  encodeAnnouncement,
} from '../../../../src/io/discovery/index.js';
import type { AddrClaim } from '../../../../src/io/discovery/index.js';
import type { StoredPeers } from '../../../../src/io/discovery/index.js';
import { Transport } from '../../../../src/io/transport/index.js';
import { DiscFuzz, DiscSpeaker, frame } from '../../../support/disc-fuzz.js';
import { Rng, endpointAddr, fuzzEndpoint, fuzzSeed, mutate, sendCase } from '../../../support/frame-fuzz.js';

interface Node {
  readonly key: Uint8Array;
  readonly t: Transport;
  book: AddressBook;
  d: Discovery;
  stored: StoredPeers | undefined;
}

const open: Node[] = [];
const speakers: DiscSpeaker[] = [];
afterAll(async () => {
  for (const n of open) n.d.close();
  await Promise.all(open.map((n) => n.t.destroy()));
  await Promise.all(speakers.map((s) => s.close()));
});

const keyOf = new Map<string, Uint8Array>();
function key(name: string): Uint8Array {
  let k = keyOf.get(name);
  if (k === undefined) keyOf.set(name, (k = new Uint8Array(randomBytes(32))));
  return k;
}
const idOf = async (k: Uint8Array): Promise<string> => (await DiscSpeaker.bind(k).then(async (s) => [s.id, await s.close()]))[0] as string;

/** A node with `key`, members at `tickets` (id and addresses), `stored` from an earlier run; not started. */
async function node(k: Uint8Array, tickets: { id: string; addrs: string[] }[], stored?: StoredPeers): Promise<Node> {
  const late: { d?: Discovery } = {};
  const t = await Transport.start({
    secretKey: k,
    bindAddr: '127.0.0.1:0',
    isMember: (id) => tickets.some((m) => m.id === id),
    onRecords: () => undefined,
    onDiscoveryConnection: (conn, peerId) => late.d?.accept(conn, peerId),
    dialTimeoutMs: 1_500,
  });
  const book = new AddressBook(t.id, tickets, stored, Date.now());
  const n: Node = { key: k, t, book, d: undefined as unknown as Discovery, stored };
  n.d = late.d = new Discovery({
    book,
    selfAddrs: () => t.addrs(),
    connect: (id, addrs) => t.connect(id, addrs, DISC_ALPN_BYTES),
    onLearned: (id) => t.addPeer({ id, addrs: book.dialAddrs(id) }),
    persist: (s) => (n.stored = s),
    intervalMs: 0,
    timeoutMs: 2_000,
  });
  open.push(n);
  return n;
}

const entry = (n: Node, id: string): ReturnType<AddressBook['view']>[number] => n.book.view().find((m) => m.id === id)!;

let A: Node;
let B: Node;
let C: Node;
let ids: { a: string; b: string; c: string; d: string };
let oldB: string[];

describe('exchanges between members', () => {
  test("one exchange teaches both sides, and the answer is the node's own announcement", async () => {
    ids = { a: await idOf(key('a')), b: await idOf(key('b')), c: await idOf(key('c')), d: await idOf(key('d')) };
    // Each node's ticket addresses are filled in once every node is bound; D never runs (its key speaks by hand).
    const dead = ['127.0.0.1:9'];
    A = await node(key('a'), [
      { id: ids.b, addrs: dead },
      { id: ids.c, addrs: dead },
      { id: ids.d, addrs: dead },
    ]);
    B = await node(key('b'), [
      { id: ids.a, addrs: A.t.addrs() },
      { id: ids.c, addrs: dead },
    ]);
    oldB = B.t.addrs();
    expect(await B.d.exchange(ids.a)).toBe(true);
    expect(entry(A, ids.b)).toMatchObject({ source: 'discovery', addrs: oldB });
    expect(entry(B, ids.a)).toMatchObject({ source: 'discovery', addrs: A.t.addrs() });
    expect(A.d.counters).toMatchObject({ exchanges: 1, learned: 1 });
    expect(B.d.counters).toMatchObject({ exchanges: 1, learned: 1, exchangeFailures: 0 });
    expect(A.stored?.members[ids.b]).toEqual({ generation: entry(A, ids.b).generation, addrs: oldB });
  });

  test('a member restarted on another port is learned, and the raft transport dials it there', async () => {
    B.d.close();
    await B.t.destroy();
    B = await node(
      key('b'),
      [
        { id: ids.a, addrs: A.t.addrs() },
        { id: ids.c, addrs: ['127.0.0.1:9'] },
      ],
      B.stored,
    );
    const newB = B.t.addrs();
    expect(newB).not.toEqual(oldB);
    B.d.start();
    await until(() => entry(A, ids.b).addrs[0] === newB[0]);
    expect(entry(A, ids.b).generation).toBeGreaterThan(0);
    expect(A.t.stats().peers[ids.b]?.addrs).toEqual([...newB, '127.0.0.1:9']);
  });

  test('a node with only stale tickets learns a moved member from gossip, proved by dialing that member', async () => {
    C = await node(key('c'), [
      { id: ids.a, addrs: A.t.addrs() },
      { id: ids.b, addrs: oldB },
    ]);
    expect(await C.d.exchange(ids.a)).toBe(true);
    await until(() => entry(C, ids.b).source === 'discovery');
    expect(entry(C, ids.b).addrs).toEqual(B.t.addrs());
    expect(C.d.counters.hintsProbed).toBe(1);
    // B heard from C in that probe: C is learned without C ever being dialed by anyone else.
    expect(entry(B, ids.c)).toMatchObject({ source: 'discovery', addrs: C.t.addrs() });
  });
});

describe('a node whose generation is below what members hold of it', () => {
  test('moves its generation above theirs and is learned after all (peers.json lost, clock behind)', async () => {
    // What a member holds of E: an announcement from far in the future (E's key, spoken by hand).
    const s = await DiscSpeaker.bind(key('e'));
    speakers.push(s);
    const idE = await idOf(key('e'));
    const X = await node(key('x'), [
      { id: idE, addrs: ['127.0.0.1:9'] },
      { id: ids.a, addrs: A.t.addrs() },
    ]);
    const future = { generation: 2 ** 52, addrs: ['127.0.0.1:4444'] };
    expect((await s.speak({ id: X.t.id, addrs: X.t.addrs() }, frame(encodeAnnouncement({ self: future, gossip: [] })))).reply).toBeDefined();
    expect(entry(X, idE)).toMatchObject(future);
    // E starts with no stored generation: its own starts at the clock, far below.
    const E = await node(key('e'), [{ id: X.t.id, addrs: X.t.addrs() }]);
    expect(E.book.generation).toBeLessThan(future.generation);
    E.d.start();
    await until(() => entry(X, idE).addrs[0] === E.t.addrs()[0]);
    expect(entry(X, idE).generation).toBe(future.generation + 1);
    expect(E.d.counters.refuted).toBe(1);
    expect(X.d.counters.stale).toBe(1);
    expect(E.stored?.generation).toBe(future.generation + 1);
  });
});

describe('refusals change nothing', () => {
  test('a stranger is closed at once with NotMember, even with a valid frame', async () => {
    const s = await DiscSpeaker.bind(new Uint8Array(randomBytes(32)));
    speakers.push(s);
    const before = JSON.stringify(A.book.view());
    const r = await s.speak(
      { id: A.t.id, addrs: A.t.addrs() },
      frame(encodeAnnouncement({ self: { generation: 2 ** 50, addrs: ['127.0.0.1:1'] }, gossip: [] })),
    );
    expect(r.reply).toBeUndefined();
    expect(r.closed).toMatch(/not a member/);
    expect(A.d.counters.strangers).toBe(1);
    expect(JSON.stringify(A.book.view())).toBe(before);
  });

  test('seeded fuzz from a member: refused and stale frames change nothing; the node keeps answering (the seed is in every failure message)', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 14_06);
    const s = await DiscSpeaker.bind(key('d'));
    speakers.push(s);
    const to = { id: A.t.id, addrs: A.t.addrs() };
    const fresh = { generation: 1_000_000, addrs: ['127.0.0.1:4242'] };
    const first = await s.speak(to, frame(encodeAnnouncement({ self: fresh, gossip: [] })));
    expect(first.reply?.self.addrs).toEqual(A.t.addrs());
    expect(entry(A, ids.d)).toMatchObject({ generation: fresh.generation, addrs: fresh.addrs, source: 'discovery' });
    const fuzz = new DiscFuzz(seed, fresh, [ids.b, ids.c]);
    const kinds = new Map<string, number>();
    for (let i = 0; i < 120; i++) {
      const c = fuzz.next();
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
      const r = await s.speak(to, c.bytes);
      const why = `seed ${seed} case ${i} (${c.kind})`;
      expect(entry(A, ids.d), why).toMatchObject({ generation: fresh.generation, addrs: fresh.addrs });
      // Well-formed frames are answered (and ignored when stale); the rest close the connection.
      if (c.kind === 'stale' || c.kind === 'conflict' || c.kind === 'replay') expect(r.reply, why).toBeDefined();
      else expect(r.reply, why).toBeUndefined();
    }
    expect(A.d.counters.badFrames).toBeGreaterThan(40);
    expect(A.d.counters.stale + A.d.counters.conflicts).toBeGreaterThan(20);
    expect([...kinds.keys()].sort()).toEqual(['conflict', 'garbage', 'oversize', 'replay', 'shape', 'stale', 'truncated', 'twoFrames']);
    // A newer claim still wins, and replaying the older one afterwards does not undo it.
    const newer = { generation: fresh.generation + 1, addrs: ['127.0.0.1:4343'] };
    expect((await s.speak(to, frame(encodeAnnouncement({ self: newer, gossip: [] })))).reply).toBeDefined();
    expect((await s.speak(to, frame(encodeAnnouncement({ self: fresh, gossip: [] })))).reply).toBeDefined();
    expect(entry(A, ids.d)).toMatchObject(newer);
    // And the members still exchange.
    expect(await B.d.exchange(ids.a)).toBe(true);
  }, 120_000);
});

describe('the shared frame fuzz (test/support/frame-fuzz.ts) on the discovery ALPN', () => {
  test("a member's mutated frames change its entry only when one whole frame is a newer claim, and then to exactly that", async () => {
    const seed = fuzzSeed();
    console.log(`discovery frame fuzz seed ${seed} (FUZZ_SEED=${seed} replays it)`);
    const rng = new Rng(seed);
    let taken = 0;
    const ep = await fuzzEndpoint(key('d'));
    try {
      const to = endpointAddr(A.t.id, A.t.addrs());
      const base = entry(A, ids.d).generation;
      // Valid bodies around the generation A holds: older, equal, a little newer.
      const valid = [base - 5, base, base + 1, base + 3].map((generation, i) =>
        encodeAnnouncement({ self: { generation, addrs: [`127.0.0.1:${5000 + i}`] }, gossip: [{ id: ids.b, generation: 1, addrs: ['127.0.0.1:9'] }] }),
      );
      const history: Uint8Array[] = [];
      for (let i = 0; i < 150; i++) {
        const { mutation, bytes } = mutate(rng, valid, DISC_BODY_BYTES_MAX, history);
        history.push(bytes);
        const finish = rng.next() < 0.9;
        const before = entry(A, ids.d);
        const expected = finish ? newerClaim(bytes, before.generation) : undefined;
        const out = await sendCase(ep, to, DISC_ALPN, bytes, { finish, waitMs: 300 });
        const why = `seed ${seed} case ${i} (${mutation}${finish ? '' : ', not finished'})`;
        expect(out.connected, why).toBe(true);
        const after = entry(A, ids.d);
        if (expected === undefined)
          expect({ generation: after.generation, addrs: after.addrs }, why).toEqual({ generation: before.generation, addrs: before.addrs });
        else expect({ generation: after.generation, addrs: after.addrs }, why).toEqual(expected);
        if (expected !== undefined) taken++;
      }
      console.log(`discovery frame fuzz: 150 cases, ${taken} whole newer claims taken, the rest changed nothing`);
    } finally {
      await ep.close();
    }
    expect(await B.d.exchange(ids.a)).toBe(true);
  }, 120_000);
});

/** The claim in `bytes` when they are exactly one valid frame whose generation is above `known`; else undefined. */
function newerClaim(bytes: Uint8Array, known: number): AddrClaim | undefined {
  if (bytes.length < 4) return undefined;
  const len = Buffer.from(bytes.buffer, bytes.byteOffset, 4).readUInt32LE(0);
  if (len !== bytes.length - 4) return undefined;
  try {
    const a = decodeAnnouncement(bytes.subarray(4));
    return a.self.generation > known ? { generation: a.self.generation, addrs: [...a.self.addrs] } : undefined;
  } catch {
    return undefined;
  }
}

async function until(f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}
