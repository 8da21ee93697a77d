import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  AssertionError,
  PROPOSE_FIXED_BYTES_MAX,
  READ_FIXED_BYTES_MAX,
  REPLY_FIXED_BYTES_MAX,
  ReadConsistency,
  clientFrameBoundBytes,
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

  test('layouts are as documented, byte by byte (integers as LEB128 varints)', () => {
    expect([...encodePropose({ reqId: 1, clientId: 2, seq: 3, command: new Uint8Array([0xc0]) })]).toEqual([1, 2, 3, 0xc0]);
    // 300 takes two bytes, 2^40 six.
    expect([...encodePropose({ reqId: 300, clientId: 2 ** 40, seq: 0, command: new Uint8Array() })]).toEqual([
      0xac, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0,
    ]);
    expect([...encodeRead({ reqId: 4, consistency: ReadConsistency.Stale, query: new Uint8Array([7]) })]).toEqual([4, 2, 7]);
    const e = encodeReply({ reqId: 5, ok: false, code: 'NotLeader', message: 'é', leaderHint: 3 });
    expect([...e.subarray(0, 3)]).toEqual([5, 1, 9]);
    expect(new TextDecoder().decode(e.subarray(3, 12))).toBe('NotLeader');
    expect([...e.subarray(12)]).toEqual([3, 0xc3, 0xa9]);
    expect([...encodeReply({ reqId: 6, ok: true, body: new Uint8Array([1, 2]) })]).toEqual([6, 0, 1, 2]);
  });

  test('typical frames take about half of the fixed layout (f64 ids); the fixed sizes are upper bounds; limits measure with the widest reqId', () => {
    // A forwarded write: a reqId of 100,000, a router's client id (a random multiple of 2^12 below 2^52), a sequence of 1,000.
    const clientId = 0xabcdef1234 * 2 ** 12;
    const p = encodePropose({ reqId: 100_000, clientId, seq: 1000, command: new Uint8Array() });
    const r = encodeRead({ reqId: 100_000, consistency: ReadConsistency.Linearizable, query: new Uint8Array() });
    const y = encodeReply({ reqId: 100_000, ok: true, body: new Uint8Array() });
    // [fixed layout, this layout]: 24 -> 13, 9 -> 4, 9 -> 4.
    expect([p.length, r.length, y.length]).toEqual([13, 4, 4]);
    const widest = { reqId: MAX, clientId: MAX, seq: MAX };
    expect(encodePropose({ ...widest, command: new Uint8Array() }).length).toBe(PROPOSE_FIXED_BYTES_MAX);
    expect(encodeRead({ reqId: MAX, consistency: 0, query: new Uint8Array() }).length).toBe(READ_FIXED_BYTES_MAX);
    expect(encodeReply({ reqId: MAX, ok: true, body: new Uint8Array() }).length).toBe(REPLY_FIXED_BYTES_MAX);
    // Whatever the reqId, a reply of n body bytes counts as REPLY_FIXED_BYTES_MAX + n against a limit.
    for (const reqId of [0, 1, 300, 100_000, MAX]) {
      const frame = encodeReply({ reqId, ok: true, body: new Uint8Array(10) });
      expect(clientFrameBoundBytes(frame, reqId)).toBe(REPLY_FIXED_BYTES_MAX + 10);
    }
  });

  test('a leading BOM in an error message survives; a lone surrogate is sent as U+FFFD', () => {
    const bom = { reqId: 1, ok: false, code: 'X', message: '\uFEFFhi', leaderHint: 0 } as const;
    expect(decodeReply(encodeReply(bom))).toEqual(bom);
    const lone = decodeReply(encodeReply({ reqId: 1, ok: false, code: 'X', message: 'a\uD800b\uDC00', leaderHint: 0 }));
    expect(lone.ok === false && lone.message).toBe('a\uFFFDb\uFFFD');
  });

  test('invalid fields are refused on decode', () => {
    // Not the one encoding of a safe integer: non-canonical, over-long, above 2^53 - 1; and cut short.
    const malformed = [[0x81, 0x00], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], [0x80]];
    for (const x of malformed) {
      expectBadFrame(() => decodePropose(new Uint8Array([...x])));
      expectBadFrame(() => decodePropose(new Uint8Array([1, ...x])));
      expectBadFrame(() => decodePropose(new Uint8Array([1, 2, ...x])));
      expectBadFrame(() => decodeRead(new Uint8Array([...x, 0])));
      expectBadFrame(() => decodeReply(new Uint8Array([...x, 0])));
      expectBadFrame(() => decodeReply(new Uint8Array([1, 1, 1, 0x41, ...x]))); // leaderHint
    }
    const p = encodePropose({ reqId: 1, clientId: 2, seq: 3, command: new Uint8Array([1]) });
    for (let n = 0; n < 3; n++) expectBadFrame(() => decodePropose(p.subarray(0, n)));

    const r = encodeRead({ reqId: 1, consistency: ReadConsistency.Lease, query: new Uint8Array() });
    for (const c of [3, 255]) expectBadFrame(() => decodeRead(patched(r, (v) => v.setUint8(1, c))));
    expectBadFrame(() => decodeRead(r.subarray(0, 1)));
    expectBadFrame(() => decodeRead(new Uint8Array()));

    const e = encodeReply({ reqId: 1, ok: false, code: 'AB', message: 'hello', leaderHint: 7 });
    expect([...e.subarray(0, 6)]).toEqual([1, 1, 2, 0x41, 0x42, 7]);
    for (const s of [2, 255]) expectBadFrame(() => decodeReply(patched(e, (v) => v.setUint8(1, s))));
    expectBadFrame(() => decodeReply(patched(e, (v) => v.setUint8(2, 200)))); // code longer than the frame
    expectBadFrame(() => decodeReply(patched(e, (v) => v.setUint8(3, 0xc3)))); // non-ASCII code
    expectBadFrame(() => decodeReply(e.subarray(0, 5))); // leaderHint cut
    expectBadFrame(() => decodeReply(e.subarray(0, 1))); // status cut
    expectBadFrame(() => decodeReply(new Uint8Array([...e.subarray(0, 5), 0x80, 0x80, 0x80, 0x80, 0x10]))); // leaderHint 2^32
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
