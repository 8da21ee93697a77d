import { describe, expect, test } from 'vitest';
import { majority, quorumValue, voteResult } from '../../../../src/shards/raft/quorum.js';
import type { NodeId } from '../../../../src/shards/raft/types.js';
import { nodeId } from '../../../../src/shards/raft/types.js';

const ids = (n: number): NodeId[] => Array.from({ length: n }, (_, i) => nodeId(i + 1));

describe('quorum', () => {
  test('majority of 1..5 voters is 1, 2, 2, 3, 3', () => {
    expect([1, 2, 3, 4, 5].map(majority)).toEqual([1, 2, 2, 3, 3]);
  });

  test.each([
    [[7], 7],
    [[7, 3], 3],
    [[7, 3, 5], 5],
    [[1, 9, 3, 7], 3],
    [[1, 9, 3, 7, 5], 5],
    [[0, 0, 4], 0],
  ])('commit index of matches %j is %i (highest index held by a majority)', (matches, want) => {
    const voters = ids(matches.length);
    expect(quorumValue(voters, (id) => matches[id - 1]!)).toBe(want);
  });

  test('an empty voter set has commit index 0', () => {
    expect(quorumValue([], () => 5)).toBe(0);
  });

  test.each([
    // voters, granted, rejected, result
    [1, [1], [], 'won'],
    [1, [], [], 'pending'],
    [2, [1], [], 'pending'],
    [2, [1], [2], 'lost'],
    [2, [1, 2], [], 'won'],
    [3, [1], [], 'pending'],
    [3, [1, 2], [], 'won'],
    [3, [1], [2], 'pending'],
    [3, [1], [2, 3], 'lost'],
    [4, [1, 2], [3], 'pending'],
    [4, [1, 2], [3, 4], 'lost'],
    [4, [1, 2, 3], [], 'won'],
    [5, [1, 2], [3, 4], 'pending'],
    [5, [1, 2, 3], [4, 5], 'won'],
    [5, [1, 2], [3, 4, 5], 'lost'],
  ] as const)('%i voters, granted %j, rejected %j: %s', (n, granted, rejected, want) => {
    const votes = new Map<NodeId, boolean>();
    for (const g of granted) votes.set(nodeId(g), true);
    for (const r of rejected) votes.set(nodeId(r), false);
    expect(voteResult(new Set(ids(n)), votes)).toBe(want);
  });

  test('votes from non-voters are not counted', () => {
    const votes = new Map<NodeId, boolean>([
      [nodeId(1), true],
      [nodeId(9), true],
      [nodeId(8), true],
    ]);
    expect(voteResult(new Set(ids(3)), votes)).toBe('pending');
  });
});
