/**
 * The snapshot stream messages and the SnapshotRequest record: every message decodes to what was
 * encoded, and hostile input (random, truncated, corrupted, oversized) is a CodecError BadFrame.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  SNAPSHOT_MESSAGE_BYTES_MAX,
  SnapAnswer,
  SnapMessageType,
  decodeSnapMessage,
  decodeSnapshotRequest,
  encodeSnapMessage,
  encodeSnapshotRequest,
} from '../../../src/wire/index.js';
import type { SnapMessage } from '../../../src/wire/index.js';
import { RUNS, describeHostileInput, expectBadFrame, u32, u53 } from './support.js';

const nodeId = fc.integer({ min: 1, max: 0xffffffff });
const snapMessage: fc.Arbitrary<SnapMessage> = fc.oneof(
  fc.record({
    type: fc.constant(SnapMessageType.Offer),
    shard: u32,
    from: u32,
    to: u32,
    term: u53,
    index: u53,
    indexTerm: u53,
    voters: fc.array(nodeId, { maxLength: 7 }),
    learners: fc.array(nodeId, { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constant(SnapMessageType.Answer),
    answer: fc.constantFrom(...Object.values(SnapAnswer)),
    retryAfterMs: u32,
  }),
  fc.record({
    type: fc.constant(SnapMessageType.Chunk),
    index: u32,
    rawLength: fc.integer({ min: 1, max: 0xffffffff }),
    crc32: u32,
    compressed: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
  fc.record({ type: fc.constant(SnapMessageType.End), chunks: u32, rawBytes: u53, crc32: u32 }),
);
const request = fc.record({ from: u32, to: u32, term: u53, index: u53 });

describe('snapshot stream messages', () => {
  test('property: decode(encode(m)) equals m', () => {
    fc.assert(
      fc.property(snapMessage, (m) => {
        const back = decodeSnapMessage(encodeSnapMessage(m));
        expect({ ...back, ...('compressed' in back ? { compressed: [...back.compressed] } : {}) }).toEqual({
          ...m,
          ...('compressed' in m ? { compressed: [...m.compressed] } : {}),
        });
      }),
      RUNS,
    );
  });

  test('property: decode(encode(request)) equals the request', () => {
    fc.assert(
      fc.property(request, (r) => {
        expect(decodeSnapshotRequest(encodeSnapshotRequest(r))).toEqual(r);
      }),
      RUNS,
    );
  });

  test('an offer of another version, an unknown answer, a chunk of 0 raw bytes, node id 0 and an oversized message are refused', () => {
    const offer = encodeSnapMessage({
      type: SnapMessageType.Offer,
      shard: 1,
      from: 1,
      to: 2,
      term: 3,
      index: 10,
      indexTerm: 2,
      voters: [1, 2, 3],
      learners: [],
    });
    const v2 = offer.slice();
    v2[5] = 2; // type u8, magic u32, then the version
    expectBadFrame(() => decodeSnapMessage(v2));
    const zeroVoter = offer.slice();
    new DataView(zeroVoter.buffer).setUint32(offer.length - 2 - 4, 0, true); // the last voter, before the learner count
    expectBadFrame(() => decodeSnapMessage(zeroVoter));
    expectBadFrame(() => decodeSnapMessage(Uint8Array.of(SnapMessageType.Answer, 99, 0, 0, 0, 0)));
    const chunk = encodeSnapMessage({ type: SnapMessageType.Chunk, index: 0, rawLength: 1, crc32: 0, compressed: Uint8Array.of(1) });
    new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).setUint32(5, 0, true);
    expectBadFrame(() => decodeSnapMessage(chunk));
    expectBadFrame(() => decodeSnapMessage(new Uint8Array(0)));
    expectBadFrame(() => decodeSnapMessage(new Uint8Array(SNAPSHOT_MESSAGE_BYTES_MAX + 1).fill(SnapMessageType.Chunk)));
    expectBadFrame(() => decodeSnapMessage(Uint8Array.of(77)));
    expectBadFrame(() => decodeSnapshotRequest(new Uint8Array(23)));
  });

  test('a chunk as large as the largest message decodes', () => {
    const compressed = new Uint8Array(SNAPSHOT_MESSAGE_BYTES_MAX - 13).fill(7);
    const m = decodeSnapMessage(encodeSnapMessage({ type: SnapMessageType.Chunk, index: 3, rawLength: 5, crc32: 9, compressed }));
    expect(m.type === SnapMessageType.Chunk && m.compressed.length).toBe(compressed.length);
  });
});

describeHostileInput('snapshot stream message', snapMessage, encodeSnapMessage, decodeSnapMessage);
describeHostileInput('snapshot request', request, encodeSnapshotRequest, decodeSnapshotRequest);
