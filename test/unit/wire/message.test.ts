import fc from 'fast-check';
import { describe, expect, expectTypeOf, test } from 'vitest';
import {
  AssertionError,
  ByteWriter,
  MESSAGE_ENTRY_FIXED_BYTES_MAX,
  MESSAGE_HEADER_BYTES_MAX,
  decodeMessage,
  encodeMessage,
  peekMessageFrom,
  peekMessageTo,
  peekMessageType,
  uvarintBytes,
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

/** `withEntries`, byte by byte: every varint here takes one byte. */
const WITH_ENTRIES_BYTES = [
  ...[MessageType.App, 0], // type, flags
  ...[1, 2], // from, to
  ...[3, 2, 10, 9, 0, 0], // term, logTerm, index, commit, rejectHint, context
  2, // entry count
  ...[3, 0, 3, 1, 2, 3], // entry 11: term, type, data length, data
  ...[3, 1, 1, 4], // entry 12
];
/** Offsets in `withEntries`' encoding. */
const AT = { from: 2, to: 3, term: 4, index: 6, count: 10, entryTerm: 11, entryType: 12, entryLength: 13 } as const;

const withSnapshot = basic({
  type: MessageType.Snap,
  snapshot: {
    metadata: { index: logIndex(100), term: term(5), confState: { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [nodeId(4)] } },
    data: new Uint8Array([9, 8, 7, 6]),
  },
});

/** `withSnapshot`, byte by byte. */
const WITH_SNAPSHOT_BYTES = [
  ...[MessageType.Snap, 2, 1, 2, 3, 0, 0, 0, 0, 0, 0], // header: snapshot flag, no entries
  ...[100, 5], // snapshot index, term
  ...[3, 1, 2, 3], // voters
  ...[1, 4], // learners
  ...[4, 9, 8, 7, 6], // data
];
/** Offsets in `withSnapshot`'s encoding. */
const SNAP_AT = { index: 11, voterCount: 13, learnerCount: 17, dataLength: 19 } as const;

/** `n` as a varint. */
function varint(n: number): number[] {
  const w = new ByteWriter(1);
  w.uvarint(n);
  return [...w.finish()];
}

/** A copy of `b` with the `remove` bytes at `at` replaced by `insert`. */
function spliced(b: Uint8Array, at: number, remove: number, insert: readonly number[]): Uint8Array {
  return new Uint8Array([...b.subarray(0, at), ...insert, ...b.subarray(at + remove)]);
}

/** Varints that are not the one encoding of a safe integer: non-canonical, over-long, above 2^53 - 1. */
const MALFORMED_VARINTS: readonly (readonly number[])[] = [
  [0x83, 0x00], // 3 with a needless last 0x00
  [0x80, 0x80, 0x00], // 0, padded
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // 9 bytes
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // 9 bytes
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], // 2^53
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // 2^56 - 1
];

