/**
 * A quiet follower's lease promise against late copies of its leader's own campaign messages.
 *
 * The leader L of term t won with PreVote/Vote messages of term t; the network may deliver a copy
 * of one of them much later (a duplicate, a replaced connection draining). If a quiet follower F
 * took that copy for "my leader restarted" and dropped its promise, a third replica X cut off
 * from L could win term t+1 with F's vote and commit, while the quiet L still answered lease
 * reads from F's earlier ack: a stale read. A campaign of a later term (a leader that really
 * restarted) must still wake F.
 */
import { describe, expect, test } from 'vitest';
import type { Message, NodeId } from '../../../../src/shards/raft/types.js';
import { MessageType } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';

const Q = 4;
const E = 10;

function scenario(kind: typeof MessageType.PreVote | typeof MessageType.Vote, seed: number): { c: Cluster; l: NodeId; f: NodeId; x: NodeId; stale: Message } {
  const c = new Cluster([1, 2, 3], { quiesceAfterTicks: Q, electionTimeoutTicks: E }, seed);
  const l = c.settle();
  const t = c.node(l).rn.status().term;
  const [f, x] = c.others(l) as [NodeId, NodeId];
  const stale = c.sentWhere((m) => m.type === kind && m.from === l && m.to === f && m.term === t)[0];
  if (stale === undefined) throw new Error(`no ${kind} from ${l} to ${f} in term ${t}`);
  c.propose(l, 'before');
  // The L-X link fails; L stays busy with F (reads wake it whenever it goes quiet) for longer
  // than an election timeout, so X's promise to L runs out.
  c.drop((m) => (m.from === l && m.to === x) || (m.from === x && m.to === l));
  for (let i = 0; i < 2 * E; i++) {
    c.node(l).rn.readIndex(1000 + i, 'safe');
    c.tickAll();
  }
  // Then L and F go quiet.
  c.tickAll(Q + 1);
  expect(c.node(l).rn.status().quiesced).toBe(true);
  expect(c.node(f).rn.status().quiesced).toBe(true);
  return { c, l, f, x, stale };
}

describe('quiet followers and late copies of their leader campaign messages', () => {
  for (const [name, kind] of [
    ['PreVote', MessageType.PreVote],
    ['Vote', MessageType.Vote],
  ] as const) {
    test(`a late ${name} of the current term from the leader keeps the quiet follower's promise: no stale lease read`, () => {
      const { c, l, f, x, stale } = scenario(kind, 11);
      // The late copy reaches F; F's answer to L is lost, so L stays quiet and notices nothing.
      c.drop((m) => m.from === f && m.to === l && (m.type === MessageType.PreVoteResp || m.type === MessageType.VoteResp));
      c.node(f).rn.step(stale);
      c.deliver();
      // X campaigns (its promise to L ran out long ago) and, if F helps it, commits a write.
      c.node(x).rn.campaign();
      c.deliver();
      let w: number | undefined;
      if (c.node(x).rn.status().role === 'leader') w = c.propose(x, 'w').index;
      // A lease read at L within its lease window (no tick passed since L's last heartbeat).
      c.node(l).rn.readIndex(99, 'lease');
      const served = c.node(l).readStates.find((r) => r.context === 99) ?? (c.deliver(), c.node(l).readStates.find((r) => r.context === 99));
      // Safety: a read L answers never misses a write committed by another leader before it.
      if (served !== undefined && w !== undefined) expect(served.index).toBeGreaterThanOrEqual(w);
      // And specifically: F kept its promise, so X could not win while L is quiet.
      expect(c.leaders()).toEqual([l]);
      expect(c.node(f).rn.status().lead).toBe(l);
    });
  }

  test('a leader that really restarted campaigns in a later term and wakes its quiet followers', () => {
    const c = new Cluster([1, 2, 3], { quiesceAfterTicks: Q, electionTimeoutTicks: E }, 12);
    const l = c.settle();
    const t = c.node(l).rn.status().term;
    c.propose(l, 'x');
    c.tickAll(Q + 2);
    for (const n of c.nodes.values()) expect(n.rn.status().quiesced).toBe(true);
    c.restart(l);
    c.tickAll(3 * E);
    const campaigns = c.sentWhere((m) => (m.type === MessageType.PreVote || m.type === MessageType.Vote) && m.from === l);
    expect(campaigns.some((m) => m.term > t)).toBe(true);
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    expect(c.node(leaders[0]!).rn.status().term).toBeGreaterThan(t);
    for (const n of c.nodes.values()) expect(n.rn.status().lead).toBe(leaders[0]);
  });
});
