/**
 * Fixed settings of the cluster load test: where it finds its files and writes its results, and
 * the limits that no flag changes.
 */
import { join } from 'node:path';

/** The repository: dist/, node_modules/ and package.json are read from here. */
export const ROOT = new URL('../..', import.meta.url).pathname;
/** The load generator's entry, run in a process of its own. */
export const LOAD_WORKER = join(ROOT, 'bench/load-worker.ts');
/** Result files, charts and kept profiles (not committed). */
export const RESULTS_DIR = join(ROOT, 'bench/results');

/** Requests in flight while preloading and while reading acknowledged writes back. */
export const SIDE_CONCURRENCY = 32;
/** Client deadline per load request, seconds: above the node's 5 s request timeout. */
export const LOAD_TIMEOUT_S = 10;
/** Acknowledged writes kept for verification; past it, a uniform sample of this many. */
export const ACKED_KEPT_MAX = 1_000_000;
/** Quiet time before an idle measurement, so shards have time to go quiet (20 ticks of 100 ms). */
export const IDLE_SETTLE_MS = 3000;
/**
 * Before an idle window: the leaders count as settled once no node has counted a leader change
 * for this long (the start's leader balancing moves many leaders over the first ~40 s at 10,000
 * shards)...
 */
export const LEADERS_STILL_MS = 6000;
/** ...or once this long has passed since healthy, whichever comes first (then the report says so). */
export const LEADERS_SETTLE_MAX_MS = 180_000;
/** Load generator CPU (% of one core) above which it, not the server, may be the bottleneck. */
export const LOADGEN_SATURATED_PERCENT = 90;
/** How long running nodes (--target), the ceiling or etcd may take to answer their health check. */
export const HEALTHY_TIMEOUT_MS = 30_000;

/** How long a fresh local cluster of `shards` shards may take to become healthy, ms: every shard elects a leader. */
export function clusterHealthyTimeoutMs(shards: number): number {
  return 60_000 + shards * 50;
}
