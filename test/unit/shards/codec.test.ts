import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  CodecError,
  MESSAGE_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  ReadConsistency,
  RecordKind,
  decodeFrame,
  decodeLiveness,
  decodeMessage,
  decodePropose,
  decodeRead,
  decodeReply,
  encodeFrame,
  encodeLiveness,
  encodeMessage,
  encodePropose,
  encodeRead,
  encodeReply,
  isRecordKind,
  peekMessageFrom,
  peekMessageTo,
  peekMessageType,
  type FrameRecord,
  type LivenessFrame,
  type ProposeFrame,
  type ReadFrame,
  type ReplyFrame,
} from '../../../src/shards/codec.js';
import { AssertionError } from '../../../src/shards/raft/errors.js';
import {
  MessageType,
  emptyMessage,
  logIndex,
  nodeId,
  term,
  type Entry,
  type EntryType,
  type Message,
  type Snapshot,
} from '../../../src/shards/raft/types.js';
import { Ring } from '../../../src/workers/ring.js';

const SEED = 20261201;
const RUNS = { numRuns: 300, seed: SEED };
const MAX = Number.MAX_SAFE_INTEGER;

// ------------------------------------------------------------------ arbitraries

/** Non-negative safe integers, biased to the edges (0, 1, 2^53 - 1). */
const u53 = fc.oneof(fc.constantFrom(0, 1, MAX, MAX - 1), fc.nat(), fc.maxSafeNat());
const u32 = fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
const bytes = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 48 }));

const snapshotArb: fc.Arbitrary<Snapshot> = fc
  .record({ index: u53, term: u53, voters: fc.array(u32, { maxLength: 6 }), learners: fc.array(u32, { maxLength: 4 }), data: bytes })
  .map((s) => ({
    metadata: { index: logIndex(s.index), term: term(s.term), confState: { voters: s.voters.map(nodeId), learners: s.learners.map(nodeId) } },
    data: s.data,
  }));

const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: fc.integer({ min: 1, max: 12 }),
    from: u32,
    to: u32,
    term: u53,
    logTerm: u53,
    index: u53,
    commit: u53,
    reject: fc.boolean(),
    rejectHint: u53,
    context: u53,
    entries: fc.array(fc.record({ term: u53, type: fc.constantFrom(0, 1), data: bytes }), { maxLength: 6 }),
    snapshot: fc.option(snapshotArb, { nil: undefined }),
    quiesce: fc.boolean(),
    commitOnly: fc.boolean(),
    notMember: fc.boolean(),
  })
  .map((r) => {
    // Entry indexes follow message.index, so it must leave room for them below 2^53.
    const index = Math.min(r.index, MAX - r.entries.length);
    const entries: Entry[] = r.entries.map((e, i) => ({
      term: term(e.term),
      index: logIndex(index + 1 + i),
      type: e.type,
      data: e.data,
    }));
    const m: Message = {
      type: r.type as MessageType,
      from: nodeId(r.from),
      to: nodeId(r.to),
      term: term(r.term),
      logTerm: term(r.logTerm),
      index: logIndex(index),
      entries,
      commit: logIndex(r.commit),
      reject: r.reject,
      rejectHint: logIndex(r.rejectHint),
      context: r.context,
      ...(r.quiesce ? { quiesce: true } : {}),
      ...(r.commitOnly ? { commitOnly: true } : {}),
      ...(r.notMember ? { notMember: true } : {}),
    };
    return r.snapshot === undefined ? m : { ...m, snapshot: r.snapshot };
  });

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
const livenessArb: fc.Arbitrary<LivenessFrame> = fc.record({ running: fc.array(fc.boolean(), { maxLength: 40 }) });
const kindArb = fc.constantFrom(...Object.values(RecordKind));
const recordsArb: fc.Arbitrary<FrameRecord[]> = fc.array(fc.record({ kind: kindArb, shard: u32, payload: bytes }), { maxLength: 8 });

