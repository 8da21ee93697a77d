import { describe, expect, test } from 'vitest';
import { MessageType, nodeId } from '../../../../src/shards/raft/types.js';
import { campaignRankOf } from '../../../../src/shards/raft/config.js';
import type { Message, NodeId } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';
import { ent, msg, persist, reopen, solo } from './fixtures.js';

const ET = 10;

/**
 * Ticks between successive (pre-)campaigns of a node that can never win, i.e. its election
 * timeouts. `contended`: each campaign is refused by a peer (as when replicas campaign at once);
 * otherwise nobody answers (the node is cut off).
 */
function campaignIntervals(seed: number, n: number, contended = false): number[] {
  const s = solo(1, [1, 2, 3], { seed, electionTimeoutTicks: ET });
  const out: number[] = [];
  let last = 0;
  let ticks = 0;
  while (out.length < n) {
    s.rn.tick();
    ticks++;
    const c = s.rn.status().counters.preVotes;
    if (c > last) {
      out.push(ticks);
      ticks = 0;
      last = c;
      if (contended) s.rn.step(msg(MessageType.PreVoteResp, 2, 1, s.rn.status().term, { reject: true }));
    }
    if (s.rn.hasReady()) persist(s);
  }
  return out;
}

describe('election timeouts', () => {
  test('§5.2 election timeouts are drawn in [et, 2et) from the seeded PRNG: same seed same timeouts, other seeds others', () => {
    const a = campaignIntervals(1, 40);
    // A node that is cut off (nobody answers) keeps the first range: its campaigns are not contended.
    for (const t of a) {
      expect(t).toBeGreaterThanOrEqual(ET);
      expect(t).toBeLessThan(2 * ET);
    }
    expect(new Set(a).size).toBeGreaterThan(3);
    expect(campaignIntervals(1, 40)).toEqual(a);
    const others = [2, 3, 4].map((s) => campaignIntervals(s, 40).join(','));
    expect(others.some((o) => o !== a.join(','))).toBe(true);
  });
});

describe('leader election', () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8])('§5.2 a single leader emerges and every node follows it (seed %i)', (seed) => {
    const c = new Cluster([1, 2, 3, 4, 5], {}, seed);
    const l = c.settle();
    expect(c.leaders()).toEqual([l]);
    const t = c.node(l).rn.status().term;
    for (const n of c.nodes.values()) {
      expect(n.rn.status().lead).toBe(l);
      expect(n.rn.status().term).toBe(t);
    }
    // Election safety across the whole history: at most one leader per term.
    const leaderOfTerm = new Map<number, number>();
    for (const n of c.nodes.values()) {
      for (const rd of n.readies) {
        if (rd.softState?.role !== 'leader') continue;
        expect(leaderOfTerm.get(rd.softState.term) ?? n.id).toBe(n.id);
        leaderOfTerm.set(rd.softState.term, n.id);
      }
    }
  });

  test('a candidate wins with votes from a majority and becomes leader of the new term', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(2);
    expect(c.leaders()).toEqual([2]);
    expect(c.node(2).rn.status().term).toBe(2);
  });

  test('§5.2 a candidate without a majority does not become leader', () => {
    const c = new Cluster([1, 2, 3, 4, 5], { checkQuorum: false, preVote: false });
    c.drop((m) => m.from === 1 && (m.to === 3 || m.to === 4 || m.to === 5));
    c.elect(1);
    expect(c.node(1).rn.status().role).toBe('candidate');
    expect(c.leaders()).toEqual([]);
  });
});

