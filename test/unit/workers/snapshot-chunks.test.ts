import { afterEach, describe, expect, it } from 'vitest';
import { packChunk, unpackChunk } from '../../../src/workers/chunk-task.js';
import {
  SnapshotChunker,
  SnapshotChunkError,
  chunkBytesMax,
  chunkBytesMin,
  crc32,
  type SnapshotChunk,
  type SnapshotChunkErrorCode,
  type SnapshotChunkerOptions,
} from '../../../src/workers/snapshot-chunks.js';

// Pool threads cannot load .ts on Node 20: a bootstrap registers tsx and forwards to the task module.
const taskUrl = new URL('../../support/piscina-task.mjs', import.meta.url);
const entry = new URL('../../../src/workers/chunk-task.ts', import.meta.url).href;

const open: SnapshotChunker[] = [];
function chunker(opts: SnapshotChunkerOptions = {}): SnapshotChunker {
  const c = new SnapshotChunker({ taskUrl, workerData: { entry }, chunkBytes: chunkBytesMin, ...opts });
  open.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.destroy()));
});

/** xorshift32: the same bytes on every run, so a failure replays. */
function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Text-like bytes from a small alphabet with long repeats: deflates to a small fraction. */
function compressibleBytes(length: number, seed: number): Uint8Array {
  const words = ['shard ', 'term ', 'index ', 'leader ', 'commit ', 'apply ', '\n'].map((w) => new TextEncoder().encode(w));
  const noise = randomBytes(length, seed);
  const out = new Uint8Array(length);
  for (let i = 0, n = 0; i < length; n++) {
    const word = words[noise[n % length]! % words.length]!;
    const take = Math.min(word.length, length - i);
    out.set(word.subarray(0, take), i);
    i += take;
  }
  return out;
}