/** Every codec, as encode/decode of bytes, for the properties they all share. */
const MAX_RECORD = 1 << 16;
const codecs = [
  { name: 'message', arb: messageArb, encode: encodeMessage, decode: decodeMessage as (b: Uint8Array) => unknown },
  { name: 'propose', arb: proposeArb, encode: encodePropose, decode: decodePropose },
  { name: 'read', arb: readArb, encode: encodeRead, decode: decodeRead },
  { name: 'reply', arb: replyArb, encode: encodeReply, decode: decodeReply },
  { name: 'liveness', arb: livenessArb, encode: encodeLiveness, decode: decodeLiveness },
  { name: 'frame', arb: recordsArb, encode: encodeFrame, decode: (b: Uint8Array) => decodeFrame(b, MAX_RECORD) },
] as const;

// ------------------------------------------------------------------ helpers

function expectBadFrame(fn: () => unknown): void {
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
function inSharedMemory(b: Uint8Array): { view: Uint8Array; memory: Uint8Array } {
  const memory = new Uint8Array(new SharedArrayBuffer(b.length + 16)).fill(0xee);
  memory.set(b, 7);
  return { view: memory.subarray(7, 7 + b.length), memory };
}

const basic = (over: Partial<Message> = {}): Message => ({ ...emptyMessage(MessageType.App, nodeId(1), nodeId(2), term(3)), ...over });

const withEntries = basic({
  index: logIndex(10),
  logTerm: term(2),
  commit: logIndex(9),
  entries: [
    { term: term(3), index: logIndex(11), type: 0, data: new Uint8Array([1, 2, 3]) },
    { term: term(3), index: logIndex(12), type: 1, data: new Uint8Array([4]) },
  ],
});

const withSnapshot = basic({
  type: MessageType.Snap,
  snapshot: {
    metadata: { index: logIndex(100), term: term(5), confState: { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [nodeId(4)] } },
    data: new Uint8Array([9, 8, 7, 6]),
  },
});

/** Byte offset of the snapshot's voter count in `withSnapshot`'s encoding. */
const SNAP_VOTERS_AT = MESSAGE_HEADER_BYTES + 16;

function patched(b: Uint8Array, fn: (v: DataView) => void): Uint8Array {
  const copy = b.slice();
  fn(new DataView(copy.buffer));
  return copy;
}

// ------------------------------------------------------------------ raft messages

describe('raft message codec', () => {
  test('property: decode(encode(m)) equals m (types 1..12, entries incl. empty data, snapshots, integers up to 2^53 - 1)', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }),
      RUNS,
    );
  });

  test('property: peekMessageType / From / To read the same values as a full decode', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const b = encodeMessage(m);
        const d = decodeMessage(b);
        expect(peekMessageType(b)).toBe(d.type);
        expect(peekMessageFrom(b)).toBe(d.from);
        expect(peekMessageTo(b)).toBe(d.to);
        // The header alone suffices: the router never needs the body.
        expect(peekMessageTo(b.subarray(0, MESSAGE_HEADER_BYTES))).toBe(m.to);
      }),
      RUNS,
    );
  });

  test('the fixed header is at the documented offsets, little-endian', () => {
    const m = basic({ reject: true, logTerm: term(7), index: logIndex(8), commit: logIndex(9), rejectHint: logIndex(10), context: 11 });
    const v = new DataView(encodeMessage(m).buffer);
    expect([v.getUint8(0), v.getUint8(1), v.getUint16(2, true), v.getUint32(4, true), v.getUint32(8, true)]).toEqual([MessageType.App, 1, 0, 1, 2]);
    expect([12, 20, 28, 36, 44, 52].map((o) => v.getFloat64(o, true))).toEqual([3, 7, 8, 9, 10, 11]);
    expect(v.getUint32(60, true)).toBe(0);
    expect(v.byteLength).toBe(MESSAGE_HEADER_BYTES);
    expect(new DataView(encodeMessage(withSnapshot).buffer).getUint8(1)).toBe(2);
  });

  test('decoding a view at an offset into shared memory works, and entry / snapshot data are copies', () => {
    for (const m of [withEntries, withSnapshot]) {
      const { view, memory } = inSharedMemory(encodeMessage(m));
      expect(peekMessageTo(view)).toBe(m.to);
      const d = decodeMessage(view);
      memory.fill(0x55); // the ring's producer reuses the memory
      expect(d).toEqual(m);
      for (const e of d.entries) expect(e.data.buffer).not.toBe(memory.buffer);
    }
  });

  test('-0 is encoded as 0', () => {
    expect(decodeMessage(encodeMessage(basic({ commit: -0 as never }))).commit).toBe(0);
    expect(Object.is(decodeMessage(encodeMessage(basic({ commit: -0 as never }))).commit, 0)).toBe(true);
  });

  test('encoding an invalid message is a bug: AssertionError, not CodecError', () => {
    const bugs: Message[] = [
      basic({ type: MessageType.Hup }),
      basic({ type: 13 as MessageType }),
      basic({ term: term(-1) }),
      basic({ index: logIndex(1.5) }),
      basic({ commit: logIndex(MAX + 1) }),
      basic({ context: Number.NaN }),
      basic({ from: nodeId(2 ** 32) }),
      basic({ to: nodeId(-1) }),
      basic({ entries: [{ term: term(1), index: logIndex(5), type: 0, data: new Uint8Array() }] }), // should be index 1
      basic({ entries: [{ term: term(1), index: logIndex(1), type: 2 as EntryType, data: new Uint8Array() }] }),
      basic({ index: logIndex(MAX), entries: [{ term: term(1), index: logIndex(MAX + 1), type: 0, data: new Uint8Array() }] }),
      { ...withSnapshot, snapshot: { ...withSnapshot.snapshot!, metadata: { ...withSnapshot.snapshot!.metadata, term: term(-2) } } },
      { ...withSnapshot, snapshot: { ...withSnapshot.snapshot!, metadata: { index: logIndex(1), term: term(1), confState: { voters: [nodeId(0.5)], learners: [] } } } },
    ];
    for (const m of bugs) expect(() => encodeMessage(m), JSON.stringify(m)).toThrow(AssertionError);
  });

  test('trailing bytes are refused', () => {
    for (const m of [basic(), withEntries, withSnapshot]) {
      const b = encodeMessage(m);
      const longer = new Uint8Array(b.length + 1);
      longer.set(b);
      expectBadFrame(() => decodeMessage(longer));
    }
  });

  test('counts beyond the bytes present are refused without allocating for them', () => {
    const b = encodeMessage(withEntries);
    expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint32(60, 0xffffffff, true))));
    expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint32(60, 3, true))));
    expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint32(MESSAGE_HEADER_BYTES + 9, 0xffffffff, true)))); // entry data length
    const s = encodeMessage(withSnapshot);
    expectBadFrame(() => decodeMessage(patched(s, (v) => v.setUint32(SNAP_VOTERS_AT, 0xffffffff, true))));
    expectBadFrame(() => decodeMessage(patched(s, (v) => v.setUint32(SNAP_VOTERS_AT, 4, true))));
    expectBadFrame(() => decodeMessage(patched(s, (v) => v.setUint32(SNAP_VOTERS_AT + 16, 0xffffffff, true)))); // learners
    expectBadFrame(() => decodeMessage(patched(s, (v) => v.setUint32(s.length - 8, 0xffffffff, true)))); // data length
    // Snapshot flag without a snapshot, and a snapshot without the flag.
    expectBadFrame(() => decodeMessage(patched(encodeMessage(basic()), (v) => v.setUint8(1, 2))));
    expectBadFrame(() => decodeMessage(patched(s, (v) => v.setUint8(1, 0))));
  });

  test('f64 fields that are negative, -0, fractional, NaN, infinite or beyond 2^53 - 1 are refused', () => {
    const b = encodeMessage(withEntries);
    const badValues = [-1, -0, 0.5, 1.5, Number.NaN, Infinity, -Infinity, MAX + 1, 2 ** 60, -MAX];
    const offsets = [12, 20, 28, 36, 44, 52, MESSAGE_HEADER_BYTES]; // header fields and the first entry's term
    for (const at of offsets) {
      for (const x of badValues) expectBadFrame(() => decodeMessage(patched(b, (v) => v.setFloat64(at, x, true))));
    }
    const s = encodeMessage(withSnapshot);
    for (const at of [MESSAGE_HEADER_BYTES, MESSAGE_HEADER_BYTES + 8]) {
      for (const x of badValues) expectBadFrame(() => decodeMessage(patched(s, (v) => v.setFloat64(at, x, true))));
    }
  });

  test('entry indexes beyond 2^53 - 1 are refused', () => {
    const b = encodeMessage(basic({ index: logIndex(MAX - 1), entries: [{ term: term(1), index: logIndex(MAX), type: 0, data: new Uint8Array() }] }));
    expect(decodeMessage(b).entries[0]!.index).toBe(MAX);
    expectBadFrame(() => decodeMessage(patched(b, (v) => v.setFloat64(28, MAX, true))));
  });

  test('unknown types, flags, entry types and non-zero reserved bytes are refused; peeks need 64 bytes', () => {
    const b = encodeMessage(withEntries);
    for (const t of [0, 13, 255]) {
      expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint8(0, t))));
      expectBadFrame(() => peekMessageType(patched(b, (v) => v.setUint8(0, t))));
    }
    for (const f of [0x20, 0x40, 0x80, 0xff]) expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint8(1, f))));
    expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint16(2, 1, true))));
    expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint8(MESSAGE_HEADER_BYTES + 8, 2))));
    for (const peek of [peekMessageType, peekMessageFrom, peekMessageTo]) {
      expectBadFrame(() => peek(new Uint8Array(0)));
      expectBadFrame(() => peek(b.subarray(0, MESSAGE_HEADER_BYTES - 1)));
    }
  });

  test('property: every proper prefix of a valid message is refused with CodecError', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const b = encodeMessage(m);
        for (let n = 0; n < b.length; n++) expectBadFrame(() => decodeMessage(b.subarray(0, n)));
      }),
      { numRuns: 100, seed: SEED },
    );
  });
});

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

