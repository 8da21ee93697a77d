/** Worker side of bench/ring.ts: consumes ring records, or postMessage messages, and counts them. */
import { parentPort, workerData } from 'node:worker_threads';
import { Ring } from '../src/workers/ring.js';

const { mode, buffer, count } = workerData as { mode: 'ring' | 'post'; buffer: SharedArrayBuffer; count: number };
if (mode === 'ring') {
  const ring = new Ring(buffer);
  let n = 0;
  let bytes = 0;
  const take = (_kind: number, _shard: number, payload: Uint8Array): void => {
    bytes += payload.length;
  };
  while (n < count) {
    if (ring.readView(take)) n++;
    else ring.waitForDataSync(100);
  }
  parentPort?.postMessage({ n, bytes });
} else {
  let n = 0;
  let bytes = 0;
  parentPort?.on('message', (m: Uint8Array) => {
    bytes += m.length;
    if (++n === count) parentPort?.postMessage({ n, bytes });
  });
}
