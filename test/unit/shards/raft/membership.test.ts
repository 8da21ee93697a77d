import { describe, expect, test } from 'vitest';
import { RaftErrorCode } from '../../../../src/shards/raft/errors.js';
import { encodeConfChange } from '../../../../src/shards/raft/confchange.js';
import { ConfChangeType, EntryType, MessageType, nodeId } from '../../../../src/shards/raft/types.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import { Cluster } from './harness.js';
import { ent, msg, persist, raftErrorOf, solo } from './fixtures.js';

const add = (n: number) => ({ type: ConfChangeType.AddVoter, node: nodeId(n) });
const learner = (n: number) => ({ type: ConfChangeType.AddLearner, node: nodeId(n) });
const remove = (n: number) => ({ type: ConfChangeType.RemoveNode, node: nodeId(n) });

describe('learners', () => {
  test('a learner receives and applies entries', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false }, 1, [4]);
    c.elect(1);
    c.propose(1, 'x');
    expect(c.appliedData(4)).toEqual(['x']);
  });

  test('a learner is never asked for a vote and its vote would not count', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false, preVote: false }, 1, [4]);
    c.drop((m) => m.from === 1 && (m.to === 2 || m.to === 3));
    c.elect(1);
    expect(c.sent.filter((m) => (m.type === MessageType.Vote || m.type === MessageType.PreVote) && m.to === 4)).toEqual([]);
    expect(c.node(1).rn.status().role).toBe('candidate');
  });

  test('a learner never campaigns, however long it hears nothing', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false }, 1, [4]);
    c.isolate(4);
    c.tick(4, 100);
    const st = c.node(4).rn.status();
    expect(st.role).toBe('follower');
    expect(st.counters.preVotes + st.counters.elections).toBe(0);
  });

  test('a learner is not counted for commit', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false }, 1, [4]);
    c.elect(1);
    c.drop((m) => m.to === 2 || m.to === 3);
    const { index } = c.propose(1, 'y');
    expect(c.node(4).rn.status().lastIndex).toBe(index);
    expect(c.node(1).rn.status().progress.get(nodeId(4))?.match).toBe(index);
    expect(c.node(1).rn.status().commit).toBeLessThan(index);
  });

  test('promoting a learner makes it a voter counted in the quorum', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false }, 1, [4]);
    c.elect(1);
    c.node(1).rn.proposeConfChange(add(4));
    c.deliver();
    for (const n of c.nodes.values()) expect(n.rn.confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    // Four voters: 1, 2 and 4 make a quorum without 3, but 1 and 4 alone do not.
    c.isolate(3);
    const a = c.propose(1, 'a');
    expect(c.node(1).rn.status().commit).toBe(a.index);
    c.isolate(2);
    const b = c.propose(1, 'b');
    expect(c.node(1).rn.status().commit).toBeLessThan(b.index);
  });

  test('a learner added at run time appears in every replica membership once applied', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.node(1).rn.proposeConfChange(learner(4));
    c.deliver();
    for (const id of [1, 2, 3]) expect(c.node(id).rn.confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
  });
});

describe('removing members', () => {
  test('removing a follower shrinks the quorum', () => {
    const c = new Cluster([1, 2, 3, 4], { checkQuorum: false });
    c.elect(1);
    const slow = c.hold((m) => m.to === 3 || m.to === 4);
    const a = c.propose(1, 'a');
    // Two of four is not a quorum.
    expect(c.node(1).rn.status().commit).toBeLessThan(a.index);
    slow.release();
    expect(c.node(1).rn.status().commit).toBe(a.index);
    c.node(1).rn.proposeConfChange(remove(4));
    c.deliver();
    expect(c.node(1).rn.confState().voters).toEqual([1, 2, 3]);
    c.isolate(3);
    c.isolate(4);
    // Two of three is.
    const b = c.propose(1, 'b');
    expect(c.node(1).rn.status().commit).toBe(b.index);
    expect(c.sent.filter((m) => m.to === 4 && m.type === MessageType.App && m.entries.some((e) => e.index === b.index))).toEqual([]);
  });

  test('a removed follower applies its own removal even when the commit broadcast to it is lost (the leader says farewell)', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false }, 1);
    c.elect(1);
    c.propose(1, 'a');
    const { index } = c.node(1).rn.proposeConfChange(remove(3));
    // The first message that would tell node 3 the removal is committed is lost.
    let lost = 0;
    c.drop((m) => {
      if (m.to !== 3 || m.type !== MessageType.App || m.commit < index || lost > 0) return false;
      lost++;
      return true;
    });
    c.deliver();
    expect(lost).toBe(1);
    expect(c.node(1).rn.confState().voters).toEqual([1, 2]);
    // Node 3 applied the entry that removed it: it knows it is out and its node can drop it.
    expect(c.node(3).rn.confState().voters).toEqual([1, 2]);
    expect(c.node(3).rn.status().applied).toBeGreaterThanOrEqual(index);
  });

  test('a removed leader steps down after applying its removal and the others elect a new leader', () => {
    const c = new Cluster([1, 2, 3], {}, 4);
    const l = c.settle();
    const term0 = c.node(l).rn.status().term;
    c.node(l).rn.proposeConfChange(remove(l));
    c.deliver();
    expect(c.node(l).rn.status().role).toBe('follower');
    const rest = c.others(l);
    for (const id of rest) expect(c.node(id).rn.confState().voters).toEqual(rest);
    const electionsBefore = c.node(l).rn.status().counters.elections + c.node(l).rn.status().counters.preVotes;
    c.tickAll(60);
    const leaders = c.leaders();
    expect(leaders.length).toBe(1);
    expect(rest).toContain(leaders[0]);
    expect(c.node(leaders[0]!).rn.status().term).toBeGreaterThan(term0);
    const st = c.node(l).rn.status();
    expect(st.counters.elections + st.counters.preVotes).toBe(electionsBefore);
    const r = c.propose(leaders[0]!, 'after');
    expect(c.node(leaders[0]!).rn.status().commit).toBe(r.index);
  });
});

