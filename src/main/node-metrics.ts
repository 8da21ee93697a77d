/**
 * The node's own metrics (router, liveness, pool, transport, snapshots, HTTP), read when /metrics
 * is scraped, and the process metrics, collected here once per node: on the main thread, never in
 * a worker (every worker would report the same process, and the merge would add them up).
 */
import { Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { Registry } from 'prom-client';
import type { HttpServer, HttpServerOptions } from '../io/http/index.js';
import type { Transport } from '../io/transport/index.js';
import type { Router } from '../router/router.js';
import type { Snapshots } from '../router/snapshots.js';
import { LATENCY_BUCKETS_SECONDS, counterFrom, gaugeFrom } from '../workers/metrics.js';
import type { WorkerPool } from '../workers/pool.js';
import type { DiskAlarm } from './disk-alarm.js';
import type { LeaderBalancer } from '../router/leader-balance.js';
import type { NodeId } from '../shards/raft/index.js';

export interface NodeParts {
  readonly router: Router;
  readonly pool: WorkerPool;
  readonly transport: Transport;
  readonly snapshots: Snapshots;
  readonly leaderChanges: { readonly n: number };
  readonly http: HttpServer;
  readonly disk: DiskAlarm;
  readonly balancer: LeaderBalancer;
  /** Raft node id of each member's endpoint id: the `peer` label of per-peer series (bounded by the members). */
  readonly nodeOfPeer: ReadonlyMap<string, NodeId>;
}

type Read = (name: string, help: string, read: () => number) => void;

/**
 * prom-client's default process metrics under their standard names (`process_*`, `nodejs_*`),
 * which dashboards and alerts for Node.js services expect; the scrape's `instance` tells the
 * nodes apart. They describe the main thread (event-loop lag, heap, GC) and the whole process
 * (CPU, RSS, file descriptors). Three gauges prom-client names `_total` (active handles,
 * requests and resources: counts now, not counters) are left out; the same counts by type stay
 * as `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources`.
 */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}

/**
 * `iroh_raft_http_request_duration_seconds{route,code}`: for {@link HttpServerOptions.onAnswered}.
 * `route` is the API route's name (a fixed set), `code` the HTTP status.
 */
export function httpLatencyMetric(registry: Registry): NonNullable<HttpServerOptions['onAnswered']> {
  const h = new Histogram({
    name: 'iroh_raft_http_request_duration_seconds',
    help: 'HTTP API requests answered: seconds from arrival to the end of the reply, by route name and status code.',
    labelNames: ['route', 'code'],
    buckets: [...LATENCY_BUCKETS_SECONDS],
    registers: [registry],
  });
  return (route, status, seconds) => h.observe({ route, code: String(status) }, seconds);
}

export function registerNodeMetrics(registry: Registry, parts: NodeParts): void {
  const counter: Read = (name, help, read) => counterFrom(registry, name, help, read);
  const gauge: Read = (name, help, read) => gaugeFrom(registry, name, help, read);
  const { router: r, pool: p } = parts;
  registerAdmissionMetrics(counter, gauge, parts);
  registerBalanceMetrics(counter, parts);
  registerSnapshotMetrics(counter, gauge, parts.snapshots);
  registerTransportMetrics(registry, counter, gauge, parts);
  registerQuotaMetrics(counter, gauge, parts.router);
  counter('iroh_raft_router_forwarded_total', 'Client requests this node forwarded to a leader.', () => r.counters.forwarded);
  counter('iroh_raft_router_retries_total', 'Client request attempts retried after NotLeader and the like.', () => r.counters.retries);
  counter(
    'iroh_raft_router_replies_too_large_total',
    'Forwarded requests whose reply exceeded a peer record, answered ReplyTooLarge.',
    () => r.counters.repliesTooLarge,
  );
  counter('iroh_raft_router_spoofed_total', 'Raft messages refused because their sender was not the connection peer.', () => r.counters.spoofed);
  const lc = r.liveness.counters;
  counter('iroh_raft_liveness_peers_down_total', 'Peers declared gone after a liveness timeout of silence.', () => lc.peersDown);
  counter('iroh_raft_liveness_peers_up_total', 'Peers heard again after being declared gone.', () => lc.peersUp);
  counter('iroh_raft_liveness_workers_down_total', 'Workers of peers that their liveness records reported stopped.', () => lc.workersDown);
  counter('iroh_raft_liveness_bad_records_total', 'Liveness records whose payload did not decode (ignored).', () => lc.bad);
  counter('iroh_raft_liveness_wakes_total', 'Wake rounds run on behalf of a peer (at most one per peer per election timeout).', () => lc.wakes);
  counter('iroh_raft_liveness_wakes_coalesced_total', 'Reasons to wake folded into a round a peer already owed.', () => lc.wakesCoalesced);
  counter('iroh_raft_liveness_wake_shards_total', 'Shards named in wake requests: the work peers coming and going cost.', () => lc.wakeShards);
  counter('iroh_raft_liveness_shards_woken_total', 'Quiet replicas here that liveness woke.', () => r.counters.shardsWoken);
  gauge('iroh_raft_pool_inflight_requests', 'Requests waiting for a worker reply.', () => p.inflight());
  counter(
    'iroh_raft_pool_requests_refused_total',
    'Client requests answered Overloaded because inflightBytesMax of request bytes were in flight to the workers.',
    () => p.counters.bytesRefused,
  );
  counter('iroh_raft_pool_worker_restarts_total', 'Worker threads restarted after a crash.', () => p.counters.restarts);
  counter(
    'iroh_raft_shard_leader_changes_total',
    "Leader or role changes of this node's replicas (each one reported to the router).",
    () => parts.leaderChanges.n,
  );
}

