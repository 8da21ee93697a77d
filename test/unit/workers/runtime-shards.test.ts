/**
 * Shards gaining and losing replicas while nodes run, on two real worker pools (nodes 1 and 2:
 * real worker threads, rings and LMDB files), wired by a pump that hands each pool's raft
 * messages to the other's in-ring as the router does, and streams snapshots between them as the
 * router's snapshot streams do (open, read in pieces, stage a file, install).
 *
 * A replica opened empty on node 2 joins a running shard as a learner by the leader's snapshot,
 * is promoted to voter, takes over when the old leader removes itself, and the removed replica
 * neither campaigns nor disturbs the new leader until node 1 drops it; dropped, nothing of it is
 * left on disk, a worker restart does not bring it back, and opened again it starts empty.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { KvOp, decodeKvReply, encodeGet, encodePut } from '../../../src/shards/kv/index.js';
import type { NodeId, ShardId } from '../../../src/shards/raft/index.js';
import type { Membership, Outcome, ShardSpec, SnapshotWish } from '../../../src/shards/host.js';
import { PoolError } from '../../../src/workers/pool.js';
import type { WorkerPool } from '../../../src/workers/pool.js';
import { decodeMessage, peekMessageTo } from '../../../src/wire/index.js';
import { startPool } from '../../support/pool.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-runtime-shards-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const enc = new TextEncoder();
const TICK_MS = 20;
/** Long enough that a leader cut off for a few control calls still leads (check-quorum). */
const ELECTION_TICKS = 25;

/** Two nodes' pools and the links between them. */
interface Pair {
  readonly pools: WorkerPool[];
  /** False: raft messages and snapshots between the pools are lost, as in a partition. */
  linked: boolean;
  /** When set, raft messages it returns true for are lost. */
  lose: ((shard: ShardId, payload: Uint8Array) => boolean) | undefined;
  /** Snapshots streamed and installed (`stepped`) on the receiving pool. */
  snapshotsInstalled: number;
  close(): Promise<void>;
}

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.close();
  pair = undefined;
});

/** Streams `wish`'s snapshot from `from` to the pool of node `wish.to`, as src/router/snapshots.ts does over Iroh. */
async function relaySnapshot(p: Pair, from: WorkerPool, shard: ShardId, wish: SnapshotWish, busy: Set<string>): Promise<void> {
  const to = p.pools[wish.to - 1];
  const key = `${shard}/${wish.to}`;
  if (!p.linked || to === undefined || busy.has(key)) return;
  busy.add(key);
  try {
    const opened = await from.snapshotOpen(shard);
    if (!opened) return;
    const pieces: Uint8Array[] = [];
    try {
      for (let piece = await from.snapshotNext(shard, opened.stream, 64 << 10); piece; piece = await from.snapshotNext(shard, opened.stream, 64 << 10)) {
        pieces.push(piece);
      }
    } finally {
      await from.snapshotClose(shard, opened.stream);
    }
    const staging = join(root, 'staging');
    mkdirSync(staging, { recursive: true });
    const path = join(staging, `${shard}-${wish.to}-${opened.metadata.index}-${Math.random()}`);
    writeFileSync(path, Buffer.concat(pieces));
    const r = await to.snapshotInstall(shard, { from: wish.from, term: wish.term, metadata: opened.metadata, path });
    if (r === 'stepped') p.snapshotsInstalled++;
  } finally {
    busy.delete(key);
  }
}

/** Node 1 hosts `first`, node 2 `second`; both run one worker. */
async function startPair(first: ShardSpec[], second: ShardSpec[]): Promise<Pair> {
  const pools: WorkerPool[] = [];
  const busy = new Set<string>();
  const p: Pair = {
    pools,
    linked: true,
    lose: undefined,
    snapshotsInstalled: 0,
    close: async () => void (await Promise.all(pools.map((x) => x.close()))),
  };
  const route = (shard: ShardId, payload: Uint8Array): void => {
    // Node 3 never runs: what is sent to it is lost, as to a node that is down.
    if (p.linked && p.lose?.(shard, payload) !== true) pools[peekMessageTo(payload) - 1]?.deliver(shard, payload);
  };
  for (const [i, shards] of [first, second].entries()) {
    const pool = await startPool({
      dataDir: join(root, `d${dirs++}`),
      workers: 1,
      nodeId: i + 1,
      shards,
      tickMs: TICK_MS,
      seed: i + 1,
      raft: { electionTimeoutTicks: ELECTION_TICKS },
      onRaftMessage: route,
      onSnapshotRequest: (shard, wish) => void relaySnapshot(p, pool, shard, wish, busy),
    });
    pools.push(pool);
  }
  return p;
}

