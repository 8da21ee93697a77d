import { describe, expect, test } from 'vitest';
import { MessageType, nodeId } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';

const Q = 4;
/** Heartbeats and appends sent since `mark`. */
const chatter = (c: Cluster, mark: number): number => c.sent.slice(mark).filter((m) => m.type === MessageType.Heartbeat || m.type === MessageType.App).length;

function quietCluster(seed = 1): { c: Cluster; l: number } {
  const c = new Cluster([1, 2, 3], { quiesceAfterTicks: Q }, seed);
  const l = c.settle();
  c.propose(l, 'x');
  c.tickAll(Q + 2);
  return { c, l };
}

describe('quiescence: idle groups go quiet', () => {
  test('an idle group stops heartbeating: after the quiescing heartbeat, many ticks send nothing', () => {
    const { c, l } = quietCluster();
    for (const n of c.nodes.values()) expect(n.rn.status().quiesced).toBe(true);
    const mark = c.sent.length;
    c.tickAll(200);
    expect(chatter(c, mark)).toBe(0);
    // Nobody campaigned meanwhile: same leader, same term.
    expect(c.leaders()).toEqual([l]);
    expect(c.node(l).rn.status().counters.quiesced).toBe(1);
  });

  test('without quiescence the same idle group heartbeats every tick', () => {
    const c = new Cluster([1, 2, 3], {}, 1);
    c.settle();
    const mark = c.sent.length;
    c.tickAll(50);
    expect(chatter(c, mark)).toBeGreaterThanOrEqual(100);
  });

  test('a proposal wakes the group; it commits and the group goes quiet again', () => {
    const { c, l } = quietCluster();
    c.propose(l, 'y');
    expect(c.appliedData(1)).toContain('y');
    expect(c.node(l).rn.status().quiesced).toBe(false);
    c.tickAll(Q + 2);
    for (const n of c.nodes.values()) expect(n.rn.status().quiesced).toBe(true);
  });

  test('a group with a lagging follower does not go quiet', () => {
    const c = new Cluster([1, 2, 3], { quiesceAfterTicks: Q }, 2);
    const l = c.settle();
    const lag = c.others(l)[0]!;
    c.drop((m) => m.to === lag && m.type === MessageType.App);
    c.propose(l, 'x');
    c.tickAll(5 * Q);
    expect(c.node(l).rn.status().quiesced).toBe(false);
    c.heal();
    c.tickAll(5 * Q);
    expect(c.node(l).rn.status().quiesced).toBe(true);
  });

  test('quiet followers refuse another node campaigning (they count as in contact with their leader)', () => {
    const { c, l } = quietCluster(3);
    const a = c.others(l)[0]!;
    const term = c.node(l).rn.status().term;
    c.node(a).rn.campaign(); // a forced campaign wakes `a` only
    c.tickAll(100);
    expect(c.leaders()).toEqual([l]);
    expect(c.node(l).rn.status().term).toBe(term);
  });

  test('when the shell wakes the followers of a dead leader, they elect a new one', () => {
    const { c, l } = quietCluster(4);
    c.isolate(l); // the leader's node is gone
    c.tickAll(200);
    // Quiet followers cannot notice by themselves.
    expect(c.leaders()).toEqual([l]);
    for (const id of c.others(l)) c.node(id).rn.wake();
    c.tickAll(100);
    const next = c.leaders().filter((x) => x !== l);
    expect(next).toHaveLength(1);
    expect(c.node(next[0]!).rn.status().term).toBeGreaterThan(c.node(l).rn.status().term);
  });

  test('a leader that restarted (lost its state) and campaigns wakes its quiet followers', () => {
    const { c, l } = quietCluster(5);
    c.restart(l);
    c.tickAll(200);
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    // A leader exists again and every replica follows it.
    for (const n of c.nodes.values()) expect(n.rn.status().lead).toBe(leaders[0]);
  });

  test('a quiet replica ticks idle: ticking it only moves its clock, until a message, read or wake', () => {
    const { c, l } = quietCluster(7);
    for (const n of c.nodes.values()) expect(n.rn.ticksIdle()).toBe(true);
    c.tickAll(50);
    // Ticks alone never end it.
    for (const n of c.nodes.values()) expect(n.rn.ticksIdle()).toBe(true);
    const f = c.others(l)[0]!;
    c.node(f).rn.wake();
    expect(c.node(f).rn.ticksIdle()).toBe(false);
    // A node whose ticks do work cannot have them skipped.
    expect(() => c.node(f).rn.skipTicks(1)).toThrow(/not idle/);
    c.propose(l, 'y');
    expect(c.node(l).rn.ticksIdle()).toBe(false);
  });

  test('skipTicks(n) on quiet replicas is exactly n ticks: the same lease decision and failover afterwards', () => {
    // Two copies of one cluster: `ticked` ticks every replica, `skipped` leaves the ticks out
    // while the group is quiet and makes them up before the next input, as the shard host does.
    const ticked = quietCluster(8);
    const skipped = quietCluster(8);
    expect(skipped.l).toBe(ticked.l);
    const l = ticked.l;
    for (const n of skipped.c.nodes.values()) expect(n.rn.ticksIdle()).toBe(true);
    ticked.c.tickAll(40); // far longer than an election timeout: the leader's lease lapsed
    for (const n of skipped.c.nodes.values()) n.rn.skipTicks(40);
    const same = (): void => {
      expect(skipped.c.sent).toEqual(ticked.c.sent);
      for (const [id, n] of ticked.c.nodes) {
        const { counters: _a, ...st } = n.rn.status();
        const { counters: _b, ...other } = skipped.c.node(id).rn.status();
        expect(other).toEqual(st);
        expect(skipped.c.node(id).readStates).toEqual(n.readStates);
      }
    };
    // A lease read after the lapse needs a quorum round in both (a clock left behind would
    // wrongly find the lease still valid and answer at once).
    for (const x of [ticked, skipped]) {
      x.c.node(l).rn.readIndex(99, 'lease');
      x.c.deliver();
      expect(x.c.node(l).readStates.map((r) => r.context)).toContain(99);
      expect(x.c.node(l).rn.status().counters.leaseReads).toBe(0);
    }
    same();
    // Quiet again, then the leader dies; its followers are woken and elect a new leader.
    ticked.c.tickAll(Q + 2);
    skipped.c.tickAll(Q + 2);
    for (const n of skipped.c.nodes.values()) expect(n.rn.ticksIdle()).toBe(true);
    ticked.c.tickAll(30);
    for (const n of skipped.c.nodes.values()) n.rn.skipTicks(30);
    for (const x of [ticked, skipped]) {
      x.c.isolate(l);
      for (const id of x.c.others(l)) x.c.node(id).rn.wake();
      x.c.tickAll(60);
    }
    same();
    const next = ticked.c.leaders().filter((x) => x !== l);
    expect(next).toHaveLength(1);
    expect(skipped.c.leaders()).toEqual(ticked.c.leaders());
  });

  test('a quiet leader serves no lease read on an expired lease: it falls back to a quorum round', () => {
    const c = new Cluster([1, 2, 3], { quiesceAfterTicks: Q }, 6);
    const l = c.settle();
    c.propose(l, 'x');
    c.tickAll(Q + 40); // quiet for far longer than an election timeout
    const mark = c.sent.length;
    c.node(l).rn.readIndex(99, 'lease');
    c.deliver();
    // The read needed a heartbeat round (the lease had lapsed while quiet), and was answered.
    expect(c.sent.slice(mark).some((m) => m.type === MessageType.Heartbeat && m.from === l)).toBe(true);
    expect(c.node(l).readStates.map((r) => r.context)).toContain(99);
    expect(c.node(l).rn.status().counters.leaseReads).toBe(0);
  });
});

