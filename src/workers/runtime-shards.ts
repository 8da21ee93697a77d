/**
 * Helpers of the pool's runtime shard calls (openShard, dropShard, membership): checks of what a
 * caller asks for, and control calls bounded by the worker's life.
 */
import type { Worker } from 'node:worker_threads';
import type { ShardSpec } from '../shards/host.js';
import { PoolError } from './pool-options.js';

const U32_MAX = 0xffffffff;

/** A shard id from a caller at runtime is an integer in [0, 2^32 - 1] (PoolError InvalidConfig). */
export function checkShardId(shard: number): void {
  if (!Number.isInteger(shard) || shard < 0 || shard > U32_MAX)
    throw new PoolError('InvalidConfig', `shard id must be an integer in [0, 2^32 - 1], got ${shard}`);
}

/**
 * A shard spec from a caller at runtime: its id and member ids are in range and no member is
 * listed twice (PoolError InvalidConfig).
 */
export function checkSpec(spec: ShardSpec): void {
  checkShardId(spec.shard);
  const members = [...spec.voters, ...(spec.learners ?? [])];
  for (const n of members) {
    if (!Number.isInteger(n) || n < 1 || n > U32_MAX)
      throw new PoolError('InvalidConfig', `shard ${spec.shard}: member id ${n} is not an integer in [1, 2^32 - 1]`);
  }
  if (new Set(members).size !== members.length) throw new PoolError('InvalidConfig', `shard ${spec.shard}: a member is listed twice`);
}

/**
 * A control call on worker `index`, bounded by the worker's life: comlink never answers a call to
 * a worker that died, so the worker's exit rejects the call with PoolError WorkerUnavailable (the
 * call may or may not have taken effect).
 */
export function untilExit<T>(worker: Worker, index: number, call: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = (): void => reject(new PoolError('WorkerUnavailable', `worker ${index} exited during the call`));
    worker.once('exit', onExit);
    call().then(
      (v) => {
        worker.off('exit', onExit);
        resolve(v);
      },
      (e: unknown) => {
        worker.off('exit', onExit);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** PoolError WorkerUnavailable (the worker died with the call) as `value`; any other error propagates. */
export function unavailableAs<T>(value: T): (e: unknown) => T {
  return (e) => {
    if (e instanceof PoolError && e.code === 'WorkerUnavailable') return value;
    throw e;
  };
}
