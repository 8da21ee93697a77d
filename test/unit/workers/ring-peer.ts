/** Worker side of the lost-wakeup tests: plays one side of the ring, told by `role`. */
import { parentPort, workerData } from 'node:worker_threads';
import { Ring } from '../../../src/workers/ring.js';
import { recordBytes } from './ring-records.js';
import { BURST_PAYLOAD_BYTES, StretchedRing, burstConsume, pingPongProduce, prng, takePingPong } from './ring-wakeup.js';

type Role = 'sleeping-consumer' | 'ping-pong-producer' | 'sleeping-producer' | 'burst-consumer';
const {
  role,
  buffer,
  sync: syncBuffer,
  count,
  waitMs,
  seed,
  deadlineMs,
} = workerData as {
  role: Role;
  buffer: SharedArrayBuffer;
  sync: SharedArrayBuffer;
  count: number;
  waitMs: number;
  seed: number;
  deadlineMs: number;
};
// Sleeping roles stretch the window between their last look and their wait; waking roles do not.
const sleeping = role === 'sleeping-consumer' || role === 'sleeping-producer';
const ring = sleeping ? new StretchedRing(buffer, prng(seed)) : new Ring(buffer);
const sync = new Int32Array(syncBuffer);

// Timing starts when the test thread answers `ready`, once this thread has loaded.
parentPort!.once('message', () => {
  const deadline = performance.now() + deadlineMs;
  let longestWaitMs = 0;
  switch (role) {
    case 'sleeping-consumer':
      for (let i = 0; i < count;) {
        if (ring.readView((kind, shard, payload) => takePingPong(sync, i, kind, shard, payload))) {
          i++;
          continue;
        }
        const t0 = performance.now();
        ring.waitForDataSync(waitMs);
        longestWaitMs = Math.max(longestWaitMs, performance.now() - t0);
      }
      break;
    case 'ping-pong-producer':
      pingPongProduce(ring, sync, count, prng(seed), deadline);
      break;
    case 'sleeping-producer':
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        if (!ring.writeSync(i & 0xffff, i, recordBytes(i, BURST_PAYLOAD_BYTES), waitMs)) throw new Error(`record ${i}: no room within ${waitMs} ms`);
        longestWaitMs = Math.max(longestWaitMs, performance.now() - t0);
      }
      break;
    case 'burst-consumer':
      burstConsume(ring, sync, count, prng(seed), deadline);
      break;
  }
  parentPort!.postMessage({ done: true, longestWaitMs, waiters: ring.waiters() });
});
parentPort!.postMessage({ ready: true });