describe('a replica removed while it was cut off', () => {
  const campaigns = (c: Cluster, from: number, since = 0): number =>
    c.sent.slice(since).filter((m) => m.from === from && (m.type === MessageType.PreVote || m.type === MessageType.Vote)).length;

  test('learns from the members that it was removed and stops campaigning, instead of pre-voting every election timeout', () => {
    const c = new Cluster([1, 2, 3, 4], {}, 5);
    const l = c.settle();
    const gone = c.others(l).at(-1)!;
    c.isolate(gone);
    c.node(l).rn.proposeConfChange(remove(gone));
    c.deliver();
    expect(c.node(l).rn.confState().voters).not.toContain(gone);
    // It never heard of its removal; back on the network, its election timer fires.
    c.heal();
    c.drop((m) => m.from === l && m.to === gone); // and the leader no longer talks to it
    c.tickAll(3 * 20);
    const early = campaigns(c, gone);
    expect(early).toBeGreaterThan(0);
    expect(c.node(gone).rn.status().counters.removedHints).toBe(1);
    const mark = c.sent.length;
    c.tickAll(50 * 20);
    // Fifty election timeouts later: not one more campaign, and the group never noticed it.
    expect(campaigns(c, gone, mark)).toBe(0);
    expect(c.leaders()).toEqual([l]);
  });

  test('campaigns again once added back', () => {
    const c = new Cluster([1, 2, 3, 4], { checkQuorum: false }, 6);
    c.elect(1);
    c.isolate(4);
    c.node(1).rn.proposeConfChange(remove(4));
    c.deliver();
    c.heal();
    c.drop((m) => m.from === 1 && m.to === 4);
    c.tickAll(3 * 20);
    expect(c.node(4).rn.status().counters.removedHints).toBe(1);
    // Added back (as a learner, then a voter): the leader talks to it, it takes part again.
    c.heal();
    c.node(1).rn.proposeConfChange(learner(4));
    c.deliver();
    c.node(1).rn.proposeConfChange(add(4));
    c.deliver();
    expect(c.node(4).rn.confState().voters).toContain(4);
    c.isolate(1);
    c.tickAll(10 * 20);
    expect(c.leaders().filter((x) => x !== 1)).toHaveLength(1);
    const mark = c.sent.length;
    for (const id of [2, 3]) c.isolate(id);
    c.tickAll(3 * 20);
    // The hint is gone: cut off from everyone, it campaigns like any voter.
    expect(campaigns(c, 4, mark)).toBeGreaterThan(0);
  });

  test("a lagging member's hint says nothing to a replica whose configuration is newer", () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false }, 7);
    c.add(nodeId(4), new MemoryStorage());
    c.elect(1);
    // Node 3 lags: it never applies the addition of node 4.
    c.isolate(3);
    c.node(1).rn.proposeConfChange(learner(4));
    c.deliver();
    c.node(1).rn.proposeConfChange(add(4));
    c.deliver();
    expect(c.node(4).rn.confState().voters).toContain(4);
    expect(c.node(3).rn.confState().voters).not.toContain(4);
    // Node 4 campaigns; node 3 (without 4 in its configuration) answers with a hint.
    c.heal();
    c.isolate(1);
    c.drop((m) => m.from === 2 || m.to === 2);
    const mark = c.sent.length;
    c.node(4).rn.campaign();
    c.deliver();
    expect(c.sent.slice(mark).some((m) => m.from === 3 && m.to === 4 && m.notMember === true)).toBe(true);
    expect(c.node(4).rn.status().counters.removedHints).toBe(0);
  });
});