const wait = { timeout: 20_000, interval: 10 };

async function member(pool: WorkerPool, shard: number): Promise<Membership> {
  const m = await pool.membership(shard as ShardId);
  if (m === undefined) throw new Error(`shard ${shard} is not hosted`);
  return m;
}

async function put(pool: WorkerPool, shard: number, key: string, value: string): Promise<void> {
  const o = await pool.propose(shard as ShardId, { command: encodePut('acme', enc.encode(key), enc.encode(value)) });
  if (!o.ok) throw new Error(`put ${key}: ${o.code} ${o.message}`);
}

/** The value of `key` in the replica's own data (a stale read), undefined when absent. */
async function localValue(pool: WorkerPool, shard: number, key: string): Promise<string | undefined> {
  const o: Outcome = await pool.read(shard as ShardId, encodeGet('acme', enc.encode(key)), 'stale');
  if (!o.ok) throw new Error(`get ${key}: ${o.code} ${o.message}`);
  const r = decodeKvReply(KvOp.Get, o.body);
  if (!r.ok || r.op !== KvOp.Get) throw new Error(`get ${key}: ${JSON.stringify(r)}`);
  return r.found ? Buffer.from(r.value).toString() : undefined;
}

async function leads(pool: WorkerPool, shard: number): Promise<void> {
  await vi.waitFor(async () => expect((await member(pool, shard)).role).toBe('leader'), wait);
}

