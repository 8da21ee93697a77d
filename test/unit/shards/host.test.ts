import { afterEach, describe, expect, test, vi } from 'vitest';
import { ENTRY_OVERHEAD_BYTES, MessageType, RawNode } from '../../../src/shards/raft/index.js';
import type { Message, NodeId, ShardId } from '../../../src/shards/raft/index.js';
import type { ClientReply } from '../../../src/shards/host.js';
import { HostCluster, indexOf } from './host-cluster.js';
import type { ClusterNode } from './host-cluster.js';

let cluster: HostCluster | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await cluster?.close();
  cluster = undefined;
});

describe('shard host on LMDB', () => {
  test('a single-node shard applies proposals in order, replies with their results, and keeps them across a restart', async () => {
    cluster = new HostCluster({ nodes: 1, shards: 4 });
    const c = cluster;
    c.elect();
    const n = c.node(1);
    const reqs: { req: number; shard: number }[] = [];
    for (let i = 0; i < 200; i++) reqs.push({ req: c.propose(n, i % 4, `k${i}`), shard: i % 4 });
    const k3 = reqs[3]!.req;
    c.until(() => reqs.every((r) => n.replies.has(r.req)));
    const lastIndex = new Map<number, number>();
    for (const r of reqs) {
      const o = n.replies.get(r.req)!;
      expect(o.ok).toBe(true);
      const idx = indexOf((o as { body: Uint8Array }).body);
      // Replies carry increasing indexes per shard (proposal order).
      expect(idx).toBeGreaterThan(lastIndex.get(r.shard) ?? 0);
      lastIndex.set(r.shard, idx);
    }
    await c.crash(1);
    c.restart(1);
    c.elect();
    const r = c.read(n, 3, 'k3');
    c.until(() => n.replies.has(r));
    const got = n.replies.get(r)!;
    expect(got.ok).toBe(true);
    // Stored: (index, applications = 1).
    const body = (got as { body: Uint8Array }).body;
    expect(indexOf(body)).toBe(indexOf((n.replies.get(k3) as { body: Uint8Array }).body));
    expect(new DataView(body.buffer, body.byteOffset).getFloat64(8, true)).toBe(1);
    const st = c.node(1).host.status(3 as ShardId)!;
    expect(st.applied).toBe(st.commit);
  });

  test('a retried proposal with the same client session applies once; an older sequence is refused', () => {
    cluster = new HostCluster({ nodes: 1, shards: 1 });
    const c = cluster;
    c.elect();
    const n = c.node(1);
    const a = c.propose(n, 0, 'x', { clientId: 42, seq: 1 });
    const b = c.propose(n, 0, 'x', { clientId: 42, seq: 1 });
    const d = c.propose(n, 0, 'x', { clientId: 42, seq: 2 });
    c.until(() => n.replies.has(a) && n.replies.has(b) && n.replies.has(d));
    const ra = n.replies.get(a)!;
    const rb = n.replies.get(b)!;
    expect(ra.ok && rb.ok).toBe(true);
    // Same reply (same entry index) for the retry.
    expect(indexOf((rb as { body: Uint8Array }).body)).toBe(indexOf((ra as { body: Uint8Array }).body));
    const stale = c.propose(n, 0, 'x', { clientId: 42, seq: 1 });
    const q = c.read(n, 0, 'x');
    c.until(() => n.replies.has(stale) && n.replies.has(q));
    expect(n.replies.get(stale)).toMatchObject({ ok: false, code: 'SessionSeqStale' });
    const body = (n.replies.get(q) as { body: Uint8Array }).body;
    // Applied twice (seq 1 and seq 2), not three or four times.
    expect(new DataView(body.buffer, body.byteOffset).getFloat64(8, true)).toBe(2);
    expect(c.node(1).host.counters.duplicateProposals).toBe(1);
  });

  test('bad commands are refused before they enter the log; unknown shards answer ShardNotFound', () => {
    cluster = new HostCluster({ nodes: 1, shards: 1 });
    const c = cluster;
    c.elect();
    const n = c.node(1);
    const bad = c.propose(n, 0, '');
    const missing = c.propose(n, 9, 'k');
    expect(n.replies.get(bad)).toMatchObject({ ok: false, code: 'BadRequest' });
    expect(n.replies.get(missing)).toMatchObject({ ok: false, code: 'ShardNotFound' });
    expect(n.host.status(0 as ShardId)!.lastIndex).toBe(2); // initial snapshot at 1 + the leader's no-op
  });

  test('a follower refuses proposals with NotLeader and a hint; reads from every replica see acknowledged writes', () => {
    cluster = new HostCluster({ nodes: 3, shards: 2 });
    const c = cluster;
    c.elect();
    const leader = c.leaderOf(0)!;
    const follower = c.nodes.find((x) => x !== leader)!;
    c.until(() => follower.host.status(0 as ShardId)!.lead === leader.id);
    const refused = c.propose(follower, 0, 'k');
    c.round(false);
    expect(follower.replies.get(refused)).toMatchObject({ ok: false, code: 'NotLeader', leaderHint: leader.id });
    const w = c.propose(leader, 0, 'k');
    c.until(() => leader.replies.has(w));
    for (const n of c.nodes) {
      const r = c.read(n, 0, 'k');
      c.until(() => n.replies.has(r));
      const o = n.replies.get(r)!;
      expect(o.ok).toBe(true);
      expect((o as { body: Uint8Array }).body.length).toBe(16);
    }
  });
});

