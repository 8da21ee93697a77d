// Test-only preload for node processes of the integration tests (`node --require
// crash-worker.cjs dist/main/cli.js ...`; TestCluster's `nodeArgs`). Nothing in src knows of it,
// and a node started without it, as users start one, has no such hook.
//
// It makes one worker thread of one node crash, on every start, while a marker file exists in
// that node's data directory: `<data>/crash-worker-<w>` crashes worker w. A worker that is already
// running when the marker appears throws an uncaught exception within 20 ms, as a bug would; each
// restart the pool then attempts throws before the worker starts, so the worker stays down in a
// crash loop until the marker is removed. `--require` (unlike `--import`) also runs in worker
// threads, where `workerData` tells which node (data directory) and worker this is.
'use strict';
const { isMainThread, workerData } = require('node:worker_threads');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const shardWorker =
  !isMainThread &&
  workerData !== null &&
  typeof workerData === 'object' &&
  typeof workerData.dataDir === 'string' &&
  typeof workerData.worker === 'number' &&
  workerData.inRing !== undefined;
if (shardWorker) {
  const marker = join(workerData.dataDir, `crash-worker-${workerData.worker}`);
  if (existsSync(marker)) throw new Error(`test hook: ${marker} exists: worker ${workerData.worker} fails at start`);
  setInterval(() => {
    if (existsSync(marker)) throw new Error(`test hook: ${marker} appeared: worker ${workerData.worker} crashes`);
  }, 20).unref();
}
