/** What the tests of every wire layout share: seeds, arbitraries, and the checks on hostile input. */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CodecError } from '../../../src/wire/index.js';

export const SEED = 20261201;
export const RUNS = { numRuns: 300, seed: SEED };
export const MAX = Number.MAX_SAFE_INTEGER;

/** Non-negative safe integers, biased to the edges (0, 1, 2^53 - 1). */
export const u53 = fc.oneof(fc.constantFrom(0, 1, MAX, MAX - 1), fc.nat(), fc.maxSafeNat());
export const u32 = fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
export const bytes = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 48 }));

export function expectBadFrame(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(CodecError);
  expect((thrown as CodecError).code).toBe('BadFrame');
  expect((thrown as CodecError).name).toBe('CodecError');
}

/**
 * Malformed input either decodes or throws CodecError, nothing else. When it decodes, re-encoding
 * gives back the same bytes: the encoding is canonical, so decode never returns garbage.
 */
function decodesCanonicallyOrBadFrame(decode: (b: Uint8Array) => unknown, encode: (v: never) => Uint8Array, b: Uint8Array): void {
  let value: unknown;
  try {
    value = decode(b);
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    expect(e.code).toBe('BadFrame');
    return;
  }
  expect(encode(value as never)).toEqual(b);
}

/** `b` copied into shared memory at an odd offset, surrounded by junk: what a ring view looks like. */
export function inSharedMemory(b: Uint8Array): { view: Uint8Array; memory: Uint8Array } {
  const memory = new Uint8Array(new SharedArrayBuffer(b.length + 16)).fill(0xee);
  memory.set(b, 7);
  return { view: memory.subarray(7, 7 + b.length), memory };
}

/** A copy of `b` changed by `fn`. */
export function patched(b: Uint8Array, fn: (v: DataView) => void): Uint8Array {
  const copy = b.slice();
  fn(new DataView(copy.buffer));
  return copy;
}

/** The properties every decoder shares on hostile input: random bytes, truncations, corruptions. */
export function describeHostileInput<T>(name: string, arb: fc.Arbitrary<T>, encode: (v: T) => Uint8Array, decode: (b: Uint8Array) => unknown): void {
  const enc = encode as (v: never) => Uint8Array;

  describe(`${name} decoder on hostile input`, () => {
    test('property: random bytes decode canonically or throw CodecError BadFrame, nothing else', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 160 }), (b) => decodesCanonicallyOrBadFrame(decode, enc, b)),
        { numRuns: 2000, seed: SEED },
      );
    });

    test('property: every truncation of a valid encoding decodes canonically or throws CodecError', () => {
      fc.assert(
        fc.property(arb, (v) => {
          const b = encode(v);
          for (let n = 0; n < b.length; n++) decodesCanonicallyOrBadFrame(decode, enc, b.subarray(0, n));
        }),
        { numRuns: 100, seed: SEED },
      );
    });

    test('property: every single-byte corruption decodes canonically or throws CodecError', () => {
      fc.assert(
        fc.property(arb, fc.integer({ min: 1, max: 255 }), (v, x) => {
          const b = encode(v);
          for (let i = 0; i < b.length; i++) {
            const c = b.slice();
            c[i]! ^= x;
            decodesCanonicallyOrBadFrame(decode, enc, c);
          }
        }),
        { numRuns: 100, seed: SEED },
      );
    });
  });
}