describe('§5.2 voting', () => {
  const vote = (from: number, t: number, index: number, logTerm: number): Message =>
    msg(MessageType.Vote, from, 1, t, { index: index as never, logTerm: logTerm as never });

  test('§5.2 a node grants at most one vote per term, and the vote survives a restart', () => {
    const s = solo(1, [1, 2, 3], { preVote: false, checkQuorum: false });
    s.rn.step(vote(2, 2, 1, 1));
    const rd1 = persist(s);
    expect(rd1.hardState).toMatchObject({ term: 2, vote: 2 });
    expect(rd1.messagesAfterPersist).toEqual([msg(MessageType.VoteResp, 1, 2, 2)]);
    expect(rd1.messages).toEqual([]);

    s.rn.step(vote(3, 2, 1, 1));
    const rd2 = persist(s);
    expect(rd2.messages).toEqual([msg(MessageType.VoteResp, 1, 3, 2, { reject: true })]);
    expect(rd2.messagesAfterPersist).toEqual([]);

    // A repeated request from the same candidate is granted again (the response may have been lost).
    s.rn.step(vote(2, 2, 1, 1));
    expect(persist(s).messagesAfterPersist).toEqual([msg(MessageType.VoteResp, 1, 2, 2)]);

    const restarted = reopen(s, 1, { preVote: false, checkQuorum: false });
    expect(restarted.rn.status()).toMatchObject({ term: 2, vote: 2 });
    restarted.rn.step(vote(3, 2, 1, 1));
    expect(persist(restarted).messages).toEqual([msg(MessageType.VoteResp, 1, 3, 2, { reject: true })]);
  });

  test('§5.4.1 a voter rejects a candidate whose log is less up to date (older last term, even if longer)', () => {
    // Voter log: 1@1, 2@1, 3@2.
    const s = solo(1, [1, 2, 3], { preVote: false, checkQuorum: false, log: [ent(2, 1), ent(3, 2)], termVote: [2, 0] });
    s.rn.step(vote(2, 3, 9, 1));
    const rd = persist(s);
    // The rejection speaks for term 3, which this Ready makes durable: it leaves after the write.
    expect(rd.messages).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([msg(MessageType.VoteResp, 1, 2, 3, { reject: true })]);
    // It still adopts the higher term, without voting.
    expect(s.rn.status()).toMatchObject({ term: 3, vote: 0 });
  });

  test('§5.4.1 a voter rejects a candidate with the same last term but a shorter log', () => {
    const s = solo(1, [1, 2, 3], { preVote: false, checkQuorum: false, log: [ent(2, 1), ent(3, 2)], termVote: [2, 0] });
    s.rn.step(vote(2, 3, 2, 2));
    expect(persist(s).messagesAfterPersist).toEqual([msg(MessageType.VoteResp, 1, 2, 3, { reject: true })]);
  });

  test('§5.4.1 a voter grants a candidate whose last term is newer, even with a shorter log', () => {
    const s = solo(1, [1, 2, 3], { preVote: false, checkQuorum: false, log: [ent(2, 1), ent(3, 2)], termVote: [2, 0] });
    s.rn.step(vote(2, 4, 2, 3));
    const rd = persist(s);
    expect(rd.messagesAfterPersist).toEqual([msg(MessageType.VoteResp, 1, 2, 4)]);
    expect(s.storage.hardState()).toMatchObject({ term: 4, vote: 2 });
  });

  test('§5.4.1 the vote-without-log-check bug is caught by the same check (the test can fail)', () => {
    const s = solo(1, [1, 2, 3], {
      preVote: false,
      checkQuorum: false,
      log: [ent(2, 1), ent(3, 2)],
      termVote: [2, 0],
      bugs: new Set(['vote-without-log-check']),
    });
    s.rn.step(vote(2, 3, 9, 1));
    expect(persist(s).messagesAfterPersist).toEqual([msg(MessageType.VoteResp, 1, 2, 3)]);
  });

  test('a granted pre-vote changes neither the voter term nor its vote, and leaves at once', () => {
    const s = solo(1, [1, 2, 3], { checkQuorum: false });
    s.rn.step(msg(MessageType.PreVote, 2, 1, 5, { index: 1 as never, logTerm: 1 as never }));
    const rd = persist(s);
    expect(rd.messages).toEqual([msg(MessageType.PreVoteResp, 1, 2, 5)]);
    expect(rd.hardState).toBeUndefined();
    expect(s.rn.status()).toMatchObject({ term: 1, vote: 0 });
  });
});

describe('persistence ordering of election messages', () => {
  test('the candidate Vote requests wait for its own term and vote to be durable (messagesAfterPersist)', () => {
    // check-quorum off: a fresh node would otherwise keep its start-up lease promise.
    const s = solo(1, [1, 2, 3], { preVote: false, checkQuorum: false });
    s.rn.campaign();
    const rd = s.rn.ready();
    expect(rd.hardState).toMatchObject({ term: 2, vote: 1 });
    expect(rd.messages.filter((m) => m.type === MessageType.Vote)).toEqual([]);
    expect(rd.messagesAfterPersist.map((m) => [m.type, m.to, m.term, m.index, m.logTerm])).toEqual([
      [MessageType.Vote, 2, 2, 1, 1],
      [MessageType.Vote, 3, 2, 1, 1],
    ]);
    s.rn.advance();
  });

  test('pre-vote requests carry the next term but change nothing durable, so they leave at once', () => {
    const s = solo(1, [1, 2, 3], { checkQuorum: false });
    s.rn.campaign();
    const rd = s.rn.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.softState?.role).toBe('pre-candidate');
    expect(rd.messages.map((m) => [m.type, m.to, m.term])).toEqual([
      [MessageType.PreVote, 2, 2],
      [MessageType.PreVote, 3, 2],
    ]);
    expect(rd.messagesAfterPersist).toEqual([]);
    s.rn.advance();
  });
});

