import { describe, expect, test } from 'vitest';
import { decodeConfChange, encodeConfChange } from '../../../../src/shards/raft/confchange.js';
import { RaftErrorCode } from '../../../../src/shards/raft/errors.js';
import { ConfChangeType, nodeId } from '../../../../src/shards/raft/types.js';
import { raftErrorOf } from './fixtures.js';

describe('conf change encoding', () => {
  test.each([
    [ConfChangeType.AddVoter, 1],
    [ConfChangeType.AddLearner, 77],
    [ConfChangeType.RemoveNode, 0xffffffff],
  ] as const)('type %i node %i round-trips', (type, node) => {
    const cc = { type, node: nodeId(node) };
    const data = encodeConfChange(cc);
    expect(data.length).toBe(5);
    expect(decodeConfChange(data)).toEqual(cc);
  });

  test('decodes from a view into a larger buffer (byteOffset honoured)', () => {
    const data = encodeConfChange({ type: ConfChangeType.AddLearner, node: nodeId(300) });
    const big = new Uint8Array(16);
    big.set(data, 7);
    expect(decodeConfChange(big.subarray(7, 12))).toEqual({ type: ConfChangeType.AddLearner, node: 300 });
  });

  test.each([
    ['empty', new Uint8Array(0)],
    ['too short', new Uint8Array([0, 0, 0, 1])],
    ['too long', new Uint8Array([0, 0, 0, 0, 1, 0])],
    ['unknown type', new Uint8Array([3, 0, 0, 0, 1])],
    ['node 0', new Uint8Array([0, 0, 0, 0, 0])],
  ])('rejects malformed data (%s) with InvalidConfChange', (_name, data) => {
    expect(raftErrorOf(() => decodeConfChange(data)).code).toBe(RaftErrorCode.InvalidConfChange);
  });
});
