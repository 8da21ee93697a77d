import { describe, expect, test } from 'vitest';
import { RaftErrorCode } from '../../../../src/shards/raft/errors.js';
import { MessageType, nodeId } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';
import { msg, persist, solo } from './fixtures.js';

const heartbeatsFrom = (c: Cluster, from: number, since: number): number =>
  c.sent.slice(since).filter((m) => m.type === MessageType.Heartbeat && m.from === from).length;

/** The followers node 1's heartbeats went to since `since`, in order sent. */
const roundTargets = (c: Cluster, since: number): number[] =>
  c.sent
    .slice(since)
    .filter((m) => m.type === MessageType.Heartbeat && m.from === 1)
    .map((m) => m.to);

function safeCluster(): Cluster {
  const c = new Cluster([1, 2, 3], { checkQuorum: false });
  c.elect(1);
  c.propose(1, 'x');
  return c;
}

/** Check-quorum on (needed for leases); leader chosen by the timers; settled with a few acked heartbeats. */
function leaseCluster(seed = 1, opts = {}): { c: Cluster; l: number } {
  const c = new Cluster([1, 2, 3], opts, seed);
  const l = c.settle();
  c.tickAll(3);
  return { c, l };
}

describe('ReadIndex (§6.4 of the Raft thesis)', () => {
  test('a leader answers a safe read only after a quorum acknowledged a heartbeat round started after the read', () => {
    const c = safeCluster();
    const commit = c.node(1).rn.status().commit;
    const silent = c.hold((m) => m.type === MessageType.HeartbeatResp);
    const mark = c.sent.length;
    c.node(1).rn.readIndex(7);
    c.deliver();
    // A quorum of three is the leader and one follower: the round asks one.
    expect(heartbeatsFrom(c, 1, mark)).toBe(1);
    expect(c.node(1).readStates).toEqual([]);
    silent.release();
    expect(c.node(1).readStates).toEqual([{ index: commit, context: 7 }]);
  });

  test('reads queued while a round is in flight are all released by the next single round', () => {
    const c = safeCluster();
    const silent = c.hold((m) => m.type === MessageType.HeartbeatResp);
    const mark = c.sent.length;
    c.node(1).rn.readIndex(1);
    c.deliver();
    for (let i = 2; i <= 20; i++) c.node(1).rn.readIndex(i);
    c.deliver();
    expect(heartbeatsFrom(c, 1, mark)).toBe(1);
    silent.release();
    // Round one released read 1; round two (one heartbeat, to one follower) released the other 19.
    expect(heartbeatsFrom(c, 1, mark)).toBe(2);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(c.node(1).rn.status().counters.readRounds).toBe(2);
  });

  test('a round asks only the followers a quorum needs, those that answered last; a silent one holds the round until the next heartbeat to all', () => {
    const c = safeCluster();
    // Both followers answered everything so far: the lower id is asked.
    let mark = c.sent.length;
    c.node(1).rn.readIndex(1);
    c.deliver();
    expect(roundTargets(c, mark)).toEqual([2]);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual([1]);
    // Node 2 stops answering: the next round waits for it...
    c.isolate(2);
    mark = c.sent.length;
    c.node(1).rn.readIndex(2);
    c.deliver();
    expect(roundTargets(c, mark)).toEqual([2]);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual([1]);
    // ... until the tick's heartbeat goes to every member and node 3's answer completes the round.
    c.tick(1);
    c.deliver();
    expect(c.node(1).readStates.map((r) => r.context)).toEqual([1, 2]);
    // Node 3 answered the latest heartbeat: from now on the rounds ask it.
    mark = c.sent.length;
    c.node(1).rn.readIndex(3);
    c.deliver();
    expect(roundTargets(c, mark)).toEqual([3]);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual([1, 2, 3]);
  });

  test('a round asks the follower that answered the latest heartbeat to every member first, not one that answers later', () => {
    const c = safeCluster();
    /** The tick's heartbeat to every member, with `slow`'s answer arriving after the other's. */
    const race = (slow: number): void => {
      const late = c.hold((m) => m.type === MessageType.HeartbeatResp && m.from === slow);
      c.tick(1);
      c.deliver();
      late.release();
    };
    race(2);
    // Both answered that heartbeat; node 3 first. Asked before: the lower id, however slow.
    let mark = c.sent.length;
    c.node(1).rn.readIndex(1);
    c.deliver();
    expect(roundTargets(c, mark)).toEqual([3]);
    // Node 3 turns slow: one heartbeat to every member later, node 2 is asked.
    race(3);
    mark = c.sent.length;
    c.node(1).rn.readIndex(2);
    c.deliver();
    expect(roundTargets(c, mark)).toEqual([2]);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual([1, 2]);
  });

  test("a round during a leadership transfer asks another follower than the transfer's target", () => {
    const c = safeCluster();
    c.hold((m) => m.type === MessageType.TimeoutNow);
    c.node(1).rn.transferLeader(nodeId(2));
    c.deliver();
    const mark = c.sent.length;
    c.node(1).rn.readIndex(4);
    c.deliver();
    expect(
      c.sent
        .slice(mark)
        .filter((m) => m.type === MessageType.Heartbeat && m.from === 1)
        .map((m) => m.to),
    ).toEqual([3]);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual([4]);
  });

  test('with five voters a round asks two followers', () => {
    const c = new Cluster([1, 2, 3, 4, 5], { checkQuorum: false });
    c.elect(1);
    c.propose(1, 'x');
    const mark = c.sent.length;
    c.node(1).rn.readIndex(9);
    c.deliver();
    expect(heartbeatsFrom(c, 1, mark)).toBe(2);
    expect(c.node(1).readStates.map((r) => r.context)).toEqual([9]);
  });

  test('a read on a follower is forwarded to the leader and answered with the leader read index', () => {
    const c = safeCluster();
    const commit = c.node(1).rn.status().commit;
    c.node(2).rn.readIndex(42);
    c.deliver();
    expect(c.sent.filter((m) => m.type === MessageType.ReadIndex).map((m) => [m.from, m.to, m.context])).toEqual([[2, 1, 42]]);
    expect(c.sent.filter((m) => m.type === MessageType.ReadIndexResp).map((m) => [m.from, m.to, m.index])).toEqual([[1, 2, commit]]);
    expect(c.node(2).readStates).toEqual([{ index: commit, context: 42 }]);
  });

  test('a new leader does not answer reads before it committed an entry of its term', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    const noApp = c.hold((m) => m.type === MessageType.App);
    c.elect(1);
    expect(c.leaders()).toEqual([1]);
    c.node(1).rn.readIndex(5);
    c.tick(1, 3);
    expect(c.node(1).readStates).toEqual([]);
    noApp.release();
    c.tick(1, 2);
    const st = c.node(1).rn.status();
    expect(c.node(1).readStates).toEqual([{ index: st.commit, context: 5 }]);
    expect(c.node(1).readStates[0]!.index).toBeGreaterThanOrEqual(2);
  });

  test('a deposed leader that does not know it cannot complete a safe read; the read fails when it learns', () => {
    const c = safeCluster();
    c.isolate(1);
    c.elect(2);
    expect(c.node(2).rn.status().role).toBe('leader');
    expect(c.node(1).rn.status().role).toBe('leader');
    c.node(1).rn.readIndex(9);
    c.tick(1, 5);
    expect(c.node(1).readStates).toEqual([]);
    c.heal();
    c.tickAll(2);
    expect(c.node(1).rn.status().role).toBe('follower');
    expect(c.node(1).failedReads).toEqual([{ context: 9, code: RaftErrorCode.ReadDropped }]);
  });

  test('reads queued on a leader that steps down (check-quorum) are reported in failedReads', () => {
    const { c, l } = leaseCluster(3);
    c.isolate(l);
    c.node(l).rn.readIndex(1);
    c.node(l).rn.readIndex(2);
    c.tick(l, 25);
    expect(c.node(l).rn.status().role).toBe('follower');
    expect(c.node(l).failedReads).toEqual([
      { context: 1, code: RaftErrorCode.ReadDropped },
      { context: 2, code: RaftErrorCode.ReadDropped },
    ]);
    expect(c.node(l).readStates).toEqual([]);
  });

  test('readQueueMax bounds the reads queued at a leader: the excess fail with ReadQueueFull', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false, readQueueMax: 3 });
    c.elect(1);
    c.isolate(2);
    c.isolate(3);
    for (let i = 1; i <= 5; i++) c.node(1).rn.readIndex(i);
    c.deliver();
    expect(c.node(1).failedReads).toEqual([
      { context: 4, code: RaftErrorCode.ReadQueueFull },
      { context: 5, code: RaftErrorCode.ReadQueueFull },
    ]);
    expect(c.node(1).rn.backlog().reads + c.node(1).rn.backlog().readRounds).toBeGreaterThan(0);
  });

  test('readQueueMax bounds the reads a follower forwards', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false, readQueueMax: 2 });
    c.elect(1);
    c.isolate(1);
    for (let i = 1; i <= 4; i++) c.node(2).rn.readIndex(i);
    c.deliver();
    expect(c.node(2).failedReads.map((f) => [f.context, f.code])).toEqual([
      [3, RaftErrorCode.ReadQueueFull],
      [4, RaftErrorCode.ReadQueueFull],
    ]);
  });
});