describe('durability ordering', () => {
  /**
   * Every acknowledgement is checked against what the sender's LMDB holds at the moment it leaves:
   * an accepted append response needs the entries on disk, a granted vote needs the vote on disk,
   * a client reply needs its entry in the stored logs of a quorum. (Replies leave inside the
   * leader's write transaction, before its flush, so the leader's own store is read here through
   * that transaction; the other nodes' stores are read as committed.)
   */
  function checker(violations: string[], nodes: () => readonly ClusterNode[]) {
    return {
      onSend(from: ClusterNode, shard: ShardId, m: Message): void {
        const stored = from.store.shard(shard).readStored();
        if (m.type === MessageType.AppResp && !m.reject && m.index > stored.lastIndex) {
          violations.push(`node ${from.id} acked index ${m.index} of shard ${shard} with ${stored.lastIndex} stored`);
        }
        if (m.type === MessageType.VoteResp && !m.reject && (stored.hard.vote !== m.to || stored.hard.term !== m.term)) {
          violations.push(`node ${from.id} granted a vote to ${m.to} in term ${m.term} with ${JSON.stringify(stored.hard)} stored`);
        }
      },
      onReply(node: ClusterNode, shard: ShardId, r: ClientReply): void {
        if (!r.ok || r.body.length !== 8) return;
        const index = indexOf(r.body);
        const all = nodes();
        // The leader's copy was durable before it counted toward the commit (a turn earlier).
        const holding = 1 + all.filter((n) => n !== node && n.up && n.store.shard(shard).readStored().lastIndex >= index).length;
        if (2 * holding <= all.length) violations.push(`node ${node.id} replied for index ${index} stored by ${holding} of ${all.length} nodes`);
      },
    };
  }

  function run(unsafe: boolean): { violations: string[]; acks: number; votes: number; replies: number } {
    const violations: string[] = [];
    const check = checker(violations, () => cluster?.nodes ?? []);
    let acks = 0;
    let votes = 0;
    let replies = 0;
    cluster = new HostCluster({
      nodes: 3,
      shards: 3,
      host: { unsafeSendBeforePersist: unsafe },
      onSend: (from, shard, m) => {
        if ((m.type === MessageType.AppResp || m.type === MessageType.VoteResp) && !m.reject) acks++;
        if (m.type === MessageType.VoteResp && !m.reject) votes++;
        check.onSend(from, shard, m);
      },
      onReply: (n, shard, r) => {
        acks++;
        if (r.ok) replies++;
        check.onReply(n, shard, r);
      },
    });
    const c = cluster;
    c.elect();
    for (let round = 0; round < 120; round++) {
      for (let s = 0; s < 3; s++) {
        const l = c.leaderOf(s);
        if (l) for (let i = 0; i < 3; i++) c.propose(l, s, `r${round}-${i}`);
      }
      c.round();
      // Isolate a node for a while, twice, so new elections happen (and votes are cast) under load.
      if (round === 10 || round === 60) {
        const victim = c.leaderOf(0)!.id;
        for (const n of c.nodes) if (n.id !== victim) c.cut.add(`${victim}-${n.id}`);
      }
      if (round === 45 || round === 95) c.cut.clear();
    }
    c.until(() => c.nodes.every((n) => !n.host.hasReady()), 200, false);
    return { violations, acks, votes, replies };
  }

  test('no append response, vote or client reply leaves before its write is in LMDB', () => {
    const { violations, acks, votes, replies } = run(false);
    // Each kind of acknowledgement was exercised.
    expect(acks).toBeGreaterThan(300);
    expect(votes).toBeGreaterThan(6);
    expect(replies).toBeGreaterThan(100);
    expect(violations).toEqual([]);
  });

  test('the check catches a shell that sends acknowledgements before persisting', async () => {
    const { violations } = run(true);
    expect(violations.length).toBeGreaterThan(0);
    await cluster?.close();
    cluster = undefined;
  });
});

