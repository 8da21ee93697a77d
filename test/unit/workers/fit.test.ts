/**
 * The size rule of fit.ts, at its boundaries: an App of the largest entry the derived
 * appendBytesMax admits encodes to at most one ring record even with every field at its widest
 * (and to within the bound's allowance for the entry count and data length of one); the raft core
 * splits batches of large and small entries into Apps that each fit; and a configuration whose
 * largest KV proposal could not fit is refused up front, with the limit that would fit named.
 */
import { describe, expect, test } from 'vitest';
import { ENTRY_OVERHEAD_BYTES, MessageType, Prng } from '../../../src/shards/raft/index.js';
import type { LogIndex, Message, NodeId, Term } from '../../../src/shards/raft/index.js';
import { UVARINT_U32_BYTES_MAX, encodeMessage, uvarintBytes } from '../../../src/wire/index.js';
import { KV_LIMITS_DEFAULT, kvCommandBytesMax } from '../../../src/shards/kv/index.js';
import { APPEND_OVERHEAD_BYTES, appendBytesMaxFor, appendMessageBytesMax, commandBytesMaxFor, resolveRecordFit } from '../../../src/workers/fit.js';
import type { RecordFit } from '../../../src/workers/fit.js';
import { maxPayloadBytes } from '../../../src/workers/ring.js';
import { Cluster } from '../shards/raft/harness.js';

const MAX = Number.MAX_SAFE_INTEGER;

/**
 * An App carrying entries with data of the given lengths, every field at its widest (ids of
 * 2^32 - 1, terms and indexes near 2^53 - 1): the largest encoding those entries can have.
 */
function widestApp(lengths: readonly number[]): Message {
  const index = MAX - lengths.length;
  return {
    type: MessageType.App,
    from: 0xffffffff as NodeId,
    to: 0xffffffff as NodeId,
    term: MAX as Term,
    logTerm: MAX as Term,
    index: index as LogIndex,
    entries: lengths.map((n, i) => ({ term: MAX as Term, index: (index + 1 + i) as LogIndex, type: 0, data: new Uint8Array(n) })),
    commit: MAX as LogIndex,
    reject: false,
    rejectHint: MAX as LogIndex,
    context: MAX,
  };
}

const fitOf = (o: Parameters<typeof resolveRecordFit>[0]): RecordFit => {
  const f = resolveRecordFit(o);
  if ('problem' in f) throw new Error(f.problem);
  return f;
};
const problemOf = (o: Parameters<typeof resolveRecordFit>[0]): string => {
  const f = resolveRecordFit(o);
  if (!('problem' in f)) throw new Error('expected a problem');
  return f.problem;
};

describe('the derived appendBytesMax', () => {
  test.each([1 << 10, 1 << 16, 4 << 20])(
    'ring of %i bytes: the largest entry it admits encodes to an App of at most one record, whatever its fields',
    (ringBytes) => {
      const record = maxPayloadBytes(ringBytes);
      const cap = appendBytesMaxFor(record);
      expect(appendMessageBytesMax(cap)).toBe(record);
      // The largest entry the host lets in: data + ENTRY_OVERHEAD_BYTES == appendBytesMax. With every
      // field at its widest, its App falls short of the record only by what the bound gives the entry
      // count (1 byte here, 5 counted) and the data length (fewer than 5 bytes below 2^28).
      const biggest = cap - ENTRY_OVERHEAD_BYTES;
      const slack = UVARINT_U32_BYTES_MAX - 1 + (UVARINT_U32_BYTES_MAX - uvarintBytes(biggest));
      expect(encodeMessage(widestApp([biggest])).length).toBe(record - slack);
      expect(slack).toBeLessThanOrEqual(7);
      // Batches within the cap have room to spare: the core over-counts each entry by at least 10 bytes.
      const n = 8;
      const each = Math.floor(cap / n) - ENTRY_OVERHEAD_BYTES;
      expect(encodeMessage(widestApp(Array.from({ length: n }, () => each))).length).toBeLessThanOrEqual(record - 10 * (n - 1));
      expect(APPEND_OVERHEAD_BYTES).toBe(55);
    },
  );

  test('the raft core cuts a batch of large and tiny entries into Apps that each fit one record (seeded)', () => {
    const record = maxPayloadBytes(1 << 16);
    const cap = appendBytesMaxFor(record);
    const biggest = cap - ENTRY_OVERHEAD_BYTES;
    for (const seed of [1, 2, 3]) {
      const c = new Cluster([1, 2, 3], { appendBytesMax: cap, checkQuorum: false, inflightBytesMax: 64 << 20 }, seed);
      c.elect(1);
      const prng = new Prng(seed);
      const sizes: number[] = [];
      for (let turn = 0; turn < 12; turn++) {
        // One shell turn's proposals ride the same Apps: a mix of lone maximal entries, halves
        // (two do not fit together) and runs of tiny ones (their per-entry cost adds up).
        for (let i = 0; i < 20; i++) {
          const pick = prng.int(0, 9);
          const n =
            pick < 2
              ? biggest
              : pick < 5
                ? prng.int(Math.floor(biggest / 2) - 100, Math.floor(biggest / 2) + 100)
                : pick < 8
                  ? prng.int(1, 64)
                  : prng.int(1, biggest);
          sizes.push(n);
          c.node(1).rn.propose(new Uint8Array(n).fill(97 + (sizes.length % 26)));
        }
        c.deliver();
      }
      const apps = c.sent.filter((m) => m.type === MessageType.App && m.entries.length > 0);
      const encoded = apps.map((m) => encodeMessage(m).length);
      for (const len of encoded) expect(len).toBeLessThanOrEqual(record);
      // Lone maximal entries went, each in an App of its own that fits.
      expect(apps.some((m) => m.entries.length === 1 && m.entries[0]!.data.length === biggest)).toBe(true);
      // With the cluster's small fields, the bound's allowance for wide ones is left over.
      expect(Math.max(...encoded)).toBeGreaterThan(record - APPEND_OVERHEAD_BYTES - ENTRY_OVERHEAD_BYTES);
      expect(apps.some((m) => m.entries.length > 1)).toBe(true); // small ones are batched
      for (const id of [2, 3])
        expect(
          c
            .node(id)
            .applied.filter((e) => e.data.length > 0)
            .map((e) => e.data.length),
        ).toEqual(sizes);
    }
  });
});