describe('one change at a time', () => {
  test('a second change is refused with ConfChangePending until the first is applied', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.node(1).rn.proposeConfChange(learner(4));
    const e = raftErrorOf(() => c.node(1).rn.proposeConfChange(learner(5)));
    expect(e.code).toBe(RaftErrorCode.ConfChangePending);
    c.deliver();
    expect(() => c.node(1).rn.proposeConfChange(learner(5))).not.toThrow();
  });

  test('a new leader cannot propose a change before it applied the first entry of its term', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    // Votes pass, but no App reaches anyone: the leader's no-op cannot commit.
    c.drop((m) => m.type === MessageType.App);
    c.elect(1);
    expect(c.leaders()).toEqual([1]);
    expect(c.node(1).rn.status().applied).toBeLessThan(c.node(1).rn.status().lastIndex);
    const e = raftErrorOf(() => c.node(1).rn.proposeConfChange(learner(4)));
    expect(e.code).toBe(RaftErrorCode.ConfChangePending);
  });

  test('a new leader cannot propose a change while entries of earlier terms are unapplied', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    // 'u' reaches node 2 only and is never acknowledged: uncommitted in term 2.
    c.drop((m) => (m.type === MessageType.App && m.to === 3) || (m.type === MessageType.AppResp && m.to === 1));
    c.propose(1, 'u');
    c.heal();
    c.drop((m) => m.type === MessageType.App);
    c.elect(2);
    expect(c.leaders()).toEqual([2]);
    expect(raftErrorOf(() => c.node(2).rn.proposeConfChange(learner(4))).code).toBe(RaftErrorCode.ConfChangePending);
  });
});

describe('invalid changes', () => {
  test('removing the last voter is InvalidConfChange', () => {
    const c = new Cluster([1], { checkQuorum: false });
    c.elect(1);
    expect(c.leaders()).toEqual([1]);
    expect(raftErrorOf(() => c.node(1).rn.proposeConfChange(remove(1))).code).toBe(RaftErrorCode.InvalidConfChange);
  });

  test('adding an existing voter, demoting a voter, re-adding a learner, removing a stranger: InvalidConfChange', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false }, 1, [4]);
    c.elect(1);
    const rn = c.node(1).rn;
    for (const cc of [add(2), learner(2), learner(4), remove(9)]) {
      expect(raftErrorOf(() => rn.proposeConfChange(cc)).code).toBe(RaftErrorCode.InvalidConfChange);
    }
    // Nothing was appended for the refused changes.
    expect(rn.status().lastIndex).toBe(rn.status().commit);
  });

  test('a follower refuses a change with NotLeader and names the leader', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    const e = raftErrorOf(() => c.node(2).rn.proposeConfChange(learner(4)));
    expect(e.code).toBe(RaftErrorCode.NotLeader);
    expect(e.leaderHint).toBe(1);
  });
});

describe('membership and snapshots arriving between ready() and advance()', () => {
  test('a conf change handed out before a snapshot was installed does not roll the snapshot membership back', () => {
    const s = solo(2, [1, 2, 3]);
    const remove3 = ent(3, 2, '', EntryType.ConfChange);
    const rm = { ...remove3, data: encodeConfChange({ type: ConfChangeType.RemoveNode, node: nodeId(3) }) };
    s.rn.step(msg(MessageType.App, 1, 2, 2, { index: 1 as never, logTerm: 1 as never, entries: [ent(2, 2), rm], commit: 3 as never }));
    const rd = s.rn.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2, 3]);
    // While that write is in flight the leader's snapshot at 10 arrives: 3 was re-added since.
    const snapConf = { voters: [1, 2, 3].map(nodeId), learners: [] };
    s.rn.step(
      msg(MessageType.Snap, 1, 2, 2, { snapshot: { metadata: { index: 10 as never, term: 2 as never, confState: snapConf }, data: new Uint8Array(0) } }),
    );
    s.storage.append(rd.entries);
    if (rd.hardState) s.storage.setHardState(rd.hardState);
    s.rn.advance();
    persist(s);
    expect(s.rn.confState()).toEqual(snapConf);
  });
});