describe('quiet shards', () => {
  const quiet = (c: HostCluster): boolean => c.nodes.every((n) => !n.up || n.host.activeShards() === 0);

  test('a quiet shard costs no tick and no Ready check; a proposal makes it tick again; woken followers of a dead leader elect another', async () => {
    const shards = 6;
    cluster = new HostCluster({ nodes: 3, shards, host: { raft: { electionTimeoutTicks: 10, quiesceAfterTicks: 5 } } });
    const c = cluster;
    c.elect();
    c.until(() => quiet(c));
    c.round(); // the last Readies of going quiet (heartbeat responses) are handled
    const ticks = vi.spyOn(RawNode.prototype, 'tick');
    const readyChecks = vi.spyOn(RawNode.prototype, 'hasReady');
    for (let i = 0; i < 50; i++) c.round();
    expect(ticks).not.toHaveBeenCalled();
    expect(readyChecks).not.toHaveBeenCalled();

    // A proposal wakes its own shard only, which ticks until it is quiet again.
    const l0 = c.leaderOf(0)!;
    const w = c.propose(l0, 0, 'k');
    expect(l0.host.activeShards()).toBe(1);
    c.until(() => l0.replies.has(w));
    expect(l0.replies.get(w)).toMatchObject({ ok: true });
    expect(ticks).toHaveBeenCalled();
    c.until(() => quiet(c));

    // The node leading shard 0 dies. Its quiet followers do not notice by themselves...
    const dead = l0.id;
    const led = Array.from({ length: shards }, (_, s) => s).filter((s) => c.leaderOf(s) === l0);
    await c.crash(dead);
    for (let i = 0; i < 100; i++) c.round();
    for (const s of led) expect(c.leaderOf(s)).toBeUndefined();
    // ...until the shell wakes them (node liveness): they tick again and elect new leaders. A wake
    // may name its shards (those of one dead worker): only those wake; ids not hosted are skipped.
    for (const n of c.nodes) if (n.up) expect(n.host.wake(dead, [led[0] as ShardId, 999 as ShardId])).toBe(1);
    for (const n of c.nodes) if (n.up) expect(n.host.activeShards()).toBe(1);
    for (const n of c.nodes) if (n.up) expect(n.host.wake(dead)).toBe(led.length - 1);
    c.until(() => led.every((s) => c.leaderOf(s) !== undefined));
    const l1 = c.leaderOf(0)!;
    expect(l1.id).not.toBe(dead);
    const w2 = c.propose(l1, 0, 'k2');
    c.until(() => l1.replies.has(w2));
    expect(l1.replies.get(w2)).toMatchObject({ ok: true });
    const r = c.read(l1, 0, 'k', 'lease');
    c.until(() => l1.replies.has(r));
    expect(l1.replies.get(r)).toMatchObject({ ok: true });

    // The dead node comes back and catches up: every shard goes quiet again.
    c.restart(dead);
    c.until(() => quiet(c));
    for (let s = 0; s < shards; s++) expect(c.node(dead).host.status(s as ShardId)!.commit).toBe(c.leaderOf(s)!.host.status(s as ShardId)!.commit);
  });

  test('a transfer asked of a quiet replica that does not lead (a stale view of the leader) is refused and leaves it quiet and unticked; its later inputs are served', () => {
    cluster = new HostCluster({ nodes: 3, shards: 1, host: { raft: { electionTimeoutTicks: 10, quiesceAfterTicks: 5 } } });
    const c = cluster;
    c.elect();
    c.until(() => quiet(c));
    c.round();
    const leader = c.leaderOf(0)!;
    const [follower, other] = c.nodes.filter((n) => n !== leader) as [ClusterNode, ClusterNode];
    expect(follower.host.transferLeader(0 as ShardId, other.id)).toBe('not-leader');
    // The leader asked to hand over to a replica that is no voter: refused too.
    expect(leader.host.transferLeader(0 as ShardId, 99 as NodeId)).toBe('invalid-target');
    expect(follower.host.activeShards() + leader.host.activeShards()).toBe(0);
    // Time passes with both left out of the ticks; then an input reaches each: they catch the
    // ticks up and serve it (a replica woken by the refusal but left unticked failed here).
    for (let i = 0; i < 30; i++) c.round();
    expect(follower.host.membership(0 as ShardId)?.role).toBe('follower');
    const w = c.propose(leader, 0, 'after');
    c.until(() => leader.replies.has(w));
    expect(leader.replies.get(w)).toMatchObject({ ok: true });
    expect(c.leaderOf(0)).toBe(leader);
  });
});

