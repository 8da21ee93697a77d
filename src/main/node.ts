/**
 * One node: the Iroh transport, the worker pool with this node's shards, the router between them
 * and the HTTP API in front. Start order: identity and cluster layout, transport, workers,
 * router, HTTP. Stop order (graceful): refuse new requests, finish in-flight ones, stop workers
 * after their current turn, close Iroh.
 */
import { AggregatorRegistry, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { HttpError } from '../io/http/index.js';
import { HttpServer } from '../io/http/server.js';
import type { HttpTlsOptions } from '../io/http/server.js';
import type { HttpServerOptions } from '../io/http/server.js';
import { decodeTicket } from '../io/ticket.js';
import { Transport } from '../io/transport/index.js';
import type { NodeId } from '../shards/raft/index.js';
import { Router } from '../router/router.js';
import type { Member, RouterOptions } from '../router/router.js';
import { WorkerPool } from '../workers/pool.js';
import type { PoolOptions } from '../workers/pool.js';
import { ConfigError } from './config.js';
import type { NodeConfig } from './config.js';
import { DataDir } from './data-dir.js';
import { settleLater } from './placement.js';
import { DiskAlarm } from './disk-alarm.js';
import { httpLatencyMetric, registerNodeMetrics, registerProcessMetrics } from './node-metrics.js';
import { Snapshots } from '../router/snapshots.js';
import { join } from 'node:path';
import { isLoopback } from '../io/http/index.js';
import { ADMIN_TOKEN_FILE, loadOrCreateAdminToken } from './admin-token.js';
import type { AdminToken } from './admin-token.js';
import { acceptMgmt, adminSurfaces } from './admin-surfaces.js';
import type { AdminSurfaces } from './admin-surfaces.js';
import type { MgmtServer } from '../io/mgmt/index.js';
import type { Discovery } from '../io/discovery/index.js';
import { acceptDiscovery, startDiscovery } from './node-discovery.js';

import { NodeError } from './node-error.js';
import { clusterStart } from './cluster-start.js';
import type { ClusterStart } from './cluster-start.js';
import { ClusterLife } from './cluster-life.js';
import { recordRemoved, writeMetaFile } from './meta-file.js';
import { askSelf } from './cluster-join.js';
import { startLeaderBalance, stopper } from './node-stop.js';
import { loadTls } from './node-tls.js';
import type { ShardSpec } from '../shards/host.js';
export { NodeError };

export interface RunningNode {
  readonly nodeId: NodeId;
  readonly peerId: string;
  readonly ticket: string;
  readonly httpUrl: string;
  readonly router: Router;
  /** Auth on: the admin token file (`<data>/admin.token`); undefined with auth off. */
  readonly adminTokenPath: string | undefined;
  /** Resolves with the reason when this node is removed from its cluster (it should then stop). */
  readonly removed: Promise<string>;
  /** Graceful stop: refuse new requests, finish in-flight ones, flush, close. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  /** Worker entry override (tests running from TypeScript sources). */
  readonly workerUrl?: URL;
  readonly workerData?: Record<string, unknown>;
  /** Called after a crashed shard worker runs again (a new thread, created by this one). */
  readonly onWorkerRestart?: (worker: number) => void;
}

export async function startNode(cfg: NodeConfig, opts: StartOptions): Promise<RunningNode> {
  const log = opts.logger;
  // Before anything starts: a bad certificate is a configuration error, not a half-started node.
  const tls = loadTls(cfg);
  const dir = DataDir.open(cfg.data);
  if (dir.tightened !== undefined)
    log.warn({ data: cfg.data, was: dir.tightened.toString(8), now: '700' }, 'data directory was open to group or others; made it 0700');
  const unlock = await dir.lock();
  let peers: { id: string; addrs: string[] }[];
  let secretKey: Uint8Array;
  let admin: AdminToken | undefined;
  try {
    peers = decodePeers(cfg.peers);
    secretKey = await dir.loadOrCreateKey(log);
    admin = authOf(cfg).on ? await loadOrCreateAdminToken(join(cfg.data, ADMIN_TOKEN_FILE), log) : undefined;
  } catch (e) {
    unlock();
    throw e;
  }
  // The transport starts before the router it delivers to and before the member set is known.
  const late: Late = { memberIds: new Set() };
  // Snapshot streams from members go to the transfers module once the node is assembled.
  const transport = await Transport.start({
    secretKey,
    bindAddr: `${cfg.listen.host.includes(':') ? `[${cfg.listen.host}]` : cfg.listen.host}:${cfg.listen.port}`,
    isMember: (id) => late.memberIds.has(id),
    frameTimeoutMs: cfg.peerFrameTimeoutMs,
    onRecords: (peer, records) => late.router?.onPeerRecords(peer, records),
    onTraffic: (peer) => late.router?.onPeerTraffic(peer),
    onSnapshotStream: (stream) => {
      if (late.snapshots !== undefined) late.snapshots.accept(stream);
      else stream.close('not ready');
    },
    onPeerRestart: (peerId) => {
      late.snapshots?.peerRestarted(peerId);
      // It may be at another address now: tell it where this node is, and hear where it is.
      void late.discovery?.exchange(peerId);
    },
    onMgmtConnection: (conn, peerId) => acceptMgmt(late.mgmt, conn, peerId),
    onDiscoveryConnection: (conn, peerId) => acceptDiscovery(late.discovery, conn, peerId),
    logger: log,
  });
  try {
    return await assemble(cfg, opts, { dir, transport, peers, late, unlock, tls, admin });
  } catch (e) {
    late.discovery?.close();
    await transport.destroy();
    unlock();
    throw e;
  }
}

/** What the transport's callbacks reach, set once the node is assembled. */
interface Late {
  memberIds: Set<string>;
  router?: Router;
  snapshots?: Snapshots;
  /** The HTTP API, whose client load and URL the router reports. */
  http?: HttpServer;
  /** The management server (ALPN `iroh-raft-mgmt/0`); connections before it exists are closed. */
  mgmt?: MgmtServer;
  /** Cluster life: the meta group's record and the replica moves (status). */
  life?: ClusterLife;
  /** Address exchanges with members (ALPN `iroh-raft-discovery/0`); connections before it exists are closed. */
  discovery?: Discovery;
}

interface Started {
  readonly dir: DataDir;
  readonly transport: Transport;
  readonly peers: readonly { id: string; addrs: string[] }[];
  readonly late: Late;
  readonly unlock: () => void;
  readonly tls: HttpTlsOptions | undefined;
  /** Auth on: the admin token; undefined with auth off. */
  readonly admin: AdminToken | undefined;
}

/**
 * Whether auth is on, and why: `--auth` when given, else on for a non-loopback HTTP address (any
 * host on the network could reach it) and off on loopback (only this machine's users can).
 */
export function authOf(cfg: NodeConfig): { readonly on: boolean; readonly why: string } {
  if (cfg.auth !== undefined) return { on: cfg.auth === 'on', why: `--auth ${cfg.auth}` };
  return isLoopback(cfg.http.host) ? { on: false, why: 'HTTP on a loopback address' } : { on: true, why: 'HTTP on a non-loopback address' };
}

/** Everything after the transport: members, the worker pool, the router, metrics and HTTP. */
async function assemble(cfg: NodeConfig, opts: StartOptions, { dir, transport, peers, late, unlock, tls, admin }: Started): Promise<RunningNode> {
  const log = opts.logger;
  const start = await clusterStart(cfg, { dir, transport, peers, log, layout: clusterLayout });
  const { members, self, placement } = start;
  const shards = start.shards;
  // A node that joined takes the cluster's shard count, whatever its own flags say.
  cfg = { ...cfg, shards };
  late.memberIds = new Set(members.map((m) => m.peerId));
  const leaderChanges = { n: 0 };
  const registry = new Registry();
  registerProcessMetrics(registry);
  const known = members.filter((m) => m.peerId !== transport.id).map((m) => ({ id: m.peerId, addrs: peers.find((x) => x.id === m.peerId)?.addrs ?? [] }));
  const discovery = (late.discovery = startDiscovery(cfg, { transport, peers: known, log, registry }));
  const pool = await startPool(cfg, opts, self, start.specs, transport.limits.maxRecordBytes, {
    onRaftMessage: (shard, payload) => late.router?.onLocalRaftMessage(shard, payload),
    onShardEvent: (shard, e) => {
      leaderChanges.n++;
      late.router?.onShardEvent(shard);
      log.debug({ shard, lead: e.lead, term: e.term, role: e.role }, 'shard leader changed');
    },
    onSnapshotRequest: (shard, wish) => late.snapshots?.request(shard, wish),
  });
  await openReplicas(pool, start);
  // The stores exist now, before this node has voted or acknowledged anything: from here on,
  // losing them must stop it from starting as the replica it was (DataDir.checkStores), and so
  // must losing them with `cluster.json` (the key's mark, clusterStart).
  dir.markKeyServed();
  dir.recordStores(cfg.workers);
  dir.recordMeta();
  const snapshots = (late.snapshots = startSnapshots(cfg, self, late, pool, transport, log));
  const disk = await startDiskAlarm(cfg, log);
  const router = startRouter(cfg, start, { pool, transport, snapshots, disk, registry, late });
  late.router = router;
  const settling = settleLater(placement, router, dir, log);
  router.startLiveness();
  const balance = startLeaderBalance(cfg, self, router, pool, snapshots, log, () => late.life);
  const nodeOfPeer = new Map(members.map((m) => [m.peerId, m.nodeId]));
  const life = startLife(cfg, { start, transport, router, pool, discovery, nodeOfPeer, late, log });
  const surfaces = adminSurfaces(
    { ...cfg, shards },
    { admin, router, self, life: life.life, log, registry, isMember: (id) => late.memberIds.has(id), ticket: () => transport.ticket() },
  );
  const http = (late.http = await startHttp(cfg, router, log, { tls, ...surfaces }, httpLatencyMetric(registry)));
  late.mgmt = surfaces.mgmt;
  registerNodeMetrics(registry, {
    router,
    pool,
    transport,
    snapshots,
    leaderChanges,
    http,
    disk,
    balancer: balance.balancer,
    nodeOfPeer,
  });
  log.info(
    { node: self, id: transport.id, ...served(cfg, http, tls), shards: pool.hostedShards().filter((s) => s < shards).length, members: members.length },
    'node started',
  );

  return {
    nodeId: self,
    peerId: transport.id,
    ticket: transport.ticket(),
    httpUrl: http.url,
    router,
    adminTokenPath: admin?.path,
    removed: life.removed,
    close: stopper({ http, mgmt: surfaces.mgmt, discovery, snapshots, pool, router, disk, balance, settling, life: life.life, transport, unlock, log, self }),
  };
}

/** The router over this node's pool and transport, as the cluster's start laid it out. */
function startRouter(
  cfg: NodeConfig,
  start: ClusterStart,
  p: { pool: WorkerPool; transport: Transport; snapshots: Snapshots; disk: DiskAlarm; registry: Registry; late: Late },
): Router {
  return new Router({
    self: start.self,
    members: start.members,
    shards: start.shards,
    replicas: start.replicas,
    placement: start.sets,
    pool: p.pool,
    link: p.transport,
    requestTimeoutMs: cfg.requestTimeoutMs,
    ...admissionOf(cfg),
    livenessIntervalMs: cfg.tickMs,
    livenessTimeoutMs: cfg.tickMs * cfg.electionTicks,
    onPeerDown: (node) => p.snapshots.peerGone(node),
    metrics: () => scrape(p.registry, p.pool),
    writeGuard: p.disk,
    placementHash: start.placement.hash,
    ...statusSources(p.late, p.snapshots),
  });
}

/** The router's admission limits: writes in flight (bytes; count while tenants share) and scan reads. */
function admissionOf(cfg: NodeConfig): Pick<RouterOptions, 'writeBytesMax' | 'writesSharedMax' | 'scanReadsMax' | 'scanTenantReadsMax'> {
  return {
    writeBytesMax: cfg.writeBytesMax,
    writesSharedMax: cfg.writesSharedMax,
    scanReadsMax: cfg.scanReadsMax,
    ...(cfg.scanTenantReadsMax === undefined ? {} : { scanTenantReadsMax: cfg.scanTenantReadsMax }),
  };
}

/** How the start line describes the HTTP API: where, which hosts, TLS, and auth (with why). */
function served(cfg: NodeConfig, http: HttpServer, tls: HttpTlsOptions | undefined): Record<string, unknown> {
  const auth = authOf(cfg);
  return {
    http: http.url,
    allowedHosts: cfg.httpAllowedHosts ?? 'default',
    tls: tls === undefined ? 'off' : tls.ca === undefined ? 'on' : 'mutual',
    auth: auth.on ? 'on' : 'off',
    authWhy: auth.why,
  };
}

/** The disk-space alarm on the data directory (`--disk-free-bytes-min`), its changes logged. */
function startDiskAlarm(cfg: NodeConfig, log: StartOptions['logger']): Promise<DiskAlarm> {
  return DiskAlarm.start({
    path: cfg.data,
    freeBytesMin: cfg.diskFreeBytesMin,
    onChange: (raised, freeBytes) => {
      if (raised)
        log.error({ freeBytes, freeBytesMin: cfg.diskFreeBytesMin, data: cfg.data }, 'disk space low: refusing writes (NoSpace) until space is freed');
      else log.warn({ freeBytes, freeBytesMin: cfg.diskFreeBytesMin }, 'disk space back above the bound: taking writes again');
    },
    onError: (err) => log.warn({ err }, 'could not read the free disk space'),
  });
}

/**
 * /metrics: the workers' series merged among themselves (src/workers/metrics.ts says how), and the
 * main thread's beside them as they are (prom-client's aggregators would drop
 * process_start_time_seconds). Registry.merge refuses a family both define.
 */
async function scrape(registry: Registry, pool: WorkerPool): Promise<{ contentType: string; body: string }> {
  const merged = Registry.merge([registry, AggregatorRegistry.aggregate(await pool.metrics())]);
  return { contentType: registry.contentType, body: await merged.metrics() };
}

/**
 * The members and this node's raft id: every member's peer id sorted, raft ids 1..n in that
 * order, so every node derives the same numbering from the same set of tickets.
 */
function clusterLayout(selfPeer: string, peers: readonly { id: string }[]): { members: Member[]; self: NodeId } {
  const ids = [selfPeer, ...peers.map((p) => p.id)];
  if (new Set(ids).size !== ids.length) throw new NodeError('DuplicateMember', '--peers lists this node or the same member twice');
  const members: Member[] = [...ids].sort().map((peerId, i) => ({ nodeId: (i + 1) as NodeId, peerId }));
  return { members, self: members.find((m) => m.peerId === selfPeer)!.nodeId };
}

function decodePeers(tickets: readonly string[]): { id: string; addrs: string[] }[] {
  try {
    return tickets.map((t) => decodeTicket(t));
  } catch (e) {
    throw new NodeError('InvalidTicket', `--peers: ${e instanceof Error ? e.message : String(e)}`);
  }
}

type PoolEvents = Pick<PoolOptions, 'onRaftMessage' | 'onShardEvent' | 'onSnapshotRequest'>;

/** The worker pool with this node's replicas, configured from the node's config. */
async function startPool(
  cfg: NodeConfig,
  opts: StartOptions,
  self: NodeId,
  specs: readonly ShardSpec[],
  peerRecordBytesMax: number,
  events: PoolEvents,
): Promise<WorkerPool> {
  const pool = await WorkerPool.start({
    // Raft messages and forwarded requests leave as Iroh records: a ring record must fit one.
    peerRecordBytesMax,
    dataDir: cfg.data,
    workers: cfg.workers,
    nodeId: self,
    shards: specs,
    tickMs: cfg.tickMs,
    raft: raftSettings(cfg),
    requestTimeoutMs: cfg.requestTimeoutMs,
    compactEveryEntries: cfg.compactEveryEntries,
    compactKeepEntries: cfg.compactKeepEntries,
    ...events,
    ...(opts.workerUrl ? { workerUrl: opts.workerUrl, workerData: opts.workerData } : {}),
  });
  pool.on('restart', (w, reason) => {
    opts.logger.warn({ worker: w, reason }, 'worker restarted');
    opts.onWorkerRestart?.(w);
  });
  return pool;
}

/**
 * Raft settings of every shard. A new leader with nothing proposed goes quiet after one idle tick
 * (not `--quiesce-after-ticks`): at the first start of many shards, heartbeats for every group
 * between its election and its going quiet were more than the workers could step. First campaigns
 * are staggered by two election timeouts per rank, so one preferred replica of each group
 * campaigns alone and elections stop colliding (see campaignRankOf).
 */
function raftSettings(cfg: NodeConfig): NonNullable<PoolOptions['raft']> {
  return {
    electionTimeoutTicks: cfg.electionTicks,
    quiesceAfterTicks: cfg.quiesceAfterTicks,
    quiesceNewLeaderAfterTicks: Math.min(1, cfg.quiesceAfterTicks),
    campaignStaggerTicks: 2 * cfg.electionTicks,
  };
}

/**
 * The replicas a restart holds (every shard its stores have), and the meta group's founding
 * replica in a founder's directory from before the meta group; the pool opened the first start's
 * founding replicas itself.
 */
async function openReplicas(pool: WorkerPool, start: ClusterStart): Promise<void> {
  if (start.openStored) {
    const stored: ShardSpec[] = [];
    for (let w = 0; w < pool.workers; w++) for (const shard of await pool.control(w).storedShards()) stored.push({ shard, voters: [] });
    await pool.openShards(stored);
  }
  if (start.createMeta !== undefined) await pool.openShards([start.createMeta]);
}

/**
 * Cluster life (src/main/cluster-life.ts), with what follows a change of members: the transport
 * accepts and dials the new ones (through discovery's address book), forgets the removed ones,
 * metrics name them, and `meta.json` keeps the record for the next start.
 */
function startLife(
  cfg: NodeConfig,
  p: {
    start: ClusterStart;
    transport: Transport;
    router: Router;
    pool: WorkerPool;
    discovery: Discovery;
    nodeOfPeer: Map<string, NodeId>;
    late: Late;
    log: Logger;
  },
): { life: ClusterLife; removed: Promise<string> } {
  let onRemoved: (why: string) => void = () => undefined;
  const removed = new Promise<string>((resolve) => (onRemoved = resolve));
  const life = new ClusterLife({
    self: p.start.self,
    selfId: p.transport.id,
    shards: p.start.shards,
    replicas: p.start.replicas,
    router: p.router,
    pool: p.pool,
    founders: p.start.founders,
    pollMs: cfg.metaPollMs,
    deadNodeTimeoutMs: cfg.deadNodeTimeoutMs,
    lagMax: 64,
    log: p.log,
    onMembers: (view) => {
      const live = view.meta.members.filter((m) => m.state !== 'removed');
      const ids = new Set(live.map((m) => m.id));
      for (const id of p.late.memberIds) if (!ids.has(id)) p.transport.removePeer(id);
      p.late.memberIds = ids;
      p.discovery.setMembers(live.filter((m) => m.id !== p.transport.id).map((m) => ({ id: m.id, addrs: m.addrs })));
      p.nodeOfPeer.clear();
      for (const m of live) p.nodeOfPeer.set(m.id, m.node as NodeId);
      try {
        writeMetaFile(cfg.data, view.version, view.meta);
      } catch (e) {
        p.log.warn({ err: e }, 'could not store the cluster metadata in meta.json');
      }
    },
    askSelf: () =>
      askSelf(
        p.transport,
        [...p.late.memberIds].filter((id) => id !== p.transport.id),
        (id) => p.discovery.status().members.find((m) => m.id === id)?.addrs ?? [],
        5_000,
      ),
    onRemoved: (why) => {
      p.log.error({ why }, 'this node was removed from its cluster: it stops serving');
      try {
        // Learned from the members, the record here may not say so yet: the next start must refuse.
        recordRemoved(cfg.data, p.start.self);
      } catch (e) {
        p.log.warn({ err: e }, 'could not record the removal in meta.json');
      }
      onRemoved(why);
    },
  });
  p.late.life = life;
  life.start();
  return { life, removed };
}

/** Snapshot transfers to and from this node's replicas (see src/router/snapshots.ts). */
function startSnapshots(cfg: NodeConfig, self: NodeId, late: Late, pool: WorkerPool, transport: Transport, log: Logger): Snapshots {
  return new Snapshots({
    self,
    pool,
    connect: (peerId) => transport.openSnapshotStream(peerId),
    // Members change: the router has the current ones.
    peerOf: (node) => late.router?.peerOf(node),
    stagingDir: join(cfg.data, 'staging'),
    bytesPerSecMax: cfg.snapshotBytesPerSec,
    offerTimeoutMs: cfg.snapshotOfferTimeoutMs,
    log,
  });
}

/**
 * The client API on `cfg.http`, with the node's limits for bodies and connections, its host
 * allow-list, and HTTPS when configured. ConfigError InvalidConfig for TLS files that cannot be
 * read or loaded, or a bad allow-list.
 */
async function startHttp(
  cfg: NodeConfig,
  service: Router,
  log: StartOptions['logger'],
  { tls, auth, roles, members }: { tls: HttpTlsOptions | undefined } & Pick<AdminSurfaces, 'auth' | 'roles' | 'members'>,
  onAnswered: NonNullable<HttpServerOptions['onAnswered']>,
): Promise<HttpServer> {
  try {
    return await HttpServer.start({
      onAnswered,
      host: cfg.http.host,
      port: cfg.http.port,
      service,
      logger: log,
      bodiesBytesMax: cfg.httpBodiesBytesMax,
      connectionsMax: cfg.httpConnectionsMax,
      ...(cfg.httpAllowedHosts === undefined ? {} : { allowedHosts: cfg.httpAllowedHosts }),
      ...(tls === undefined ? {} : { tls }),
      ...(auth === undefined ? {} : { auth }),
      roles,
      members,
    });
  } catch (e) {
    if (e instanceof HttpError && e.code === 'InvalidConfig') throw new ConfigError('InvalidConfig', e.message);
    throw e;
  }
}

/** What the router's status reports besides its own: the HTTP server's client load and URL, and snapshot transfers. */
function statusSources(late: Late, snapshots: Snapshots): Pick<RouterOptions, 'load' | 'snapshotsActive' | 'discovery' | 'cluster'> {
  return {
    cluster: () => ({ ...(late.life?.status() ?? { moves: [] }) }),
    discovery: () => late.discovery?.status(),
    load: () => late.http && { ...late.http.clientLoad(), httpUrl: late.http.url },
    snapshotsActive: () => snapshots.active(),
  };
}