describe('quiescence of a new leader with nothing proposed (quiesceNewLeaderAfterTicks)', () => {
  const quietAll = (c: Cluster): boolean => [...c.nodes.values()].every((n) => n.rn.status().quiesced);

  test('after its election the group goes quiet within quiesceNewLeaderAfterTicks + 1 ticks; without the setting it keeps heartbeating', () => {
    const fast = new Cluster([1, 2, 3], { quiesceAfterTicks: 20, quiesceNewLeaderAfterTicks: 1 }, 5);
    fast.settle();
    fast.tickAll(2);
    expect(quietAll(fast)).toBe(true);
    const slow = new Cluster([1, 2, 3], { quiesceAfterTicks: 20 }, 5);
    slow.settle();
    slow.tickAll(2);
    expect(quietAll(slow)).toBe(false);
    slow.tickAll(20);
    expect(quietAll(slow)).toBe(true);
  });

  test('once a proposal was made in the term, the usual quiesceAfterTicks applies', () => {
    const c = new Cluster([1, 2, 3], { quiesceAfterTicks: 20, quiesceNewLeaderAfterTicks: 1 }, 6);
    const l = c.settle();
    c.propose(l, 'x');
    c.tickAll(5);
    expect(c.node(l).rn.status().quiesced).toBe(false);
    c.tickAll(20);
    expect(quietAll(c)).toBe(true);
  });

  test('a new leader whose follower has not acknowledged its first entry stays awake until it has', () => {
    const c = new Cluster([1, 2, 3], { quiesceAfterTicks: 20, quiesceNewLeaderAfterTicks: 1 }, 7);
    c.drop((m) => m.to === nodeId(3) && m.type === MessageType.App);
    const l = c.settle();
    expect(l).not.toBe(3);
    c.tickAll(10);
    expect(c.node(l).rn.status().quiesced).toBe(false);
    c.heal();
    c.tickAll(3);
    expect(quietAll(c)).toBe(true);
  });
});
