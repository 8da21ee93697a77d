/**
 * The router's request path with a peer standing in for a remote leader: retries after NotLeader
 * or a lost answer reuse the request's client session, so a write that did apply is not applied
 * twice; hints steer the retry; deadlines end with a clear error; spoofed raft senders are refused.
 * Liveness through the router, on a clock of the test's: only liveness records keep a peer up,
 * a peer's dead worker wakes only its shards' followers and steers routing away, bad liveness
 * payloads are counted and ignored, and this node announces its running workers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  RecordKind,
  decodeLiveness,
  decodePropose,
  decodeRead,
  encodeLiveness,
  encodeMessage,
  encodeReply,
  isStopping,
  leadsSection,
  stoppingSection,
} from '../../../src/wire/index.js';
import type { LivenessFrame, LivenessSection } from '../../../src/wire/index.js';
import { MessageType, emptyMessage } from '../../../src/shards/raft/index.js';
import type { NodeId, ShardId, Term } from '../../../src/shards/raft/index.js';
import { Router } from '../../../src/router/router.js';
import type { Member, PeerLink, RouterOptions } from '../../../src/router/router.js';
import { replicasOf, shardOf } from '../../../src/router/placement.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
import type { WorkerPool } from '../../../src/workers/pool.js';
import { startPool } from '../../support/pool.js';

const dir = mkdtempSync(join(tmpdir(), 'iroh-raft-router-'));
let pool: WorkerPool;
beforeAll(async () => {
  // Node 1 hosts no shard here (replicas = 1 on node 2 or 3), so every write is forwarded.
  pool = await startPool({ dataDir: dir, workers: 1, shards: [], tickMs: 10 });
});
afterAll(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

const members: Member[] = [1, 2, 3].map((n) => ({ nodeId: n as NodeId, peerId: `peer-${n}` }));

interface Sent {
  peer: string;
  kind: number;
  shard: number;
  payload: Uint8Array;
}

function makeRouter(onSend: (s: Sent, r: Router) => void, timeoutMs = 2000, writeBytesMax?: number): Router {
  const link: PeerLink = { send: (peer, kind, shard, payload) => onSend({ peer, kind, shard, payload }, router) };
  const router: Router = new Router({
    self: 1 as NodeId,
    members,
    shards: 4,
    replicas: 1,
    pool,
    link,
    requestTimeoutMs: timeoutMs,
    ...(writeBytesMax === undefined ? {} : { writeBytesMax }),
  });
  return router;
}

function makeRouterWith(extra: { requestsMax: number }): Router {
  return new Router({ self: 1 as NodeId, members, shards: 4, replicas: 1, pool, link: { send: () => undefined }, ...extra });
}

/** A key whose shard lives on another node (node 1 hosts no shard in this pool). */
function remoteKey(tag: string): Uint8Array {
  for (let i = 0; ; i++) {
    const key = new TextEncoder().encode(`${tag}${i}`);
    if (replicasOf(shardOf('t', key, 4), [1, 2, 3] as NodeId[], 1)[0] !== 1) return key;
  }
}

const reply = (r: Router, from: string, shard: number, body: Parameters<typeof encodeReply>[0]): void =>
  r.onPeerRecords(from, [{ kind: RecordKind.ClientReply, shard, payload: encodeReply(body) }]);