describe('lease reads', () => {
  test('a check-quorum leader whose lease holds answers at once, without a heartbeat round', () => {
    const { c, l } = leaseCluster();
    const rn = c.node(l).rn;
    rn.readIndex(3, 'lease');
    const rd = rn.ready();
    expect(rd.readStates).toEqual([{ index: rn.status().commit, context: 3 }]);
    expect(rd.messages.filter((m) => m.type === MessageType.Heartbeat)).toEqual([]);
    c.handleReady(c.node(l), rd);
    expect(rn.status().counters.leaseReads).toBe(1);
    expect(rn.status().counters.readRounds).toBe(0);
  });

  test('without check-quorum a lease read is refused with LeaseReadRequiresCheckQuorum', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.tickAll(3);
    c.node(1).rn.readIndex(3, 'lease');
    c.deliver();
    expect(c.node(1).failedReads).toEqual([{ context: 3, code: RaftErrorCode.LeaseReadRequiresCheckQuorum }]);
    expect(c.node(1).readStates).toEqual([]);
  });

  test('a leader whose lease lapsed (no heartbeat acks for an election timeout) falls back to a quorum round', () => {
    const { c, l } = leaseCluster(2);
    const silent = c.hold((m) => m.type === MessageType.HeartbeatResp || m.type === MessageType.AppResp);
    c.tick(l, 9);
    expect(c.node(l).rn.status().role).toBe('leader');
    c.node(l).rn.readIndex(8, 'lease');
    c.deliver();
    expect(c.node(l).readStates).toEqual([]);
    expect(c.node(l).rn.status().counters.readRounds).toBe(1);
    silent.release();
    expect(c.node(l).readStates.map((r) => r.context)).toEqual([8]);
    expect(c.node(l).rn.status().counters.leaseReads).toBe(0);
  });
});

describe('forwarded reads that lose their way', () => {
  test('a forwarded read whose request or answer was lost fails with ReadDropped after an election timeout, freeing its slot', () => {
    const f = solo(2, [1, 2, 3], { readQueueMax: 2 });
    f.rn.step(msg(MessageType.Heartbeat, 1, 2, 2, { commit: 1 as never, context: 1 }));
    persist(f);
    f.rn.readIndex(1);
    f.rn.readIndex(2);
    persist(f); // the ReadIndex messages are lost
    const failed: number[] = [];
    for (let i = 0; i < 12; i++) {
      f.rn.tick();
      f.rn.step(msg(MessageType.Heartbeat, 1, 2, 2, { commit: 1 as never, context: 2 + i }));
      failed.push(...persist(f).failedReads.map((r) => r.context));
    }
    expect(failed).toEqual([1, 2]);
    expect(f.rn.backlog().reads).toBe(0);
    f.rn.readIndex(3);
    const rd = persist(f);
    expect(rd.failedReads).toEqual([]);
    expect(rd.messages.filter((m) => m.type === MessageType.ReadIndex).map((m) => m.context)).toEqual([3]);
  });
});