describe('compaction and snapshots', () => {
  test('a replica that fell behind a compacted log catches up by snapshot, and keeps it across a restart', async () => {
    cluster = new HostCluster({ nodes: 3, shards: 1, host: { compactEveryEntries: 50, compactKeepEntries: 10 } });
    const c = cluster;
    c.elect();
    const leader = c.leaderOf(0)!;
    const lagger = c.nodes.find((x) => x !== leader)!;
    for (const n of c.nodes) if (n !== lagger) c.cut.add(`${n.id}-${lagger.id}`);
    const reqs: number[] = [];
    for (let i = 0; i < 200; i++) {
      reqs.push(c.propose(leader, 0, `k${i}`, { clientId: 7, seq: i + 1 }));
      if (i % 20 === 0) c.round();
    }
    c.until(() => reqs.every((r) => leader.replies.has(r)));
    const ls = leader.store.shard(0 as ShardId);
    expect(ls.compactedIndex()).toBeGreaterThan(100);
    c.cut.clear();
    c.until(() => lagger.host.status(0 as ShardId)!.applied === leader.host.status(0 as ShardId)!.applied);
    expect(lagger.host.counters.snapshotsInstalled).toBeGreaterThan(0);
    const dump = (n: ClusterNode): string =>
      JSON.stringify(
        [...n.store.shard(0 as ShardId).data.getRange({})].map(({ key, value }) => [Buffer.from(key).toString('hex'), Buffer.from(value).toString('hex')]),
      );
    expect(dump(lagger)).toBe(dump(leader));
    // Sessions travel with the snapshot: the lagger, once leader, still knows client 7's last sequence.
    await c.crash(lagger.id);
    c.restart(lagger.id);
    const again = c.node(lagger.id);
    expect(dump(again)).toBe(dump(leader));
    expect(again.store.shard(0 as ShardId).applied()).toBe(leader.store.shard(0 as ShardId).applied());
  });
});

describe('leadership transfer', () => {
  test('a target behind the commit index is refused target-behind (in probe, and while its snapshot is on the way); caught up, it takes over', () => {
    cluster = new HostCluster({ nodes: 3, shards: 1, host: { compactEveryEntries: 50, compactKeepEntries: 10 } });
    const c = cluster;
    const shard = 0 as ShardId;
    c.elect();
    const leader = c.leaderOf(0)!;
    const lagger = c.nodes.find((x) => x !== leader)!;
    const cutOff = (): void => {
      for (const n of c.nodes) if (n !== lagger) c.cut.add(`${n.id}-${lagger.id}`);
    };
    cutOff();
    const reqs: number[] = [];
    for (let i = 0; i < 200; i++) {
      reqs.push(c.propose(leader, 0, `k${i}`));
      if (i % 20 === 0) c.round();
    }
    c.until(() => reqs.every((r) => leader.replies.has(r)));
    expect(leader.store.shard(shard).compactedIndex()).toBeGreaterThan(100);
    const progress = () => leader.host.status(shard)!.progress.get(lagger.id)!;
    // Cut off and behind: not replicating.
    expect(progress().state).not.toBe('replicate');
    expect(leader.host.transferLeader(shard, lagger.id)).toBe('target-behind');
    // Heard again, it needs a snapshot (the log was compacted past it); the transfer is lost on
    // the way (cut again before the next round carries it), so the leader keeps waiting for it.
    c.cut.clear();
    c.until(() => progress().state === 'snapshot');
    cutOff();
    c.round();
    expect(progress().state).toBe('snapshot');
    expect(leader.host.transferLeader(shard, lagger.id)).toBe('target-behind');
    expect(leader.host.status(shard)!.role).toBe('leader');
    // Refused, it left nothing pending: proposals are taken as before.
    const during = c.propose(leader, 0, 'during');
    c.until(() => leader.replies.has(during));
    expect(leader.replies.get(during)!.ok).toBe(true);
    // Caught up (snapshot installed, then replicating at the commit index): the transfer starts and completes.
    c.cut.clear();
    c.until(() => progress().state === 'replicate' && progress().match >= leader.host.status(shard)!.commit);
    expect(lagger.host.counters.snapshotsInstalled).toBeGreaterThan(0);
    expect(leader.host.transferLeader(shard, lagger.id)).toBe('started');
    c.until(() => c.leaderOf(0) === lagger);
  });
});

