/**
 * Snapshot transfers between two real worker pools (real LMDB, worker threads and piscina), with
 * the stream between them in memory so that a test can damage what travels: a transfer installs
 * the leader's data on a new replica; a damaged chunk, a wrong total, an offer from the wrong peer
 * or one too many install nothing and leave no staged file.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { Snapshots } from '../../../src/router/snapshots.js';
import type { SnapshotStream } from '../../../src/router/snapshots.js';
import { KvOp, decodeKvReply, encodeGet, encodePut } from '../../../src/shards/kv/index.js';
import type { LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';
import { SnapAnswer, SnapMessageType, decodeSnapMessage, encodeSnapMessage } from '../../../src/wire/index.js';
import type { WorkerPool } from '../../../src/workers/pool.js';
import { startPool } from '../../support/pool.js';

const PEER = { 1: 'a'.repeat(64), 2: 'b'.repeat(64) } as Record<number, string>;
const quiet = { info: () => undefined, warn: () => undefined };
const enc = new TextEncoder();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** One end of an in-memory stream; `tamper` may change or drop what this end writes. */
class MemStream implements SnapshotStream {
  other!: MemStream;
  private inbox: Uint8Array[] = [];
  private waiter: (() => void) | undefined;
  closed = false;
  tamper: ((body: Uint8Array) => Uint8Array | undefined) | undefined;
  constructor(readonly peerId: string) {}
  static pair(aPeer: string, bPeer: string): [MemStream, MemStream] {
    const a = new MemStream(aPeer);
    const b = new MemStream(bPeer);
    a.other = b;
    b.other = a;
    return [a, b];
  }
  write(body: Uint8Array): Promise<void> {
    if (this.closed || this.other.closed) return Promise.reject(new Error('stream closed'));
    const out = this.tamper ? this.tamper(body.slice()) : body.slice();
    if (out !== undefined) this.other.deliver(out);
    return Promise.resolve();
  }
  private deliver(b: Uint8Array): void {
    this.inbox.push(b);
    this.waiter?.();
  }
  async read(timeoutMs: number): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.closed || this.other.closed) throw new Error('stream closed');
      if (Date.now() > deadline) throw new Error('read timed out');
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 20);
      });
    }
    return this.inbox.shift()!;
  }
  finish(): Promise<void> {
    return Promise.resolve();
  }
  async linger(): Promise<void> {
    await new Promise((r) => setTimeout(r, 10));
    this.close();
  }
  close(): void {
    this.closed = true;
  }
}

async function pool(nodeId: number, voters: number[]): Promise<WorkerPool> {
  const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-snaps-'));
  const p = await startPool({ dataDir: dir, workers: 1, nodeId, shards: [{ shard: 0 as ShardId, voters: voters as NodeId[] }], tickMs: 10 });
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanup.push(() => p.close());
  return p;
}

function snapshots(self: number, p: WorkerPool, connect: (peerId: string) => Promise<SnapshotStream>): { s: Snapshots; staging: string } {
  const staging = mkdtempSync(join(tmpdir(), 'iroh-raft-staging-'));
  cleanup.push(() => rmSync(staging, { recursive: true, force: true }));
  const s = new Snapshots({
    self: self as NodeId,
    pool: p,
    connect,
    peerOf: (n) => PEER[n],
    stagingDir: staging,
    chunkBytes: 64 * 1024,
    backoff: { initialMs: 1, maxMs: 1 },
    log: quiet,
  });
  cleanup.push(() => s.close());
  return { s, staging };
}

