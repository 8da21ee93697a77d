import { describe, expect, test } from 'vitest';
import { MessageType } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';

const Q = 4;
/** Heartbeats and appends sent since `mark`. */
const chatter = (c: Cluster, mark: number): number =>
  c.sent.slice(mark).filter((m) => m.type === MessageType.Heartbeat || m.type === MessageType.App).length;

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