describe('leadership moved while a snapshot is on the way', () => {
  test('the follower drops the snapshot sent in the older term, and the new leader streams a whole one again (why balancing leaves such a shard alone)', () => {
    cluster = new HostCluster({ nodes: 3, shards: 1, host: { compactEveryEntries: 50, compactKeepEntries: 10 } });
    const c = cluster;
    const shard = 0 as ShardId;
    c.elect();
    const leader = c.leaderOf(0)!;
    const [lagger, third] = c.nodes.filter((x) => x !== leader) as [ClusterNode, ClusterNode];
    for (const n of c.nodes) if (n !== lagger) c.cut.add(`${n.id}-${lagger.id}`);
    const reqs: number[] = [];
    for (let i = 0; i < 200; i++) {
      reqs.push(c.propose(leader, 0, `k${i}`));
      if (i % 20 === 0) c.round();
    }
    c.until(() => reqs.every((r) => leader.replies.has(r)));
    // The lagger is heard again and needs a snapshot; the leader's transfer is on its way.
    c.holdSnapshots = true;
    c.cut.clear();
    c.until(() => c.held.some((t) => t.from === leader));
    // Leadership moves to the third replica meanwhile; the lagger votes in its term.
    expect(leader.host.transferLeader(shard, third.id)).toBe('started');
    c.until(() => c.leaderOf(0) === third && lagger.host.status(shard)!.term === third.host.status(shard)!.term);
    // The old transfer arrives whole, and the lagger's core drops it: it is of an older term.
    expect(c.releaseSnapshots((t) => t.from === leader)).toBeGreaterThan(0);
    c.round();
    expect(lagger.host.counters.snapshotsStaged).toBeGreaterThan(0);
    expect(lagger.host.counters.snapshotsInstalled).toBe(0);
    expect(lagger.host.status(shard)!.applied).toBeLessThan(third.host.status(shard)!.commit);
    // The new leader sends its own, and only that one brings the lagger up to date.
    const before = c.snapshotTransfers;
    c.holdSnapshots = false;
    c.releaseSnapshots();
    c.until(() => lagger.host.status(shard)!.applied === third.host.status(shard)!.applied);
    expect(c.snapshotTransfers).toBeGreaterThan(before);
    expect(lagger.host.counters.snapshotsInstalled).toBe(1);
  });
});

describe('log and data agree', () => {
  test('replaying the log reproduces the data exactly, and a tampered data database is caught', () => {
    cluster = new HostCluster({ nodes: 3, shards: 2 });
    const c = cluster;
    c.elect();
    const reqs: [ClusterNode, number][] = [];
    for (let i = 0; i < 120; i++) {
      const l = c.leaderOf(i % 2)!;
      reqs.push([l, c.propose(l, i % 2, `k${i % 30}`, { clientId: 1 + (i % 5), seq: 1 + Math.floor(i / 5) })]);
      if (i % 10 === 0) c.round();
    }
    c.until(() => reqs.every(([n, r]) => n.replies.has(r)));
    c.until(() => c.nodes.every((n) => !n.host.hasReady()), 100);
    for (const n of c.nodes) {
      for (const s of [0, 1] as ShardId[]) {
        const v = n.host.verify(s)!;
        expect(v.checked).toBe(true);
        expect(v.entriesReplayed).toBeGreaterThan(50);
        expect(v.mismatches).toEqual([]);
      }
    }
    const n1 = c.node(1);
    n1.store.commit(() =>
      n1.store
        .shard(0 as ShardId)
        .txn()
        .put(new Uint8Array([1, 2, 3]), new Uint8Array([9])),
    );
    expect(n1.host.verify(0 as ShardId)!.mismatches).toEqual(['010203']);
  });
});