/** Byte equality without vitest's element-by-element diffing, which takes seconds on MBs. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

async function rejectionCode(promise: Promise<unknown>): Promise<SnapshotChunkErrorCode> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SnapshotChunkError);
    return (error as SnapshotChunkError).code;
  }
  throw new Error('expected a rejection');
}

function flipBit(chunks: readonly SnapshotChunk[], index: number, byte: number, bit: number): SnapshotChunk[] {
  return chunks.map((c) => {
    if (c.index !== index) return c;
    const compressed = c.compressed.slice();
    compressed[byte] = compressed[byte]! ^ (1 << bit);
    return { ...c, compressed };
  });
}

describe('SnapshotChunker round trip', () => {
  const size = chunkBytesMin;
  const cases: [string, number][] = [
    ['empty', 0],
    ['one byte', 1],
    ['one byte short of a chunk', size - 1],
    ['exactly one chunk', size],
    ['one byte into a second chunk', size + 1],
    ['many chunks with a short tail', 9 * size + 123],
  ];
  for (const [name, length] of cases) {
    for (const [kind, make] of [
      ['random', randomBytes],
      ['compressible', compressibleBytes],
    ] as const) {
      it(`${name} (${length} bytes, ${kind}) comes back identical, chunked at chunkBytes`, async () => {
        const c = chunker({ threads: 2 });
        const data = make(length, 0x5eed + length);
        const chunks = await c.pack(data);

        expect(chunks).toHaveLength(Math.ceil(length / size));
        for (const [i, chunk] of chunks.entries()) {
          expect(chunk.index).toBe(i);
          expect(chunk.offset).toBe(i * size);
          expect(chunk.length).toBe(Math.min(size, length - i * size));
          expect(chunk.crc32).toBe(crc32(data.subarray(chunk.offset, chunk.offset + chunk.length)));
        }
        expect(sameBytes(await c.unpack(chunks, length), data)).toBe(true);
      });
    }
  }

  it('with the default 1 MiB chunks: 3.5 MiB in 4 chunks, compressible data shrinks', async () => {
    const c = new SnapshotChunker({ taskUrl, workerData: { entry }, threads: 2 });
    open.push(c);
    const data = compressibleBytes(3.5 * 1024 * 1024, 7);
    const chunks = await c.pack(data);
    expect(chunks.map((ch) => ch.length)).toEqual([1 << 20, 1 << 20, 1 << 20, 1 << 19]);
    const compressedBytes = chunks.reduce((sum, ch) => sum + ch.compressed.byteLength, 0);
    expect(compressedBytes).toBeLessThan(data.byteLength / 4);
    expect(sameBytes(await c.unpack(chunks, data.byteLength), data)).toBe(true);
  });

  it('leaves the caller bytes attached and unchanged, also for a view into a larger Buffer', async () => {
    const c = chunker();
    const backing = Buffer.from(randomBytes(5 * chunkBytesMin, 11));
    const before = Buffer.from(backing);
    const view = backing.subarray(100, 100 + 3 * chunkBytesMin + 7);
    const chunks = await c.pack(view);
    expect(backing.byteLength).toBe(before.byteLength);
    expect(backing.equals(before)).toBe(true);

    const compressedBefore = chunks.map((ch) => Buffer.from(ch.compressed));
    expect(sameBytes(await c.unpack(chunks, view.byteLength), view)).toBe(true);
    expect(chunks.every((ch, i) => sameBytes(ch.compressed, compressedBefore[i]!))).toBe(true);
  });

  it('runs overlapping calls independently', async () => {
    const c = chunker({ threads: 2 });
    const inputs = [1, 2, 3, 4].map((seed) => randomBytes(seed * 3 * chunkBytesMin + seed, seed));
    const packed = await Promise.all(inputs.map((d) => c.pack(d)));
    const outputs = await Promise.all(packed.map((chunks, i) => c.unpack(chunks, inputs[i]!.byteLength)));
    expect(outputs.every((out, i) => sameBytes(out, inputs[i]!))).toBe(true);
  });
});

describe('SnapshotChunker rejects damaged chunks', () => {
  it('a flipped bit in incompressible (stored) data is a ChecksumMismatch', async () => {
    const c = chunker();
    const data = randomBytes(3 * chunkBytesMin, 21);
    const chunks = await c.pack(data);
    const middle = chunks[1]!.compressed.byteLength >> 1;
    expect(await rejectionCode(c.unpack(flipBit(chunks, 1, middle, 3), data.byteLength))).toBe('ChecksumMismatch');
  });

  it('no single flipped bit of a compressed chunk yields different bytes: it is rejected or inflates identically', async () => {
    const c = chunker({ threads: 2 });
    const data = compressibleBytes(chunkBytesMin, 31);
    const chunks = await c.pack(data);
    const compressedBytes = chunks[0]!.compressed.byteLength;
    const outcomes = new Map<string, number>();
    for (let byte = 0; byte < compressedBytes; byte++) {
      const trials = Array.from({ length: 8 }, async (_, bit) => {
        try {
          const out = await c.unpack(flipBit(chunks, 0, byte, bit), data.byteLength);
          // Accepted only if the output is intact: a padding bit after the final block, or a match
          // distance moved to another copy of the same text in this repetitive input.
          expect(sameBytes(out, data)).toBe(true);
          return 'identical';
        } catch (error) {
          if (!(error instanceof SnapshotChunkError)) throw error;
          return error.code;
        }
      });
      for (const outcome of await Promise.all(trials)) outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect([...outcomes.keys()].every((k) => ['identical', 'ChecksumMismatch', 'CorruptChunk', 'LengthMismatch'].includes(k))).toBe(true);
    expect(outcomes.get('identical') ?? 0).toBeLessThan(compressedBytes * 8 * 0.05);
  });

  it('a wrong crc32 is a ChecksumMismatch, naming the chunk', async () => {
    const c = chunker();
    const data = randomBytes(2 * chunkBytesMin, 41);
    const chunks = await c.pack(data);
    const bad = chunks.map((ch) => (ch.index === 1 ? { ...ch, crc32: (ch.crc32 ^ 1) >>> 0 } : ch));
    await expect(c.unpack(bad, data.byteLength)).rejects.toThrow(/^chunk 1: ChecksumMismatch/);
    expect(await rejectionCode(c.unpack(bad, data.byteLength))).toBe('ChecksumMismatch');
    const notUint32 = chunks.map((ch) => (ch.index === 0 ? { ...ch, crc32: -1 } : ch));
    expect(await rejectionCode(c.unpack(notUint32, data.byteLength))).toBe('ChecksumMismatch');
  });

  it('a chunk whose stream inflates to more or fewer bytes than its length is a LengthMismatch', async () => {
    const c = chunker();
    const data = compressibleBytes(2 * chunkBytesMin, 51);
    const chunks = await c.pack(data);
    const longer = chunks.map((ch) => (ch.index === 1 ? { ...ch, length: ch.length + 1 } : ch));
    expect(await rejectionCode(c.unpack(longer, data.byteLength + 1))).toBe('LengthMismatch');
    const shorter = chunks.map((ch) => (ch.index === 1 ? { ...ch, length: ch.length - 1 } : ch));
    expect(await rejectionCode(c.unpack(shorter, data.byteLength - 1))).toBe('LengthMismatch');
  });

  it('a truncated stream or one that is not a chunk at all is a CorruptChunk', async () => {
    const c = chunker();
    const data = compressibleBytes(chunkBytesMin, 61);
    const [chunk] = await c.pack(data);
    const truncated = { ...chunk!, compressed: chunk!.compressed.subarray(0, chunk!.compressed.byteLength - 2) };
    expect(await rejectionCode(c.unpack([truncated], data.byteLength))).toBe('CorruptChunk');
    const garbage = { ...chunk!, compressed: new Uint8Array([0xff, 0xff, 0xff, 0xff]) };
    expect(await rejectionCode(c.unpack([garbage], data.byteLength))).toBe('CorruptChunk');
    const missing = { ...chunk!, compressed: undefined as unknown as Uint8Array };
    expect(await rejectionCode(c.unpack([missing], data.byteLength))).toBe('CorruptChunk');
  });
});

describe('SnapshotChunker checks chunk order and coverage before inflating', () => {
  async function fiveChunks(c: SnapshotChunker): Promise<{ data: Uint8Array; chunks: SnapshotChunk[] }> {
    const data = randomBytes(4 * chunkBytesMin + 99, 71);
    return { data, chunks: await c.pack(data) };
  }

  it('a missing chunk, in the middle or at the end, is ChunkOrder', async () => {
    const c = chunker();
    const { data, chunks } = await fiveChunks(c);
    expect(await rejectionCode(c.unpack([...chunks.slice(0, 2), ...chunks.slice(3)], data.byteLength))).toBe('ChunkOrder');
    expect(await rejectionCode(c.unpack(chunks.slice(0, 4), data.byteLength))).toBe('ChunkOrder');
    expect(await rejectionCode(c.unpack([], data.byteLength))).toBe('ChunkOrder');
  });

  it('reordered or duplicated chunks are ChunkOrder', async () => {
    const c = chunker();
    const { data, chunks } = await fiveChunks(c);
    const swapped = [chunks[0]!, chunks[2]!, chunks[1]!, chunks[3]!, chunks[4]!];
    expect(await rejectionCode(c.unpack(swapped, data.byteLength))).toBe('ChunkOrder');
    const duplicated = [chunks[0]!, chunks[1]!, chunks[1]!, chunks[2]!, chunks[3]!, chunks[4]!];
    expect(await rejectionCode(c.unpack(duplicated, data.byteLength))).toBe('ChunkOrder');
  });

  it('offsets, lengths or a totalLength that do not add up are ChunkOrder', async () => {
    const c = chunker();
    const { data, chunks } = await fiveChunks(c);
    const shifted = chunks.map((ch) => (ch.index === 2 ? { ...ch, offset: ch.offset + 1 } : ch));
    expect(await rejectionCode(c.unpack(shifted, data.byteLength))).toBe('ChunkOrder');
    const empty = chunks.map((ch) => (ch.index === 4 ? { ...ch, length: 0 } : ch));
    expect(await rejectionCode(c.unpack(empty, data.byteLength))).toBe('ChunkOrder');
    expect(await rejectionCode(c.unpack(chunks, data.byteLength + 1))).toBe('ChunkOrder');
    expect(await rejectionCode(c.unpack(chunks, data.byteLength - 1))).toBe('ChunkOrder');
    expect(await rejectionCode(c.unpack(chunks, -1))).toBe('ChunkOrder');
    expect(await rejectionCode(c.unpack(chunks, 1.5))).toBe('ChunkOrder');
  });

  it('an empty snapshot is zero chunks', async () => {
    const c = chunker();
    expect(await c.pack(new Uint8Array(0))).toEqual([]);
    expect(await c.unpack([], 0)).toEqual(new Uint8Array(0));
  });
});

describe('SnapshotChunker config and lifecycle', () => {
  it('rejects out-of-range options with InvalidConfig before starting a thread', () => {
    const bad: SnapshotChunkerOptions[] = [
      { chunkBytes: chunkBytesMin - 1 },
      { chunkBytes: chunkBytesMax + 1 },
      { chunkBytes: chunkBytesMin + 0.5 },
      { chunkBytes: Number.NaN },
      { threads: 0 },
      { threads: 1.5 },
      { threads: 65 },
      { level: 10 },
      { level: -2 },
      { taskUrl: new URL('https://example.com/chunk-task.js') },
    ];
    for (const opts of bad) {
      let error: unknown;
      try {
        new SnapshotChunker(opts);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(opts)).toBeInstanceOf(SnapshotChunkError);
      expect((error as SnapshotChunkError).code).toBe('InvalidConfig');
    }
    expect(() => chunker({ chunkBytes: chunkBytesMin, level: 0 })).not.toThrow();
    expect(() => chunker({ chunkBytes: chunkBytesMax, level: 9 })).not.toThrow();
  });

  it('close() lets a running pack finish, then leaves no threads and refuses new calls', async () => {
    const c = chunker({ threads: 2 });
    const data = randomBytes(40 * chunkBytesMin, 81);
    const running = c.pack(data);
    expect(c.threadsAlive).toBe(2);
    const closed = c.close();
    expect(await rejectionCode(c.pack(data))).toBe('ChunkerClosed');
    const chunks = await running;
    expect(chunks).toHaveLength(40);
    await closed;
    expect(c.threadsAlive).toBe(0);
    expect(await rejectionCode(c.unpack(chunks, data.byteLength))).toBe('ChunkerClosed');
    await c.close();
    await c.destroy();
  });

  it('destroy() aborts a running pack with ChunkerClosed and leaves no threads', async () => {
    const c = chunker({ threads: 1 });
    const running = c.pack(compressibleBytes(200 * chunkBytesMin, 91));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await c.destroy();
    expect(c.threadsAlive).toBe(0);
    expect(await rejectionCode(running)).toBe('ChunkerClosed');
    await c.close();
  });
});

describe('chunk task functions on the calling thread', () => {
  it('pack then unpack is the identity, and failures carry their code as the message prefix', () => {
    const data = compressibleBytes(10_000, 101);
    const packed = packChunk(data, 1);
    expect(packed.length).toBe(data.byteLength);
    expect(packed.crc32).toBe(crc32(data));
    expect(sameBytes(unpackChunk(packed.compressed, packed.crc32, packed.length), data)).toBe(true);
    expect(() => unpackChunk(packed.compressed, (packed.crc32 + 1) >>> 0, packed.length)).toThrow(/^ChecksumMismatch: /);
    expect(() => unpackChunk(packed.compressed, packed.crc32, packed.length + 1)).toThrow(/^LengthMismatch: /);
    expect(() => unpackChunk(packed.compressed.subarray(0, 5), packed.crc32, packed.length)).toThrow(/^CorruptChunk: /);
  });

  it('caps inflated output at the expected length, so a small stream cannot balloon', () => {
    const bomb = packChunk(new Uint8Array(8 * 1024 * 1024));
    expect(bomb.compressed.byteLength).toBeLessThan(16 * 1024);
    expect(() => unpackChunk(bomb.compressed, bomb.crc32, 1000)).toThrow(/^LengthMismatch: .*more than/);
  });

  it('returns buffers it owns whole, so transferring them moves nothing else', () => {
    for (const length of [0, 1, 100, 10_000, 200_000]) {
      const { compressed } = packChunk(randomBytes(length, length + 1));
      expect(compressed.byteOffset).toBe(0);
      expect(compressed.byteLength).toBe(compressed.buffer.byteLength);
      const raw = unpackChunk(compressed, crc32(randomBytes(length, length + 1)), length);
      expect(raw.byteLength).toBe(raw.buffer.byteLength);
    }
  });

  it('crc32 is the standard CRC-32 and continues a running value', () => {
    const text = new TextEncoder().encode('123456789');
    expect(crc32(text)).toBe(0xcbf43926);
    expect(crc32(text.subarray(4), crc32(text.subarray(0, 4)))).toBe(0xcbf43926);
  });
});