describe('resolveRecordFit', () => {
  test('the default 4 MiB ring carries the default KV limits (1 MiB values) with room to spare', () => {
    const f = fitOf({ ringBytes: 4 << 20, kvLimits: KV_LIMITS_DEFAULT });
    expect(f.recordBytesMax).toBe((2 << 20) - 16);
    expect(f.appendBytesMax).toBe(f.recordBytesMax - 55);
    expect(f.commandBytesMax).toBeGreaterThan(kvCommandBytesMax(KV_LIMITS_DEFAULT));
  });

  test('the largest valueBytesMax a ring fits is accepted; one byte more is refused, naming the one that fits', () => {
    for (const ringBytes of [1 << 12, 1 << 16, 2 << 20]) {
      const record = maxPayloadBytes(ringBytes);
      const command = commandBytesMaxFor(record, appendBytesMaxFor(record));
      const keyBytesMax = 64;
      const valueBytesMax = command - kvCommandBytesMax({ keyBytesMax, valueBytesMax: 0 });
      expect(kvCommandBytesMax({ keyBytesMax, valueBytesMax })).toBe(command);
      expect(fitOf({ ringBytes, kvLimits: { keyBytesMax, valueBytesMax } }).commandBytesMax).toBe(command);
      const p = problemOf({ ringBytes, kvLimits: { keyBytesMax, valueBytesMax: valueBytesMax + 1 } });
      expect(p).toContain(`kvLimits.valueBytesMax ${valueBytesMax + 1}`);
      expect(p).toContain(`lower valueBytesMax to ${valueBytesMax}`);
    }
  });

  test('a 2 MiB ring cannot carry 1 MiB values; an appendBytesMax above the derived one, or records above the transport limit, are refused', () => {
    expect(problemOf({ ringBytes: 2 << 20, kvLimits: KV_LIMITS_DEFAULT })).toMatch(/kvLimits.valueBytesMax 1048576 .* lower valueBytesMax to \d+/);
    const record = maxPayloadBytes(4 << 20);
    expect(problemOf({ ringBytes: 4 << 20, appendBytesMax: appendBytesMaxFor(record) + 1 })).toContain('raft.appendBytesMax must be an integer in 1..');
    expect(fitOf({ ringBytes: 4 << 20, appendBytesMax: 1 << 20, kvLimits: { keyBytesMax: 1024, valueBytesMax: 512 << 10 } }).appendBytesMax).toBe(1 << 20);
    expect(problemOf({ ringBytes: 4 << 20, peerRecordBytesMax: record - 1 })).toContain("does not fit the transport's maxRecordBytes");
    expect(fitOf({ ringBytes: 4 << 20, peerRecordBytesMax: record }).recordBytesMax).toBe(record);
  });
});
