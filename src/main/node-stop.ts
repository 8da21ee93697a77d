/**
 * How a node stops gracefully, and the leader balancing whose stop comes first: the node hands
 * its leaderships over (and takes none back), then HTTP drains, workers flush and stop, Iroh closes.
 */
import type { HttpServer } from '../io/http/server.js';
import type { MgmtServer } from '../io/mgmt/index.js';
import type { Discovery } from '../io/discovery/index.js';
import type { Transport } from '../io/transport/index.js';
import type { NodeId } from '../shards/raft/index.js';
import { LeaderBalancer, handOffLeaders } from '../router/leader-balance.js';
import type { Router } from '../router/router.js';
import type { Snapshots } from '../router/snapshots.js';
import type { WorkerPool } from '../workers/pool.js';
import type { ClusterLife } from './cluster-life.js';
import type { NodeConfig } from './config.js';
import type { DiskAlarm } from './disk-alarm.js';
import type { StartOptions } from './node.js';

/** A graceful stop, once: HTTP drains, snapshot transfers end, workers flush and stop, then the rest. */
export function stopper(p: {
  http: HttpServer;
  mgmt: MgmtServer;
  discovery: Discovery;
  snapshots: Snapshots;
  pool: WorkerPool;
  router: Router;
  disk: DiskAlarm;
  balance: { stop(): Promise<void> };
  settling: { stop(): void };
  life: ClusterLife;
  transport: Transport;
  unlock: () => void;
  log: StartOptions['logger'];
  self: NodeId;
}): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      p.settling.stop();
      await p.life.stop();
      await p.balance.stop();
      p.http.beginDrain();
      await p.http.close();
      await p.mgmt.close();
      p.discovery.close();
      p.snapshots.close();
      await p.pool.close();
      p.router.close();
      p.disk.close();
      await p.transport.close();
      p.unlock();
      p.log.info({ node: p.self }, 'node stopped');
    })());
}

/** Leader balancing every `--leader-balance-ms` (off at 0), with jitter so nodes do not move in step. */
export function startLeaderBalance(
  cfg: NodeConfig,
  self: NodeId,
  router: Router,
  pool: WorkerPool,
  snapshots: Snapshots,
  log: StartOptions['logger'],
  life: () => ClusterLife | undefined,
): { balancer: LeaderBalancer; stop(): Promise<void> } {
  // Leaderships go only to members up (not joining, leaving or dead) once the meta record says so.
  const memberUp = (node: NodeId): boolean => {
    const m = life()
      ?.current()
      ?.meta.members.find((x) => x.node === node);
    return m === undefined || m.state === 'up';
  };
  const balancer = new LeaderBalancer({
    self,
    shardCount: cfg.shards,
    // The data shards: the meta group's leadership costs next to nothing, wherever it is.
    shards: () => router.localShards().filter((s) => s.shard < cfg.shards),
    leaderOf: (shard) => pool.leaders.get(shard)?.lead,
    // A member leaving, or a node stopping, is handing its leaderships over: never give it one back.
    canLead: (node, shard) => router.liveness.reachable(node, shard) && memberUp(node) && !router.liveness.stopping(node),
    leadsOf: (node) => router.leadsOf(node),
    streaming: (shard) => snapshots.sends(shard),
    transfer: (shard, to) => pool.transferLeader(shard, to),
    failed: (shard, to, err) => log.warn({ err, shard, to }, 'a balancing transfer failed'),
  });
  const parts = balancer.parts;
  let timer: NodeJS.Timeout | undefined;
  const next = (): void => {
    timer = setTimeout(() => void balancer.round().finally(next), cfg.leaderBalanceMs * (0.75 + Math.random() / 2));
    timer.unref();
  };
  if (cfg.leaderBalanceMs > 0) next();
  // Stopping hands this node's leaderships over first (up to an election timeout), so no shard
  // waits for one to pass before it has a leader again; and from then on the node takes none back.
  const stop = async (): Promise<void> => {
    clearTimeout(timer);
    router.beginStopping();
    // The meta group's leadership too: balancing leaves it where it is, but a stop must not leave
    // the cluster's membership and placement waiting for an election.
    const { handed, left } = await handOffLeaders({ ...parts, shards: () => router.localShards() }, cfg.tickMs * cfg.electionTicks);
    if (handed + left > 0) log.info({ handed, left }, 'handed leaderships over before stopping');
  };
  return { balancer, stop };
}
