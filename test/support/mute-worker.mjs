// A shard worker that never says it started and never exits (as one stuck opening its store
// would). It counts its own beats in the shared `beats` array, so a test sees whether it still runs.
import { setInterval } from 'node:timers';
import { workerData } from 'node:worker_threads';

const beats = new Int32Array(workerData.beats);
setInterval(() => Atomics.add(beats, 0, 1), 5);
