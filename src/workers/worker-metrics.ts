/**
 * One worker's Prometheus metrics: the shard host's counts, the raft cores' events summed over the
 * worker's shards, commit and apply latency histograms, and the worker's own counts (outbox, bad
 * records). The main thread merges every worker's registry into /metrics (see metrics.ts).
 * Counters and gauges carry a `worker` label (a handful of values): a restarted worker starts its
 * counts again from zero, and with its own series Prometheus sees a reset of that series alone.
 * The latency histograms carry none: they are merged over workers into one per node.
 */
import { getHeapStatistics } from 'node:v8';
import { Histogram, Registry } from 'prom-client';
import type { HostCounters, HostLatency, RaftTotals } from '../shards/host.js';
import type { StoreObserver } from '../shards/store.js';
import { LATENCY_BUCKETS_SECONDS, counterFrom, gaugeFrom } from './metrics.js';

/** What the metrics read at scrape time. */
export interface WorkerCounted {
  readonly host: {
    readonly counters: Readonly<HostCounters>;
    activeShards(): number;
    raftTotals(): RaftTotals;
  };
  readonly outbox: {
    readonly counters: { readonly messagesDropped: number; readonly held: number; readonly eventsCoalesced: number };
    records(): number;
    bytes(): number;
  };
  readonly local: { readonly badRecords: number; readonly oversizeDrops: number; readonly clientWorkRefused: number; readonly repliesTooLarge: number };
}

/** What each host counter counts (a Record, so a new counter cannot be left out). */
const HOST_HELP: Record<keyof HostCounters, string> = {
  turns: 'Shard host turns that handled at least one Ready.',
  commits: 'Durable writes of turns (a write-ahead log record, or an LMDB commit for a turn that installs a snapshot; every shard of the worker in it).',
  checkpoints: 'LMDB commits of what the write-ahead log holds (data, applied indexes, log entries), with the compactions due.',
  entriesPersisted: 'Raft log entries written durably.',
  entriesApplied: 'Committed entries applied to the state machine.',
  proposals: 'Client proposals accepted by a leader here.',
  proposalsRefused: 'Client proposals the raft core refused (not leader, uncommitted bytes full, transfer in progress).',
  logClockEntries: 'Log clock entries written by leaders here (log time for client sessions).',
  replies: 'Replies to client proposals and reads, errors included.',
  reads: 'Client reads started (linearizable, lease or stale).',
  messagesSent: 'Raft messages handed to the transport or to local replicas.',
  snapshotsInstalled: 'Snapshots installed into a shard here.',
  snapshotsRequested: 'Snapshot transfers the raft cores here asked for (to a lagging follower).',
  snapshotsStaged: 'Received snapshots stepped into a core (installed, or refused as stale).',
  snapshotMessagesDropped: 'Snapshot raft messages that came without data and were dropped (snapshots travel on their own stream).',
  compactions: 'Log compactions.',
  duplicateProposals: 'Proposals applied once already (a client retry), answered from the session.',
  sessionsExpired: 'Client sessions expired by log time.',
  ticks: 'Worker ticks run (each ticks every shard that is not quiet).',
  ticksLate: "Ticks that moved the shards' clocks but ran no timers: due in a row after a stall, or while a pass ran (long commit, GC pause, many shards).",
};

