import { describe, expect, test } from 'vitest';
import { RaftErrorCode } from '../../../../src/shards/raft/errors.js';
import { Cluster } from './harness.js';
import { enc, raftErrorOf } from './fixtures.js';

describe('proposals', () => {
  test('a follower refuses a proposal with NotLeader and names the leader', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(2);
    const e = raftErrorOf(() => c.node(3).rn.propose(enc('x')));
    expect(e.code).toBe(RaftErrorCode.NotLeader);
    expect(e.leaderHint).toBe(2);
    expect(e.toJSON()).toMatchObject({ code: 'NotLeader', leaderHint: 2 });
  });

  test('a node that knows no leader refuses with NotLeader and hint 0', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    const e = raftErrorOf(() => c.node(1).rn.propose(enc('x')));
    expect(e.code).toBe(RaftErrorCode.NotLeader);
    expect(e.leaderHint).toBe(0);
  });

  test('uncommittedBytesMax: proposals beyond the cap throw UncommittedBytesExceeded, and are accepted again once applied', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false, uncommittedBytesMax: 100 });
    c.elect(1);
    const slow = c.hold((m) => m.from === 1 && (m.to === 2 || m.to === 3));
    c.propose(1, 'a'.repeat(60));
    const e = raftErrorOf(() => c.node(1).rn.propose(enc('b'.repeat(60))));
    expect(e.code).toBe(RaftErrorCode.UncommittedBytesExceeded);
    expect(c.node(1).rn.status().counters.proposalsRefused).toBe(1);
    slow.release();
    expect(c.appliedData(1)).toEqual(['a'.repeat(60)]);
    expect(c.node(1).rn.backlog().uncommittedBytes).toBe(0);
    expect(() => c.node(1).rn.propose(enc('b'.repeat(60)))).not.toThrow();
  });

  test('a proposal whose index gets another leader entry committed is reported ProposalDropped once the old leader learns it', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.propose(1, 'kept');
    c.isolate(1);
    const lost = c.propose(1, 'lost');
    c.elect(2);
    expect(c.leaders()).toContain(2);
    const won = c.propose(2, 'won');
    expect(c.node(2).rn.status().commit).toBeGreaterThanOrEqual(lost.index);
    expect(c.node(1).failedProposals).toEqual([]);
    c.heal();
    c.tickAll(3);
    expect(c.leaders()).toEqual([2]);
    expect(c.node(1).failedProposals).toEqual([{ index: lost.index, term: lost.term, code: RaftErrorCode.ProposalDropped }]);
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['kept', 'won']);
    expect(won.index).toBeGreaterThanOrEqual(lost.index);
  });

  test('a proposal whose entry another leader cut from the log is reported at once, though no commit ever passes its index', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.propose(1, 'kept');
    c.isolate(1);
    const lost = [c.propose(1, 'lost0'), c.propose(1, 'lost1'), c.propose(1, 'lost2')];
    // The new leader appends only its election's entry, at the first lost index, and proposes nothing.
    c.elect(2);
    const last = c.node(2).rn.status().commit;
    expect(last).toBe(lost[0]!.index);
    c.heal();
    c.tickAll(3);
    expect(c.leaders()).toEqual([2]);
    expect(c.node(2).rn.status().commit).toBe(last);
    // The first lost index now holds the new leader's entry, committed: dropped for sure. The other
    // two are gone from node 1's log and no commit reaches them: their fate is unknown here, and
    // said now, not at a later write to the group (that may never come).
    expect(c.node(1).failedProposals).toEqual([
      { index: lost[0]!.index, term: lost[0]!.term, code: RaftErrorCode.ProposalDropped },
      { index: lost[1]!.index, term: lost[1]!.term, code: RaftErrorCode.ProposalOutcomeUnknown },
      { index: lost[2]!.index, term: lost[2]!.term, code: RaftErrorCode.ProposalOutcomeUnknown },
    ]);
    expect(c.node(1).rn.backlog().proposals).toBe(0);
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['kept']);
  });

  test('a deposed leader keeps its proposals while its log still holds them: they may yet commit', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    const held = c.hold((m) => m.from === 1 && m.to === 3);
    const p = c.propose(1, 'maybe');
    // Node 2 has the entry; node 1 learns of a new term before hearing that it committed.
    c.isolate(1);
    c.elect(2);
    held.release();
    c.heal();
    c.tickAll(3);
    expect(c.node(1).failedProposals).toEqual([]);
    expect(c.node(1).applied.map((e) => `${e.index}/${e.term}`)).toContain(`${p.index}/${p.term}`);
  });

  test('never silently: every accepted proposal is applied or reported failed', () => {
    const c = new Cluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    const accepted: { index: number; term: number }[] = [];
    c.isolate(1);
    for (let i = 0; i < 3; i++) accepted.push(c.propose(1, `x${i}`));
    c.elect(3);
    for (let i = 0; i < 5; i++) c.propose(3, `y${i}`);
    c.heal();
    c.tickAll(3);
    const failed = c.node(1).failedProposals.map((f) => `${f.index}/${f.term}`);
    const applied = c.node(1).applied.map((e) => `${e.index}/${e.term}`);
    for (const p of accepted) {
      const key = `${p.index}/${p.term}`;
      expect(failed.includes(key) !== applied.includes(key)).toBe(true);
    }
    expect(c.node(1).failedProposals.every((f) => f.code === RaftErrorCode.ProposalDropped)).toBe(true);
  });
});
