/**
 * The server processes a run starts on this machine (a local cluster, the ceiling, etcd): started,
 * watched for falling over, and stopped even when the run is interrupted.
 */
import { waitHealthy } from '../kv-client.js';
import { LocalServers } from '../local-cluster.js';
import type { Config } from './flags.js';
import { progress } from './progress.js';
import { clusterHealthyTimeoutMs } from './settings.js';

/** Server processes running now, for an interrupted run to clean up; every entry is destroyed by release(). */
const running = new Set<LocalServers>();

/** On SIGINT or SIGTERM, destroys every running server process, then exits 130. */
export function stopServersOnSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      progress(`bench: ${sig}, stopping the servers`);
      void Promise.all([...running].map((s) => s.destroy())).finally(() => process.exit(130));
    });
  }
}

/** Watches `servers` until release(): an interrupted run destroys them. */
export function track(servers: LocalServers): LocalServers {
  running.add(servers);
  return servers;
}

/** Destroys `servers` (keeping their logs and data when `keep`) and stops watching them. */
export async function release(servers: LocalServers, keep = false): Promise<void> {
  await servers.destroy(keep);
  running.delete(servers);
}

/** The watched processes that fell over, each described with its last output. */
export function exitsOf(servers: LocalServers | undefined): () => string[] {
  return () =>
    (servers?.unexpectedExits() ?? []).map(
      (g) => `${g.name} fell over: code ${g.exit.code}, signal ${g.exit.signal}, ${g.exit.afterS.toFixed(1)} s after it started; its last output:\n${g.tail}`,
    );
}

/** Throws when a process fell over (while starting, before there is anything to measure). */
export function assertRunning(servers: LocalServers): () => void {
  return () => {
    const e = exitsOf(servers)();
    if (e.length > 0) throw new Error(e.join('\n'));
  };
}

/** The URLs whose process still runs: all of `urls` when nothing is watched (--target). */
export function liveUrlsOf(servers: LocalServers | undefined, urls: readonly string[]): () => string[] {
  return () => (servers ? servers.servers.filter((s) => !s.exit).map((s) => s.url) : [...urls]);
}

/** Starts a fresh local cluster of iroh-raft nodes as `cfg` says, watched; `nodeFlags` gets each node's data directory. */
export async function startCluster(cfg: Config, nodeFlags: (dataDir: string) => readonly string[]): Promise<LocalServers> {
  progress(`[iroh-raft] starting ${cfg.nodes} node(s), ${cfg.shards} shards, ${cfg.workers} worker(s) each`);
  return track(await LocalServers.cluster({ nodes: cfg.nodes, shards: cfg.shards, workers: cfg.workers, nodeFlags }));
}

/**
 * Waits until every node of a fresh cluster answers healthy (throwing when one falls over or time
 * runs out); resolves with the seconds since `startedMs` (performance.now() before the start).
 */
export async function untilHealthy(servers: LocalServers, shards: number, startedMs: number): Promise<number> {
  await waitHealthy(servers.urls, clusterHealthyTimeoutMs(shards), assertRunning(servers));
  const healthyS = (performance.now() - startedMs) / 1000;
  progress(`[iroh-raft] healthy after ${healthyS.toFixed(2)} s`);
  return healthyS;
}
