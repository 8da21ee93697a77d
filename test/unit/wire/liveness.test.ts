import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { AssertionError, decodeLiveness, encodeLiveness, type LivenessFrame } from '../../../src/wire/index.js';
import { RUNS, describeHostileInput, expectBadFrame } from './support.js';

const livenessArb: fc.Arbitrary<LivenessFrame> = fc.record({ running: fc.array(fc.boolean(), { maxLength: 40 }) });

describe('liveness codec', () => {
  test('property: decode(encode(f)) equals f, for 0 to 40 workers', () => {
    fc.assert(
      fc.property(livenessArb, (f) => {
        expect(decodeLiveness(encodeLiveness(f))).toEqual(f);
      }),
      RUNS,
    );
  });

  test('layout: worker count u16, then one bit per worker from the low bit; the previous, empty payload means "not said"', () => {
    expect([...encodeLiveness({ running: [true, false, true] })]).toEqual([3, 0, 0b101]);
    const nine = encodeLiveness({ running: [false, false, false, false, false, false, false, false, true] });
    expect([...nine]).toEqual([9, 0, 0, 1]);
    expect(encodeLiveness({ running: [] }).length).toBe(0);
    expect(decodeLiveness(new Uint8Array(0))).toEqual({ running: [] });
  });

  test('malformed payloads are refused: truncated, zero workers, a length other than the count says, bits past the count', () => {
    for (const b of [[1], [0, 0], [0, 0, 0], [3, 0], [3, 0, 1, 0], [3, 0, 0b1000], [9, 0, 0xff, 0b10], [9, 0, 0xff]]) {
      expectBadFrame(() => decodeLiveness(new Uint8Array(b)));
    }
  });

  test('encoding more than 65,535 workers is a bug: AssertionError', () => {
    expect(() => encodeLiveness({ running: new Array<boolean>(0x10000).fill(true) })).toThrow(AssertionError);
  });
});

describeHostileInput('liveness', livenessArb, encodeLiveness, decodeLiveness);
