/**
 * Asynchronous storage writes (ShardHost `asyncWrites`, Store.commitAsync): the worker goes on
 * stepping while a turn's transaction is flushed by LMDB's writer thread, and releases what waits
 * on durability when that flush is reported. Real LMDB stores, in one process.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { MessageType } from '../../../src/shards/raft/index.js';
import type { ShardId } from '../../../src/shards/raft/index.js';
import { HostCluster, indexOf } from './host-cluster.js';

let cluster: HostCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('durability ordering with asynchronous writes', () => {
  /**
   * Every acknowledgement is checked against what the sender's store has reported flushed when it
   * leaves (the state recorded inside the flushed transaction, not what is merely committed): an
   * accepted append response needs the entries, a granted vote the vote, a client reply its entry
   * in a quorum's logs (the leader's own copy counted toward the commit only once flushed).
   */
  async function run(unsafe: boolean): Promise<{ violations: string[]; acks: number; votes: number; replies: number; overlapped: number }> {
    const violations: string[] = [];
    let acks = 0;
    let votes = 0;
    let replies = 0;
    let overlapped = 0;
    cluster = new HostCluster({
      nodes: 3,
      shards: 3,
      asyncWrites: true,
      host: { unsafeSendBeforePersist: unsafe },
      onSend: (from, shard, m) => {
        const d = from.durable.get(shard);
        if ((m.type === MessageType.AppResp || m.type === MessageType.VoteResp) && !m.reject) acks++;
        if (m.type === MessageType.AppResp && !m.reject && m.index > (d?.lastIndex ?? 0)) {
          violations.push(`node ${from.id} acked index ${m.index} of shard ${shard} with ${d?.lastIndex ?? 0} flushed`);
        }
        if (m.type === MessageType.VoteResp && !m.reject) {
          votes++;
          if (d === undefined || d.hard.vote !== m.to || d.hard.term !== m.term) {
            violations.push(`node ${from.id} granted a vote to ${m.to} in term ${m.term} with ${JSON.stringify(d?.hard)} flushed`);
          }
        }
      },
      onReply: (node, shard, r) => {
        acks++;
        if (!r.ok || r.body.length !== 8) return;
        replies++;
        const index = indexOf(r.body);
        const all = cluster?.nodes ?? [];
        const holding = 1 + all.filter((n) => n !== node && (n.durable.get(shard)?.lastIndex ?? 0) >= index).length;
        if (2 * holding <= all.length) violations.push(`node ${node.id} replied for index ${index} flushed by ${holding} of ${all.length} nodes`);
      },
    });
    const c = cluster;
    await c.untilAsync(() => [0, 1, 2].every((s) => c.leaderOf(s) !== undefined));
    for (let round = 0; round < 120; round++) {
      for (let s = 0; s < 3; s++) {
        const l = c.leaderOf(s);
        if (l) for (let i = 0; i < 3; i++) c.propose(l, s, `r${round}-${i}`);
      }
      // Odd rounds do not wait: the next round steps into shards whose flush is in flight.
      await c.roundAsync(true, round % 2 === 0);
      overlapped += c.nodes.filter((n) => n.up && n.host.flushesInFlight() > 0).length;
      if (round === 10 || round === 60) {
        const victim = c.leaderOf(0)!.id;
        for (const n of c.nodes) if (n.id !== victim) c.cut.add(`${victim}-${n.id}`);
      }
      if (round === 45 || round === 95) c.cut.clear();
    }
    await c.untilAsync(() => c.nodes.every((n) => !n.host.hasReady() && n.host.flushesInFlight() === 0), 400, false);
    return { violations, acks, votes, replies, overlapped };
  }

  test('no append response, vote or client reply leaves before the flush of its write is reported', async () => {
    const { violations, acks, votes, replies, overlapped } = await run(false);
    expect(acks).toBeGreaterThan(300);
    expect(votes).toBeGreaterThan(6);
    expect(replies).toBeGreaterThan(100);
    // Rounds really ran while flushes were in flight.
    expect(overlapped).toBeGreaterThan(20);
    expect(violations).toEqual([]);
  });

  test('the check catches a shell that sends acknowledgements before the flush', async () => {
    const { violations } = await run(true);
    expect(violations.length).toBeGreaterThan(0);
  });
});

describe('stepping while a flush is in flight', () => {
  test('proposals taken while a shard waits for its flush ride its next transaction, and every one is answered', async () => {
    cluster = new HostCluster({ nodes: 1, shards: 2, asyncWrites: true });
    const c = cluster;
    await c.untilAsync(() => c.leaderOf(0) !== undefined && c.leaderOf(1) !== undefined);
    await c.untilAsync(() => c.nodes[0]!.host.flushesInFlight() === 0 && !c.nodes[0]!.host.hasReady(), 200, false);
    const n = c.nodes[0]!;
    const first = c.propose(n, 0, 'a');
    expect(n.host.turn()).toBe(1);
    expect(n.host.flushesInFlight()).toBe(1);
    // The shard's Ready is out: no second one, but the core keeps taking proposals; another
    // shard starts its own turn meanwhile.
    const more = Array.from({ length: 5 }, (_, i) => c.propose(n, 0, `b${i}`));
    expect(n.host.hasReady()).toBe(false);
    const other = c.propose(n, 1, 'c');
    expect(n.host.hasReady()).toBe(true);
    expect(n.host.turn()).toBe(1);
    expect(n.host.flushesInFlight()).toBe(2);
    expect(n.replies.has(first)).toBe(false);
    await n.host.drain();
    // After its flush, shard 0's next Ready carries the five proposals at once.
    const persisted = n.host.counters.entriesPersisted;
    await c.untilAsync(() => [first, other, ...more].every((r) => n.replies.get(r)?.ok === true), 50, false);
    expect(n.host.counters.entriesPersisted - persisted).toBe(5);
    const indexes = more.map((r) => indexOf((n.replies.get(r) as { body: Uint8Array }).body));
    expect(indexes).toEqual(indexes.map((_, i) => indexes[0]! + i));
  });

  test('a node crashed with flushes in flight restarts from its store and catches up', async () => {
    cluster = new HostCluster({ nodes: 3, shards: 2, asyncWrites: true });
    const c = cluster;
    await c.untilAsync(() => c.leaderOf(0) !== undefined && c.leaderOf(1) !== undefined);
    const l = c.leaderOf(0)!;
    const follower = c.nodes.find((n) => n !== l)!;
    const ws = Array.from({ length: 20 }, (_, i) => c.propose(l, 0, `k${i}`));
    // Rounds without waiting until the follower has taken appends whose flush is in flight.
    for (let i = 0; i < 200 && follower.host.flushesInFlight() === 0; i++) c.round();
    expect(follower.host.flushesInFlight()).toBeGreaterThan(0);
    await c.crash(follower.id);
    await c.untilAsync(() => ws.every((w) => l.replies.get(w)?.ok === true));
    c.restart(follower.id);
    const last = indexOf((l.replies.get(ws[19]!) as { body: Uint8Array }).body);
    await c.untilAsync(() => (follower.host.status(0 as ShardId)?.applied ?? 0) >= last);
    expect(follower.store.shard(0 as ShardId).readStored().lastIndex).toBeGreaterThanOrEqual(last);
  });
});