const until = async (f: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A leader (node 1, sole voter) holding 60 values of 20 KB, and a new replica (node 2) with nothing. */
async function setup(tamper?: (body: Uint8Array) => Uint8Array | undefined, receiverPeer = PEER[1]!) {
  const leader = await pool(1, [1]);
  const replica = await pool(2, []);
  await until(async () => (await leader.propose(0 as ShardId, { command: encodePut('t', enc.encode('warm'), enc.encode('x')) })).ok);
  for (let i = 0; i < 60; i++) {
    const o = await leader.propose(0 as ShardId, {
      command: encodePut('t', enc.encode(`k${i}`), valueOf(i)),
    });
    expect(o.ok).toBe(true);
  }
  const rx = snapshots(2, replica, () => Promise.reject(new Error('unused')));
  const tx = snapshots(1, leader, (peerId) => {
    const [a, b] = MemStream.pair(peerId, receiverPeer);
    a.tamper = tamper;
    rx.s.accept(b);
    return Promise.resolve(a);
  });
  const status = (await leader.control(0).status()).shards[0]!;
  const wish = { from: 1 as NodeId, to: 2 as NodeId, term: status.term as Term, index: status.applied as LogIndex };
  return { leader, replica, rx, tx, wish };
}

/** 20 KB that deflate cannot shrink (xorshift bytes), different per key. */
function valueOf(i: number): Uint8Array {
  const out = new Uint8Array(20_000);
  let x = (i + 1) * 0x9e3779b1;
  for (let j = 0; j < out.length; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[j] = x & 0xff;
  }
  return out;
}

const readOn = async (p: WorkerPool, key: string): Promise<Uint8Array | undefined> => {
  const o = await p.read(0 as ShardId, encodeGet('t', enc.encode(key)), 'stale');
  if (!o.ok) return undefined;
  const r = decodeKvReply(KvOp.Get, o.body);
  return r.ok && r.found ? r.value : undefined;
};

describe('snapshot transfers', () => {
  test('a transfer installs the leader data on a new replica, and leaves no staged file', async () => {
    const { replica, rx, tx, wish } = await setup();
    expect(tx.s.sends(0 as ShardId)).toBe(false);
    tx.s.request(0 as ShardId, wish);
    // Sending (what keeps leader balancing from moving the shard's leadership meanwhile).
    expect(tx.s.sends(0 as ShardId)).toBe(true);
    expect(tx.s.sends(1 as ShardId)).toBe(false);
    await until(() => tx.s.counters.sent === 1);
    await until(() => !tx.s.sends(0 as ShardId));
    expect(rx.s.counters.received).toBe(1);
    expect(tx.s.counters.bytesSent).toBeGreaterThan(60 * 20_000 * 0.5);
    await until(async () => (await readOn(replica, 'k59')) !== undefined);
    for (let i = 0; i < 60; i++) expect(Buffer.from((await readOn(replica, `k${i}`))!)).toEqual(Buffer.from(valueOf(i)));
    await until(() => readdirSync(rx.staging).length === 0);
  });

  test('a damaged chunk is refused with ChecksumMismatch: nothing installed, nothing staged, and the sender backs off and retries', async () => {
    let damaged = 0;
    const { replica, rx, tx, wish } = await setup((body) => {
      if (body[0] === SnapMessageType.Chunk && damaged === 0) {
        damaged++;
        body[body.length - 1]! ^= 0x55;
      }
      return body;
    });
    tx.s.request(0 as ShardId, wish);
    await until(() => tx.s.counters.sendFailures === 1);
    expect(rx.s.counters.receiveFailures).toBe(1);
    expect(await readOn(replica, 'k0')).toBeUndefined();
    await until(() => readdirSync(rx.staging).length === 0);
    // Asked again (the core does, while the follower needs it): the retry goes through whole.
    await new Promise((r) => setTimeout(r, 5));
    tx.s.request(0 as ShardId, wish);
    await until(() => tx.s.counters.sent === 1);
    await until(async () => (await readOn(replica, 'k59')) !== undefined);
  });

  test('an End whose total does not match installs nothing', async () => {
    const { replica, rx, tx, wish } = await setup((body) => {
      const m = decodeSnapMessage(body);
      return m.type === SnapMessageType.End ? encodeSnapMessage({ ...m, crc32: (m.crc32 + 1) >>> 0 }) : body;
    });
    tx.s.request(0 as ShardId, wish);
    await until(() => tx.s.counters.sendFailures === 1);
    expect(rx.s.counters.receiveFailures).toBe(1);
    expect(await readOn(replica, 'k0')).toBeUndefined();
    await until(() => readdirSync(rx.staging).length === 0);
  });

  test('an offer whose named leader is not the connection peer is refused', async () => {
    const { replica, rx, tx, wish } = await setup(undefined, 'c'.repeat(64));
    tx.s.request(0 as ShardId, wish);
    await until(() => tx.s.counters.sendFailures === 1);
    expect(rx.s.counters.received).toBe(0);
    expect(await readOn(replica, 'k0')).toBeUndefined();
  });

  test('a second offer for a shard being received is answered Busy', async () => {
    const { rx, wish } = await setup();
    // Hold the first transfer open after its offer: the receiver counts it as running.
    const [a1, b1] = MemStream.pair(PEER[2]!, PEER[1]!);
    rx.s.accept(b1);
    const offer = encodeSnapMessage({
      type: SnapMessageType.Offer,
      shard: 0,
      from: 1,
      to: 2,
      term: wish.term,
      index: wish.index,
      indexTerm: 1,
      voters: [1],
      learners: [],
    });
    await a1.write(offer);
    expect(decodeSnapMessage(await a1.read(5000))).toMatchObject({ answer: SnapAnswer.Accept });
    const [a2, b2] = MemStream.pair(PEER[2]!, PEER[1]!);
    rx.s.accept(b2);
    await a2.write(offer);
    expect(decodeSnapMessage(await a2.read(5000))).toMatchObject({ answer: SnapAnswer.Busy, retryAfterMs: 1000 });
    expect(rx.s.counters.receiveBusy).toBe(1);
    a1.close();
    await until(() => readdirSync(rx.staging).length === 0);
  });
});
