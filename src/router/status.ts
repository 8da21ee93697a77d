/** What `GET /v1/status` says of this node's workers, the shards they host, and every member. */
import type { NodeId } from '../shards/raft/index.js';
import type { NodeLoad } from '../wire/index.js';
import type { WorkerPool } from '../workers/pool.js';
import type { PeerView } from './liveness.js';

/**
 * Every hosted shard's role, leader, term, commit and applied index and log range, asked of each
 * running worker, in shard order; and the workers that are down. A worker that is restarting
 * would never answer: it is listed as down instead, and one that fails to answer (or dies while
 * asked) adds no shards.
 */
export async function workerStatus(pool: WorkerPool, metaShard: number): Promise<{ shards: unknown[]; metaGroup: unknown; workersDown: number[] }> {
  const workers = await Promise.all(
    Array.from({ length: pool.workers }, (_, w) =>
      pool.isRunning(w) ? pool.call(w, (api) => api.status()).catch(() => undefined) : Promise.resolve(undefined),
    ),
  );
  const all = workers.flatMap((w) => w?.shards ?? []).sort((a, b) => a.id - b.id);
  const view = (s: (typeof all)[number]): Record<string, unknown> => ({
    shard: s.id,
    role: s.role,
    leader: s.lead,
    term: s.term,
    commit: s.commit,
    applied: s.applied,
    firstIndex: s.firstIndex,
    lastIndex: s.lastIndex,
    voters: s.voters,
    learners: s.learners,
  });
  const meta = all.find((s) => s.id === metaShard);
  return {
    // The data shards; the meta group (src/router/meta-record.ts) beside them, when hosted here.
    shards: all.filter((s) => s.id !== metaShard).map(view),
    metaGroup: meta === undefined ? null : view(meta),
    workersDown: pool.workersRunning().flatMap((r, w) => (r ? [] : [w])),
  };
}

/** One member in `nodes` of `GET /v1/status`. */
export interface NodeView {
  readonly node: NodeId;
  /** Its Iroh endpoint id. */
  readonly id: string;
  /** This is the node that answered. */
  readonly self: boolean;
  /** As this node's liveness sees it (this node itself: always). */
  readonly up: boolean;
  /** Its worker threads as it last said (0: not said yet), and those of them stopped. */
  readonly workers: number;
  readonly workersDown: readonly number[];
  /** Client API requests per second over its last few seconds, as it last reported; null: not reported. */
  readonly requestsPerSec: number | null;
  /** Their 99th-percentile duration, in ms; null: not reported. */
  readonly p99Ms: number | null;
  /** Its HTTP API base URL as it reported it; null: not reported. */
  readonly httpUrl: string | null;
  /** Ms since its last record of any kind reached this node (0 for this node). */
  readonly heardMsAgo: number;
  /** Ms since its load was reported (0 for this node); null: never. */
  readonly loadMsAgo: number | null;
}

/** This node's own load, as measured here. */
export interface SelfLoad {
  readonly requestsPerSec: number;
  /** In ms. */
  readonly p99Ms: number;
  readonly httpUrl: string;
}

/**
 * Every member in raft id order: this node from its own measures, the peers from what liveness
 * last heard of them (a member liveness does not track, none today, counts as down).
 */
export function nodesView(
  members: readonly { nodeId: NodeId; peerId: string }[],
  self: { node: NodeId; workersRunning: readonly boolean[]; load: SelfLoad | undefined },
  peers: readonly PeerView[],
): NodeView[] {
  const byNode = new Map(peers.map((p) => [p.node, p]));
  return members.map((m) => {
    if (m.nodeId === self.node) {
      const l = self.load;
      return {
        node: m.nodeId,
        id: m.peerId,
        self: true,
        up: true,
        workers: self.workersRunning.length,
        workersDown: self.workersRunning.flatMap((r, w) => (r ? [] : [w])),
        requestsPerSec: l === undefined ? null : round(l.requestsPerSec, 1),
        p99Ms: l === undefined ? null : round(l.p99Ms, 3),
        httpUrl: l === undefined ? null : l.httpUrl,
        heardMsAgo: 0,
        loadMsAgo: l === undefined ? null : 0,
      };
    }
    const p = byNode.get(m.nodeId);
    const l: NodeLoad | undefined = p?.load;
    return {
      node: m.nodeId,
      id: m.peerId,
      self: false,
      up: p?.up ?? false,
      workers: p?.workers ?? 0,
      workersDown: p?.workersDown ?? [],
      requestsPerSec: l === undefined ? null : l.requestsPerSec,
      p99Ms: l === undefined ? null : l.p99Micros / 1000,
      httpUrl: l === undefined || l.httpUrl === '' ? null : l.httpUrl,
      heardMsAgo: p?.heardMsAgo ?? 0,
      loadMsAgo: p?.loadMsAgo ?? null,
    };
  });
}

/** A node's load as it goes on the wire: whole requests/s, p99 in whole microseconds, both clamped to u32. */
export function wireLoad(l: SelfLoad): NodeLoad {
  const u32 = (v: number): number => (Number.isFinite(v) ? Math.min(0xffffffff, Math.max(0, Math.round(v))) : 0);
  // The layout holds printable ASCII up to 255 bytes; any other URL is left out rather than sent.
  const httpUrl = /^[!-~]{0,255}$/.test(l.httpUrl) ? l.httpUrl : '';
  return { requestsPerSec: u32(l.requestsPerSec), p99Micros: u32(l.p99Ms * 1000), httpUrl };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The parts of a node's status that come from outside the router: snapshots, discovery, moves and the disk alarm. */
export function sideSections(o: {
  readonly snapshotsActive?: () => unknown;
  readonly discovery?: () => unknown;
  readonly writeGuard?: { status(): unknown };
  readonly cluster?: () => { moves: readonly unknown[] } & Record<string, unknown>;
}): Record<string, unknown> {
  const cluster = o.cluster?.();
  return {
    snapshots: o.snapshotsActive?.() ?? null,
    discovery: o.discovery?.() ?? null,
    // The meta group's record as this node last read it, and the replica moves its shards show.
    cluster: cluster ?? null,
    moves: { supported: cluster !== undefined, active: cluster?.moves ?? [] },
    ...(o.writeGuard === undefined ? {} : { disk: o.writeGuard.status() }),
  };
}