describe('leases judged on real time (hosts with a clock)', () => {
  const TICK_MS = 100;
  const E = 10; // electionTimeoutTicks of HostCluster
  const okIndex = (n: ClusterNode, req: number): number | undefined => {
    const o = n.replies.get(req);
    return o?.ok ? indexOf(o.body) : undefined;
  };
  const role = (n: ClusterNode): string => n.host.status(0 as ShardId)!.role;
  const leaseReads = (n: ClusterNode): number => n.host.status(0 as ShardId)!.counters.leaseReads;
  const turnAll = (n: ClusterNode): void => {
    for (let i = 0; i < 8 && n.host.hasReady(); i++) n.host.turn();
  };

  test('a leader stalled after its catch-up judges a lease read on the caught-up clock: its lapsed lease serves no stale read', () => {
    cluster = new HostCluster({ nodes: 3, shards: 1, clock: { tickMs: TICK_MS } });
    const c = cluster;
    c.elect();
    const old = c.leaderOf(0)!;
    const w1 = c.propose(old, 0, 'k');
    c.until(() => old.replies.has(w1));
    for (let i = 0; i < 3; i++) c.round();
    // The lease holds: a lease read is answered by it, at once.
    const before = leaseReads(old);
    const r0 = c.read(old, 0, 'k', 'lease');
    expect(leaseReads(old)).toBe(before + 1);
    turnAll(old);
    expect(okIndex(old, r0)).toBe(okIndex(old, w1));

    // Its worker stalls right after a catch-up (a blocked write, a GC pause) and its links fail.
    // The others' promises run out; they elect a leader that acknowledges a newer write of k.
    c.paused.add(old.id);
    const others = c.nodes.filter((n) => n !== old);
    for (const n of others) c.cut.add(`${old.id}-${n.id}`);
    const newLeader = (): ClusterNode | undefined => others.find((n) => role(n) === 'leader');
    c.until(() => newLeader() !== undefined, 200);
    const nl = newLeader()!;
    const w2 = c.propose(nl, 0, 'k');
    c.until(() => nl.replies.has(w2), 200);
    expect(okIndex(nl, w2)).toBeGreaterThan(okIndex(old, w1)!);

    // The stall ends and the next record it drains is a lease read, before any loop-top catch-up.
    c.paused.delete(old.id);
    const r = c.read(old, 0, 'k', 'lease');
    turnAll(old);
    expect(leaseReads(old)).toBe(before + 1);
    expect(old.replies.get(r)?.ok).not.toBe(true);
    expect(old.host.counters.ticksLate).toBeGreaterThanOrEqual(E);
  });

  test('a follower stalled with heartbeats waiting in its in-ring promises from real time: the leader’s lease never outlives the promise', () => {
    cluster = new HostCluster({ nodes: 3, shards: 1, clock: { tickMs: TICK_MS } });
    const c = cluster;
    c.elect();
    const l = c.leaderOf(0)!;
    const [a, b] = c.nodes.filter((n) => n !== l) as [ClusterNode, ClusterNode];
    const w1 = c.propose(l, 0, 'k');
    c.until(() => l.replies.has(w1));
    for (let i = 0; i < 3; i++) c.round();

    // b loses the leader: its promise runs out, so only a's promise stands between b and leadership.
    c.cut.add(`${l.id}-${b.id}`);
    for (let i = 0; i < E + 2; i++) c.round();
    // a's worker stalls for 7 ticks after a catch-up; the leader's heartbeats wait in its in-ring.
    c.paused.add(a.id);
    for (let i = 0; i < 7; i++) c.round();
    // The stall ends: a steps the waiting heartbeats (no catch-up at a loop top in between) and
    // acknowledges the newest; the leader takes the acks: its lease counts from its newest heartbeat.
    c.paused.delete(a.id);
    c.round(false);
    c.round(false);
    // Then the leader is cut off from everyone, and three ticks pass: its lease still holds.
    c.cut.add(`${l.id}-${a.id}`);
    for (let i = 0; i < 3; i++) c.round();
    const r0 = c.read(l, 0, 'k', 'lease');
    turnAll(l);
    expect(okIndex(l, r0)).toBe(okIndex(l, w1));

    // b's election timer fires (its clock runs ahead, a tick per pass, so its timers count each
    // tick; only its own timers see that). Messages now travel without time passing: a judges b's
    // (pre-)votes on its promise alone.
    for (let i = 0; i < 2 * E; i++) {
      c.runAhead(b.id, TICK_MS);
      b.host.catchUp(true);
      c.round(false);
    }
    for (let i = 0; i < 30 && role(b) !== 'leader'; i++) c.round(false);
    let stale = false;
    if (role(b) === 'leader') {
      const w2 = c.propose(b, 0, 'k');
      for (let i = 0; i < 30 && !b.replies.has(w2); i++) c.round(false);
      const r = c.read(l, 0, 'k', 'lease');
      turnAll(l);
      stale = okIndex(b, w2) !== undefined && okIndex(l, r) !== undefined && okIndex(l, r)! < okIndex(b, w2)!;
    }
    // a still keeps its promise to the leader whose lease it renewed, so no stale read is possible.
    expect(stale).toBe(false);
    expect(role(b)).not.toBe('leader');
    expect(role(l)).toBe('leader');
  });
});

describe('ticks run late move clocks, not timers (hosts with a clock)', () => {
  const TICK_MS = 100;
  const E = 10; // electionTimeoutTicks of HostCluster
  test('a follower whose worker stalls for three election timeouts, its leader alive, does not campaign when it resumes', () => {
    cluster = new HostCluster({ nodes: 3, shards: 1, clock: { tickMs: TICK_MS } });
    const c = cluster;
    c.elect();
    const l = c.leaderOf(0)!;
    const f = c.nodes.find((n) => n !== l)!;
    const w = c.propose(l, 0, 'k');
    c.until(() => l.replies.has(w));
    for (let i = 0; i < 3; i++) c.round();
    const status = () => f.host.status(0 as ShardId)!;
    const before = { preVotes: status().counters.preVotes, term: status().term };
    // Its worker stalls: the leader's heartbeats wait in its in-ring while 3E ticks pass.
    c.paused.add(f.id);
    for (let i = 0; i < 3 * E; i++) c.round();
    c.paused.delete(f.id);
    // It catches up all 3E ticks on its clock, but they were one pass: its election timer moves one tick.
    for (let i = 0; i < 3; i++) c.round();
    expect(f.host.counters.ticksLate).toBeGreaterThanOrEqual(3 * E - 1);
    expect(status().counters.preVotes).toBe(before.preVotes);
    expect(status().term).toBe(before.term);
    expect(status().lead).toBe(l.id);
    expect(c.leaderOf(0)).toBe(l);
  });
});

