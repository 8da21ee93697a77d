/**
 * One node: the Iroh transport, the worker pool with this node's shards, the router between them
 * and the HTTP API in front. Start order: identity and cluster layout, transport, workers,
 * router, HTTP. Stop order (graceful): refuse new requests, finish in-flight ones, stop workers
 * after their current turn, close Iroh.
 */
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { HttpServer } from '../io/http/server.js';
import { decodeTicket } from '../io/ticket.js';
import { Transport } from '../io/transport/index.js';
import type { NodeId } from '../shards/raft/index.js';
import { Router } from '../router/router.js';
import { localShards } from '../router/placement.js';
import type { Member } from '../router/router.js';
import { WorkerPool } from '../workers/pool.js';
import type { NodeConfig } from './config.js';
import { CodedError } from '../errors.js';
import { DataDir } from './data-dir.js';

/** `InvalidTicket`: a bad --peers ticket. `DuplicateMember`: --peers names this node or a member twice. */
export class NodeError extends CodedError<'InvalidTicket' | 'DuplicateMember'> {
  override readonly name = 'NodeError';
}

export interface RunningNode {
  readonly nodeId: NodeId;
  readonly peerId: string;
  readonly ticket: string;
  readonly httpUrl: string;
  readonly router: Router;
  /** Graceful stop: refuse new requests, finish in-flight ones, flush, close. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  /** Worker entry override (tests running from TypeScript sources). */
  readonly workerUrl?: URL;
  readonly workerData?: Record<string, unknown>;
}

