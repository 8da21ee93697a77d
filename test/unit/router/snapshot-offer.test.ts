/**
 * Snapshot streams that never bring an offer, over real Iroh endpoints on 127.0.0.1, a real worker
 * pool and LMDB: the fuzz helper's bare endpoint holds a member's key (node 1) and opens more
 * snapshot streams than `receivesMax`, each with half a length prefix and then silence. What it
 * proves: the streams beyond `receivesMax` awaiting an offer are closed at once, the others at
 * offerTimeoutMs (not at the much longer idleTimeoutMs), each is counted in receiveUnoffered, and
 * a real member's snapshot, sent meanwhile, is installed and readable.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as Iroh from '@number0/iroh/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SNAPSHOT_ALPN } from '../../../src/wire/index.js';
import { Snapshots } from '../../../src/router/snapshots.js';
import { KvOp, decodeKvReply, encodeGet, encodePut } from '../../../src/shards/kv/index.js';
import type { LogIndex, NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';
import type { WorkerPool } from '../../../src/workers/pool.js';
import { decodeTicket } from '../../../src/io/ticket.js';
import { Transport } from '../../../src/io/transport/index.js';
import { startPool } from '../../support/pool.js';
import { endpointAddr, fuzzEndpoint } from '../../support/frame-fuzz.js';

const RECEIVES_MAX = 2;
/** Streams the silent member opens: more than RECEIVES_MAX may await an offer. */
const SILENT_STREAMS = 5;
const OFFER_TIMEOUT_MS = 1_500;
/** Much longer than the offer deadline, and than the test waits: a stream held to it fails the test. */
const IDLE_TIMEOUT_MS = 60_000;
/** How long a silent stream is given to be closed. */
const WAIT_CLOSE_MS = 15_000;

const key = (): Uint8Array => new Uint8Array(randomBytes(32));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const dataDir = mkdtempSync(join(tmpdir(), 'iroh-raft-snap-offer-'));

let receiver: Transport;
let member: Transport;
let silent: Iroh.Endpoint;
let pool: WorkerPool;
let snapshots: Snapshots;
/** Streams the receiver's transport handed up. */
let handedUp = 0;
/** The silent streams, kept referenced: a stream the binding collects is finished, which would end it early. */
const held: unknown[] = [];

beforeAll(async () => {
  silent = await fuzzEndpoint(key());
  const members = new Set([silent.id().toString()]);
  receiver = await Transport.start({
    secretKey: key(),
    bindAddr: '127.0.0.1:0',
    isMember: (id) => members.has(id),
    onRecords: () => undefined,
    onSnapshotStream: (stream) => {
      handedUp++;
      snapshots.accept(stream);
    },
  });
  member = await Transport.start({ secretKey: key(), bindAddr: '127.0.0.1:0', isMember: (id) => id === receiver.id, onRecords: () => undefined });
  members.add(member.id);
  // A new replica of shard 0 (no voters yet): it takes any offered snapshot newer than nothing.
  pool = await startPool({ dataDir: join(dataDir, 'receiver'), workers: 1, nodeId: 2, shards: [{ shard: 0 as ShardId, voters: [] }], tickMs: 10 });
  snapshots = new Snapshots({
    self: 2 as NodeId,
    pool,
    connect: () => Promise.reject(new Error('the receiver sends no snapshots here')),
    // Node 1 is the silent member, node 3 the real one.
    peerOf: (n) => (n === 1 ? silent.id().toString() : n === 3 ? member.id : undefined),
    stagingDir: join(dataDir, 'staging'),
    receivesMax: RECEIVES_MAX,
    offerTimeoutMs: OFFER_TIMEOUT_MS,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    log: { info: () => undefined, warn: () => undefined },
  });
});