/** Byte and key quotas of tenants (src/router/quotas.ts; auth on only: zero otherwise). */
function registerQuotaMetrics(counter: Read, gauge: Read, r: Router): void {
  const q = (k: 'refused' | 'unchecked' | 'refreshes' | 'refreshFailures') => (): number => r.quotas?.counters[k] ?? 0;
  counter('iroh_raft_quota_writes_refused_total', 'Writes answered QuotaExceeded (never proposed): past the tenant bytesMax or keysMax.', q('refused'));
  counter('iroh_raft_quota_writes_unchecked_total', 'Writes of tenants with a quota let through unchecked: no usage sum could be read yet.', q('unchecked'));
  counter('iroh_raft_quota_usage_reads_total', "Sums of a tenant's usage over the shards (one Usage query per shard).", q('refreshes'));
  counter('iroh_raft_quota_usage_read_failures_total', 'Usage sums that failed (a shard did not answer); the last sum is kept.', q('refreshFailures'));
  gauge('iroh_raft_quota_tenants_cached', 'Tenants whose usage sum this node holds (at most 10,000).', () => r.quotas?.size ?? 0);
}

/** Snapshot transfers this node sends and receives (src/router/snapshots.ts). */
function registerSnapshotMetrics(counter: Read, gauge: Read, snapshots: Snapshots): void {
  const sc = snapshots.counters;
  counter('iroh_raft_snapshots_sent_total', 'Snapshots this node streamed to a follower and saw handed to its core.', () => sc.sent);
  counter('iroh_raft_snapshots_send_failures_total', 'Snapshot transfers this node sent that failed (retried with backoff).', () => sc.sendFailures);
  counter('iroh_raft_snapshots_send_busy_total', 'Snapshot offers a busy receiver deferred.', () => sc.sendBusy);
  counter('iroh_raft_snapshots_send_stale_total', 'Snapshot offers the receiver did not need (it held that index).', () => sc.sendStale);
  counter('iroh_raft_snapshots_sent_bytes_total', 'Snapshot stream bytes sent (deflated chunks).', () => sc.bytesSent);
  counter('iroh_raft_snapshots_send_seconds_total', 'Time spent in snapshot transfers that completed, sending.', () => sc.sendMs / 1000);
  gauge('iroh_raft_snapshots_sending', 'Snapshot transfers this node is sending now.', () => snapshots.active().sending);
  gauge('iroh_raft_snapshots_receiving', 'Snapshot transfers this node is receiving now.', () => snapshots.active().receiving);
  counter('iroh_raft_snapshots_received_total', 'Snapshots this node received whole and handed to a shard.', () => sc.received);
  counter('iroh_raft_snapshots_receive_failures_total', 'Snapshot transfers this node received that failed (nothing installed).', () => sc.receiveFailures);
  counter('iroh_raft_snapshots_receive_busy_total', 'Snapshot offers this node deferred as busy.', () => sc.receiveBusy);
  counter(
    'iroh_raft_snapshots_receive_unoffered_total',
    'Snapshot streams closed without an offer (offer deadline passed, or too many awaiting one).',
    () => sc.receiveUnoffered,
  );
  counter('iroh_raft_snapshots_received_bytes_total', 'Snapshot stream bytes received (deflated chunks).', () => sc.bytesReceived);
  counter('iroh_raft_snapshots_receive_seconds_total', 'Time spent in snapshot transfers that completed, receiving.', () => sc.receiveMs / 1000);
}

