// Test-only preload for node processes of the integration tests (`node --require
// kill-in-install.cjs dist/main/cli.js ...`; TestCluster's `nodeArgs`). Nothing in src knows of it,
// and a node started without it, as users start one, has no such hook.
//
// While the environment variable IROH_RAFT_TEST_KILL_IN_INSTALL is set (to `<n>:<bytes>`), the
// shard worker of that process SIGKILLs the whole process in the middle of installing a staged
// snapshot: a staged dump (`<data>/staging/*.dump`) is read twice in the worker, once whole to
// check its structure (checkDumpFile) and once more inside the install transaction
// (readDumpFile, after the shard's data was cleared); once the n-th such install pass has read
// more than `bytes` bytes of its file, the process dies, with the transaction open and part of
// the new data written into it. Both passes read with fs.openSync/readSync, patched here before
// the ESM modules bind their imports of node:fs (`--require` also runs in worker threads).
'use strict';
const { isMainThread, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const process = require('node:process');
const { syncBuiltinESMExports } = require('node:module');

const armed = process.env.IROH_RAFT_TEST_KILL_IN_INSTALL;
const shardWorker =
  !isMainThread &&
  workerData !== null &&
  typeof workerData === 'object' &&
  typeof workerData.dataDir === 'string' &&
  typeof workerData.worker === 'number' &&
  workerData.inRing !== undefined;
if (shardWorker && armed !== undefined && armed !== '') {
  const [pass, afterBytes] = armed.split(':').map(Number);
  if (!Number.isSafeInteger(pass) || pass < 1 || !Number.isSafeInteger(afterBytes) || afterBytes < 0) {
    throw new Error(`IROH_RAFT_TEST_KILL_IN_INSTALL=${armed} is not <install pass>:<bytes>`);
  }
  /** Install passes started so far. */
  let passes = 0;
  /** Opens so far of each staged dump, by path. */
  const opens = new Map();
  /** The armed install pass's file while it is open: fd -> bytes read so far. */
  const installing = new Map();
  const openSync = fs.openSync;
  const readSync = fs.readSync;
  const closeSync = fs.closeSync;
  fs.openSync = function (path, ...rest) {
    const fd = openSync.call(this, path, ...rest);
    if (typeof path === 'string' && path.endsWith('.dump')) {
      const n = (opens.get(path) ?? 0) + 1;
      opens.set(path, n);
      if (n === 2 && ++passes === pass) installing.set(fd, 0);
    }
    return fd;
  };
  fs.readSync = function (fd, ...rest) {
    const got = readSync.call(this, fd, ...rest);
    const before = installing.get(fd);
    if (before !== undefined) {
      installing.set(fd, before + got);
      if (before + got > afterBytes) {
        fs.writeSync(2, `test hook: SIGKILL while installing a staged snapshot, ${before + got} bytes into install pass ${pass}\n`);
        process.kill(process.pid, 'SIGKILL');
      }
    }
    return got;
  };
  fs.closeSync = function (fd, ...rest) {
    installing.delete(fd);
    return closeSync.call(this, fd, ...rest);
  };
  syncBuiltinESMExports();
}
