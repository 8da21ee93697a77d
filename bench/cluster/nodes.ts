/**
 * iroh-raft under the load once: a fresh local cluster (or the --target nodes), healthy, measured,
 * stopped with SIGTERM, its logs and data kept when something went wrong. A run of its own and
 * each round of --against do this.
 */
import { waitHealthy } from '../kv-client.js';
import type { LocalServers } from '../local-cluster.js';
import type { Config } from './flags.js';
import { measureIdle } from './idle.js';
import { measure } from './measure.js';
import type { SystemResult } from './measure.js';
import { profileDir, profileFlags, profileOf } from './profiles.js';
import { progress } from './progress.js';
import { recorded } from './report.js';
import { assertRunning, exitsOf, liveUrlsOf, release, startCluster, untilHealthy } from './servers.js';
import { HEALTHY_TIMEOUT_MS } from './settings.js';

/** Waits until the run's fresh cluster is healthy; its startup (and --idle-seconds) facts go to `extra`. */
async function settle(servers: LocalServers, cfg: Config, startedMs: number, extra: Record<string, unknown>): Promise<void> {
  const healthyS = await untilHealthy(servers, cfg.shards, startedMs);
  extra.startup = { listeningS: servers.servers.map((s) => s.listeningS), healthyS };
  if (cfg.idleSeconds > 0) extra.idle = await measureIdle(servers, cfg.idleSeconds, assertRunning(servers));
}

/** Stops the nodes with SIGTERM; a node that does not stop cleanly (and had not fallen over before) is a problem. */
async function stopNodes(servers: LocalServers, extra: Record<string, unknown>, problems: string[]): Promise<void> {
  progress('[iroh-raft] stopping the nodes (SIGTERM)');
  const fell = new Set(servers.unexpectedExits().map((g) => g.name));
  const stops = await servers.stop();
  extra.stop = stops;
  for (const s of stops.filter((x) => !fell.has(x.name))) {
    if (s.code !== 0 || s.killed)
      problems.push(`${s.name} did not stop cleanly on SIGTERM: code ${s.code}, signal ${s.signal}${s.killed ? ', killed after the grace period' : ''}`);
  }
}

/**
 * Destroys the nodes, keeping their logs and data when the run `failed` or one of them fell over;
 * those that fell over are listed here only while `results` is empty (a result lists its own exits).
 * True when one fell over.
 */
async function releaseNodes(servers: LocalServers, failed: boolean, results: readonly SystemResult[], problems: string[]): Promise<boolean> {
  const gone = servers.unexpectedExits();
  if (results.length === 0)
    for (const g of gone) problems.push(`${g.name} fell over: code ${g.exit.code}, signal ${g.exit.signal}, ${g.exit.afterS.toFixed(1)} s after start`);
  const keep = failed || gone.length > 0;
  await release(servers, keep);
  if (keep) problems.push(`logs and data kept in ${servers.root}`);
  return gone.length > 0;
}

/**
 * iroh-raft under the load once: a fresh local cluster (or the --target nodes), measured, stopped;
 * its result goes to `results`, what went wrong to `problems`, startup/stop/profile facts to `extra`.
 * `date` is when the run started (ISO). True when the run failed.
 */
export async function runNodes(
  cfg: Config,
  prefix: string,
  date: string,
  results: SystemResult[],
  problems: string[],
  extra: Record<string, unknown>,
): Promise<boolean> {
  let failed = false;
  let servers: LocalServers | undefined;
  const profiles = cfg.profile ? profileDir(date, cfg.name) : undefined;
  try {
    if (cfg.target) {
      progress(`[iroh-raft] waiting for /healthz on ${cfg.target.join(', ')}`);
      await waitHealthy(cfg.target, HEALTHY_TIMEOUT_MS);
    } else {
      const t0 = performance.now();
      servers = await startCluster(cfg, (data: string) => [...cfg.nodeFlags, ...(profiles !== undefined ? profileFlags(profiles, data) : [])]);
      await settle(servers, cfg, t0, extra);
    }
    const urls = servers?.urls ?? cfg.target!;
    const r = await measure(
      {
        system: 'iroh-raft',
        api: 'iroh-raft',
        urls,
        procs: servers?.servers ?? [],
        isNode: true,
        exits: exitsOf(servers),
        liveUrls: liveUrlsOf(servers, urls),
      },
      cfg,
      prefix,
    );
    failed = recorded(r, results, problems);
    if (servers) {
      await stopNodes(servers, extra, problems);
      if (profiles !== undefined) extra.profile = profileOf(profiles, servers, r.loadWindowUs, problems);
    }
  } catch (e) {
    failed = true;
    problems.push(`iroh-raft: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (servers) failed = (await releaseNodes(servers, failed, results, problems)) || failed;
  }
  return failed;
}
