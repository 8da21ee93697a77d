/**
 * A worker's first word: `started`, or `start-failed` with the store's reason. Every other way a
 * start can end (an uncaught error, an exit without a word, silence) becomes WorkerStartFailed.
 */
import type { Worker } from 'node:worker_threads';
import { PoolError } from './pool-options.js';
import type { WorkerNotice } from './protocol.js';

/**
 * Waits for worker `w`'s first notice. A worker that neither speaks nor exits within `timeoutMs`
 * (stuck opening its store, say) would hold the start forever: it is stopped, then the wait fails.
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
      const failed = new PoolError('WorkerStartFailed', `worker ${w} did not start in ${timeoutMs} ms`);
      void worker.terminate().then(
        () => reject(failed),
        () => reject(failed),
      );
    }, timeoutMs);
    timer.unref();
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}
