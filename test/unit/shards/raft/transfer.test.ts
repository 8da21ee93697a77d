import { describe, expect, test } from 'vitest';
import { RaftErrorCode } from '../../../../src/shards/raft/errors.js';
import { MessageType, nodeId } from '../../../../src/shards/raft/types.js';
import type { NodeId } from '../../../../src/shards/raft/types.js';
import { Cluster } from './harness.js';
import { enc, raftErrorOf } from './fixtures.js';

function cluster(seed = 1, opts = {}): { c: Cluster; l: number; t: number; o: number } {
  const c = new Cluster([1, 2, 3], { ...opts }, seed, [4]);
  const l = c.settle();
  c.tickAll(3);
  const [t, o] = c.others(l).filter((id) => id !== 4) as [NodeId, NodeId];
  return { c, l, t, o };
}

describe('leadership transfer (§3.10 of the Raft thesis)', () => {
  test('to an up-to-date follower: it becomes leader of the next term at once, without waiting for a timeout', () => {
    const { c, l, t } = cluster();
    const term0 = c.node(l).rn.status().term;
    c.node(l).rn.transferLeader(nodeId(t));
    c.deliver();
    expect(c.sent.filter((m) => m.type === MessageType.TimeoutNow).map((m) => [m.from, m.to])).toEqual([[l, t]]);
    expect(c.leaders()).toEqual([t]);
    expect(c.node(t).rn.status().term).toBe(term0 + 1);
    expect(c.node(l).rn.status()).toMatchObject({ role: 'follower', lead: t });
    const r = c.propose(t, 'after');
    expect(c.node(t).rn.status().commit).toBe(r.index);
  });

  test('to a lagging follower: it is caught up first, then told to campaign', () => {
    const { c, l, t } = cluster();
    const slow = c.hold((m) => m.to === t || m.from === t);
    for (let i = 0; i < 5; i++) c.propose(l, `v${i}`);
    const last = c.node(l).rn.status().lastIndex;
    c.node(l).rn.transferLeader(nodeId(t));
    c.deliver();
    expect(c.leaders()).toEqual([l]);
    expect(c.sent.filter((m) => m.type === MessageType.TimeoutNow)).toEqual([]);
    slow.release();
    expect(c.leaders()).toEqual([t]);
    const timeoutNow = c.sent.findIndex((m) => m.type === MessageType.TimeoutNow);
    const caughtUp = c.sent.findIndex((m) => m.type === MessageType.AppResp && m.from === t && !m.reject && m.index === last);
    expect(caughtUp).toBeGreaterThanOrEqual(0);
    expect(timeoutNow).toBeGreaterThan(caughtUp);
    expect(c.appliedData(t)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  test('to a follower whose answer to the last entries was lost: the transfer App is answered and TimeoutNow follows without waiting for ticks', () => {
    const { c, l, t } = cluster(1, { electionTimeoutTicks: 3 });
    let lost = false;
    c.drop((m) => {
      if (lost || m.type !== MessageType.AppResp || m.from !== t) return false;
      lost = true;
      return true;
    });
    c.propose(l, 'x');
    expect(lost).toBe(true);
    expect(c.node(l).rn.status().progress.get(nodeId(t))!.match).toBeLessThan(c.node(l).rn.status().lastIndex);
    c.node(l).rn.transferLeader(nodeId(t));
    c.deliver();
    expect(c.sent.filter((m) => m.type === MessageType.TimeoutNow).map((m) => [m.from, m.to])).toEqual([[l, t]]);
    expect(c.leaders()).toEqual([t]);
  });

  test('proposals are refused with TransferInProgress while the transfer runs', () => {
    const { c, l, t } = cluster();
    c.isolate(t);
    c.node(l).rn.transferLeader(nodeId(t));
    const e = raftErrorOf(() => c.node(l).rn.propose(enc('x')));
    expect(e.code).toBe(RaftErrorCode.TransferInProgress);
    expect(c.node(l).rn.status().leadTransferee).toBe(t);
  });

  test('the transfer aborts after transferTimeoutTicks when the target is unreachable; the leader stays and accepts proposals again', () => {
    const { c, l, t } = cluster(2, { transferTimeoutTicks: 7 });
    c.isolate(t);
    c.node(l).rn.transferLeader(nodeId(t));
    c.tick(l, 6);
    expect(raftErrorOf(() => c.node(l).rn.propose(enc('x'))).code).toBe(RaftErrorCode.TransferInProgress);
    c.tick(l, 1);
    const st = c.node(l).rn.status();
    expect(st).toMatchObject({ role: 'leader', leadTransferee: 0 });
    expect(st.counters.transfersAborted).toBe(1);
    expect(() => c.node(l).rn.propose(enc('x'))).not.toThrow();
  });

  test('an invalid target (self, learner, stranger) is refused with InvalidTransferTarget', () => {
    const { c, l } = cluster();
    for (const to of [l, 4, 9]) {
      expect(raftErrorOf(() => c.node(l).rn.transferLeader(nodeId(to))).code).toBe(RaftErrorCode.InvalidTransferTarget);
    }
    expect(c.node(l).rn.status().leadTransferee).toBe(0);
  });

  test('a follower refuses to transfer with NotLeader', () => {
    const { c, l, t } = cluster();
    const e = raftErrorOf(() => c.node(t).rn.transferLeader(nodeId(l)));
    expect(e.code).toBe(RaftErrorCode.NotLeader);
    expect(e.leaderHint).toBe(l);
  });
});
