/**
 * Packing a snapshot into deflated, checksummed chunks: on the main thread against a piscina pool
 * of 1 and 2 threads. Reports throughput and the worst main-thread event-loop stall during the
 * run, which is what the pool is for: the router and HTTP share the main thread.
 *
 *   npx tsx bench/snapshot-chunks.ts -- [--mib 64] [--chunk-kib 1024] [--level -1] [--runs 3]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { packChunk } from '../src/workers/chunk-task.js';
import { SnapshotChunker } from '../src/workers/snapshot-chunks.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '64' },
    'chunk-kib': { type: 'string', default: '1024' },
    level: { type: 'string', default: '-1' },
    runs: { type: 'string', default: '3' },
  },
});
const snapshotBytes = Number(values.mib) * 1024 * 1024;
const chunkBytes = Number(values['chunk-kib']) * 1024;
const level = Number(values.level);
const runs = Number(values.runs);
for (const [name, v] of [
  ['mib', snapshotBytes],
  ['chunk-kib', chunkBytes],
  ['runs', runs],
] as const) {
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`--${name} must be a positive integer`);
    process.exit(2);
  }
}

// The pool threads load the TypeScript task module through the test bootstrap (Node 20 workers
// cannot load .ts); production points taskUrl at the compiled chunk-task.js instead.
const taskUrl = new URL('../test/support/piscina-task.mjs', import.meta.url);
const entry = new URL('../src/workers/chunk-task.ts', import.meta.url).href;

/**
 * Half compressible: 64 KiB runs alternate between seeded noise and repetitive text, so every
 * chunk mixes stored and Huffman-coded blocks the way a key-value dump does.
 */
function makeSnapshot(length: number): Uint8Array {
  const out = new Uint8Array(length);
  const text = new TextEncoder().encode('{"shard":17,"term":42,"key":"tenant-0001/user-00042","value":"ok"}\n');
  const run = 64 * 1024;
  let x = 0x9e3779b9;
  for (let start = 0; start < length; start += run) {
    const end = Math.min(start + run, length);
    if ((start / run) % 2 === 0) {
      for (let i = start; i < end; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = x & 0xff;
      }
    } else {
      for (let i = start; i < end; i++) out[i] = text[i % text.length]!;
    }
  }
  return out;
}

/**
 * The worst gap between 1 ms interval ticks, minus the 1 ms: how long the event loop could not
 * run a callback. Stopping also counts the gap up to now, so a run that never yields is measured.
 */
function stallTracker(): () => number {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  return () => {
    clearInterval(timer);
    return Math.max(worst, performance.now() - last - 1, 0);
  };
}

interface Sample {
  readonly seconds: number;
  readonly stallMs: number;
  readonly compressedBytes: number;
}

async function measure(pack: () => Promise<number>): Promise<Sample> {
  const stop = stallTracker();
  const t0 = performance.now();
  const compressedBytes = await pack();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, stallMs: stop(), compressedBytes };
}

function mainThread(data: Uint8Array, yieldEachChunk: boolean): () => Promise<number> {
  return async () => {
    let total = 0;
    for (let offset = 0; offset < data.byteLength; offset += chunkBytes) {
      total += packChunk(data.subarray(offset, offset + chunkBytes), level).compressed.byteLength;
      if (yieldEachChunk) await yieldToLoop();
    }
    return total;
  };
}

function pooled(chunker: SnapshotChunker, data: Uint8Array): () => Promise<number> {
  return async () => (await chunker.pack(data)).reduce((sum, c) => sum + c.compressed.byteLength, 0);
}

const data = makeSnapshot(snapshotBytes);
const rows: { name: string; samples: Sample[] }[] = [];

async function run(name: string, pack: () => Promise<number>): Promise<void> {
  await pack(); // warm-up: JIT, zlib, and for the pool its threads' module loading
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) samples.push(await measure(pack));
  rows.push({ name, samples });
}

// What this machine's scheduler and timers alone cost, for reading the other stalls against.
await run('idle (baseline)', async () => {
  await new Promise((resolve) => setTimeout(resolve, 500));
  return 0;
});
await run('main thread, one loop', mainThread(data, false));
await run('main thread, yield per chunk', mainThread(data, true));
for (const threads of [1, 2]) {
  const chunker = new SnapshotChunker({ threads, chunkBytes, level, taskUrl, workerData: { entry } });
  try {
    await run(`SnapshotChunker, ${threads} thread${threads > 1 ? 's' : ''}`, pooled(chunker, data));
  } finally {
    await chunker.close();
  }
}

const mb = snapshotBytes / 1e6;
console.log(
  `${values.mib} MiB snapshot, half compressible, ${values['chunk-kib']} KiB chunks, level ${level}, median of ${runs}, ` +
    `compressed to ${((rows[1]!.samples[0]!.compressedBytes / snapshotBytes) * 100).toFixed(1)}%`,
);
console.log('mode                          MB/s   worst main-thread stall (ms)');
for (const { name, samples } of rows) {
  const mbps = samples[0]!.compressedBytes === 0 ? '-' : median(samples.map((s) => mb / s.seconds)).toFixed(1);
  const stall = median(samples.map((s) => s.stallMs));
  console.log(`${name.padEnd(28)} ${mbps.padStart(6)}   ${stall.toFixed(1).padStart(8)}`);
}
