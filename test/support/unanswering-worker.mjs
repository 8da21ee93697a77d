// A shard worker that starts and opens its shards, then dies in the middle of the first status
// call it takes, without answering it (as a worker that crashes with a call in hand would). The
// rings and everything else are left alone: only the control calls matter here.
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';

const api = {
  openShards: (specs) => specs.map((s) => s.shard),
  status: () => {
    setTimeout(() => process.exit(3), 20);
    return new Promise(() => undefined);
  },
  metrics: () => [],
  wake: () => 0,
  shutdown: () => undefined,
};
Comlink.expose(api, nodeEndpoint(parentPort));
parentPort.postMessage({ type: 'started' });
