import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  AssertionError,
  LEADS_TAG,
  decodeLiveness,
  encodeLiveness,
  leadsOf,
  leadsSection,
  STOPPING_TAG,
  isStopping,
  stoppingSection,
  type LivenessFrame,
  type NodeLoad,
} from '../../../src/wire/index.js';
import { RUNS, describeHostileInput, expectBadFrame, u32 } from './support.js';

const urlArb = fc.stringMatching(/^[!-~]{0,40}$/);
const loadArb: fc.Arbitrary<NodeLoad> = fc.record({ requestsPerSec: u32, p99Micros: u32, httpUrl: urlArb });
const sectionsArb = fc
  .uniqueArray(fc.integer({ min: 2, max: 255 }), { maxLength: 3 })
  .chain((tags) => fc.tuple(...[...tags].sort((a, b) => a - b).map((tag) => fc.record({ tag: fc.constant(tag), body: fc.uint8Array({ maxLength: 12 }) }))));
const livenessArb: fc.Arbitrary<LivenessFrame> = fc.oneof(
  fc.record({ running: fc.array(fc.boolean(), { maxLength: 40 }) }),
  fc.record(
    { running: fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), load: loadArb, sections: sectionsArb.filter((s) => s.length > 0) },
    { requiredKeys: ['running'] },
  ),
);

describe('liveness codec', () => {
  test('property: decode(encode(f)) equals f, for 0 to 40 workers, with and without the load and later sections', () => {
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

  test('layout: the load is section 1 after the bitmap (tag u8, length u16, requests/s u32, p99 us u32, URL length u8, URL)', () => {
    const b = encodeLiveness({ running: [true], load: { requestsPerSec: 258, p99Micros: 1, httpUrl: 'h:1' } });
    expect([...b]).toEqual([1, 0, 1, 1, 12, 0, 2, 1, 0, 0, 1, 0, 0, 0, 3, 0x68, 0x3a, 0x31]);
    // A payload of the layout before sections still decodes: the same workers, no load.
    expect(decodeLiveness(b.subarray(0, 3))).toEqual({ running: [true] });
  });

  test('the leads section (tag 2, u32 little endian) round-trips; a body of another length reads as no count', () => {
    for (const count of [0, 1, 7, 2 ** 32 - 1]) {
      const f = decodeLiveness(encodeLiveness({ running: [true], sections: [leadsSection(count)] }));
      expect(leadsOf(f)).toBe(count);
    }
    expect(leadsSection(0x01020304).body).toEqual(Uint8Array.of(4, 3, 2, 1));
    expect(leadsOf(decodeLiveness(encodeLiveness({ running: [true] })))).toBeUndefined();
    expect(leadsOf({ running: [true], sections: [{ tag: LEADS_TAG, body: new Uint8Array(3) }] })).toBeUndefined();
    expect(() => leadsSection(-1)).toThrow(AssertionError);
  });

  test('the stopping section (tag 3, no body) round-trips after the leads section; a body makes it no stopping section', () => {
    const b = encodeLiveness({ running: [true], sections: [leadsSection(2), stoppingSection()] });
    expect([...b.subarray(b.length - 3)]).toEqual([STOPPING_TAG, 0, 0]);
    const f = decodeLiveness(b);
    expect(isStopping(f)).toBe(true);
    expect(leadsOf(f)).toBe(2);
    expect(isStopping(decodeLiveness(encodeLiveness({ running: [true], sections: [leadsSection(2)] })))).toBe(false);
    expect(isStopping({ running: [true], sections: [{ tag: STOPPING_TAG, body: Uint8Array.of(1) }] })).toBe(false);
  });

  test('sections of a later layout (unknown tags) are kept unread, so a newer peer still counts its workers', () => {
    const later = new Uint8Array([1, 0, 1, 7, 2, 0, 0xaa, 0xbb]);
    expect(decodeLiveness(later)).toEqual({ running: [true], sections: [{ tag: 7, body: new Uint8Array([0xaa, 0xbb]) }] });
    expect(encodeLiveness(decodeLiveness(later))).toEqual(later);
  });

  test('malformed payloads are refused: truncated, zero workers, a short bitmap, bits past the count', () => {
    for (const b of [[1], [0, 0], [0, 0, 0], [3, 0], [3, 0, 0b1000], [9, 0, 0xff, 0b10], [9, 0, 0xff]]) {
      expectBadFrame(() => decodeLiveness(new Uint8Array(b)));
    }
  });

  test('malformed sections are refused: truncated header or body, tag 0, tags out of order or repeated, a load of the wrong length, a URL with a space or control byte', () => {
    const load = [1, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for (const s of [
      [1],
      [1, 9],
      [1, 9, 0, 0],
      [0, 0, 0],
      [5, 0, 0, 3, 0, 0],
      [5, 0, 0, 5, 0, 0],
      [...load, ...load],
      [1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      [1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      [1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x20],
      [1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x0a],
      [1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80],
    ]) {
      expectBadFrame(() => decodeLiveness(new Uint8Array([1, 0, 1, ...s])));
    }
  });

  test('encoding what the layout cannot hold is a bug: AssertionError', () => {
    const load = { requestsPerSec: 1, p99Micros: 1, httpUrl: 'http://127.0.0.1:1' };
    expect(() => encodeLiveness({ running: new Array<boolean>(0x10000).fill(true) })).toThrow(AssertionError);
    expect(() => encodeLiveness({ running: [], load })).toThrow(AssertionError);
    expect(() => encodeLiveness({ running: [true], load: { ...load, requestsPerSec: 2 ** 32 } })).toThrow(AssertionError);
    expect(() => encodeLiveness({ running: [true], load: { ...load, p99Micros: -1 } })).toThrow(AssertionError);
    expect(() => encodeLiveness({ running: [true], load: { ...load, httpUrl: 'a b' } })).toThrow(AssertionError);
    expect(() => encodeLiveness({ running: [true], load: { ...load, httpUrl: 'x'.repeat(256) } })).toThrow(AssertionError);
    expect(() => encodeLiveness({ running: [true], sections: [{ tag: 1, body: new Uint8Array(0) }] })).toThrow(AssertionError);
    expect(() =>
      encodeLiveness({
        running: [true],
        sections: [
          { tag: 3, body: new Uint8Array(0) },
          { tag: 2, body: new Uint8Array(0) },
        ],
      }),
    ).toThrow(AssertionError);
  });
});

describeHostileInput('liveness', livenessArb, encodeLiveness, decodeLiveness);
