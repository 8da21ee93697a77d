/** What `GET /v1/status` says of this node's workers and the shards they host. */
import type { WorkerPool } from '../workers/pool.js';

/**
 * Every hosted shard's role, leader, term, commit and applied index and log range, asked of each
 * running worker, in shard order; and the workers that are down. A worker that is restarting
 * would never answer: it is listed as down instead, and one that fails to answer adds no shards.
 */
export async function workerStatus(pool: WorkerPool): Promise<{ shards: unknown[]; workersDown: number[] }> {
  const workers = await Promise.all(
    Array.from({ length: pool.workers }, (_, w) =>
      pool.isRunning(w)
        ? pool
            .control(w)
            .status()
            .catch(() => undefined)
        : Promise.resolve(undefined),
    ),
  );
  const shards = workers.flatMap((w) => w?.shards ?? []).sort((a, b) => a.id - b.id);
  return {
    shards: shards.map((s) => ({
      shard: s.id,
      role: s.role,
      leader: s.lead,
      term: s.term,
      commit: s.commit,
      applied: s.applied,
      firstIndex: s.firstIndex,
      lastIndex: s.lastIndex,
    })),
    workersDown: pool.workersRunning().flatMap((r, w) => (r ? [] : [w])),
  };
}
