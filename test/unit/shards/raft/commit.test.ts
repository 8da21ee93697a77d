import { describe, expect, test } from 'vitest';
import type { BugName } from '../../../../src/shards/raft/config.js';
import { MessageType } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';
import { ent, msg, persist, solo } from './fixtures.js';
import type { Solo } from './fixtures.js';

/**
 * Node 1 holds an uncommitted entry 2 of term 2 and wins the election of term 3 (votes from 2);
 * its no-op of term 3 sits at index 3.
 */
function figure8(bugs: BugName[] = []): Solo {
  const s = solo(1, [1, 2, 3], { preVote: false, checkQuorum: false, log: [ent(2, 2, 'old')], termVote: [2, 0], bugs: new Set(bugs) });
  s.rn.campaign();
  persist(s);
  s.rn.step(msg(MessageType.VoteResp, 2, 1, 3));
  persist(s);
  expect(s.rn.status()).toMatchObject({ role: 'leader', term: 3, lastIndex: 3, commit: 1 });
  return s;
}

describe('§5.4.2 committing entries from previous terms (Figure 8)', () => {
  test('§5.4.2 a leader does not commit an entry of an earlier term by counting replicas', () => {
    const s = figure8();
    // Follower 2 holds entry 2 (term 2): with the leader that is a majority, but of an old term.
    s.rn.step(msg(MessageType.AppResp, 2, 1, 3, { index: 2 as never }));
    const rds = [persist(s)];
    expect(s.rn.status().commit).toBe(1);
    expect(rds.flatMap((r) => r.committedEntries)).toEqual([]);
  });

  test('§5.4.2 the earlier-term entry commits once an entry of the current term is on a majority', () => {
    const s = figure8();
    s.rn.step(msg(MessageType.AppResp, 2, 1, 3, { index: 2 as never }));
    persist(s);
    s.rn.step(msg(MessageType.AppResp, 2, 1, 3, { index: 3 as never }));
    const rd = persist(s);
    expect(s.rn.status().commit).toBe(3);
    expect(rd.committedEntries.map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 3],
    ]);
  });

  test('§5.4.2 the commit-previous-term bug commits the old entry in the same scenario (the test can fail)', () => {
    const s = figure8(['commit-previous-term']);
    s.rn.step(msg(MessageType.AppResp, 2, 1, 3, { index: 2 as never }));
    persist(s);
    expect(s.rn.status().commit).toBe(2);
  });
});

describe('the leader counts its own entry only once it is durable', () => {
  function scenario(bugs: BugName[] = []): { c: Cluster; index: number; commitBefore: number } {
    const c = new Cluster([1, 2, 3], { checkQuorum: false, bugs: new Set(bugs) });
    c.elect(1);
    c.isolate(3);
    const n1 = c.node(1);
    const { index } = n1.rn.propose(new TextEncoder().encode('x'));
    const rd = n1.rn.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([index]);
    // The App leaves before the leader's own write is durable (allowed); follower 2 persists and acks.
    c.inFlight.push(...rd.messages);
    c.deliver();
    const commitBefore = n1.rn.status().commit;
    c.handleReady(n1, { ...rd, messages: [] });
    return { c, index, commitBefore };
  }

  test('before advance the leader entry does not count: one follower ack of three is not a quorum', () => {
    const { c, index, commitBefore } = scenario();
    expect(commitBefore).toBeLessThan(index);
    expect(c.node(1).rn.status().commit).toBe(index);
    c.deliver();
    expect(c.appliedData(2)).toEqual(['x']);
  });

  test('the apply-before-persist bug commits before the leader write is durable (the test can fail)', () => {
    const { index, commitBefore } = scenario(['apply-before-persist']);
    expect(commitBefore).toBe(index);
  });
});