describe('election backoff', () => {
  test('after k contended campaigns without a leader the timeout is drawn in [et, (1 + 2^k) et), k <= 3; a leader resets it', () => {
    const a = campaignIntervals(1, 60, true);
    a.forEach((t, i) => {
      expect(t).toBeGreaterThanOrEqual(ET);
      expect(t, `interval ${i}`).toBeLessThan((1 + 2 ** Math.min(i, 3)) * ET);
    });
    // Beyond the first range once campaigns collide, and up to the widest one.
    expect(a.slice(3).some((t) => t >= 5 * ET)).toBe(true);
    expect(Math.max(...a)).toBeLessThan(9 * ET);

    // Contended campaigns, then a leader is heard: the next timeout is in [et, 2et) again.
    for (let seed = 1; seed <= 20; seed++) {
      const s = solo(1, [1, 2, 3], { seed, electionTimeoutTicks: ET });
      let campaigns = 0;
      for (let i = 0; i < 400 && campaigns < 5; i++) {
        const before = s.rn.status().counters.preVotes;
        s.rn.tick();
        if (s.rn.status().counters.preVotes > before) {
          campaigns++;
          s.rn.step(msg(MessageType.PreVoteResp, 2, 1, s.rn.status().term, { reject: true }));
        }
        if (s.rn.hasReady()) persist(s);
      }
      s.rn.step(msg(MessageType.Heartbeat, 2, 1, s.rn.status().term + 1));
      persist(s);
      let ticks = 0;
      const before = s.rn.status().counters.preVotes;
      while (s.rn.status().counters.preVotes === before && ticks < 100) {
        s.rn.tick();
        ticks++;
        if (s.rn.hasReady()) persist(s);
      }
      expect(ticks, `seed ${seed}`).toBeGreaterThanOrEqual(ET);
      expect(ticks, `seed ${seed}`).toBeLessThan(2 * ET + 1);
    }
  });
});

describe('pre-vote', () => {
  test('a partitioned node that rejoins does not raise the cluster term or unseat the leader (pre-vote alone)', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    const term0 = c.node(1).rn.status().term;
    c.isolate(3);
    c.propose(1, 'a');
    c.tickAll(100);
    const n3 = c.node(3).rn.status();
    expect(n3.counters.preVotes).toBeGreaterThanOrEqual(3);
    expect(n3.counters.elections).toBe(0);
    expect(n3.term).toBe(term0);
    c.heal();
    c.tickAll(30);
    expect(c.leaders()).toEqual([1]);
    for (const n of c.nodes.values()) expect(n.rn.status().term).toBe(term0);
  });

  test('without pre-vote the same partition raises the term and the leader is unseated (why pre-vote exists)', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false, preVote: false });
    c.elect(1);
    const term0 = c.node(1).rn.status().term;
    c.isolate(3);
    c.propose(1, 'a');
    c.tickAll(100);
    expect(c.node(3).rn.status().term).toBeGreaterThan(term0 + 2);
    c.heal();
    c.tickAll(40);
    expect(c.node(1).rn.status().term).toBeGreaterThan(term0);
  });
});

