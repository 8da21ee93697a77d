import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  AssertionError,
  ReadConsistency,
  decodePropose,
  decodeRead,
  decodeReply,
  encodePropose,
  encodeRead,
  encodeReply,
  type ProposeFrame,
  type ReadFrame,
  type ReplyFrame,
} from '../../../src/wire/index.js';
import { MAX, RUNS, bytes, describeHostileInput, expectBadFrame, inSharedMemory, patched, u32, u53 } from './support.js';

// ------------------------------------------------------------------ arbitraries

const proposeArb: fc.Arbitrary<ProposeFrame> = fc.record({ reqId: u53, clientId: u53, seq: u53, command: bytes });
const readArb: fc.Arbitrary<ReadFrame> = fc.record({
  reqId: u53,
  consistency: fc.constantFrom(ReadConsistency.Linearizable, ReadConsistency.Lease, ReadConsistency.Stale),
  query: bytes,
});
const replyArb: fc.Arbitrary<ReplyFrame> = fc.oneof(
  fc.record({ reqId: u53, ok: fc.constant(true as const), body: bytes }),
  fc.record({
    reqId: u53,
    ok: fc.constant(false as const),
    code: fc.string({ unit: 'binary-ascii', maxLength: 255 }),
    // Well-formed strings only: a lone surrogate is sent as U+FFFD (tested separately).
    message: fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })),
    leaderHint: u32,
  }),
);

// ------------------------------------------------------------------ client frames

describe('client frame codecs', () => {
  test('property: propose, read and reply frames round-trip', () => {
    fc.assert(
      fc.property(proposeArb, readArb, replyArb, (p, r, y) => {
        expect(decodePropose(encodePropose(p))).toEqual(p);
        expect(decodeRead(encodeRead(r))).toEqual(r);
        expect(decodeReply(encodeReply(y))).toEqual(y);
      }),
      RUNS,
    );
  });

  test('property: frames decode from views into shared memory, and byte fields are copies', () => {
    fc.assert(
      fc.property(proposeArb, readArb, replyArb, (p, r, y) => {
        const sp = inSharedMemory(encodePropose(p));
        const sr = inSharedMemory(encodeRead(r));
        const sy = inSharedMemory(encodeReply(y));
        const [dp, dr, dy] = [decodePropose(sp.view), decodeRead(sr.view), decodeReply(sy.view)];
        for (const s of [sp, sr, sy]) s.memory.fill(0x5a);
        expect(dp).toEqual(p);
        expect(dr).toEqual(r);
        expect(dy).toEqual(y);
      }),
      RUNS,
    );
  });

  test('layouts are as documented', () => {
    const p = new DataView(encodePropose({ reqId: 1, clientId: 2, seq: 3, command: new Uint8Array([0xc0]) }).buffer);
    expect([p.getFloat64(0, true), p.getFloat64(8, true), p.getFloat64(16, true), p.getUint8(24), p.byteLength]).toEqual([1, 2, 3, 0xc0, 25]);
    const r = encodeRead({ reqId: 4, consistency: ReadConsistency.Stale, query: new Uint8Array([7]) });
    expect([...r]).toEqual([...new Uint8Array(new Float64Array([4]).buffer), 2, 7]);
    const e = encodeReply({ reqId: 5, ok: false, code: 'NotLeader', message: 'é', leaderHint: 3 });
    const ev = new DataView(e.buffer);
    expect([ev.getFloat64(0, true), e[8], e[9]]).toEqual([5, 1, 9]);
    expect(new TextDecoder().decode(e.subarray(10, 19))).toBe('NotLeader');
    expect(ev.getUint32(19, true)).toBe(3);
    expect([...e.subarray(23)]).toEqual([0xc3, 0xa9]);
    const ok = encodeReply({ reqId: 6, ok: true, body: new Uint8Array([1, 2]) });
    expect([...ok.subarray(8)]).toEqual([0, 1, 2]);
  });

  test('a leading BOM in an error message survives; a lone surrogate is sent as U+FFFD', () => {
    const bom = { reqId: 1, ok: false, code: 'X', message: '\uFEFFhi', leaderHint: 0 } as const;
    expect(decodeReply(encodeReply(bom))).toEqual(bom);
    const lone = decodeReply(encodeReply({ reqId: 1, ok: false, code: 'X', message: 'a\uD800b\uDC00', leaderHint: 0 }));
    expect(lone.ok === false && lone.message).toBe('a\uFFFDb\uFFFD');
  });

  test('invalid fields are refused on decode', () => {
    const p = encodePropose({ reqId: 1, clientId: 2, seq: 3, command: new Uint8Array([1]) });
    for (const at of [0, 8, 16]) {
      for (const x of [-1, 0.5, Number.NaN, MAX + 1, -0]) expectBadFrame(() => decodePropose(patched(p, (v) => v.setFloat64(at, x, true))));
    }
    expectBadFrame(() => decodePropose(p.subarray(0, 23)));

    const r = encodeRead({ reqId: 1, consistency: ReadConsistency.Lease, query: new Uint8Array() });
    for (const c of [3, 255]) expectBadFrame(() => decodeRead(patched(r, (v) => v.setUint8(8, c))));
    expectBadFrame(() => decodeRead(patched(r, (v) => v.setFloat64(0, -1, true))));
    expectBadFrame(() => decodeRead(r.subarray(0, 8)));

    const e = encodeReply({ reqId: 1, ok: false, code: 'AB', message: 'hello', leaderHint: 7 });
    for (const s of [2, 255]) expectBadFrame(() => decodeReply(patched(e, (v) => v.setUint8(8, s))));
    expectBadFrame(() => decodeReply(patched(e, (v) => v.setUint8(9, 200)))); // code longer than the frame
    expectBadFrame(() => decodeReply(patched(e, (v) => v.setUint8(10, 0xc3)))); // non-ASCII code
    expectBadFrame(() => decodeReply(e.subarray(0, 9 + 1 + 2 + 3))); // leaderHint cut
  });

  test('invalid UTF-8 in an error message is a CodecError', () => {
    const head = encodeReply({ reqId: 1, ok: false, code: 'E', message: '', leaderHint: 0 });
    const invalid = [[0xff], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0x80]];
    for (const tail of invalid) {
      const b = new Uint8Array(head.length + tail.length);
      b.set(head);
      b.set(tail, head.length);
      expectBadFrame(() => decodeReply(b));
    }
  });

  test('encoding invalid frames is a bug: AssertionError', () => {
    expect(() => encodePropose({ reqId: -1, clientId: 0, seq: 0, command: new Uint8Array() })).toThrow(AssertionError);
    expect(() => encodePropose({ reqId: 0, clientId: 0.5, seq: 0, command: new Uint8Array() })).toThrow(AssertionError);
    expect(() => encodeRead({ reqId: 0, consistency: 3 as ReadConsistency, query: new Uint8Array() })).toThrow(AssertionError);
    expect(() => encodeReply({ reqId: 0, ok: false, code: 'é', message: '', leaderHint: 0 })).toThrow(AssertionError);
    expect(() => encodeReply({ reqId: 0, ok: false, code: 'x'.repeat(256), message: '', leaderHint: 0 })).toThrow(AssertionError);
    expect(() => encodeReply({ reqId: 0, ok: false, code: 'x', message: '', leaderHint: 2 ** 32 })).toThrow(AssertionError);
  });
});

describeHostileInput('propose', proposeArb, encodePropose, decodePropose);
describeHostileInput('read', readArb, encodeRead, decodeRead);
describeHostileInput('reply', replyArb, encodeReply, decodeReply);
