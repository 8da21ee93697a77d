/**
 * A shard worker thread's start and stop, as the pool sees them: its first word (`started`, or
 * `start-failed` with the store's reason; every other way a start can end becomes
 * WorkerStartFailed), and a stop that never cuts an LMDB transaction in two.
 */
import { existsSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { PoolError } from './pool-options.js';
import { workerDir } from './protocol.js';
import type { WorkerNotice } from './protocol.js';
import type { WorkerApi } from './worker.js';

/** How long {@link stopWorker} waits for a worker to stop after its turn before it terminates it. */
export const STOP_GRACE_MS = 30_000;

/**
 * Waits for worker `w`'s first notice. A worker that neither speaks nor exits within `timeoutMs`
 * (stuck opening its store, say) would hold the start forever: the wait fails, and it is terminated.
 */
export function firstNotice(worker: Worker, w: number, timeoutMs: number): Promise<WorkerNotice> {
  return new Promise<WorkerNotice>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (m: WorkerNotice): void => {
      if (m.type !== 'started' && m.type !== 'start-failed') return;
      done();
      resolve(m);
    };
    const onError = (e: Error): void => {
      done();
      reject(new PoolError('WorkerStartFailed', `worker ${w} failed to start: ${e.message}`));
    };
    // Messages posted before a worker's exit are delivered before 'exit': an exit seen here came
    // without a word (killed, out of memory), and nothing else would end this wait.
    const onExit = (code: number): void => {
      done();
      reject(new PoolError('WorkerStartFailed', `worker ${w} exited (code ${code}) before it started`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new PoolError('WorkerStartFailed', `worker ${w} did not start in ${timeoutMs} ms`));
      // Not awaited: a worker cut inside a transaction may never finish terminating (see stopWorker).
      worker.terminate().catch(() => undefined);
    }, timeoutMs);
    timer.unref();
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}

/**
 * Stops a worker thread. `terminate()` alone may stop it inside an LMDB write transaction (the
 * worker commits synchronously, between its turns' JavaScript), and then the thread's teardown
 * deadlocks: lmdb's environment cleanup waits for a lock the cut transaction holds, and the
 * termination never completes (nor would the process's exit). So a worker with `api` is first
 * asked to stop after its current turn (`shutdown`: its loop ends, its store closes), and is
 * terminated once it has, once it exited, or after `graceMs` (a worker stuck that long is past
 * saving). Without `api` (it never started) it is terminated at once.
 */
export async function stopWorker(worker: Worker, api: Comlink.Remote<WorkerApi> | undefined, graceMs: number = STOP_GRACE_MS): Promise<void> {
  // threadId turns -1 once the thread exited: nothing then answers, and nothing is left to cut.
  if (api !== undefined && worker.threadId !== -1) {
    let timer: NodeJS.Timeout | undefined;
    let onExit: (() => void) | undefined;
    await Promise.race([
      api.shutdown(),
      new Promise<void>((resolve) => {
        onExit = resolve;
        worker.once('exit', onExit);
        timer = setTimeout(resolve, graceMs);
      }),
    ]).catch(() => undefined);
    clearTimeout(timer);
    if (onExit) worker.off('exit', onExit);
    api[Comlink.releaseProxy]();
  }
  await worker.terminate();
}

/**
 * Refuses, before any worker starts, a start with more workers than `dataDir` was laid out for:
 * worker-0's store is there, and a store of a worker below `workers` is not. Each worker checks
 * its own store's layout too (WorkerCountMismatch from Store.open), but a worker whose store does
 * not exist yet would create it first: a refused start would leave a store behind.
 */
export function checkWorkerDirs(dataDir: string, workers: number): void {
  if (!existsSync(workerDir(dataDir, 0))) return;
  let laidOut = 1;
  while (laidOut < workers && existsSync(workerDir(dataDir, laidOut))) laidOut++;
  if (laidOut === workers) return;
  throw new PoolError(
    'WorkerCountMismatch',
    `${dataDir} holds the stores of ${laidOut} worker(s) (worker-0 .. worker-${laidOut - 1}); this start asks for ${workers}. ` +
      `Start with --workers ${laidOut} (shards are placed by shard % workers); ` +
      `if the first start in this directory never finished (a crash while it made the stores), remove the directory and start afresh.`,
  );
}
