import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { AssertionError, RECORD_HEADER_BYTES, RecordKind, decodeFrame, encodeFrame, isRecordKind, type FrameRecord } from '../../../src/wire/index.js';
import { Ring } from '../../../src/workers/ring.js';
import { RUNS, SEED, bytes, describeHostileInput, expectBadFrame, inSharedMemory, patched, u32 } from './support.js';

const kindArb = fc.constantFrom(...Object.values(RecordKind));
const recordsArb: fc.Arbitrary<FrameRecord[]> = fc.array(fc.record({ kind: kindArb, shard: u32, payload: bytes }), { maxLength: 8 });

const MAX_RECORD = 1 << 16;

describe('wire frame codec', () => {
  test('property: decodeFrame(encodeFrame(records)) equals records; records are 4-byte aligned', () => {
    fc.assert(
      fc.property(recordsArb, (rs) => {
        const b = encodeFrame(rs);
        expect(b.length % 4).toBe(0);
        expect(decodeFrame(b, MAX_RECORD)).toEqual(rs);
      }),
      RUNS,
    );
  });

  test('property: a frame has the same bytes as the records written to a fresh ring', () => {
    fc.assert(
      fc.property(recordsArb, (rs) => {
        const buffer = Ring.allocate(4096);
        const ring = new Ring(buffer);
        for (const r of rs) expect(ring.tryWrite(r.kind, r.shard, r.payload)).toBe(true);
        const frame = encodeFrame(rs);
        expect(ring.usedBytes()).toBe(frame.length);
        expect(new Uint8Array(buffer, 64, frame.length)).toEqual(new Uint8Array(frame));
      }),
      { numRuns: 100, seed: SEED },
    );
  });

  test('property: frames decode from a view into shared memory; payloads are copies', () => {
    fc.assert(
      fc.property(recordsArb, (rs) => {
        const { view, memory } = inSharedMemory(encodeFrame(rs));
        const d = decodeFrame(view, MAX_RECORD);
        memory.fill(0x33);
        expect(d).toEqual(rs);
      }),
      RUNS,
    );
  });

  const one = encodeFrame([{ kind: RecordKind.ClientRead, shard: 9, payload: new Uint8Array([1, 2, 3, 4, 5]) }]);

  test('malformed frames are refused', () => {
    expect(decodeFrame(new Uint8Array(0), 0)).toEqual([]);
    expectBadFrame(() => decodeFrame(one.subarray(0, RECORD_HEADER_BYTES - 1), MAX_RECORD)); // truncated header
    expectBadFrame(() => decodeFrame(one.subarray(0, one.length - 1), MAX_RECORD)); // truncated padding
    expectBadFrame(() => decodeFrame(one.subarray(0, RECORD_HEADER_BYTES + 4), MAX_RECORD)); // truncated payload
    expectBadFrame(() =>
      decodeFrame(
        patched(one, (v) => v.setUint32(0, 0xfffffff0, true)),
        2 ** 40,
      ),
    ); // length beyond input
    expectBadFrame(() => decodeFrame(one, 4)); // beyond maxRecordBytes
    expect(decodeFrame(one, 5)).toHaveLength(1);
    for (const k of [0, 9, 0x100, 0xffff])
      expectBadFrame(() =>
        decodeFrame(
          patched(one, (v) => v.setUint16(4, k, true)),
          MAX_RECORD,
        ),
      );
    expectBadFrame(() =>
      decodeFrame(
        patched(one, (v) => v.setUint16(6, 1, true)),
        MAX_RECORD,
      ),
    ); // pad field
    expectBadFrame(() =>
      decodeFrame(
        patched(one, (v) => v.setUint8(one.length - 1, 1)),
        MAX_RECORD,
      ),
    ); // padding bytes
  });

  test('encoding an unknown kind or a non-u32 shard is a bug: AssertionError', () => {
    expect(isRecordKind(RecordKind.Control)).toBe(true);
    expect(isRecordKind(0)).toBe(false);
    expect(() => encodeFrame([{ kind: 0, shard: 0, payload: new Uint8Array() }])).toThrow(AssertionError);
    expect(() => encodeFrame([{ kind: 1, shard: -1, payload: new Uint8Array() }])).toThrow(AssertionError);
    expect(() => decodeFrame(one, -1)).toThrow(AssertionError);
  });
});

describeHostileInput('frame', recordsArb, encodeFrame, (b: Uint8Array) => decodeFrame(b, MAX_RECORD));