// ------------------------------------------------------------------ node liveness

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

// ------------------------------------------------------------------ wire frames

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
    expectBadFrame(() => decodeFrame(patched(one, (v) => v.setUint32(0, 0xfffffff0, true)), 2 ** 40)); // length beyond input
    expectBadFrame(() => decodeFrame(one, 4)); // beyond maxRecordBytes
    expect(decodeFrame(one, 5)).toHaveLength(1);
    for (const k of [0, 8, 0x100, 0xffff]) expectBadFrame(() => decodeFrame(patched(one, (v) => v.setUint16(4, k, true)), MAX_RECORD));
    expectBadFrame(() => decodeFrame(patched(one, (v) => v.setUint16(6, 1, true)), MAX_RECORD)); // pad field
    expectBadFrame(() => decodeFrame(patched(one, (v) => v.setUint8(one.length - 1, 1)), MAX_RECORD)); // padding bytes
  });

  test('encoding an unknown kind or a non-u32 shard is a bug: AssertionError', () => {
    expect(isRecordKind(RecordKind.Control)).toBe(true);
    expect(isRecordKind(0)).toBe(false);
    expect(() => encodeFrame([{ kind: 0, shard: 0, payload: new Uint8Array() }])).toThrow(AssertionError);
    expect(() => encodeFrame([{ kind: 1, shard: -1, payload: new Uint8Array() }])).toThrow(AssertionError);
    expect(() => decodeFrame(one, -1)).toThrow(AssertionError);
  });
});

// ------------------------------------------------------------------ hostile input, every codec

describe.each(codecs)('$name decoder on hostile input', ({ arb, encode, decode }) => {
  const enc = encode as (v: never) => Uint8Array;

  test('property: random bytes decode canonically or throw CodecError BadFrame, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160 }), (b) => decodesCanonicallyOrBadFrame(decode, enc, b)),
      { numRuns: 2000, seed: SEED },
    );
  });

  test('property: every truncation of a valid encoding decodes canonically or throws CodecError', () => {
    fc.assert(
      fc.property(arb as fc.Arbitrary<unknown>, (v) => {
        const b = enc(v as never);
        for (let n = 0; n < b.length; n++) decodesCanonicallyOrBadFrame(decode, enc, b.subarray(0, n));
      }),
      { numRuns: 100, seed: SEED },
    );
  });

  test('property: every single-byte corruption decodes canonically or throws CodecError', () => {
    fc.assert(
      fc.property(arb as fc.Arbitrary<unknown>, fc.integer({ min: 1, max: 255 }), (v, x) => {
        const b = enc(v as never);
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