/** Metric name and help of each summed raft total. */
const RAFT_METRICS: Record<keyof RaftTotals, [string, string]> = {
  elections: ['iroh_raft_shard_elections_started_total', 'Elections started by replicas here (vote rounds, after a won pre-vote when pre-vote is on).'],
  preVotes: ['iroh_raft_shard_pre_votes_started_total', 'Pre-vote rounds started by replicas here.'],
  leaderships: ['iroh_raft_shard_leaderships_won_total', 'Elections won by replicas here (a replica here became leader).'],
  stepDowns: ['iroh_raft_shard_leader_step_downs_total', 'Leaders here that stepped down (higher term seen, check-quorum lost, transfer).'],
  readRounds: ['iroh_raft_shard_read_index_rounds_total', 'ReadIndex quorum rounds (one round serves every read queued before it).'],
  leaseReads: ['iroh_raft_shard_lease_reads_total', "Reads served on a leader's lease, without a quorum round."],
  transfersAborted: ['iroh_raft_shard_transfers_aborted_total', 'Leadership transfers aborted (timed out or cancelled).'],
  quiesced: ['iroh_raft_shard_quiesced_total', 'Times a leader here made its group go quiet.'],
  stallProbes: [
    'iroh_raft_shard_stall_probes_total',
    'Followers a leader here probed again because their acknowledgments stood still too long (lost messages, a restarted follower).',
  ],
  messagesFolded: [
    'iroh_raft_shard_messages_folded_total',
    'Raft messages folded into one queued before them for the same replica in the same turn (a commit index raised, an answer merged) instead of sent.',
  ],
};

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The worker's registry, and the latency sinks its shard host and its store report to. */
export function workerMetrics(worker: number): { registry: Registry; latency: HostLatency; store: StoreObserver; register(c: WorkerCounted): void } {
  const registry = new Registry();
  const histogram = (name: string, help: string): Histogram => new Histogram({ name, help, buckets: [...LATENCY_BUCKETS_SECONDS], registers: [registry] });
  const commit = histogram(
    'iroh_raft_shard_commit_seconds',
    'Client proposals on the leader: time from proposal to commit (its entry handed out for applying).',
  );
  const apply = histogram(
    'iroh_raft_shard_apply_seconds',
    'Committed entries: time from being handed out for applying to applied, the turn written (one observation per entry; the data reaches LMDB at the next checkpoint).',
  );
  const walSync = histogram('iroh_raft_wal_fsync_seconds', "A turn's write-ahead log records: time to write them and fdatasync.");
  const checkpoint = histogram(
    'iroh_raft_checkpoint_seconds',
    'Checkpoints: time of the LMDB transaction that writes what the write-ahead log holds (and what waited in memory), flushed.',
  );
  const store: StoreObserver = { walSync: (s) => walSync.observe(s), checkpoint: (s) => checkpoint.observe(s) };
  const latency: HostLatency = {
    commit: (s) => commit.observe(s),
    apply: (s, n) => {
      for (let i = 0; i < n; i++) apply.observe(s);
    },
  };
  gaugeFrom(
    registry,
    'iroh_raft_worker_heap_used_bytes',
    "V8 heap in use by this worker thread (each worker has its own; nodejs_heap_* are the main thread's).",
    () => getHeapStatistics().used_heap_size,
    { worker: String(worker) },
  );
  return { registry, latency, store, register: (counted) => registerCounts(registry, worker, counted) };
}

/** The worker's counts and gauges, read at scrape time. */
function registerCounts(registry: Registry, worker: number, { host, outbox, local }: WorkerCounted): void {
  const w = { worker: String(worker) };
  for (const name of Object.keys(HOST_HELP) as (keyof HostCounters)[]) {
    counterFrom(registry, `iroh_raft_host_${snake(name)}_total`, HOST_HELP[name], () => host.counters[name], w);
  }
  // Summed once per scrape for all of them (a sum over every shard): a scrape collects every
  // metric in registration order, so the first of them refreshes what the others read.
  let raft = host.raftTotals();
  (Object.keys(RAFT_METRICS) as (keyof RaftTotals)[]).forEach((key, i) => {
    const [name, help] = RAFT_METRICS[key];
    counterFrom(registry, name, help, () => (i === 0 ? (raft = host.raftTotals()) : raft)[key], w);
  });
  gaugeFrom(
    registry,
    'iroh_raft_host_active_shards',
    'Shards that are not quiet: their ticks do work (per worker). Quiet shards cost no tick.',
    () => host.activeShards(),
    w,
  );
  const c = outbox.counters;
  counterFrom(
    registry,
    'iroh_raft_worker_out_ring_drops_total',
    'Raft messages workers dropped because their out-ring was full and their outbox at its bound (raft resends).',
    () => c.messagesDropped,
    w,
  );
  counterFrom(registry, 'iroh_raft_worker_outbox_held_total', 'Records that waited in an outbox because the out-ring was full.', () => c.held, w);
  counterFrom(
    registry,
    'iroh_raft_worker_outbox_events_coalesced_total',
    'Shard events replaced in an outbox by a newer event of the same shard.',
    () => c.eventsCoalesced,
    w,
  );
  gaugeFrom(registry, 'iroh_raft_worker_outbox_records', 'Records waiting in the outbox for room in the out-ring (per worker).', () => outbox.records(), w);
  gaugeFrom(
    registry,
    'iroh_raft_worker_outbox_bytes',
    'Payload bytes waiting in the outbox (per worker); at its bound the worker takes no new client request.',
    () => outbox.bytes(),
    w,
  );
  counterFrom(
    registry,
    'iroh_raft_worker_client_work_refused_total',
    'Client requests answered Overloaded at once because an outbox was full (backpressure).',
    () => local.clientWorkRefused,
    w,
  );
  counterFrom(
    registry,
    'iroh_raft_worker_replies_too_large_total',
    'Replies too large for one out-ring record, answered ReplyTooLarge instead.',
    () => local.repliesTooLarge,
    w,
  );
  counterFrom(
    registry,
    'iroh_raft_worker_oversize_drops_total',
    'Raft messages too large for the out-ring (a snapshot of a large shard), dropped.',
    () => local.oversizeDrops,
    w,
  );
  counterFrom(registry, 'iroh_raft_worker_bad_records_total', 'Malformed records workers dropped from their in-ring.', () => local.badRecords, w);
}