afterAll(async () => {
  snapshots.close();
  await Promise.all([receiver.destroy(), member.destroy()]);
  await silent.close();
  await pool.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Opens a snapshot stream as node 1, writes half a length prefix and nothing more; resolves once the receiver holds it. */
async function silentStream(): Promise<Iroh.Connection> {
  const t = decodeTicket(receiver.ticket());
  const before = handedUp;
  const conn = await silent.connect(endpointAddr(t.id, t.addrs), Array.from(Buffer.from(SNAPSHOT_ALPN)));
  const bi = await conn.openBi();
  await bi.send.writeAll([0x10, 0x00]);
  held.push(bi);
  await waitFor(() => handedUp > before, 'the receiver to take the stream');
  return conn;
}

/** What `conn.closed()` says, or `still open` after WAIT_CLOSE_MS. */
async function closedWithin(conn: Iroh.Connection): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const out = await Promise.race([conn.closed(), new Promise<string>((r) => (timer = setTimeout(() => r('still open'), WAIT_CLOSE_MS)))]);
  clearTimeout(timer);
  return out;
}

const readOn = async (p: WorkerPool, k: string): Promise<Uint8Array | undefined> => {
  const o = await p.read(0 as ShardId, encodeGet('t', new TextEncoder().encode(k)), 'stale');
  if (!o.ok) return undefined;
  const r = decodeKvReply(KvOp.Get, o.body);
  return r.ok && r.found ? r.value : undefined;
};

/** A real member (node 3) leading shard 0 alone with one key, and its snapshot sender. */
async function realSender(): Promise<{ leader: WorkerPool; tx: Snapshots; term: Term; index: LogIndex }> {
  const leader = await startPool({
    dataDir: join(dataDir, 'leader'),
    workers: 1,
    nodeId: 3,
    shards: [{ shard: 0 as ShardId, voters: [3 as NodeId] }],
    tickMs: 10,
  });
  const tx = new Snapshots({
    self: 3 as NodeId,
    pool: leader,
    connect: (peerId) => member.openSnapshotStream(peerId),
    peerOf: (n) => (n === 2 ? receiver.id : undefined),
    stagingDir: join(dataDir, 'leader-staging'),
    backoff: { initialMs: 100, maxMs: 500 },
    log: { info: () => undefined, warn: () => undefined },
  });
  member.addPeer(receiver.ticket());
  const enc = new TextEncoder();
  for (let i = 0; !(await leader.propose(0 as ShardId, { command: encodePut('t', enc.encode('real'), enc.encode('yes')) })).ok; i++) {
    if (i > 500) throw new Error('the leader never took a write');
    await sleep(20);
  }
  const status = (await leader.control(0).status()).shards[0]!;
  return { leader, tx, term: status.term as Term, index: status.applied as LogIndex };
}

describe('snapshot streams that never offer', () => {
  it('beyond receivesMax are closed at once, the rest at offerTimeoutMs; a real snapshot still installs', async () => {
    const conns: Iroh.Connection[] = [];
    for (let i = 0; i < SILENT_STREAMS; i++) conns.push(await silentStream());
    // Refused as they came, while the first ones still wait for their offer.
    expect(snapshots.counters.receiveUnoffered).toBe(SILENT_STREAMS - RECEIVES_MAX);
    const reasons = conns.map((c) => closedWithin(c));
    const { leader, tx, term, index } = await realSender();
    try {
      // The core asks again while the follower still needs the snapshot; so does this loop.
      await waitFor(
        () => {
          tx.request(0 as ShardId, { from: 3 as NodeId, to: 2 as NodeId, term, index });
          return tx.counters.sent === 1;
        },
        'the real transfer',
        30_000,
      );
      expect(snapshots.counters.received).toBe(1);
      for (let i = 0; (await readOn(pool, 'real')) === undefined; i++) {
        if (i > 500) throw new Error('the installed snapshot never became readable');
        await sleep(20);
      }
      expect(Buffer.from((await readOn(pool, 'real'))!).toString()).toBe('yes');
    } finally {
      tx.close();
      await leader.close();
    }
    const got = await Promise.all(reasons);
    for (const r of got.slice(0, RECEIVES_MAX)) expect(r).toContain('no snapshot offer');
    for (const r of got.slice(RECEIVES_MAX)) expect(r).toContain('too many snapshot streams awaiting an offer');
    // The real sender's stream may have been refused too while the silent ones held the slots.
    expect(snapshots.counters.receiveUnoffered).toBeGreaterThanOrEqual(SILENT_STREAMS);
    expect(snapshots.active().receiving).toBe(0);
  }, 90_000);
});