describe('proposals whose entry is overwritten', () => {
  test('a proposal replaced at its index by a committed entry is answered ProposalDropped; ones cut from the log are answered at once, outcome unknown', () => {
    cluster = new HostCluster({ nodes: 3, shards: 1 });
    const c = cluster;
    const [a, b] = [c.node(1), c.node(2)];
    const role = (n: ClusterNode): string => n.host.status(0 as ShardId)!.role;
    const campaigns = (m: Message): boolean => m.type === MessageType.PreVote || m.type === MessageType.Vote;
    // Node 1 leads (the others' campaigns are dropped) and commits a first write.
    const only =
      (id: number) =>
      (m: Message): boolean =>
        campaigns(m) && m.from !== id;
    c.drops.push(only(1));
    c.until(() => role(a) === 'leader');
    const w0 = c.propose(a, 0, 'k0');
    c.until(() => a.replies.has(w0));
    // Cut off, it takes three proposals that reach nobody.
    c.cut.add('1-2');
    c.cut.add('1-3');
    const [p1, p2, p3] = [c.propose(a, 0, 'p1'), c.propose(a, 0, 'p2'), c.propose(a, 0, 'p3')];
    for (let i = 0; i < 3; i++) c.round(false);
    // Node 2 is elected by node 3 and commits its no-op over p1's index, and nothing after it.
    c.drops.length = 0;
    c.drops.push(only(2));
    c.until(() => role(b) === 'leader');
    c.until(() => b.host.status(0 as ShardId)!.commit === b.host.status(0 as ShardId)!.lastIndex);
    const last = b.host.status(0 as ShardId)!.lastIndex;
    // Node 1 hears from node 2: its log is cut after p1's index (now node 2's no-op, committed).
    c.cut.delete('1-2');
    c.until(() => a.host.status(0 as ShardId)!.lead === b.id && a.host.status(0 as ShardId)!.lastIndex === last);
    c.until(() => a.replies.has(p1) && a.replies.has(p2) && a.replies.has(p3));
    // p1's index committed with another entry: final, it never applies.
    expect(a.replies.get(p1)).toMatchObject({ ok: false, code: 'ProposalDropped' });
    // p2 and p3 are gone from this log and no commit reaches their indexes (the group is idle): they
    // are answered now, not when some later write commits there. Not final (a replica that kept
    // them could still commit them), so the answer is that the outcome is unknown: the router
    // retries under the same session, which applies the write once whichever copy commits.
    expect(a.replies.get(p2)).toMatchObject({ ok: false, code: 'ProposalOutcomeUnknown' });
    expect(a.replies.get(p3)).toMatchObject({ ok: false, code: 'ProposalOutcomeUnknown' });
    expect(b.host.status(0 as ShardId)!.lastIndex).toBe(last);
    // Node 1 leads again later and its next write commits past those indexes.
    c.cut.add('2-3');
    c.cut.add('1-2');
    c.cut.delete('1-3');
    c.drops.length = 0;
    c.drops.push(only(1));
    c.until(() => role(a) === 'leader' && a.host.status(0 as ShardId)!.term > b.host.status(0 as ShardId)!.term);
    const p4 = c.propose(a, 0, 'p4');
    c.until(() => a.replies.has(p4));
    expect(a.replies.get(p4)).toMatchObject({ ok: true });
    expect(indexOf((a.replies.get(p4) as { body: Uint8Array }).body)).toBe(last + 2);
  });
});

