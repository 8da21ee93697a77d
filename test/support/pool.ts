/** Starting a worker pool from TypeScript sources (tests and benches load workers through tsx). */
import { WorkerPool } from '../../src/workers/pool.js';
import type { PoolOptions } from '../../src/workers/pool.js';

const bootstrap = new URL('./ts-worker.mjs', import.meta.url);
const entry = new URL('../../src/workers/worker.ts', import.meta.url).href;
const chunkTaskUrl = new URL('./piscina-task.mjs', import.meta.url);
const chunkTask = new URL('../../src/workers/chunk-task.ts', import.meta.url).href;

export function startPool(opts: PoolOptions): Promise<WorkerPool> {
  return WorkerPool.start({ workerUrl: bootstrap, workerData: { entry }, chunkTaskUrl, chunkTaskData: { entry: chunkTask }, ...opts });
}
