/** Worker side of the ring property test: writes the records it is told to, in order. */
import { parentPort, workerData } from 'node:worker_threads';
import { Ring } from '../../../src/workers/ring.js';
import { recordBytes } from './ring-records.js';

const { buffer, sizes } = workerData as { buffer: SharedArrayBuffer; sizes: number[] };
const ring = new Ring(buffer);
let full = 0;
sizes.forEach((size, i) => {
  if (!ring.tryWrite(i & 0xffff, i, recordBytes(i, size))) {
    full++;
    if (!ring.writeSync(i & 0xffff, i, recordBytes(i, size), 10_000)) throw new Error(`record ${i}: ring stayed full`);
  }
});
parentPort?.postMessage({ done: true, full });