describe('router', () => {
  test('a write for a shard led elsewhere is forwarded; after NotLeader it retries at the hinted leader with the same session', async () => {
    const key = remoteKey('k');
    const shard = shardOf('t', key, 4);
    const owner = replicasOf(shard, [1, 2, 3] as NodeId[], 1)[0]!;
    const other = owner === 2 ? 3 : 2;
    const seen: { peer: string; clientId: number; seq: number }[] = [];
    const router = makeRouter((s, r) => {
      if (s.kind !== RecordKind.ClientPropose) return;
      const p = decodePropose(s.payload);
      seen.push({ peer: s.peer, clientId: p.clientId, seq: p.seq });
      setImmediate(() => {
        if (seen.length === 1) reply(r, s.peer, s.shard, { reqId: p.reqId, ok: false, code: 'NotLeader', message: 'not me', leaderHint: other });
        else if (seen.length === 2)
          return; // the answer is lost: the router retries after its per-hop wait
        else reply(r, s.peer, s.shard, { reqId: p.reqId, ok: true, body: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]) });
      });
    }, 5000);
    const res = await router.put({ tenant: 't', key, value: new Uint8Array([1]) });
    // The answer names the node that gave it, so a client can go there next time.
    expect(res).toEqual({ ok: true, value: { version: 1, swapped: true, served: { shard, node: Number(seen.at(-1)!.peer.slice('peer-'.length)) } } });
    expect(seen[0]!.peer).toBe(`peer-${owner}`);
    expect(seen[1]!.peer).toBe(`peer-${other}`);
    // Every attempt carried the same client session: a leader that applied an earlier attempt answers the retry from its session table.
    expect(new Set(seen.map((s) => `${s.clientId}/${s.seq}`)).size).toBe(1);
    // The next request gets a new sequence.
    const next = router.put({ tenant: 't', key, value: new Uint8Array([2]) });
    await expect(next).resolves.toMatchObject({ ok: true });
    expect(seen[seen.length - 1]!.seq).not.toBe(seen[0]!.seq);
    router.close();
  });

  test("a write with the client's own session is proposed and retried under it, takes no lane, and its ids never meet the router's", async () => {
    const key = remoteKey('own');
    const shard = shardOf('t', key, 4);
    const owner = replicasOf(shard, [1, 2, 3] as NodeId[], 1)[0]!;
    const other = owner === 2 ? 3 : 2;
    const seen: { peer: string; clientId: number; seq: number }[] = [];
    const router = makeRouter((s, r) => {
      if (s.kind !== RecordKind.ClientPropose) return;
      const p = decodePropose(s.payload);
      seen.push({ peer: s.peer, clientId: p.clientId, seq: p.seq });
      const ok = { reqId: p.reqId, ok: true, body: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]) } as const;
      setImmediate(() =>
        reply(r, s.peer, s.shard, seen.length === 1 ? { reqId: p.reqId, ok: false, code: 'NotLeader', message: 'no', leaderHint: other } : ok),
      );
    }, 5000);
    const session = { clientId: 2 ** 52 + 77, seq: 5 };
    expect(await router.put({ tenant: 't', key, value: new Uint8Array([1]), session })).toMatchObject({ ok: true, value: { version: 1 } });
    // The stand-in answers a put's reply: what delete makes of it does not matter here, only what was proposed.
    await router.delete({ tenant: 't', key, session: { ...session, seq: 6 } });
    expect(seen.slice(0, 2)).toEqual([
      { peer: `peer-${owner}`, clientId: 2 ** 52 + 77, seq: 5 },
      { peer: `peer-${other}`, clientId: 2 ** 52 + 77, seq: 5 },
    ]);
    expect(seen[2]).toMatchObject({ clientId: 2 ** 52 + 77, seq: 6 });
    // Without a session the router's own lane: an id below 2^52, a sequence of its own.
    await router.put({ tenant: 't', key, value: new Uint8Array([2]) });
    const own = seen.at(-1)!;
    expect(own.clientId).toBeGreaterThan(0);
    expect(own.clientId).toBeLessThan(2 ** 52);
    expect(own.seq).toBe(1);
    router.close();
  });

  test('a node that answers ShardNotFound (its replica moved away) is passed over at once, and its stale hint forgotten', async () => {
    const key = remoteKey('moved');
    const shard = shardOf('t', key, 4);
    const owner = replicasOf(shard, [1, 2, 3] as NodeId[], 1)[0]!;
    const other = owner === 2 ? 3 : 2;
    const seen: { peer: string; kind: number; clientId?: number; seq?: number }[] = [];
    const ok = (reqId: number) => ({ reqId, ok: true, body: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]) }) as const;
    let pointed = false;
    const router = makeRouter((s, r) => {
      if (s.kind !== RecordKind.ClientPropose && s.kind !== RecordKind.ClientRead) return;
      const p = s.kind === RecordKind.ClientPropose ? decodePropose(s.payload) : decodeRead(s.payload);
      seen.push({ peer: s.peer, kind: s.kind, ...('clientId' in p ? { clientId: p.clientId, seq: p.seq } : {}) });
      setImmediate(() => {
        // The first answer points at a node that led the shard once; that node no longer hosts it.
        if (!pointed) {
          pointed = true;
          reply(r, s.peer, s.shard, { reqId: p.reqId, ok: false, code: 'NotLeader', message: 'not me', leaderHint: other });
        } else if (s.peer === `peer-${other}`)
          reply(r, s.peer, s.shard, { reqId: p.reqId, ok: false, code: 'ShardNotFound', message: 'not hosted here', leaderHint: 0 });
        else reply(r, s.peer, s.shard, ok(p.reqId));
      });
    }, 5000);
    expect(await router.put({ tenant: 't', key, value: new Uint8Array([1]) })).toMatchObject({ ok: true, value: { served: { shard, node: owner } } });
    expect(seen.map((s) => s.peer)).toEqual([`peer-${owner}`, `peer-${other}`, `peer-${owner}`]);
    // Each attempt carried the same session.
    expect(new Set(seen.map((s) => `${s.clientId}/${s.seq}`)).size).toBe(1);
    // The hint was forgotten: a read (stale, as a client checking a replica would) goes to the owner first.
    seen.length = 0;
    await router.get({ tenant: 't', key, consistency: 'stale' });
    expect(seen.map((s) => [s.peer, s.kind])).toEqual([[`peer-${owner}`, RecordKind.ClientRead]]);
    router.close();
  });

  test('placement: this node, the shard count and hash, and each leader as known (null when none can serve)', () => {
    const leaders = new Map<number, { lead: number }>([
      [0, { lead: 2 }],
      [1, { lead: 0 }],
    ]);
    const fakePool = { leaders, isRunning: () => true, hosts: () => true, workerOf: () => 0 } as unknown as WorkerPool;
    const router = new Router({ self: 1 as NodeId, members, shards: 4, replicas: 3, pool: fakePool, link: { send: () => undefined } });
    expect(router.placement()).toEqual({ node: 1, shards: 4, replicas: 3, hash: 'fnv1a32(tenant,0,key)%shards', leaders: [2, null, null, null] });
    router.close();
  });

  test('requestsMax beyond one block of router session ids is refused at construction', () => {
    expect(() => makeRouterWith({ requestsMax: 2 ** 16 + 1 })).toThrow(/requestsMax/);
  });

  test('a slow answer from a leader that is still heard from is waited for, not asked again', async () => {
    const seen: number[] = [];
    const router = makeRouter((s, r) => {
      if (s.kind !== RecordKind.ClientPropose) return;
      const p = decodePropose(s.payload);
      seen.push(p.reqId);
      // Answered after 1.5 s: megabytes queued ahead of this write at a live leader.
      setTimeout(() => reply(r, s.peer, s.shard, { reqId: p.reqId, ok: true, body: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]) }), 1500);
    }, 5000);
    expect(await router.put({ tenant: 't', key: remoteKey('slow'), value: new Uint8Array([1]) })).toMatchObject({ ok: true });
    // One copy of the write crossed: a second would have been proposed again behind the first.
    expect(seen).toHaveLength(1);
    router.close();
  });

  test('a request nobody answers ends with Timeout at its deadline', async () => {
    const router = makeRouter(() => undefined, 300);
    const res = await router.put({ tenant: 't', key: remoteKey('t'), value: new Uint8Array([1]) });
    expect(res).toMatchObject({ ok: false, code: 'Timeout' });
    router.close();
  });

  test('errors that are not about leadership are returned at once, not retried', async () => {
    let attempts = 0;
    const router = makeRouter((s, r) => {
      if (s.kind !== RecordKind.ClientPropose) return;
      attempts++;
      const p = decodePropose(s.payload);
      setImmediate(() => reply(r, s.peer, s.shard, { reqId: p.reqId, ok: false, code: 'ValueTooLarge', message: 'too big', leaderHint: 0 }));
    });
    expect(await router.put({ tenant: 't', key: remoteKey('e'), value: new Uint8Array([1]) })).toMatchObject({ ok: false, code: 'ValueTooLarge' });
    expect(attempts).toBe(1);
    router.close();
  });

  test('writes beyond writeBytesMax in flight wait their turn, in order, and go when earlier ones finish', async () => {
    const held: (() => void)[] = [];
    const sent: string[] = [];
    const router = makeRouter(
      (s, r) => {
        if (s.kind !== RecordKind.ClientPropose) return;
        const p = decodePropose(s.payload);
        sent.push(Buffer.from(p.command).toString('latin1'));
        held.push(() => reply(r, s.peer, s.shard, { reqId: p.reqId, ok: true, body: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]) }));
      },
      5000,
      64 * 1024,
    );
    const value = new Uint8Array(20 * 1024);
    const keys = Array.from({ length: 6 }, (_, i) => remoteKey(`w${i}-`));
    const writes = keys.map((key) => router.put({ tenant: 't', key, value }));
    await sleep(50);
    // 3 x 20 KiB fit in 64 KiB; the other three wait, not proposed.
    expect(held.length).toBe(3);
    for (const answer of held.splice(0)) answer();
    for (const r of await Promise.all(writes.slice(0, 3))) expect(r).toMatchObject({ ok: true });
    await sleep(50);
    expect(held.length).toBe(3);
    for (const answer of held.splice(0)) answer();
    for (const r of await Promise.all(writes.slice(3))) expect(r).toMatchObject({ ok: true });
    // Proposed in the order they came.
    expect(sent.map((c) => keys.findIndex((k) => c.includes(Buffer.from(k).toString('latin1'))))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(router.counters.writeBytesRefused).toBe(0);
    // Nothing in flight: a write larger than the budget goes.
    const big = router.put({ tenant: 't', key: remoteKey('big'), value: new Uint8Array(100 * 1024) });
    await sleep(20);
    for (const answer of held.splice(0)) answer();
    expect(await big).toMatchObject({ ok: true });
    router.close();
  });

  test('a write still waiting behind writeBytesMax after half its deadline is answered Overloaded and never proposed', async () => {
    const held: (() => void)[] = [];
    const router = makeRouter(
      (s, r) => {
        if (s.kind !== RecordKind.ClientPropose) return;
        const p = decodePropose(s.payload);
        held.push(() => reply(r, s.peer, s.shard, { reqId: p.reqId, ok: true, body: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]) }));
      },
      400,
      64 * 1024,
    );
    const value = new Uint8Array(40 * 1024);
    const first = router.put({ tenant: 't', key: remoteKey('a'), value });
    const second = router.put({ tenant: 't', key: remoteKey('b'), value });
    expect(await second).toMatchObject({ ok: false, code: 'Overloaded', message: expect.stringContaining('writeBytesMax') as unknown });
    expect(router.counters.writeBytesRefused).toBe(1);
    expect(held.length).toBe(1);
    for (const answer of held.splice(0)) answer();
    expect(await first).toMatchObject({ ok: true });
    router.close();
  });

  test('a raft message whose sender is not the connection peer is refused', () => {
    const delivered: number[] = [];
    const fakePool = {
      deliver: (shard: ShardId) => delivered.push(shard),
      wake: () => Promise.resolve(0),
      leaders: new Map(),
      hosts: () => true,
    } as unknown as WorkerPool;
    const router = new Router({ self: 1 as NodeId, members, shards: 4, replicas: 3, pool: fakePool, link: { send: () => undefined } });
    const m = (from: number): Uint8Array => encodeMessage(emptyMessage(MessageType.Heartbeat, from as NodeId, 1 as NodeId, 1 as Term));
    router.onPeerRecords('peer-2', [{ kind: RecordKind.RaftMessage, shard: 0, payload: m(2) }]);
    router.onPeerRecords('peer-2', [{ kind: RecordKind.RaftMessage, shard: 0, payload: m(3) }]); // claims to be node 3
    router.onPeerRecords('stranger', [{ kind: RecordKind.RaftMessage, shard: 0, payload: m(2) }]);
    router.onPeerRecords('peer-2', [{ kind: RecordKind.RaftMessage, shard: 0, payload: new Uint8Array([1, 2, 3]) }]); // garbage
    expect(delivered).toEqual([0]);
    expect(router.counters.spoofed).toBe(1);
    expect(router.counters.badRecords).toBe(1);
    router.close();
  });
});