describe('runtime shards on two nodes', () => {
  test('an empty replica joins as learner by snapshot, is promoted, takes over; the removed replica stays quiet until dropped, and opened again starts empty', async () => {
    const p = (pair = await startPair([{ shard: 0 as ShardId, voters: [1 as NodeId] }], []));
    const [one, two] = p.pools as [WorkerPool, WorkerPool];
    await leads(one, 0);
    for (let i = 0; i < 20; i++) await put(one, 0, `k${i}`, `v${i}`);
    expect(await two.membership(0 as ShardId)).toBeUndefined();
    expect(await two.changeMembership(0 as ShardId, { type: 'addLearner', node: 2 })).toBe('absent');

    // Node 2 opens an empty replica: nothing applied, no members, no campaign (it is no voter).
    expect(await two.openShard({ shard: 0 as ShardId, voters: [] })).toBe('opened');
    expect(await two.openShard({ shard: 0 as ShardId, voters: [] })).toBe('hosted');
    const empty = await member(two, 0);
    expect(empty).toMatchObject({ role: 'follower', applied: 0, lastIndex: 0, voters: [], learners: [], progress: [] });

    // Added while cut off, the learner shows in the leader's progress as not yet answering.
    p.linked = false;
    expect(await one.changeMembership(0 as ShardId, { type: 'addLearner', node: 2 })).toBe('proposed');
    await vi.waitFor(async () => expect((await member(one, 0)).learners).toEqual([2]), wait);
    expect((await member(one, 0)).progress.find((x) => x.node === 2)).toEqual({ node: 2, match: 0, state: 'probe' });
    p.linked = true;
    await vi.waitFor(async () => {
      const [lead, learner] = [await member(one, 0), await member(two, 0)];
      expect(learner.learners).toEqual([2]);
      expect(learner.voters).toEqual([1]);
      expect(learner.applied).toBe(lead.applied);
      expect(lead.progress).toEqual([
        { node: 1, match: lead.lastIndex, state: 'replicate' },
        { node: 2, match: lead.lastIndex, state: 'replicate' },
      ]);
    }, wait);
    expect(p.snapshotsInstalled).toBeGreaterThanOrEqual(1);
    expect(await localValue(two, 0, 'k19')).toBe('v19');
    // Only the leader knows progress; a follower refuses changes, naming its leader.
    const learner = await member(two, 0);
    expect(learner.progress).toEqual([]);
    expect(learner.lead).toBe(1);
    expect(await two.changeMembership(0 as ShardId, { type: 'addVoter', node: 2 })).toBe('not-leader');

    // Changes that make no sense for the membership, or no sense at all.
    expect(await one.changeMembership(0 as ShardId, { type: 'addLearner', node: 2 })).toBe('invalid');
    expect(await one.changeMembership(0 as ShardId, { type: 'remove', node: 9 })).toBe('invalid');
    expect(await one.changeMembership(0 as ShardId, { type: 'addLearner', node: 0 })).toBe('invalid');
    expect(await one.changeMembership(0 as ShardId, { type: 'demote' as never, node: 2 })).toBe('invalid');
    expect(await one.changeMembership(7 as ShardId, { type: 'addLearner', node: 2 })).toBe('absent');

    expect(await one.changeMembership(0 as ShardId, { type: 'addVoter', node: 2 })).toBe('proposed');
    await vi.waitFor(async () => expect((await member(two, 0)).voters).toEqual([1, 2]), wait);
    await vi.waitFor(async () => expect((await member(one, 0)).voters).toEqual([1, 2]), wait);

    // Cut off from node 2, leader 1 cannot commit a change: a second one is refused pending.
    p.linked = false;
    expect(await one.changeMembership(0 as ShardId, { type: 'addLearner', node: 3 })).toBe('proposed');
    expect(await one.changeMembership(0 as ShardId, { type: 'remove', node: 2 })).toBe('pending');
    p.linked = true;
    await vi.waitFor(async () => expect((await member(one, 0)).learners).toEqual([3]), wait);
    expect(await one.changeMembership(0 as ShardId, { type: 'remove', node: 3 })).toBe('proposed');
    await vi.waitFor(async () => expect((await member(one, 0)).learners).toEqual([]), wait);

    // The leader removes itself: node 2 is left the only voter and takes over.
    await put(one, 0, 'before-handover', 'x');
    expect(await one.changeMembership(0 as ShardId, { type: 'remove', node: 1 })).toBe('proposed');
    await leads(two, 0);
    await vi.waitFor(() => expect(two.leaders.get(0 as ShardId)?.role).toBe('leader'), wait);
    const removed = await member(one, 0);
    expect(removed.voters).toEqual([2]);
    expect(removed.role).toBe('follower');
    await put(two, 0, 'after-handover', 'y');
    expect(await localValue(two, 0, 'before-handover')).toBe('x');

    // Many election timeouts later the removed replica has not campaigned, and the leader's term stands.
    const leader = await member(two, 0);
    await new Promise((r) => setTimeout(r, 4 * ELECTION_TICKS * TICK_MS));
    const quiet = await member(one, 0);
    expect(quiet.campaigns).toBe(removed.campaigns);
    expect(quiet.term).toBe(removed.term);
    expect(quiet.role).toBe('follower');
    const still = await member(two, 0);
    expect(still.role).toBe('leader');
    expect(still.term).toBe(leader.term);
    expect(still.voters).toEqual([2]);
    expect(await one.changeMembership(0 as ShardId, { type: 'addVoter', node: 1 })).toBe('not-leader');

    // Dropped: gone from disk and from the leader map; a restart does not reopen it.
    expect(await one.dropShard(0 as ShardId)).toBe('dropped');
    expect(one.leaders.has(0 as ShardId)).toBe(false);
    expect(await one.membership(0 as ShardId)).toBeUndefined();
    expect(await one.control(0).storedShards()).toEqual([]);
    expect(await one.dropShard(0 as ShardId)).toBe('absent');
    const restarted = new Promise<number>((resolve) => one.once('restart', (w) => resolve(w)));
    await one.control(0).crash('test');
    expect(await restarted).toBe(0);
    expect((await one.control(0).status()).shards).toEqual([]);
    expect(await one.control(0).storedShards()).toEqual([]);

    // Opened again under the same id, it starts empty (its old log, data and membership are gone).
    expect(await one.openShard({ shard: 0 as ShardId, voters: [] })).toBe('opened');
    expect(await member(one, 0)).toMatchObject({ applied: 0, lastIndex: 0, commit: 0, term: 0, voters: [], learners: [] });
    expect(await localValue(one, 0, 'k1')).toBeUndefined();
    // The shard goes on at node 2 meanwhile.
    await put(two, 0, 'later', 'z');
    expect((await member(two, 0)).role).toBe('leader');
  });

  test('a removed follower that never learns its removal committed campaigns once, is told it is out, stops, and stays hosted until dropped; the leader is not disturbed', async () => {
    const spec = { shard: 1 as ShardId, voters: [1, 2] as NodeId[] };
    const p = (pair = await startPair([spec], [spec]));
    await vi.waitFor(() => expect(p.pools.some((x) => x.leaders.get(1 as ShardId)?.role === 'leader')).toBe(true), wait);
    const lead = p.pools.find((x) => x.leaders.get(1 as ShardId)?.role === 'leader')!;
    const follower = p.pools.find((x) => x !== lead)!;
    const [leadId, followerId] = [lead === p.pools[0] ? 1 : 2, lead === p.pools[0] ? 2 : 1];
    await put(lead, 1, 'k', 'v');
    // The follower gets the removal entry and acknowledges it, but no message telling it the entry committed.
    const removal = (await member(lead, 1)).lastIndex + 1;
    p.lose = (shard, payload) => shard === 1 && peekMessageTo(payload) === followerId && decodeMessage(payload).commit >= removal;
    expect(await lead.changeMembership(1 as ShardId, { type: 'remove', node: followerId })).toBe('proposed');
    expect((await member(lead, 1)).lastIndex).toBe(removal);
    await vi.waitFor(async () => expect((await member(lead, 1)).voters).toEqual([leadId]), wait);
    const [leaderBefore, removedBefore] = [await member(lead, 1), await member(follower, 1)];
    await new Promise((r) => setTimeout(r, 4 * ELECTION_TICKS * TICK_MS));
    const [leaderAfter, removedAfter] = [await member(lead, 1), await member(follower, 1)];
    expect(leaderAfter.role).toBe('leader');
    expect(leaderAfter.term).toBe(leaderBefore.term);
    // It still counts itself a voter (its membership is as applied), so it campaigned, once: the
    // leader's answer said a newer configuration leaves it out (removedHint), and it stopped.
    expect(removedBefore.voters).toEqual([1, 2]);
    expect(removedAfter.voters).toEqual([1, 2]);
    expect(removedAfter.lastIndex).toBe(removal);
    expect(removedAfter.commit).toBeLessThan(removal);
    expect(removedAfter.campaigns - removedBefore.campaigns).toBe(1);
    expect(removedAfter.removedHint).toBe(removal);
    expect(removedAfter.term).toBe(removedBefore.term);
    expect(removedAfter.role).toBe('follower');
    expect((await follower.control(0).status()).shards.map((s) => s.id)).toEqual([1]);
    await put(lead, 1, 'k2', 'v2');
    expect(await follower.dropShard(1 as ShardId)).toBe('dropped');
    expect(await follower.control(0).storedShards()).toEqual([]);
  });

  test('a shard opened at runtime leads, serves, survives a worker restart with its data; dropping answers its waiting proposal ShardNotFound', async () => {
    const p = (pair = await startPair([], []));
    const [one, two] = p.pools as [WorkerPool, WorkerPool];
    expect(await one.openShard({ shard: 3 as ShardId, voters: [1 as NodeId] })).toBe('opened');
    // Its first leader event reaches the router-facing map.
    await vi.waitFor(() => expect(one.leaders.get(3 as ShardId)?.role).toBe('leader'), wait);
    await put(one, 3, 'a', '1');
    const restarted = new Promise<number>((resolve) => one.once('restart', (w) => resolve(w)));
    await one.control(0).crash('test');
    await restarted;
    await leads(one, 3);
    expect(await localValue(one, 3, 'a')).toBe('1');
    // The stored state wins over the spec when the store holds the shard.
    expect(await one.openShard({ shard: 3 as ShardId, voters: [5 as NodeId] })).toBe('hosted');
    expect((await member(one, 3)).voters).toEqual([1]);

    // A proposal its leader cannot commit (the other voter is cut off) waits; the drop answers it.
    expect(await one.openShard({ shard: 5 as ShardId, voters: [1, 2] as NodeId[] })).toBe('opened');
    expect(await two.openShard({ shard: 5 as ShardId, voters: [1, 2] as NodeId[] })).toBe('opened');
    await vi.waitFor(() => expect(p.pools.some((x) => x.leaders.get(5 as ShardId)?.role === 'leader')).toBe(true), wait);
    const lead = p.pools.find((x) => x.leaders.get(5 as ShardId)?.role === 'leader')!;
    p.linked = false;
    const waiting = lead.propose(5 as ShardId, { command: encodePut('acme', enc.encode('b'), enc.encode('2')) }, 15_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(lead.inflight()).toBe(1);
    const stream = (await lead.snapshotOpen(5 as ShardId))!;
    expect(await lead.dropShard(5 as ShardId)).toBe('dropped');
    // Its snapshot stream was closed with it (its read transaction used the databases dropped).
    await expect(lead.snapshotNext(5 as ShardId, stream.stream, 1024)).rejects.toThrow(/is closed/);
    const answer = await waiting;
    expect(answer.ok).toBe(false);
    expect(!answer.ok && answer.code).toBe('ShardNotFound');
    expect(lead.inflight()).toBe(0);
    expect(lead.hostedShards()).toEqual(lead === one ? [3] : []);
    expect(await one.control(0).storedShards()).toEqual(lead === one ? [3] : [3, 5]);

    // Many at once: those hosted already are counted, not reopened.
    expect(await one.openShards([3, 6, 7].map((s) => ({ shard: s as ShardId, voters: [1 as NodeId] })))).toEqual({ opened: 2, hosted: 1 });
    expect(one.hostedShards()).toEqual([3, 6, 7]);
    await leads(one, 7);
  });

  test('bad shard specs are refused InvalidConfig, a full store ShardLimit; after close every runtime call is refused or answers absent', async () => {
    const p = (pair = await startPair([], []));
    const [one] = p.pools as [WorkerPool, WorkerPool];
    const refused = (spec: ShardSpec): Promise<unknown> => one.openShard(spec).catch((e: unknown) => e);
    for (const spec of [
      { shard: -1 as ShardId, voters: [] },
      { shard: 1.5 as ShardId, voters: [] },
      { shard: 1 as ShardId, voters: [0 as NodeId] },
      { shard: 1 as ShardId, voters: [1, 1] as NodeId[] },
      { shard: 1 as ShardId, voters: [1 as NodeId], learners: [1 as NodeId] },
    ]) {
      const e = await refused(spec);
      expect(e).toBeInstanceOf(PoolError);
      expect((e as PoolError).code).toBe('InvalidConfig');
    }
    expect(await one.control(0).storedShards()).toEqual([]);
    await one.close();
    // A store sized for two shards refuses a third with ShardLimit, and keeps nothing of the call
    // that asked for it (openShards is all or nothing per worker).
    const small = await startPool({ dataDir: join(root, `d${dirs++}`), workers: 1, shards: [], tickMs: TICK_MS, shardsPerWorkerMax: 2 });
    const spec = (shard: number): ShardSpec => ({ shard: shard as ShardId, voters: [1 as NodeId] });
    const limit = async (call: Promise<unknown>): Promise<void> => {
      const e = (await call.catch((x: unknown) => x)) as PoolError;
      expect(e).toBeInstanceOf(PoolError);
      expect(e.code).toBe('ShardLimit');
    };
    try {
      expect(await small.openShard(spec(0))).toBe('opened');
      await limit(small.openShards([spec(1), spec(2)]));
      expect(await small.control(0).storedShards()).toEqual([0]);
      expect((await small.control(0).status()).shards.map((x) => x.id)).toEqual([0]);
      expect(small.hostedShards()).toEqual([0]);
      expect(await small.openShard(spec(1))).toBe('opened');
      await limit(small.openShard(spec(2)));
      expect(await small.dropShard(0 as ShardId)).toBe('dropped');
      expect(await small.openShard(spec(2))).toBe('opened');
      expect(small.hostedShards()).toEqual([1, 2]);
      const twice = (await small.openShards([spec(4), spec(4)]).catch((x: unknown) => x)) as PoolError;
      expect(twice.code).toBe('InvalidConfig');
    } finally {
      await small.close();
    }
    expect(((await refused({ shard: 1 as ShardId, voters: [] })) as PoolError).code).toBe('PoolClosed');
    expect(((await one.dropShard(1 as ShardId).catch((e: unknown) => e)) as PoolError).code).toBe('PoolClosed');
    expect(await one.membership(1 as ShardId)).toBeUndefined();
    expect(await one.changeMembership(1 as ShardId, { type: 'addLearner', node: 2 })).toBe('absent');
  });
});
