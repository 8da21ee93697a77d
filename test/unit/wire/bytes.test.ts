import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  AssertionError,
  ByteReader,
  ByteWriter,
  CodecError,
  UVARINT_BYTES_MAX,
  isU53,
  pooledBytes,
  pooledCopy,
  utf8Length,
  uvarintBytes,
} from '../../../src/wire/index.js';
import { MAX, RUNS, bytes, expectBadFrame, u32, u53 } from './support.js';

type Field =
  | { t: 'u8'; v: number }
  | { t: 'u16'; v: number }
  | { t: 'u32'; v: number }
  | { t: 'f64'; v: number }
  | { t: 'u53'; v: number }
  | { t: 'uvarint'; v: number }
  | { t: 'bytes'; v: Uint8Array };

const fieldArb: fc.Arbitrary<Field> = fc.oneof(
  fc.record({ t: fc.constant('u8' as const), v: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ t: fc.constant('u16' as const), v: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ t: fc.constant('u32' as const), v: u32 }),
  fc.record({ t: fc.constant('f64' as const), v: fc.double() }),
  fc.record({ t: fc.constant('u53' as const), v: u53 }),
  fc.record({ t: fc.constant('uvarint' as const), v: u53 }),
  fc.record({ t: fc.constant('bytes' as const), v: bytes }),
);

const size = (f: Field): number => (f.t === 'bytes' ? 4 + f.v.length : f.t === 'uvarint' ? uvarintBytes(f.v) : { u8: 1, u16: 2, u32: 4, f64: 8, u53: 8 }[f.t]);

function write(w: ByteWriter, f: Field): void {
  if (f.t === 'bytes') {
    w.u32(f.v.length);
    w.bytes(f.v);
  } else w[f.t](f.v);
}

function read(r: ByteReader, f: Field): unknown {
  return f.t === 'bytes' ? r.copy(r.u32()) : f.t === 'u53' ? r.f64() : r[f.t]();
}