describe('check-quorum', () => {
  test('§6.2 an isolated leader steps down within two election timeouts', () => {
    const c = new Cluster([1, 2, 3], {}, 3);
    const l = c.settle();
    c.tickAll(5);
    c.isolate(l);
    let ticks = 0;
    while (c.node(l).rn.status().role === 'leader' && ticks < 100) {
      c.tick(l);
      ticks++;
    }
    expect(c.node(l).rn.status().role).toBe('follower');
    expect(ticks).toBeGreaterThanOrEqual(ET);
    expect(ticks).toBeLessThanOrEqual(2 * ET);
    expect(c.node(l).rn.status().counters.stepDowns).toBe(1);
  });

  test('followers that heard from the leader within an election timeout ignore a disruptive candidate', () => {
    const c = new Cluster([1, 2, 3], { preVote: false }, 5);
    const l = c.settle();
    c.tickAll(12);
    const term0 = c.node(l).rn.status().term;
    const [a, b] = c.others(l) as unknown as [NodeId, NodeId];
    const sentBefore = c.sent.length;
    // A disruptive candidate (say, a replica that missed its removal) asks b for a vote.
    const last = c.node(a).rn.status().lastIndex;
    c.node(b).rn.step(msg(MessageType.Vote, a, b, term0 + 1, { index: (last + 5) as never, logTerm: (term0 + 1) as never }));
    c.deliver();
    expect(c.node(b).rn.status()).toMatchObject({ term: term0, lead: l, vote: c.node(b).rn.status().vote });
    expect(c.node(l).rn.status()).toMatchObject({ term: term0, role: 'leader' });
    const answers = c.sent.slice(sentBefore).filter((m) => m.type === MessageType.VoteResp);
    expect(answers).toEqual([]);
  });

  test('a follower inside its lease does not campaign when asked: its own vote would break the promise', () => {
    const c = new Cluster([1, 2, 3], { preVote: false }, 5);
    const l = c.settle();
    c.tickAll(3);
    const term0 = c.node(l).rn.status().term;
    const [a] = c.others(l);
    c.elect(a!);
    expect(c.node(a!).rn.status()).toMatchObject({ role: 'follower', term: term0, lead: l });
    expect(c.node(a!).rn.status().counters.elections).toBe(0);
  });

  test('a vote request from an older term is rejected with the newer term, so the candidate catches up', () => {
    const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false }, 5);
    const l = c.settle();
    const term0 = c.node(l).rn.status().term;
    const [a] = c.others(l);
    const before = c.sent.length;
    c.node(a!).rn.step(msg(MessageType.Vote, l, a!, term0 - 1, { index: 1 as never, logTerm: 1 as never }));
    c.handleReadies();
    const answers = c.sent.slice(before).filter((m) => m.type === MessageType.VoteResp);
    expect(answers.map((m) => [m.to, m.term, m.reject])).toEqual([[l, term0, true]]);
  });

  test('without check-quorum there is no lease: a follower asked to campaign does so', () => {
    const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false }, 5);
    const l = c.settle();
    const term0 = c.node(l).rn.status().term;
    const [a] = c.others(l);
    c.elect(a!);
    expect(c.node(a!).rn.status().term).toBeGreaterThan(term0);
  });

  test('a node that just restarted ignores vote requests for an election timeout (a lease may rely on it)', () => {
    const s = solo(1, [1, 2, 3], { preVote: false });
    s.rn.step(msg(MessageType.Vote, 2, 1, 2, { index: 1 as never, logTerm: 1 as never }));
    expect(s.rn.hasReady()).toBe(false);
    expect(s.rn.status().term).toBe(1);
  });
});

describe('restart', () => {
  test('§5.2 a restarted node keeps its term and vote (hard state persisted)', () => {
    const c = new Cluster([1, 2, 3], {}, 2);
    const l = c.settle();
    const f = c.others(l)[0]!;
    const before = c.node(f).rn.status();
    expect(before.term).toBeGreaterThan(1);
    const r = c.restart(f);
    const after = r.rn.status();
    expect(after.term).toBe(before.term);
    expect(after.vote).toBe(before.vote);
    expect(after.commit).toBe(c.node(f).storage.hardState().commit);
    // The leader's own vote survives too.
    const lt = c.node(l).rn.status();
    const lr = c.restart(l).rn.status();
    expect(lr).toMatchObject({ term: lt.term, vote: l, role: 'follower' });
  });
});

describe('staggered first campaigns (campaignStaggerTicks, campaignRank)', () => {
  /** A fresh 3-node group whose replicas are ranked as a shard host ranks shard `group`'s. */
  function ranked(seed: number, group: number, stagger: number): Cluster {
    const c = new Cluster([1, 2, 3], { campaignStaggerTicks: stagger }, seed);
    const voters = [1, 2, 3].map(nodeId);
    for (const v of voters) c.add(v, c.node(v).storage, { campaignRank: campaignRankOf(group, v, voters) });
    return c;
  }

  test('the preferred replica (rank 0) wins the first election of every seed; without the stagger the winner varies', () => {
    const first = (stagger: number): NodeId[] => [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => ranked(seed, 1, stagger).settle());
    // Group 1 of voters 1, 2, 3 prefers node 2.
    expect(first(20)).toEqual(Array(8).fill(2));
    expect(new Set(first(0)).size).toBeGreaterThan(1);
  });

  test('only timing: with the preferred replica cut off, a replica of the next rank wins after the stagger', () => {
    const c = ranked(3, 0, 20);
    c.isolate(1); // group 0 prefers node 1
    for (let t = 0; t < 29; t++) {
      c.tickAll();
      expect(c.leaders()).toEqual([]);
    }
    c.tickAll(40);
    expect(c.leaders().filter((l) => l !== 1)).toHaveLength(1);
  });
});