/** Raft traffic over Iroh: totals, and what waits in each peer's queue. */
function registerTransportMetrics(registry: Registry, counter: Read, gauge: Read, parts: NodeParts): void {
  const { transport } = parts;
  // One stats() per scrape: the first series registered here refreshes it for the others (a
  // scrape collects in registration order).
  let st = transport.stats();
  counter(
    'iroh_raft_transport_sent_bytes_total',
    'Bytes sent to peers on raft streams (frames and their length prefixes).',
    () => (st = transport.stats()).bytesSent,
  );
  counter('iroh_raft_transport_received_bytes_total', 'Bytes received from peers on raft streams.', () => st.bytesReceived);
  counter('iroh_raft_transport_records_sent_total', 'Records (raft messages, forwarded requests, replies) sent to peers.', () => st.recordsSent);
  counter('iroh_raft_transport_records_received_total', 'Records received from peers.', () => st.recordsReceived);
  counter('iroh_raft_transport_frames_sent_total', 'Frames (batches of records) sent to peers.', () => st.framesSent);
  counter('iroh_raft_transport_frames_received_total', 'Frames received from peers.', () => st.framesReceived);
  counter(
    'iroh_raft_transport_records_dropped_total',
    'Records not sent: peer queue full, breaker open, no address, lost with a broken connection, or sent after close.',
    () => st.dropped,
  );
  counter(
    'iroh_raft_transport_protocol_errors_total',
    'Malformed hellos or frames and oversized lengths from peers (each closed its connection).',
    () => st.protocolErrors,
  );
  counter('iroh_raft_transport_refused_total', 'Connections and frames refused because the peer is not a member.', () => st.refused);
  counter('iroh_raft_transport_dial_failures_total', 'Dials to peers that failed (timeout, refused, unreachable, bad hello).', () => st.dialFailures);
  counter('iroh_raft_transport_handshake_failures_total', 'Inbound connections that failed before their hello.', () => st.handshakeFailures);
  const peers = Object.values;
  gauge('iroh_raft_transport_queued_bytes', 'Bytes queued for peers, all of them together.', () => peers(st.peers).reduce((a, q) => a + q.queuedBytes, 0));
  gauge('iroh_raft_transport_queued_records', 'Records queued for peers, all of them together.', () =>
    peers(st.peers).reduce((a, q) => a + q.queuedRecords, 0),
  );
  new Gauge({
    name: 'iroh_raft_transport_peer_queued_bytes',
    help: 'Bytes queued for one peer (label peer: its raft node id); at the peer queue bound new records are dropped.',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [id, q] of Object.entries(st.peers)) this.set({ peer: String(parts.nodeOfPeer.get(id) ?? 'unknown') }, q.queuedBytes);
    },
  });
}

/** Client writes through the router: held (writesSharedMax, writeBytesMax), waiting in their tenants' lines, refused. */
function registerWriteGateMetrics(counter: Read, gauge: Read, r: NodeParts['router']): void {
  counter(
    'iroh_raft_router_writes_refused_total',
    'Writes answered Overloaded after waiting half their deadline behind writesSharedMax or writeBytesMax of writes in flight through this node.',
    () => r.counters.writeBytesRefused,
  );
  gauge('iroh_raft_router_write_inflight_bytes', 'Bytes of client writes in flight through this node (at most writeBytesMax).', () => r.writeRoom.heldBytes);
  gauge(
    'iroh_raft_router_writes_inflight',
    'Client writes in flight through this node (at most writesSharedMax while two or more tenants write).',
    () => r.writeRoom.heldWrites,
  );
  gauge(
    'iroh_raft_router_writes_waiting',
    "Client writes waiting for room under writesSharedMax or writeBytesMax, each in its tenant's line.",
    () => r.writeRoom.waiting,
  );
}

/** Leadership transfers of the leader balancer (src/router/leader-balance.ts). */
function registerBalanceMetrics(counter: Read, parts: NodeParts): void {
  counter(
    'iroh_raft_leader_transfers_started_total',
    'Leadership transfers this node started to balance leaders over the nodes.',
    () => parts.balancer.counters.transfersStarted,
  );
  counter(
    'iroh_raft_leader_transfers_refused_total',
    'Planned balancing transfers a shard refused (it no longer led here, or the target was no voter).',
    () => parts.balancer.counters.transfersRefused,
  );
  counter(
    'iroh_raft_leader_transfers_failed_total',
    'Planned balancing transfers whose call failed (a worker restarting, an error from the worker).',
    () => parts.balancer.counters.transfersFailed,
  );
  counter(
    'iroh_raft_leaderships_refused_total',
    'Leaderships offered to this node (TimeoutNow) while it was stopping, refused: the offering leader keeps the shard.',
    () => parts.router.counters.leadershipsRefused,
  );
}