describe('router liveness', () => {
  /** A pool of `workers` workers (shard s on s % workers) whose replicas report `lead`; wakes are recorded. */
  function fakePool(workers: number, lead: Map<number, number>) {
    const wakes: { leader: number | undefined; shards: readonly ShardId[] | undefined }[] = [];
    const running = Array.from({ length: workers }, () => true);
    const pool = {
      workers,
      leaders: new Map([...lead].map(([s, l]) => [s, { lead: l, term: 1, role: 'follower' }])),
      workerOf: (s: number) => s % workers,
      isRunning: (w: number) => running[w] === true,
      hosts: () => true,
      workersRunning: () => [...running],
      wake: (leader?: number, shards?: readonly ShardId[]) => {
        wakes.push({ leader, shards });
        return Promise.resolve(shards?.length ?? 0);
      },
      deliver: () => true,
      call: <T>(_w: number, fn: (api: { status: () => Promise<{ shards: never[] }> }) => Promise<T>) => fn({ status: () => Promise.resolve({ shards: [] }) }),
    };
    return { pool: pool as unknown as WorkerPool, wakes, running };
  }

  /** Node 1's router over `pool`, with a 200 ms liveness timeout, on a clock the test moves. */
  const livenessRouter = (pool: WorkerPool, clock: () => number): Router =>
    new Router({ self: 1 as NodeId, members, shards: 4, replicas: 3, pool, link: { send: () => undefined }, livenessTimeoutMs: 200, clock });

  /** Node 1's router over `pool`, each liveness record it sends handed to `heard` decoded; `extra` options besides. */
  const announcingRouter = (pool: WorkerPool, heard: (peer: string, f: LivenessFrame) => void, extra: Partial<RouterOptions> = {}): Router =>
    new Router({
      self: 1 as NodeId,
      members,
      shards: 4,
      replicas: 3,
      pool,
      link: { send: (peer, kind, _shard, payload) => kind === RecordKind.NodeHeartbeat && heard(peer, decodeLiveness(payload)) },
      ...extra,
    });

  const heartbeat = (running: boolean[]) => ({ kind: RecordKind.NodeHeartbeat, shard: 0, payload: encodeLiveness({ running }) });
  const raft = (from: number) => ({
    kind: RecordKind.RaftMessage,
    shard: 0,
    payload: encodeMessage(emptyMessage(MessageType.App, from as NodeId, 1 as NodeId, 1 as Term)),
  });

  test('any record keeps a peer up (a busy peer whose liveness records wait behind bulk traffic is not gone); a silent peer has the quiet followers it leads woken', () => {
    // Shards 0-3 on all three nodes; node 2 leads 0 and 1, node 3 leads 2, this node 3.
    const { pool, wakes } = fakePool(
      1,
      new Map([
        [0, 2],
        [1, 2],
        [2, 3],
        [3, 1],
      ]),
    );
    let now = 0;
    const router = livenessRouter(pool, () => now);
    for (; now <= 1000; now += 20) {
      router.onPeerRecords('peer-2', [raft(2)]); // node 2 is busy: only raft traffic gets through
      router.onPeerRecords('peer-3', [heartbeat([true])]);
      router.tickLiveness();
    }
    expect(router.peersUp()).toEqual([2, 3]);
    expect(wakes).toEqual([]);
    expect(router.leaderOf(0 as ShardId)).toBe(2);
    // Then node 2 goes silent: after the timeout its quiet followers here are woken.
    for (const end = now + 1000; now <= end; now += 20) {
      router.onPeerRecords('peer-3', [heartbeat([true])]);
      router.tickLiveness();
    }
    expect(router.peersUp()).toEqual([3]);
    expect(wakes).toEqual([{ leader: 2, shards: [0, 1] }]);
    expect(router.leaderOf(0 as ShardId)).toBe(1); // not node 2: the local replica answers with a hint
    expect(router.leaderOf(2 as ShardId)).toBe(3);
    router.close();
  });

  test("a peer's record naming a stopped worker wakes only that worker's shards it leads, and routing avoids it for them only", () => {
    // Node 2 runs 2 workers (shard s on s % 2) and leads shards 0-3.
    const { pool, wakes } = fakePool(
      1,
      new Map([
        [0, 2],
        [1, 2],
        [2, 2],
        [3, 2],
      ]),
    );
    let now = 0;
    const router = livenessRouter(pool, () => now);
    const beat = (two: boolean[]): void => {
      router.onPeerRecords('peer-2', [heartbeat(two)]);
      router.onPeerRecords('peer-3', [heartbeat([true])]);
      router.tickLiveness();
      now += 20;
    };
    for (let i = 0; i < 10; i++) beat([true, true]);
    expect(wakes).toEqual([]);
    expect([0, 1, 2, 3].map((s) => router.leaderOf(s as ShardId))).toEqual([2, 2, 2, 2]);
    for (let i = 0; i < 100; i++) beat([true, false]);
    expect(wakes).toEqual([{ leader: 2, shards: [1, 3] }]);
    expect(router.peersUp()).toEqual([2, 3]);
    expect([0, 1, 2, 3].map((s) => router.leaderOf(s as ShardId))).toEqual([2, 1, 2, 1]);
    router.close();
  });

  test('bytes of a frame still crossing keep a peer up; traffic from a stranger keeps nobody up', () => {
    const { pool, wakes } = fakePool(1, new Map([[0, 2]]));
    let now = 0;
    const router = livenessRouter(pool, () => now);
    router.onPeerRecords('peer-2', [heartbeat([true])]);
    router.onPeerRecords('peer-3', [heartbeat([true])]);
    // Node 2 sends one long frame: no record for 1 s, but its bytes keep arriving. Node 3 is
    // silent; a stranger's bytes under no member's id change nothing.
    for (; now <= 1000; now += 20) {
      router.onPeerTraffic('peer-2');
      router.onPeerTraffic('stranger');
      router.tickLiveness();
    }
    expect(router.peersUp()).toEqual([2]);
    expect(wakes).toEqual([]);
  });

  test('malformed liveness payloads are counted and ignored, never a crash; they say nothing of the workers', () => {
    // Node 2 (one worker) leads shard 0 and reports its worker down; then it sends only garbage.
    const { pool, wakes } = fakePool(1, new Map([[0, 2]]));
    let now = 0;
    const router = livenessRouter(pool, () => now);
    const garbage = [new Uint8Array([7]), new Uint8Array([0, 0]), new Uint8Array([3, 0, 0xf8]), new Uint8Array([1, 0, 1, 0])];
    router.onPeerRecords('peer-2', [heartbeat([false])]);
    for (; now <= 400; now += 20) {
      expect(() =>
        router.onPeerRecords(
          'peer-2',
          garbage.map((payload) => ({ kind: RecordKind.NodeHeartbeat, shard: 0, payload })),
        ),
      ).not.toThrow();
      router.onPeerRecords('peer-3', [heartbeat([true])]);
      router.tickLiveness();
    }
    expect(router.liveness.counters.bad).toBe(garbage.length * 21);
    // The node is there (it sends), and its worker counts as down still: no garbage revived it.
    expect(router.peersUp()).toEqual([2, 3]);
    expect(router.leaderOf(0 as ShardId)).toBe(1);
    expect(wakes).toEqual([{ leader: 2, shards: [0] }]);
    router.close();
  });

  test('this node announces which of its workers run, and keeps announcing while one is down', async () => {
    const { pool, running } = fakePool(3, new Map());
    const sent: { peer: string; running: readonly boolean[] }[] = [];
    const router = announcingRouter(pool, (peer, f) => sent.push({ peer, running: f.running }), { livenessIntervalMs: 5 });
    router.startLiveness();
    await vi.waitFor(() => expect(sent.length).toBeGreaterThanOrEqual(2));
    expect(sent.slice(0, 2)).toEqual([
      { peer: 'peer-2', running: [true, true, true] },
      { peer: 'peer-3', running: [true, true, true] },
    ]);
    running[1] = false;
    sent.length = 0;
    await vi.waitFor(() => expect(sent.length).toBeGreaterThanOrEqual(2));
    expect(sent[0]!.running).toEqual([true, false, true]);
    router.close();
  });

  test('a stopping node says so on every liveness record from the moment it begins, and refuses the leaderships offered to it', () => {
    const delivered: number[] = [];
    const { pool } = fakePool(1, new Map());
    (pool as unknown as { deliver: (s: number) => void }).deliver = (s) => delivered.push(s);
    const sent: { peer: string; stopping: boolean }[] = [];
    const router = announcingRouter(pool, (peer, f) => sent.push({ peer, stopping: isStopping(f) }));
    const offer = (type: MessageType) => ({
      kind: RecordKind.RaftMessage,
      shard: 2,
      payload: encodeMessage(emptyMessage(type, 2 as NodeId, 1 as NodeId, 5 as Term)),
    });
    router.onPeerRecords('peer-2', [offer(MessageType.TimeoutNow)]);
    expect(delivered).toEqual([2]);
    router.beginStopping();
    // Told at once, not at the next interval (the liveness timer is not even running here).
    expect(sent).toEqual([
      { peer: 'peer-2', stopping: true },
      { peer: 'peer-3', stopping: true },
    ]);
    router.onPeerRecords('peer-2', [offer(MessageType.TimeoutNow), offer(MessageType.App)]);
    expect(delivered).toEqual([2, 2]);
    expect(router.counters.leadershipsRefused).toBe(1);
    router.close();
  });

  test("a peer's stopping section marks it stopping until a record without it", () => {
    const { pool } = fakePool(1, new Map());
    let now = 0;
    const router = livenessRouter(pool, () => now);
    const record = (sections: LivenessSection[]) => ({ kind: RecordKind.NodeHeartbeat, shard: 0, payload: encodeLiveness({ running: [true], sections }) });
    expect(router.liveness.stopping(2 as NodeId)).toBe(false);
    router.onPeerRecords('peer-2', [record([leadsSection(3), stoppingSection()])]);
    expect(router.liveness.stopping(2 as NodeId)).toBe(true);
    expect(router.liveness.stopping(3 as NodeId)).toBe(false);
    now = 50;
    router.onPeerRecords('peer-2', [record([])]);
    expect(router.liveness.stopping(2 as NodeId)).toBe(false);
    router.close();
  });

  test("this node's load and HTTP URL ride on one liveness record per second or so; a peer's load shows in status with its state", async () => {
    const { pool } = fakePool(1, new Map());
    const sent: { peer: string; load: unknown }[] = [];
    let calls = 0;
    const router = announcingRouter(pool, (peer, f) => sent.push({ peer, load: f.load }), {
      livenessIntervalMs: 100,
      load: () => ({ requestsPerSec: 12.6, p99Ms: 3.2004, httpUrl: `http://127.0.0.1:${7070 + calls++}` }),
      snapshotsActive: () => ({ sending: 1, receiving: 0 }),
    });
    router.startLiveness();
    await vi.waitFor(() => expect(sent.length).toBeGreaterThanOrEqual(22), { timeout: 30_000 });
    router.close();
    // Every 10th round (1,000 / 100 ms) carries the load, to both peers alike; the others do not.
    const rounds = sent.slice(0, 22).filter((s) => s.peer === 'peer-2');
    expect(rounds.map((r) => r.load !== undefined)).toEqual([true, false, false, false, false, false, false, false, false, false, true]);
    expect(sent[0]).toEqual({ peer: 'peer-2', load: { requestsPerSec: 13, p99Micros: 3200, httpUrl: 'http://127.0.0.1:7070' } });
    expect(sent[1]).toEqual({ peer: 'peer-3', load: { requestsPerSec: 13, p99Micros: 3200, httpUrl: 'http://127.0.0.1:7070' } });

    // Node 2 reports its load; node 3 never spoke and then counts as down.
    let now = 0;
    const seen = new Router({
      self: 1 as NodeId,
      members,
      shards: 4,
      replicas: 3,
      pool,
      link: { send: () => undefined },
      livenessTimeoutMs: 200,
      clock: () => now,
    });
    const load = { requestsPerSec: 40, p99Micros: 2500, httpUrl: 'http://127.0.0.1:7071' };
    for (; now <= 600; now += 50) {
      seen.onPeerRecords('peer-2', [
        { kind: RecordKind.NodeHeartbeat, shard: 0, payload: encodeLiveness({ running: [true], ...(now === 0 ? { load } : {}) }) },
      ]);
      seen.tickLiveness();
    }
    const status = (await seen.status()) as { nodes: unknown[]; snapshots: unknown; moves: unknown };
    expect(status.nodes).toEqual([
      expect.objectContaining({ node: 1, self: true, up: true, requestsPerSec: null, p99Ms: null, httpUrl: null }),
      expect.objectContaining({ node: 2, self: false, up: true, requestsPerSec: 40, p99Ms: 2.5, httpUrl: 'http://127.0.0.1:7071', loadMsAgo: 650 }),
      expect.objectContaining({ node: 3, self: false, up: false, requestsPerSec: null, p99Ms: null, httpUrl: null }),
    ]);
    expect(status.snapshots).toBeNull();
    expect(status.moves).toEqual({ supported: false, active: [] });
    seen.close();
  });
});