/** Bytes of `m` in the fixed layout this one replaced: a 64-byte header, 13 bytes per entry besides its data. */
const fixedLayoutBytes = (m: Message): number => 64 + m.entries.reduce((n, e) => n + 13 + e.data.length, 0);

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

  test('property: peekMessageType / From / To read the same values as a full decode, from type, flags, from and to alone', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const b = encodeMessage(m);
        const d = decodeMessage(b);
        expect(peekMessageType(b)).toBe(d.type);
        expect(peekMessageFrom(b)).toBe(d.from);
        expect(peekMessageTo(b)).toBe(d.to);
        // The addressing prefix suffices: the router never needs the body; anything shorter is refused.
        const prefix = 2 + uvarintBytes(m.from) + uvarintBytes(m.to);
        expect(peekMessageType(b.subarray(0, prefix))).toBe(m.type);
        expect(peekMessageFrom(b.subarray(0, prefix))).toBe(m.from);
        expect(peekMessageTo(b.subarray(0, prefix))).toBe(m.to);
        for (let n = 0; n < prefix; n++) {
          for (const peek of [peekMessageType, peekMessageFrom, peekMessageTo]) expectBadFrame(() => peek(b.subarray(0, n)));
        }
      }),
      RUNS,
    );
  });

  test('property: a message never takes more than MESSAGE_HEADER_BYTES_MAX + its entries at MESSAGE_ENTRY_FIXED_BYTES_MAX each (what fit.ts sizes Apps with)', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const plain: Message = { ...m };
        delete (plain as { snapshot?: Snapshot }).snapshot;
        const bound = MESSAGE_HEADER_BYTES_MAX + plain.entries.reduce((n, e) => n + MESSAGE_ENTRY_FIXED_BYTES_MAX + e.data.length, 0);
        expect(encodeMessage(plain).length).toBeLessThanOrEqual(bound);
      }),
      RUNS,
    );
  });

  test('the bounds are what the widest fields take: ids of 2^32 - 1 (5 bytes), terms and indexes of 2^53 - 1 (8), counts and lengths as u32 (5)', () => {
    const widest = basic({
      from: nodeId(0xffffffff),
      to: nodeId(0xffffffff),
      term: term(MAX),
      logTerm: term(MAX),
      index: logIndex(MAX - 1),
      commit: logIndex(MAX),
      rejectHint: logIndex(MAX),
      context: MAX,
    });
    // No entries: the count takes 1 byte of the 5 the bound gives it.
    expect(encodeMessage(widest).length).toBe(MESSAGE_HEADER_BYTES_MAX - 4);
    expect(MESSAGE_HEADER_BYTES_MAX).toBe(65);
    const entry = { term: term(MAX), index: logIndex(MAX), type: 0 as const, data: new Uint8Array(300) };
    // 300 bytes of data: the length takes 2 bytes of the 5 the bound gives it.
    expect(encodeMessage({ ...widest, entries: [entry] }).length - encodeMessage(widest).length).toBe(MESSAGE_ENTRY_FIXED_BYTES_MAX - 3 + 300);
    expect(MESSAGE_ENTRY_FIXED_BYTES_MAX).toBe(14);
  });

  test('the layout of a small App and of a Snap, byte by byte', () => {
    expect([...encodeMessage(withEntries)]).toEqual(WITH_ENTRIES_BYTES);
    expect([...encodeMessage(withSnapshot)]).toEqual(WITH_SNAPSHOT_BYTES);
    // Flag bits: reject 1, snapshot 2, quiesce 4, commit only 8, not member 16.
    const flags = (m: Message): number => encodeMessage(m)[1]!;
    expect([basic({ reject: true }), basic({ quiesce: true }), basic({ commitOnly: true }), basic({ notMember: true })].map(flags)).toEqual([1, 4, 8, 16]);
  });

  test('varints are LEB128: 7 bits a byte, low bits first, the high bit on every byte but the last', () => {
    const m = basic({ from: nodeId(300), commit: logIndex(100_000), context: 2 ** 40 });
    // 300 = 0b10_0101100; 100,000 = 0b110_0001101_0100000; 2^40 = 1 << (5 * 7 + 5).
    expect([...encodeMessage(m)]).toEqual([MessageType.App, 0, 0xac, 0x02, 2, 3, 0, 0, 0xa0, 0x8d, 0x06, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0]);
  });

  test('typical messages take a quarter to a half of the fixed layout; an App of one 300-byte entry 58 bytes less', () => {
    const t = term(3);
    const heartbeat: Message = { ...emptyMessage(MessageType.Heartbeat, nodeId(1), nodeId(2), t), commit: logIndex(100_000), context: 2 ** 40 };
    const heartbeatResp: Message = { ...emptyMessage(MessageType.HeartbeatResp, nodeId(2), nodeId(1), t), context: 2 ** 40 };
    const commitOnly: Message = { ...basic({ logTerm: t, index: logIndex(100_000), commit: logIndex(100_000) }), commitOnly: true };
    const appResp: Message = { ...emptyMessage(MessageType.AppResp, nodeId(2), nodeId(1), t), index: logIndex(100_001), commit: logIndex(100_000) };
    const app300 = basic({
      logTerm: t,
      index: logIndex(100_000),
      commit: logIndex(100_000),
      entries: [{ term: t, index: logIndex(100_001), type: 0, data: new Uint8Array(300) }],
    });
    const sizes = [heartbeat, heartbeatResp, commitOnly, appResp, app300].map((m) => [fixedLayoutBytes(m), encodeMessage(m).length]);
    // [fixed layout, this layout]: 64 -> 18, 64 -> 16, 64 -> 15, 64 -> 15, 377 -> 319.
    expect(sizes).toEqual([
      [64, 18],
      [64, 16],
      [64, 15],
      [64, 15],
      [377, 319],
    ]);
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
      basic({ context: Infinity }),
      basic({ from: nodeId(2 ** 32) }),
      basic({ to: nodeId(-1) }),
      basic({ entries: [{ term: term(1), index: logIndex(5), type: 0, data: new Uint8Array() }] }), // should be index 1
      basic({ entries: [{ term: term(1), index: logIndex(1), type: 2 as EntryType, data: new Uint8Array() }] }),
      basic({ entries: [{ term: term(-1), index: logIndex(1), type: 0, data: new Uint8Array() }] }),
      basic({ index: logIndex(MAX), entries: [{ term: term(1), index: logIndex(MAX + 1), type: 0, data: new Uint8Array() }] }),
      { ...withSnapshot, snapshot: { ...withSnapshot.snapshot!, metadata: { ...withSnapshot.snapshot!.metadata, term: term(-2) } } },
      {
        ...withSnapshot,
        snapshot: { ...withSnapshot.snapshot!, metadata: { index: logIndex(1), term: term(1), confState: { voters: [nodeId(0.5)], learners: [] } } },
      },
      {
        ...withSnapshot,
        snapshot: { ...withSnapshot.snapshot!, metadata: { index: logIndex(1), term: term(1), confState: { voters: [], learners: [nodeId(2 ** 32)] } } },
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

  test('counts and lengths beyond the bytes present are refused without allocating for them', () => {
    const b = encodeMessage(withEntries);
    for (const count of [3, 4, 0x7f, 0xffffffff, MAX]) expectBadFrame(() => decodeMessage(spliced(b, AT.count, 1, varint(count))));
    for (const len of [4, 0x7f, 0xffffffff, MAX]) expectBadFrame(() => decodeMessage(spliced(b, AT.entryLength, 1, varint(len))));
    const s = encodeMessage(withSnapshot);
    for (const n of [4, 0x7f, 0xffffffff]) {
      expectBadFrame(() => decodeMessage(spliced(s, SNAP_AT.voterCount, 1, varint(n))));
      expectBadFrame(() => decodeMessage(spliced(s, SNAP_AT.learnerCount, 1, varint(n))));
    }
    for (const len of [3, 5, 0x7f, MAX]) expectBadFrame(() => decodeMessage(spliced(s, SNAP_AT.dataLength, 1, varint(len))));
    // Snapshot flag without a snapshot, and a snapshot without the flag.
    expectBadFrame(() => decodeMessage(patched(encodeMessage(basic()), (v) => v.setUint8(1, 2))));
    expectBadFrame(() => decodeMessage(patched(s, (v) => v.setUint8(1, 0))));
  });

  test('non-canonical, over-long and above 2^53 - 1 varints are refused wherever they stand; ids above 2^32 - 1 too', () => {
    const b = encodeMessage(withEntries);
    for (let at: number = AT.from; at <= AT.entryLength; at++) {
      if (at === AT.entryType) continue; // a u8
      for (const bad of MALFORMED_VARINTS) expectBadFrame(() => decodeMessage(spliced(b, at, 1, bad)));
    }
    const s = encodeMessage(withSnapshot);
    for (let at: number = SNAP_AT.index; at <= SNAP_AT.dataLength; at++) {
      for (const bad of MALFORMED_VARINTS) expectBadFrame(() => decodeMessage(spliced(s, at, 1, bad)));
    }
    // A varint cut by the end of the message.
    expectBadFrame(() => decodeMessage(new Uint8Array([...b.subarray(0, AT.term), 0x83])));
    for (const at of [AT.from, AT.to]) {
      const tooLarge = spliced(b, at, 1, varint(2 ** 32));
      expectBadFrame(() => decodeMessage(tooLarge));
      for (const peek of [peekMessageType, peekMessageFrom, peekMessageTo]) {
        expectBadFrame(() => peek(tooLarge));
        expectBadFrame(() => peek(spliced(b, at, 1, [0x81, 0x00])));
      }
    }
    // The widest id and safe integer are fine.
    const widest = spliced(spliced(b, AT.from, 1, varint(0xffffffff)), AT.term + 4, 1, varint(MAX));
    expect(decodeMessage(widest)).toMatchObject({ from: 0xffffffff, term: MAX });
    expect(peekMessageFrom(widest)).toBe(0xffffffff);
  });

  test('entry indexes beyond 2^53 - 1 are refused', () => {
    const b = encodeMessage(basic({ index: logIndex(MAX - 1), entries: [{ term: term(1), index: logIndex(MAX), type: 0, data: new Uint8Array() }] }));
    expect(decodeMessage(b).entries[0]!.index).toBe(MAX);
    expectBadFrame(() => decodeMessage(spliced(b, AT.index, varint(MAX - 1).length, varint(MAX))));
  });

  test('unknown types, flags and entry types are refused; peeks need type, flags, from and to', () => {
    const b = encodeMessage(withEntries);
    for (const t of [0, 13, 255]) {
      expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint8(0, t))));
      expectBadFrame(() => peekMessageType(patched(b, (v) => v.setUint8(0, t))));
    }
    for (const f of [0x20, 0x40, 0x80, 0xff]) expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint8(1, f))));
    for (const e of [2, 0x80, 0xff]) expectBadFrame(() => decodeMessage(patched(b, (v) => v.setUint8(AT.entryType, e))));
    for (const peek of [peekMessageType, peekMessageFrom, peekMessageTo]) {
      for (let n = 0; n < AT.term; n++) expectBadFrame(() => peek(b.subarray(0, n)));
    }
    expect([peekMessageType(b.subarray(0, AT.term)), peekMessageFrom(b.subarray(0, AT.term)), peekMessageTo(b.subarray(0, AT.term))]).toEqual([
      MessageType.App,
      1,
      2,
    ]);
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