/** Scans and their shard reads: running, waiting for a slot (--scan-reads-max), refused at their deadline. */
function registerScanMetrics(counter: Read, gauge: Read, b: NodeParts['router']['scanBudget']): void {
  gauge('iroh_raft_scan_reads_inflight', 'Shard reads of scans running on this node (at most --scan-reads-max).', () => b.inflight);
  gauge('iroh_raft_scan_reads_waiting', 'Shard reads of scans waiting for a slot (node-wide or their tenant share).', () => b.waiting);
  gauge('iroh_raft_scans_running', 'Scans admitted and asking shards (at most --scan-reads-max / 4 node-wide).', () => b.scansRunning);
  gauge('iroh_raft_scans_waiting', 'Scans waiting for their turn, first come first served.', () => b.scansWaiting);
  counter('iroh_raft_scans_refused_total', 'Scans whose turn did not come before their deadline (answered Overloaded, no shard asked).', () => b.scansRefused);
  counter(
    'iroh_raft_scan_reads_refused_total',
    'Shard reads of scans that found no slot before their deadline (the scan answered Overloaded).',
    () => b.refused,
  );
}

/** What waits for room, and how much is held: client writes (writeBytesMax) and request bodies. */
function registerAdmissionMetrics(counter: Read, gauge: Read, parts: NodeParts): void {
  const r = parts.router;
  registerWriteGateMetrics(counter, gauge, r);
  counter(
    'iroh_raft_router_writes_refused_no_space_total',
    'Writes answered NoSpace (never proposed) while the disk-space alarm was up, local and forwarded in.',
    () => r.counters.writesRefusedNoSpace,
  );
  gauge(
    'iroh_raft_disk_free_bytes',
    "Free bytes of the data directory's file system at the last reading (usable without privileges).",
    () => parts.disk.freeBytes,
  );
  gauge(
    'iroh_raft_disk_free_min_bytes',
    'The bound below which writes are refused (--disk-free-bytes-min; 0: the alarm is off).',
    () => parts.disk.freeBytesMin,
  );
  gauge('iroh_raft_disk_alarm', '1 while the disk-space alarm is up (writes refused with NoSpace), else 0.', () => (parts.disk.raised ? 1 : 0));
  counter('iroh_raft_disk_alarms_total', 'Times the disk-space alarm was raised.', () => parts.disk.raisedCount);
  registerScanMetrics(counter, gauge, r.scanBudget);
  gauge(
    'iroh_raft_http_body_held_bytes',
    'Bytes of request bodies being read or served (at most --http-bodies-bytes-max).',
    () => parts.http.bodyRoom.heldBytes,
  );
  counter(
    'iroh_raft_http_connections_refused_total',
    'HTTP connections answered 503 Overloaded at --http-connections-max.',
    () => parts.http.connectionsRefused,
  );
  counter(
    'iroh_raft_http_hosts_refused_total',
    'HTTP requests answered 421 HostNotAllowed (their Host is not in --http-allowed-hosts).',
    () => parts.http.hostsRefused,
  );
  counter(
    'iroh_raft_http_unauthorized_total',
    'HTTP requests answered 401 Unauthorized (auth on: no valid bearer token).',
    () => parts.http.authRefused.unauthorized,
  );
  counter(
    'iroh_raft_http_forbidden_total',
    "HTTP requests answered 403 Forbidden (a tenant's token naming another tenant or an admin route).",
    () => parts.http.authRefused.forbidden,
  );
  counter(
    'iroh_raft_http_rate_limited_total',
    "HTTP requests answered 429 RateLimited (over their tenant's requestsPerSec on this node).",
    () => parts.http.authRefused.rateLimited,
  );
  gauge('iroh_raft_http_rate_buckets', 'Per-tenant rate buckets held on this node (bounded).', () => parts.http.authRefused.rateBuckets);
  gauge(
    'iroh_raft_http_requests_waiting_for_body_room',
    'Requests waiting, their body unread, for room under --http-bodies-bytes-max.',
    () => parts.http.bodyRoom.waiting,
  );
}
