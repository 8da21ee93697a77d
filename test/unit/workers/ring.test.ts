import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { Ring, RingError, maxPayloadBytes } from '../../../src/workers/ring.js';
import { recordBytes } from './ring-records.js';

const bootstrap = new URL('../../support/ts-worker.mjs', import.meta.url);
const producer = new URL('./ring-producer.ts', import.meta.url).href;

/** Runs a real producer thread writing `sizes`; the main thread consumes and checks every record. */
async function roundTrip(capacity: number, sizes: number[]): Promise<{ full: number; maxUsed: number }> {
  const buffer = Ring.allocate(capacity);
  const ring = new Ring(buffer);
  const worker = new Worker(bootstrap, { workerData: { entry: producer, buffer, sizes } });
  const done = new Promise<{ full: number }>((resolve, reject) => {
    worker.once('message', (m: { full: number }) => resolve(m));
    worker.once('error', reject);
  });
  let maxUsed = 0;
  try {
    for (let i = 0; i < sizes.length; ) {
      maxUsed = Math.max(maxUsed, ring.usedBytes());
      const r = ring.read();
      if (r === undefined) {
        await ring.waitForData(1000);
        continue;
      }
      // Every record arrives once, in order, intact.
      expect(r.shard).toBe(i);
      expect(r.kind).toBe(i & 0xffff);
      expect(r.payload).toEqual(recordBytes(i, sizes[i]!));
      i++;
    }
    expect(ring.read()).toBeUndefined();
    const { full } = await done;
    return { full, maxUsed };
  } finally {
    await worker.terminate();
  }
}

describe('SPSC ring on SharedArrayBuffer', () => {
  test('property: random record sizes through a real producer thread arrive once, in order, intact', async () => {
    let sawFull = false;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(256, 1024, 4096),
        fc.array(fc.nat(), { minLength: 1, maxLength: 400 }),
        async (capacity, raw) => {
          const sizes = raw.map((n) => n % (maxPayloadBytes(capacity) + 1));
          const { full, maxUsed } = await roundTrip(capacity, sizes);
          expect(maxUsed).toBeLessThanOrEqual(capacity);
          if (full > 0) sawFull = true;
        },
      ),
      { numRuns: 25, seed: 20261125 },
    );
    // The runs must have exercised backpressure, not only an ever-empty ring.
    expect(sawFull).toBe(true);
  });

  test('wrap-around: records of every size cross the end many times', () => {
    const ring = new Ring(Ring.allocate(256));
    const max = maxPayloadBytes(256);
    let n = 0;
    for (let round = 0; round < 50; round++) {
      for (let size = 0; size <= max; size += 13) {
        expect(ring.tryWrite(1, n, recordBytes(n, size))).toBe(true);
        const r = ring.read();
        expect(r?.shard).toBe(n);
        expect(r?.payload).toEqual(recordBytes(n, size));
        n++;
      }
    }
    expect(ring.usedBytes()).toBe(0);
  });

  test('full ring says so, and empty ring reads nothing', () => {
    const ring = new Ring(Ring.allocate(128));
    expect(ring.read()).toBeUndefined();
    let written = 0;
    while (ring.tryWrite(0, written, new Uint8Array(20))) written++;
    expect(written).toBeGreaterThan(0);
    expect(ring.tryWrite(0, 99, new Uint8Array(20))).toBe(false);
    expect(ring.read()?.shard).toBe(0);
    expect(ring.tryWrite(0, written, new Uint8Array(20))).toBe(true);
  });

  test('a full ring makes write() give up after its timeout', async () => {
    const ring = new Ring(Ring.allocate(128));
    while (ring.tryWrite(0, 0, new Uint8Array(20)));
    expect(await ring.write(0, 1, new Uint8Array(20), 20)).toBe(false);
  });

  test('bad sizes and fields are refused with stable codes', () => {
    expect(() => Ring.allocate(100)).toThrow(RingError);
    expect(() => new Ring(new SharedArrayBuffer(64 + 100))).toThrow(RingError);
    const ring = new Ring(Ring.allocate(256));
    const err = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof RingError ? e.code : 'other';
      }
      return undefined;
    };
    expect(err(() => ring.tryWrite(0, 0, new Uint8Array(maxPayloadBytes(256) + 1)))).toBe('RecordTooLarge');
    expect(err(() => ring.tryWrite(70000, 0, new Uint8Array(1)))).toBe('InvalidRecordField');
    expect(err(() => ring.tryWrite(0, -1, new Uint8Array(1)))).toBe('InvalidRecordField');
    expect(ring.usedBytes()).toBe(0);
  });
});