describe('byte writer and reader', () => {
  test('property: what the writer writes, the reader reads back, little-endian, whether the size was right or had to grow', () => {
    fc.assert(
      fc.property(fc.array(fieldArb, { maxLength: 20 }), fc.boolean(), (fields, exact) => {
        const total = fields.reduce((n, f) => n + size(f), 0);
        const w = new ByteWriter(exact ? total : 1);
        for (const f of fields) write(w, f);
        const out = w.finish();
        expect(out.length).toBe(total);
        const r = new ByteReader(out);
        for (const f of fields) expect(read(r, f)).toEqual(f.t === 'u53' || f.t === 'uvarint' ? f.v + 0 : f.v);
        expect(r.done).toBe(true);
      }),
      RUNS,
    );
  });

  test('an exact size returns the buffer itself; the layout is little-endian', () => {
    const w = new ByteWriter(7);
    w.u8(1);
    w.u16(0x0302);
    w.u32(0x07060504);
    const out = w.finish();
    expect([...out]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(w.finish()).toBe(out);
    // A guess too large: the part written, no copy; too small: the buffer grew.
    const over = new ByteWriter(16);
    over.u32(0x04030201);
    const part = over.finish();
    expect([...part]).toEqual([1, 2, 3, 4]);
    expect(over.finish().byteOffset).toBe(part.byteOffset);
    const under = new ByteWriter(1);
    under.u32(0x04030201);
    expect([...under.finish()]).toEqual([1, 2, 3, 4]);
  });

  test('pooled bytes: zeroed, small ones from a shared slab without overlap, large ones on their own', () => {
    const pieces = Array.from({ length: 200 }, (_, i) => pooledBytes(1 + ((i * 37) % 3000)));
    for (const p of pieces) expect(p.every((b) => b === 0)).toBe(true);
    pieces.forEach((p, i) => p.fill(i + 1));
    pieces.forEach((p, i) => expect(p.every((b) => b === i + 1)).toBe(true));
    expect(new Set(pieces.map((p) => p.buffer)).size).toBeLessThan(pieces.length);
    for (const n of [4096, 4097]) {
      const small = pooledBytes(n);
      expect(small.length).toBe(n);
      expect(small.buffer.byteLength > n).toBe(n <= 4096);
    }
    const copy = pooledCopy(Uint8Array.of(9, 8, 7));
    expect([...copy]).toEqual([9, 8, 7]);
  });

  test('values that do not fit their field are bugs: AssertionError naming the field', () => {
    const w = new ByteWriter(16);
    expect(() => w.u8(256, 'flags')).toThrow(/flags must be a u8/);
    expect(() => w.u8(-1)).toThrow(AssertionError);
    expect(() => w.u16(0x10000)).toThrow(AssertionError);
    expect(() => w.u32(2 ** 32)).toThrow(AssertionError);
    expect(() => w.u32(1.5)).toThrow(AssertionError);
    for (const v of [-1, 0.5, Number.NaN, Infinity, MAX + 1]) expect(() => w.u53(v, 'term')).toThrow(/term must be a non-negative safe integer/);
    for (const v of [-1, 0.5, Number.NaN, Infinity, MAX + 1, 2 ** 60]) expect(() => w.uvarint(v, 'index')).toThrow(/index must be a non-negative safe integer/);
    expect(() => w.ascii('é', 'code')).toThrow(AssertionError);
    const empty = new ByteWriter(8);
    expect(() => empty.u32At(0, 1)).toThrow(AssertionError); // nothing written there yet
    expect(() => empty.u8At(0, 1)).toThrow(AssertionError);
  });

  test('u53 writes -0 as 0; isU53 refuses -0, so each value has one encoding', () => {
    const w = new ByteWriter(8);
    w.u53(-0);
    expect([...w.finish()]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(isU53(0)).toBe(true);
    expect(isU53(-0)).toBe(false);
    expect(isU53(MAX)).toBe(true);
    expect(isU53(MAX + 1)).toBe(false);
  });

  test('uvarint: LEB128, 7 bits a byte, low first; uvarintBytes says how many at every boundary', () => {
    const enc = (v: number): number[] => {
      const w = new ByteWriter(0);
      w.uvarint(v);
      const out = [...w.finish()];
      expect(out.length).toBe(uvarintBytes(v));
      expect(new ByteReader(new Uint8Array(out)).uvarint()).toBe(v + 0);
      return out;
    };
    expect(enc(0)).toEqual([0]);
    expect(enc(-0)).toEqual([0]);
    expect(enc(0x7f)).toEqual([0x7f]);
    expect(enc(0x80)).toEqual([0x80, 0x01]);
    expect(enc(300)).toEqual([0xac, 0x02]);
    expect(enc(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(enc(2 ** 32)).toEqual([0x80, 0x80, 0x80, 0x80, 0x10]);
    expect(enc(MAX)).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    for (let n = 1; n < UVARINT_BYTES_MAX; n++) {
      const first = 2 ** (7 * n); // the smallest value that needs one byte more
      expect(enc(first - 1).length).toBe(n);
      expect(enc(first).length).toBe(n + 1);
    }
    expect(uvarintBytes(MAX)).toBe(UVARINT_BYTES_MAX);
  });

  test('uvarint read refuses a missing, truncated, over-long, non-canonical or above 2^53 - 1 varint with CodecError naming the field', () => {
    const read = (b: number[]) => (): number => new ByteReader(new Uint8Array(b)).uvarint('term');
    expectBadFrame(read([]));
    expectBadFrame(read([0x80]));
    expectBadFrame(read([0xff, 0xff]));
    expectBadFrame(read([0x80, 0x00])); // 0 in two bytes
    expectBadFrame(read([0xff, 0x80, 0x00]));
    expectBadFrame(read([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])); // 9 bytes
    expectBadFrame(read([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])); // 2^53
    expectBadFrame(read([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])); // 2^56 - 1
    expect(read([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])()).toBe(2 ** 49);
    expect(read([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f])()).toBe(MAX);
    expect(read([0x80, 0x80, 0x00])).toThrow(/term/);
    // After a short read, it refuses too instead of reading on from where the short read stopped.
    const r = new ByteReader(new Uint8Array([1, 2, 3]));
    r.u32();
    expectBadFrame(() => r.uvarint());
    // A refused varint leaves the reader where it was.
    const again = new ByteReader(new Uint8Array([5, 0x80, 0x00]));
    expect(again.uvarint()).toBe(5);
    expectBadFrame(() => again.uvarint());
    expect(again.at).toBe(1);
  });

  test('property: uvarint decodes canonically or refuses; whatever decodes re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 10 }), (b) => {
        const r = new ByteReader(b);
        let v: number;
        try {
          v = r.uvarint();
        } catch (e) {
          expect(e).toBeInstanceOf(CodecError);
          return;
        }
        const w = new ByteWriter(0);
        w.uvarint(v);
        expect([...w.finish()]).toEqual([...b.subarray(0, r.at)]);
      }),
      { ...RUNS, numRuns: 5000 },
    );
  });

  test('u8At and u32At patch fields written earlier', () => {
    const w = new ByteWriter(6);
    w.u8(0);
    w.u8(0);
    w.u32(0);
    w.u8At(1, 9);
    w.u32At(2, 0x01020304);
    expect([...w.finish()]).toEqual([0, 9, 4, 3, 2, 1]);
  });

  test('property: utf8 writes what TextEncoder writes, utf8Length bytes (lone surrogates as U+FFFD)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.string({ unit: 'grapheme' }),
          fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) }),
        ),
        (s) => {
          const w = new ByteWriter(0);
          w.utf8(s);
          const out = w.finish();
          expect(out).toEqual(new TextEncoder().encode(s));
          expect(utf8Length(s)).toBe(out.length);
        },
      ),
      RUNS,
    );
  });

  test('a read past the end sets short for good and yields zeros and no bytes', () => {
    const r = new ByteReader(new Uint8Array([1, 2, 3]));
    expect(r.u16()).toBe(0x0201);
    expect(r.left).toBe(1);
    expect(r.u32()).toBe(0);
    expect(r.short).toBe(true);
    expect(r.u8()).toBe(0); // the byte that was there is not read after a short read
    expect(r.view(0).length).toBe(0);
    expect(r.copy(1).length).toBe(0);
    expect(r.latin1(1)).toBe('');
    expect(r.left).toBe(0);
    expect(r.done).toBe(false);
  });

  test('views are plain Uint8Arrays into the input, even a Buffer; copies own their memory', () => {
    const input = Buffer.from([0xaa, 1, 2, 3, 4]);
    const r = new ByteReader(input, 1);
    const view = r.view(2);
    const copy = r.copy(2);
    expect(Object.getPrototypeOf(view)).toBe(Uint8Array.prototype);
    expect(Object.getPrototypeOf(copy)).toBe(Uint8Array.prototype);
    input.fill(0);
    expect([...view]).toEqual([0, 0]);
    expect([...copy]).toEqual([3, 4]);
    expect(r.done).toBe(true);
  });

  test('latin1 keeps every byte visible', () => {
    expect(new ByteReader(new Uint8Array([0x41, 0xe9, 0x00])).latin1(3)).toBe('A\u00e9\u0000');
  });
});
