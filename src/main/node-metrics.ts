/** The node's own metrics (router, liveness, pool, transport), read when /metrics is scraped. */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { HttpServer } from '../io/http/index.js';
import type { Transport } from '../io/transport/index.js';
import type { Router } from '../router/router.js';
import type { Snapshots } from '../router/snapshots.js';
import type { WorkerPool } from '../workers/pool.js';

export interface NodeParts {
  readonly router: Router;
  readonly pool: WorkerPool;
  readonly transport: Transport;
  readonly snapshots: Snapshots;
  readonly leaderChanges: { readonly n: number };
  readonly http: HttpServer;
}

type GaugeOf = (name: string, help: string, read: () => number) => void;

export function registerNodeMetrics(registry: Registry, parts: NodeParts): void {
  const gauge: GaugeOf = (name, help, read) => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  const { router: r, pool: p, transport } = parts;
  registerAdmissionMetrics(gauge, parts);
  // The main thread carries the router, HTTP and every byte through Iroh: when it lags, raft
  // messages (heartbeats among them) reach the workers late.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  gauge('iroh_raft_main_event_loop_lag_p99_seconds', "The main thread's event-loop delay, 99th percentile since start.", () => lag.percentile(99) / 1e9);
  gauge('iroh_raft_main_event_loop_lag_max_seconds', "The main thread's event-loop delay, the largest since start.", () => lag.max / 1e9);
  const sc = parts.snapshots.counters;
  gauge('iroh_raft_snapshots_sent_total', 'Snapshots this node streamed to a follower and saw handed to its core.', () => sc.sent);
  gauge('iroh_raft_snapshots_send_failures_total', 'Snapshot transfers this node sent that failed (retried with backoff).', () => sc.sendFailures);
  gauge('iroh_raft_snapshots_send_busy_total', 'Snapshot offers a busy receiver deferred.', () => sc.sendBusy);
  gauge('iroh_raft_snapshots_send_stale_total', 'Snapshot offers the receiver did not need (it held that index).', () => sc.sendStale);
  gauge('iroh_raft_snapshots_sent_bytes_total', 'Snapshot stream bytes sent (deflated chunks).', () => sc.bytesSent);
  gauge('iroh_raft_snapshots_send_seconds_total', 'Time spent in snapshot transfers that completed, sending.', () => sc.sendMs / 1000);
  gauge('iroh_raft_snapshots_sending', 'Snapshot transfers this node is sending now.', () => parts.snapshots.active().sending);
  gauge('iroh_raft_snapshots_receiving', 'Snapshot transfers this node is receiving now.', () => parts.snapshots.active().receiving);
  gauge('iroh_raft_snapshots_received_total', 'Snapshots this node received whole and handed to a shard.', () => sc.received);
  gauge('iroh_raft_snapshots_receive_failures_total', 'Snapshot transfers this node received that failed (nothing installed).', () => sc.receiveFailures);
  gauge('iroh_raft_snapshots_receive_busy_total', 'Snapshot offers this node deferred as busy.', () => sc.receiveBusy);
  gauge('iroh_raft_snapshots_received_bytes_total', 'Snapshot stream bytes received (deflated chunks).', () => sc.bytesReceived);
  gauge('iroh_raft_snapshots_receive_seconds_total', 'Time spent in snapshot transfers that completed, receiving.', () => sc.receiveMs / 1000);
  gauge('iroh_raft_router_forwarded_total', 'Client requests this node forwarded to a leader.', () => r.counters.forwarded);
  gauge('iroh_raft_router_retries_total', 'Client request attempts retried after NotLeader and the like.', () => r.counters.retries);
  gauge(
    'iroh_raft_router_replies_too_large_total',
    'Forwarded requests whose reply exceeded a peer record, answered ReplyTooLarge.',
    () => r.counters.repliesTooLarge,
  );
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
  gauge(
    'iroh_raft_pool_bytes_refused_total',
    'Client requests answered Overloaded because inflightBytesMax of request bytes were in flight.',
    () => p.counters.bytesRefused,
  );
  gauge('iroh_raft_pool_worker_restarts_total', 'Worker threads restarted after a crash.', () => p.counters.restarts);
  gauge('iroh_raft_transport_bytes_sent_total', 'Bytes sent to peers over Iroh.', () => transport.stats().bytesSent);
  gauge('iroh_raft_transport_bytes_received_total', 'Bytes received from peers over Iroh.', () => transport.stats().bytesReceived);
  gauge('iroh_raft_transport_records_sent_total', 'Records sent to peers over Iroh.', () => transport.stats().recordsSent);
  gauge('iroh_raft_transport_frames_sent_total', 'Frames (batches of records) sent to peers over Iroh.', () => transport.stats().framesSent);
  gauge('iroh_raft_shard_leader_changes_total', "Leader changes seen by this node's replicas.", () => parts.leaderChanges.n);
}

/** What waits for room, and how much is held: client writes (writeBytesMax) and request bodies. */
function registerAdmissionMetrics(gauge: GaugeOf, parts: NodeParts): void {
  const r = parts.router;
  gauge(
    'iroh_raft_router_write_bytes_refused_total',
    'Writes answered Overloaded after waiting half their deadline behind writeBytesMax of writes in flight through this node.',
    () => r.counters.writeBytesRefused,
  );
  gauge('iroh_raft_router_write_bytes_inflight', 'Bytes of client writes in flight through this node (at most writeBytesMax).', () => r.writeRoom.heldBytes);
  gauge('iroh_raft_router_writes_waiting', 'Client writes waiting for room under writeBytesMax.', () => r.writeRoom.waiting);
  gauge(
    'iroh_raft_http_body_bytes_held',
    'Bytes of request bodies being read or served (at most --http-bodies-bytes-max).',
    () => parts.http.bodyRoom.heldBytes,
  );
  gauge('iroh_raft_http_connections_refused_total', 'HTTP connections answered 503 Overloaded at --http-connections-max.', () => parts.http.connectionsRefused);
  gauge(
    'iroh_raft_http_requests_waiting_for_body_room',
    'Requests waiting, their body unread, for room under --http-bodies-bytes-max.',
    () => parts.http.bodyRoom.waiting,
  );
}
