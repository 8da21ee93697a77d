/**
 * Records per second from the main thread to one worker: the SharedArrayBuffer ring against
 * postMessage, same record size, same run.
 *
 *   npm run bench:ring -- [--records 1000000] [--size 100] [--capacity 1048576] [--runs 3]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Ring } from '../src/workers/ring.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '100' },
    capacity: { type: 'string', default: String(1 << 20) },
    runs: { type: 'string', default: '3' },
  },
});
const records = Number(values.records);
const size = Number(values.size);
const capacity = Number(values.capacity);
const runs = Number(values.runs);
for (const [name, v] of [
  ['records', records],
  ['size', size],
  ['capacity', capacity],
  ['runs', runs],
] as const) {
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`--${name} must be a positive integer`);
    process.exit(2);
  }
}

const bootstrap = new URL('../test/support/ts-worker.mjs', import.meta.url);
const entry = new URL('./ring-consumer.ts', import.meta.url).href;

async function once(mode: 'ring' | 'post'): Promise<number> {
  const buffer = Ring.allocate(capacity);
  const worker = new Worker(bootstrap, { workerData: { entry, mode, buffer, count: records } });
  await new Promise((r) => setTimeout(r, 300)); // let the worker load before timing
  const done = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  const payload = new Uint8Array(size).fill(1);
  const t0 = process.hrtime.bigint();
  if (mode === 'ring') {
    const ring = new Ring(buffer);
    for (let i = 0; i < records; i++) {
      if (!ring.tryWrite(1, i, payload) && !(await ring.write(1, i, payload, 10_000))) throw new Error('ring stayed full');
    }
  } else {
    for (let i = 0; i < records; i++) worker.postMessage(payload);
  }
  await done;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await worker.terminate();
  return records / seconds;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const ring: number[] = [];
const post: number[] = [];
for (let i = 0; i < runs; i++) {
  ring.push(await once('ring'));
  post.push(await once('post'));
}
console.log(`main -> worker, ${size}-byte records, ${fmt(records)} per run, median of ${runs} (alternating), ring ${capacity} bytes`);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`ring         ${fmt(median(ring)).padStart(12)} records/s  ${((median(ring) * size) / 1e6).toFixed(1).padStart(7)} MB/s`);
console.log(`postMessage  ${fmt(median(post)).padStart(12)} records/s  ${((median(post) * size) / 1e6).toFixed(1).padStart(7)} MB/s`);
console.log(`ratio        ${(median(ring) / median(post)).toFixed(1)}x`);