describe('log time for client sessions', () => {
  test('a leader writes how far its monotonic clock moved into the log, at most once a second, before proposals with a session; negative client ids are refused', () => {
    let monoMs = 5_000;
    cluster = new HostCluster({ nodes: 1, shards: 1, host: { logClock: () => monoMs } });
    const c = cluster;
    c.elect();
    const n = c.node(1);
    const reqs: number[] = [];
    for (let i = 0; i < 5; i++) reqs.push(c.propose(n, 0, `a${i}`, { clientId: 7, seq: i + 1 }));
    c.until(() => reqs.every((r) => n.replies.has(r)));
    expect(n.host.counters.logClockEntries).toBe(1);
    monoMs += 999;
    const r1 = c.propose(n, 0, 'b', { clientId: 7, seq: 6 });
    c.until(() => n.replies.has(r1));
    expect(n.host.counters.logClockEntries).toBe(1);
    monoMs += 1;
    const r2 = c.propose(n, 0, 'c', { clientId: 7, seq: 7 });
    c.until(() => n.replies.has(r2));
    expect(n.host.counters.logClockEntries).toBe(2);
    // Proposals without a session do not move log time.
    monoMs += 5_000;
    const r3 = c.propose(n, 0, 'd');
    c.until(() => n.replies.has(r3));
    expect(n.host.counters.logClockEntries).toBe(2);
    // Every reply is the client's own entry (the clock entries took indexes of their own).
    const indexes = [...reqs, r1, r2].map((r) => indexOf((n.replies.get(r) as { body: Uint8Array }).body));
    expect(new Set(indexes).size).toBe(indexes.length);
    const bad = c.propose(n, 0, 'e', { clientId: -1, seq: 1 });
    c.round(false);
    expect(n.replies.get(bad)).toMatchObject({ ok: false, code: 'InvalidClientId' });
    const st = n.host.status(0 as ShardId)!;
    expect(st.applied).toBe(st.commit);
    // The steps written: 0 (the term's first), then 1,000 ms.
    const steps = n.store
      .shard(0 as ShardId)
      .entries(st.firstIndex, (st.lastIndex + 1) as never, 1 << 20)
      .filter((e) => e.data.length === 24 && new DataView(e.data.buffer, e.data.byteOffset).getFloat64(0, true) === -1)
      .map((e) => new DataView(e.data.buffer, e.data.byteOffset).getFloat64(16, true));
    expect(steps).toEqual([0, 1_000]);
  });
});

describe('proposals and appendBytesMax', () => {
  test('an entry of exactly appendBytesMax is proposed and replicated alone; one byte more is refused RequestTooLarge; batches split within the cap', () => {
    const cap = 400; // bytes of entries per App, each counted as data + ENTRY_OVERHEAD_BYTES
    const apps: Message[] = [];
    cluster = new HostCluster({
      nodes: 3,
      shards: 1,
      host: { raft: { electionTimeoutTicks: 10, appendBytesMax: cap } },
      onSend: (_from, _shard, m) => {
        if (m.type === MessageType.App && m.entries.length > 0) apps.push(m);
      },
    });
    const c = cluster;
    c.elect();
    const leader = c.leaderOf(0)!;
    // Entry data = 16-byte session header + command; counted with 24 bytes of overhead.
    const fits = 'a'.repeat(cap - ENTRY_OVERHEAD_BYTES - 16);
    const over = 'b'.repeat(cap - ENTRY_OVERHEAD_BYTES - 16 + 1);
    const ok = c.propose(leader, 0, fits);
    const refused = c.propose(leader, 0, over);
    const batch = Array.from({ length: 10 }, (_, i) => c.propose(leader, 0, `${i}${'c'.repeat(150)}`));
    c.until(() => [ok, refused, ...batch].every((r) => leader.replies.has(r)));
    expect(leader.replies.get(ok)).toMatchObject({ ok: true });
    expect(leader.replies.get(refused)).toMatchObject({ ok: false, code: 'RequestTooLarge' });
    expect((leader.replies.get(refused) as { message: string }).message).toContain(`appendBytesMax is ${cap}`);
    for (const r of batch) expect(leader.replies.get(r)).toMatchObject({ ok: true });
    // Never past the cap: the maximal entry went alone, the batch was split (two of 191 bytes each).
    const bytes = (m: Message): number => m.entries.reduce((s, e) => s + e.data.length + ENTRY_OVERHEAD_BYTES, 0);
    for (const m of apps) expect(bytes(m)).toBeLessThanOrEqual(cap);
    expect(apps.some((m) => bytes(m) === cap && m.entries.length === 1)).toBe(true);
    expect(apps.some((m) => m.entries.length === 2)).toBe(true);
    // Every replica holds what was acknowledged, and nothing of the refused one.
    const applied = (n: ClusterNode): number => n.host.status(0 as ShardId)!.applied;
    c.until(() => c.nodes.every((n) => applied(n) === applied(leader)));
    for (const n of c.nodes) {
      const reads = [fits, over].map((k) => c.read(n, 0, k, 'stale'));
      c.until(() => reads.every((r) => n.replies.has(r)));
      expect((n.replies.get(reads[0]!) as { body: Uint8Array }).body.length).toBe(16);
      expect((n.replies.get(reads[1]!) as { body: Uint8Array }).body.length).toBe(0);
    }
  });
});
