import { describe, expect, test } from 'vitest';
import type { RaftConfig } from '../../../../src/shards/raft/config.js';
import { campaignRankOf, resolveConfig } from '../../../../src/shards/raft/config.js';
import { RaftError, RaftErrorCode } from '../../../../src/shards/raft/errors.js';
import { Prng } from '../../../../src/shards/raft/prng.js';
import { RawNode } from '../../../../src/shards/raft/rawnode.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import { logIndex, nodeId } from '../../../../src/shards/raft/types.js';
import { raftErrorOf } from './fixtures.js';

const base = (): RaftConfig => ({ id: nodeId(1), storage: MemoryStorage.withMembers([nodeId(1)]), prng: new Prng(1) });

describe('config validation', () => {
  test('defaults: election 10 ticks, heartbeat 1, pre-vote and check-quorum on, transfer timeout = election timeout', () => {
    const r = resolveConfig(base());
    expect(r.electionTimeoutTicks).toBe(10);
    expect(r.heartbeatIntervalTicks).toBe(1);
    expect(r.preVote).toBe(true);
    expect(r.checkQuorum).toBe(true);
    expect(r.transferTimeoutTicks).toBe(10);
    expect(resolveConfig({ ...base(), electionTimeoutTicks: 20 }).transferTimeoutTicks).toBe(20);
  });

  const fields = [
    'id',
    'electionTimeoutTicks',
    'heartbeatIntervalTicks',
    'appendBytesMax',
    'inflightMessagesMax',
    'inflightBytesMax',
    'uncommittedBytesMax',
    'committedBytesPerReadyMax',
    'readQueueMax',
    'transferTimeoutTicks',
  ] as const;
  const bad = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY];
  for (const f of fields) {
    test.each(bad)(`${f} = %s throws RaftError InvalidConfig`, (v) => {
      const e = raftErrorOf(() => resolveConfig({ ...base(), [f]: v }));
      expect(e).toBeInstanceOf(RaftError);
      expect(e.code).toBe(RaftErrorCode.InvalidConfig);
    });
  }

  test('heartbeatIntervalTicks >= electionTimeoutTicks throws InvalidConfig', () => {
    expect(raftErrorOf(() => resolveConfig({ ...base(), electionTimeoutTicks: 5, heartbeatIntervalTicks: 5 })).code).toBe(RaftErrorCode.InvalidConfig);
    expect(raftErrorOf(() => resolveConfig({ ...base(), electionTimeoutTicks: 5, heartbeatIntervalTicks: 6 })).code).toBe(RaftErrorCode.InvalidConfig);
    expect(() => resolveConfig({ ...base(), electionTimeoutTicks: 5, heartbeatIntervalTicks: 4 })).not.toThrow();
  });

  test('an election timeout below 3 ticks leaves no room for the lease margin: InvalidConfig', () => {
    expect(raftErrorOf(() => resolveConfig({ ...base(), electionTimeoutTicks: 2, heartbeatIntervalTicks: 1 })).code).toBe(RaftErrorCode.InvalidConfig);
  });

  test('quiesceNewLeaderAfterTicks: default quiesceAfterTicks; outside [1, quiesceAfterTicks] while quiescence is on throws InvalidConfig', () => {
    expect(resolveConfig({ ...base(), quiesceAfterTicks: 20 }).quiesceNewLeaderAfterTicks).toBe(20);
    expect(resolveConfig({ ...base(), quiesceAfterTicks: 20, quiesceNewLeaderAfterTicks: 1 }).quiesceNewLeaderAfterTicks).toBe(1);
    for (const v of [0, 21, 1.5, -1]) {
      expect(raftErrorOf(() => resolveConfig({ ...base(), quiesceAfterTicks: 20, quiesceNewLeaderAfterTicks: v })).code).toBe(RaftErrorCode.InvalidConfig);
    }
    // Quiescence off: the setting does not apply.
    expect(() => resolveConfig({ ...base(), quiesceAfterTicks: 0, quiesceNewLeaderAfterTicks: 0 })).not.toThrow();
  });

  test('campaignStaggerTicks and campaignRank: default 0; negative or fractional throws InvalidConfig', () => {
    const r = resolveConfig(base());
    expect(r.campaignStaggerTicks).toBe(0);
    expect(r.campaignRank).toBe(0);
    for (const f of ['campaignStaggerTicks', 'campaignRank'] as const) {
      for (const v of [-1, 0.5, Number.NaN]) expect(raftErrorOf(() => resolveConfig({ ...base(), [f]: v })).code).toBe(RaftErrorCode.InvalidConfig);
    }
  });

  test('campaignRankOf: each voter is preferred (rank 0) for an even share of groups; a non-voter ranks 0', () => {
    const voters = [nodeId(7), nodeId(3), nodeId(5)];
    const preferred = [0, 1, 2, 3, 4, 5].map((g) => voters.find((v) => campaignRankOf(g, v, voters) === 0));
    expect(preferred).toEqual([3, 5, 7, 3, 5, 7]);
    expect([3, 5, 7].map((v) => campaignRankOf(1, nodeId(v), voters))).toEqual([2, 0, 1]);
    expect(campaignRankOf(1, nodeId(9), voters)).toBe(0);
  });

  test('a negative or fractional applied index throws InvalidConfig', () => {
    expect(raftErrorOf(() => resolveConfig({ ...base(), applied: logIndex(-1) })).code).toBe(RaftErrorCode.InvalidConfig);
    expect(raftErrorOf(() => resolveConfig({ ...base(), applied: logIndex(0.5) })).code).toBe(RaftErrorCode.InvalidConfig);
  });

  test('RawNode validates its config at construction', () => {
    expect(raftErrorOf(() => new RawNode({ ...base(), inflightMessagesMax: 0 })).code).toBe(RaftErrorCode.InvalidConfig);
  });

  test('the error serializes with its code', () => {
    const e = raftErrorOf(() => resolveConfig({ ...base(), readQueueMax: 0 }));
    expect(JSON.parse(JSON.stringify(e))).toMatchObject({ code: 'InvalidConfig' });
  });
});
