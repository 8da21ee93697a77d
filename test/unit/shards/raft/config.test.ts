import { describe, expect, test } from 'vitest';
import type { RaftConfig } from '../../../../src/shards/raft/config.js';
import { resolveConfig } from '../../../../src/shards/raft/config.js';
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