export async function startNode(cfg: NodeConfig, opts: StartOptions): Promise<RunningNode> {
  const log = opts.logger;
  const dir = DataDir.open(cfg.data);
  const unlock = dir.lock();
  let peers: { id: string; addrs: string[] }[];
  try {
    peers = cfg.peers.map((t) => decodeTicket(t));
  } catch (e) {
    unlock();
    throw new NodeError('InvalidTicket', `--peers: ${e instanceof Error ? e.message : String(e)}`);
  }

  let secretKey: Uint8Array;
  try {
    secretKey = await dir.loadOrCreateKey(log);
  } catch (e) {
    unlock();
    throw e;
  }
  let router: Router | undefined;
  let memberIds = new Set<string>();
  const transport = await Transport.start({
    secretKey,
    bindAddr: `${cfg.listen.host.includes(':') ? `[${cfg.listen.host}]` : cfg.listen.host}:${cfg.listen.port}`,
    isMember: (id) => memberIds.has(id),
    onRecords: (peer, records) => router?.onPeerRecords(peer, records),
    logger: log,
  });
  try {
    const ids = [transport.id, ...peers.map((p) => p.id)];
    if (new Set(ids).size !== ids.length) throw new NodeError('DuplicateMember', '--peers lists this node or the same member twice');
    const sorted = [...ids].sort();
    memberIds = new Set(sorted);
    const members: Member[] = sorted.map((peerId, i) => ({ nodeId: (i + 1) as NodeId, peerId }));
    const self = members.find((m) => m.peerId === transport.id)!.nodeId;
    for (const p of peers) transport.addPeer(p);
    const replicas = Math.min(cfg.replicas, members.length);
    dir.checkCluster({ shards: cfg.shards, members: sorted, replicas });

    const routerRef: { r?: Router } = {};
    const local = localShards(
      self,
      members.map((m) => m.nodeId),
      cfg.shards,
      replicas,
    );
    const leaderChanges = { n: 0 };
    const registry = new Registry();
    const pool = await WorkerPool.start({
      dataDir: cfg.data,
      workers: cfg.workers,
      nodeId: self,
      shards: local.map((s) => ({ shard: s.shard, voters: s.voters })),
      tickMs: cfg.tickMs,
      raft: { electionTimeoutTicks: cfg.electionTicks, quiesceAfterTicks: cfg.quiesceAfterTicks },
      requestTimeoutMs: cfg.requestTimeoutMs,
      compactEveryEntries: cfg.compactEveryEntries,
      compactKeepEntries: cfg.compactKeepEntries,
      onRaftMessage: (shard, payload) => routerRef.r?.onLocalRaftMessage(shard, payload),
      onShardEvent: (shard, e) => {
        leaderChanges.n++;
        routerRef.r?.onShardEvent(shard);
        log.debug({ shard, lead: e.lead, term: e.term, role: e.role }, 'shard leader changed');
      },
      ...(opts.workerUrl ? { workerUrl: opts.workerUrl, workerData: opts.workerData } : {}),
    });
    pool.on('restart', (w, reason) => log.warn({ worker: w, reason }, 'worker restarted'));
    router = new Router({
      self,
      members,
      shards: cfg.shards,
      replicas,
      pool,
      link: transport,
      requestTimeoutMs: cfg.requestTimeoutMs,
      livenessIntervalMs: cfg.tickMs,
      livenessTimeoutMs: cfg.tickMs * cfg.electionTicks,
      metrics: async () => {
        const merged = AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), ...(await pool.metrics())]);
        return { contentType: merged.contentType, body: await merged.metrics() };
      },
    });
    routerRef.r = router;
    router.startLiveness();

    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    };
    const r = router;
    const p = pool;
    gauge('iroh_raft_router_forwarded_total', 'Client requests this node forwarded to a leader.', () => r.counters.forwarded);
    gauge('iroh_raft_router_retries_total', 'Client request attempts retried after NotLeader and the like.', () => r.counters.retries);
    gauge('iroh_raft_router_spoofed_total', 'Raft messages refused because their sender was not the connection peer.', () => r.counters.spoofed);
    const lc = r.liveness.counters;
    gauge('iroh_raft_liveness_peers_down_total', 'Peers declared gone after a liveness timeout of silence.', () => lc.peersDown);
    gauge('iroh_raft_liveness_peers_up_total', 'Peers heard again after being declared gone.', () => lc.peersUp);
    gauge('iroh_raft_liveness_workers_down_total', 'Workers of peers that their liveness records reported stopped.', () => lc.workersDown);
    gauge('iroh_raft_liveness_bad_records_total', 'Liveness records whose payload did not decode (ignored).', () => lc.bad);
    gauge('iroh_raft_liveness_wakes_total', 'Wake rounds run on behalf of a peer (at most one per peer per election timeout).', () => lc.wakes);
    gauge('iroh_raft_liveness_wakes_coalesced_total', 'Reasons to wake folded into a round a peer already owed.', () => lc.wakesCoalesced);
    gauge('iroh_raft_liveness_wake_shards_total', 'Shards named in wake requests: the work peers coming and going cost.', () => lc.wakeShards);
    gauge('iroh_raft_liveness_shards_woken_total', 'Quiet replicas here that liveness woke.', () => r.counters.shardsWoken);
    gauge('iroh_raft_pool_inflight_requests', 'Requests waiting for a worker reply.', () => p.inflight());
    gauge('iroh_raft_pool_worker_restarts_total', 'Worker threads restarted after a crash.', () => p.counters.restarts);
    gauge('iroh_raft_transport_bytes_sent_total', 'Bytes sent to peers over Iroh.', () => transport.stats().bytesSent);
    gauge('iroh_raft_transport_bytes_received_total', 'Bytes received from peers over Iroh.', () => transport.stats().bytesReceived);
    gauge('iroh_raft_transport_records_sent_total', 'Records sent to peers over Iroh.', () => transport.stats().recordsSent);
    gauge('iroh_raft_transport_frames_sent_total', 'Frames (batches of records) sent to peers over Iroh.', () => transport.stats().framesSent);
    gauge('iroh_raft_shard_leader_changes_total', "Leader changes seen by this node's replicas.", () => leaderChanges.n);
    const http = await HttpServer.start({ host: cfg.http.host, port: cfg.http.port, service: router, logger: log });
    log.info({ node: self, id: transport.id, http: http.url, shards: local.length, members: members.length }, 'node started');

    let closing: Promise<void> | undefined;
    return {
      nodeId: self,
      peerId: transport.id,
      ticket: transport.ticket(),
      httpUrl: http.url,
      router,
      close: () =>
        (closing ??= (async () => {
          http.beginDrain();
          await http.close();
          await p.close();
          r.close();
          await transport.close();
          unlock();
          log.info({ node: self }, 'node stopped');
        })()),
    };
  } catch (e) {
    await transport.destroy();
    unlock();
    throw e;
  }
}
