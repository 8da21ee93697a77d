import fc from 'fast-check';
import { describe, expect, expectTypeOf, test } from 'vitest';
import {
  AssertionError,
  MESSAGE_HEADER_BYTES,
  decodeMessage,
  encodeMessage,
  peekMessageFrom,
  peekMessageTo,
  peekMessageType,
  type WireMessage,
} from '../../../src/wire/index.js';
import { MessageType, emptyMessage, logIndex, nodeId, term, type Entry, type EntryType, type Message, type Snapshot } from '../../../src/shards/raft/types.js';
import { MAX, RUNS, SEED, bytes, describeHostileInput, expectBadFrame, inSharedMemory, patched, u32, u53 } from './support.js';

// ------------------------------------------------------------------ arbitraries

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

// ------------------------------------------------------------------ fixtures

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
      {
        ...withSnapshot,
        snapshot: { ...withSnapshot.snapshot!, metadata: { index: logIndex(1), term: term(1), confState: { voters: [nodeId(0.5)], learners: [] } } },
      },
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
  test("the raft core's Message is a WireMessage and a decoded WireMessage is a core Message: no casts where they meet", () => {
    expectTypeOf<Message>().toExtend<WireMessage>();
    expectTypeOf<WireMessage>().toExtend<Message>();
    expectTypeOf(decodeMessage).returns.toExtend<Message>();
  });
});

describeHostileInput('message', messageArb, encodeMessage, decodeMessage);
