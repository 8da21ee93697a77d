/**
 * Per-node routing. Client requests: key -> shard, shard -> leader (learned from the local
 * replicas' events and from NotLeader hints); proposals go to the local worker when this node
 * leads the shard, else one hop over Iroh to the leader, which answers back. Retries after a
 * leader change reuse the request's client session (client id, sequence), so a proposal that did
 * get applied is not applied again. Raft messages: from the workers' out-rings to peers (the
 * transport batches them per peer) and from peers into the in-rings, with the sender checked
 * against the authenticated peer of the connection.
 */
import { Buffer } from 'node:buffer';
import type { WriteGuard } from './write-guard.js';
import { RecordKind, encodeLiveness, leadsSection, encodePropose, encodeRead, stoppingSection } from '../wire/index.js';
import type { Outcome } from '../shards/host.js';
import { KV_LIMITS_DEFAULT, KvOp, decodeKvReply, encodeCas, encodeDelete, encodeDeleteIf, encodeGet, encodePut, encodeScan } from '../shards/kv/index.js';
import type { NodeId, ShardId } from '../shards/raft/index.js';
import type { WorkerPool } from '../workers/pool.js';
import type { FairGate } from '../api/index.js';
import type {
  Consistency,
  DeleteArgs,
  DeleteResult,
  GetArgs,
  GetResult,
  KvService,
  PutArgs,
  PutResult,
  Result,
  ScanArgs,
  ScanItem,
  ScanResult,
  Placement,
  Session,
} from '../api/index.js';
import { Lanes } from './lanes.js';
import { Liveness, shardsLedBy } from './liveness.js';
import { retryable } from './retryable.js';
import { refusingBadFields } from './bad-fields.js';
import { ScanBudget } from './scan-budget.js';
import { waitedMessage, writeGate } from './write-gate.js';
import { mergeScanPages } from './scan-merge.js';
import { nodesView, sideSections, wireLoad, workerStatus } from './status.js';
import type { SelfLoad } from './status.js';
import { served } from './placement.js';
import { META_RECORD_KEY, genesisPlacement } from './meta-record.js';
import { Layout } from './layout.js';
import type { Member } from './layout.js';
import { PlacementHash, placementHashOf } from './placement-hash.js';
import { UNKEYED_HASH } from '../wire/shard-hash.js';
import type { QuotaGuard } from './quotas.js';
import { SYSTEM_TENANT } from './tenants.js';

import { Hops, fail } from './hops.js';
import type { PeerLink } from './hops.js';
export type { PeerLink } from './hops.js';

export type { Member } from './layout.js';

export interface RouterOptions {
  readonly self: NodeId;
  /** The members at start; {@link Router.setLayout} replaces them as the meta group changes them. */
  readonly members: readonly Member[];
  readonly shards: number;
  readonly replicas: number;
  /**
   * The replica set of every shard at start, `shards + 1` of them (the last is the meta group's):
   * default the founding placement of `members` (src/router/meta-record.ts genesisPlacement).
   */
  readonly placement?: readonly (readonly NodeId[])[];
  readonly pool: WorkerPool;
  readonly link: PeerLink;
  /** Deadline of a client request, in milliseconds. Default 5,000. */
  readonly requestTimeoutMs?: number;
  /** Client requests in flight through this router (each holds a session lane). Default 4,096. */
  readonly requestsMax?: number;
  /**
   * Bytes of client writes in flight through this router (local and forwarded); a write that
   * would go beyond it waits its turn (in its tenant's line, see writesSharedMax; one write is always
   * taken when none is in flight) and is answered `Overloaded`, never proposed, when half its request
   * deadline passes first. A write's bytes cross Iroh once per follower (and once more when forwarded) at a
   * few MB/s per process, so more in flight than this node can see replicated within the deadline
   * only makes every write late: 64 clients writing 1 MiB values got no write through in 10 s
   * with 64 MiB allowed. Default 2 MiB (8,192 writes of 256 B).
   */
  readonly writeBytesMax?: number;
  /**
   * Client writes in flight through this router, counted (local and forwarded), while two or more
   * tenants write through it (within the last second); one tenant alone is bounded by requestsMax
   * and writeBytesMax only. Past it, writes wait in their tenant's line and the lines are served
   * round robin by bytes (see FairGate), so one tenant's flood does not queue ahead of another
   * tenant's next write: without it small writes never fill writeBytesMax, all go in, and the
   * queue forms in the workers, first come first served, for every tenant alike. Lower is fairer
   * and costs throughput while tenants share (smaller raft batches). Default 8.
   */
  readonly writesSharedMax?: number;
  /**
   * Milliseconds without a liveness record from a peer before it counts as gone: the quiet shards
   * it leads here are then woken so they can elect another leader. Other records (raft traffic,
   * forwards) do not count: they may come from a healthy worker of a node whose other worker is
   * dead. Default 1,000.
   */
  readonly livenessTimeoutMs?: number;
  /** Milliseconds between this node's liveness records to each peer. Default 100. */
  readonly livenessIntervalMs?: number;
  /**
   * Least milliseconds between two wake rounds on behalf of one peer, so a flapping peer (or
   * worker of one) costs at most one round per this. Default livenessTimeoutMs.
   */
  readonly wakeGapMs?: number;
  /**
   * Most key + value bytes of one merged scan page (the first item always goes in). Default the
   * KV's default scanBytesMax.
   */
  readonly scanBytesMax?: number;
  /**
   * Shards one scan asks at a time. Each may answer up to a full ring record (about 2 MiB with the
   * default 4 MiB rings), and a worker holds its out-ring plus an outbox of ringBytes before it
   * answers Overloaded; 4 keeps one scan of 1 MiB values within that on a single worker.
   * Default 4.
   */
  readonly scanFanoutMax?: number;
  /** Shard reads of scans in flight on this node, over all scans (see ScanBudget). Default 32. */
  readonly scanReadsMax?: number;
  /** Of scanReadsMax, the most one tenant's scans hold at once. Default half of scanReadsMax. */
  readonly scanTenantReadsMax?: number;
  /** Milliseconds now, for liveness. Default performance.now (tests pass their own clock). */
  readonly clock?: () => number;
  /** A peer was declared gone after livenessTimeoutMs of silence (the node ends its snapshot transfers with it). */
  readonly onPeerDown?: (node: NodeId) => void;
  /**
   * Whether client writes are refused now, and why (the disk-space alarm): a write is then answered
   * `NoSpace` and never proposed, whether it came to this node from a client or forwarded by a peer
   * to a leader here. Reads are served. Default: never.
   */
  readonly writeGuard?: WriteGuard;
  /** The node's metrics in Prometheus text (the router does not own the registry). */
  readonly metrics?: () => Promise<{ contentType: string; body: string }>;
  /**
   * This node's client load and HTTP URL (the HTTP server measures them), shown in status and
   * sent to peers with a liveness record about once a second, so each node's status page shows
   * every member's load. Default: none reported.
   */
  readonly load?: () => SelfLoad | undefined;
  /** Snapshot transfers in progress here, each way, for status. Default: not reported. */
  readonly snapshotsActive?: () => { sending: number; receiving: number };
  /** Members' known addresses and where they came from (discovery), for status. Default: not reported. */
  readonly discovery?: () => unknown;
  /** The cluster's metadata as last read and the replica moves under way (cluster life), for status. Default: not reported. */
  readonly cluster?: () => { moves: readonly unknown[] } & Record<string, unknown>;
  /** The cluster's key -> shard function, maybe not known yet (PlacementHash). Default: the unkeyed one. */
  readonly placementHash?: PlacementHash;
}

/** About how often this node's load goes to peers with a liveness record, in ms. */
const LOAD_REPORT_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An outcome and the node that gave it (undefined: none was asked, e.g. no leader known). */
type Routed = Outcome & { readonly node?: NodeId };

export class Router implements KvService {
  /** Members and replica sets, as the meta group last said (the founders' until it did). */
  private readonly layout: Layout;
  /** Leaders learned from NotLeader hints, for shards this node does not host. */
  private readonly hints = new Map<ShardId, NodeId>();
  /** The router's own sessions, for writes that bring none. */
  private readonly lanes: Lanes;
  /** The commands in flight through {@link command} (writeBytesMax, writesSharedMax); the others wait here, per tenant. */
  private readonly writeGate: FairGate;
  /** Raft messages and forwarded requests between nodes. */
  private readonly hops: Hops;
  private readonly timeoutMs: number;
  private readonly scanBytesMax: number;
  private readonly scanFanoutMax: number;
  /** Slots for the shard reads of scans, node-wide and per tenant. */
  readonly scanBudget: ScanBudget;
  /** `shardsWoken`: quiet replicas here that liveness woke (a worker's count of those it found quiet). */
  readonly counters = {
    forwarded: 0,
    /** Writes answered Overloaded after waiting half their deadline behind writesSharedMax or writeBytesMax. */
    writeBytesRefused: 0,
    forwardedIn: 0,
    retries: 0,
    spoofed: 0,
    badRecords: 0,
    raftIn: 0,
    raftOut: 0,
    raftDropped: 0,
    shardsWoken: 0,
    /** Forwarded requests whose reply was too large for a peer record, answered ReplyTooLarge. */
    repliesTooLarge: 0,
    /** Writes answered NoSpace by the write guard (local and forwarded in). */
    writesRefusedNoSpace: 0,
    /** Leaderships offered here (TimeoutNow) while stopping, and refused. */
    leadershipsRefused: 0,
  };
  /** Peers and their workers: who can lead which shard, and the wakes that follow. */
  readonly liveness: Liveness;
  private livenessTimer: NodeJS.Timeout | undefined;
  private livenessSent = 0;
  /** Set by {@link beginStopping}: this node is shutting down and takes no leadership. */
  private stopping = false;
  private readonly clock: () => number;
  /**
   * Tenants' byte and key quotas (quotas.ts): a put or compare-and-set past them is answered
   * `QuotaExceeded` and never proposed; deletes and reads are not checked. Set after construction
   * (the tenant directory reads through this router); none: no quotas.
   */
  quotas: QuotaGuard | undefined;
  /** The cluster's key -> shard function (RouterOptions.placementHash); requests wait for it up to their deadline. */
  readonly hash: PlacementHash;

  constructor(private readonly opts: RouterOptions) {
    this.hash = opts.placementHash ?? new PlacementHash({ hash: UNKEYED_HASH });
    this.timeoutMs = opts.requestTimeoutMs ?? 5000;
    this.writeGate = writeGate(opts);
    this.scanBytesMax = opts.scanBytesMax ?? KV_LIMITS_DEFAULT.scanBytesMax;
    this.scanFanoutMax = opts.scanFanoutMax ?? 4;
    this.scanBudget = new ScanBudget(opts.scanReadsMax ?? 32, opts.scanTenantReadsMax, this.scanFanoutMax);
    for (const [name, v] of [
      ['scanBytesMax', this.scanBytesMax],
      ['scanFanoutMax', this.scanFanoutMax],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`router: ${name} must be a positive integer, got ${v}`);
    }
    const ids = opts.members.map((m) => m.nodeId);
    this.layout = new Layout(opts.self, opts.shards);
    this.layout.set(opts.members, opts.placement ?? genesisPlacement(ids, opts.shards, opts.replicas));
    this.lanes = new Lanes(opts.requestsMax ?? 4096);
    // Peers count as up, all of their workers running, until they say or show otherwise.
    const timeoutMs = opts.livenessTimeoutMs ?? 1000;
    this.clock = opts.clock ?? (() => performance.now());
    this.liveness = new Liveness({
      self: opts.self,
      peers: ids,
      local: this.localShards(),
      localLead: (shard) => opts.pool.leaders.get(shard)?.lead,
      ledBy: (peer) => shardsLedBy(opts.pool.leaders, peer),
      timeoutMs,
      wakeGapMs: opts.wakeGapMs ?? timeoutMs,
      now: this.clock(),
    });
    this.hops = new Hops({
      self: opts.self,
      shards: opts.shards,
      pool: opts.pool,
      link: opts.link,
      layout: this.layout,
      liveness: this.liveness,
      counters: this.counters,
      timeoutMs: this.timeoutMs,
      clock: this.clock,
      writeBlocked: () => this.writeBlocked(),
      stopping: () => this.stopping,
    });
  }

  /**
   * The members and every shard's replica set (`shards + 1` sets, the meta group's last), as the
   * meta group says now: routing, liveness and status follow at once.
   */
  setLayout(members: readonly Member[], sets: readonly (readonly NodeId[])[]): void {
    this.layout.set(members, sets);
    this.liveness.setLayout(
      members.map((m) => m.nodeId),
      this.localShards(),
      this.clock(),
    );
  }

  /** The endpoint id of member `node`, undefined for a node that is not a member now. */
  peerOf(node: NodeId): string | undefined {
    return this.layout.byRaftId(node)?.peerId;
  }

  /** The members as this router knows them now. */
  currentMembers(): readonly Member[] {
    return this.layout.all();
  }

  /**
   * Liveness, one record per peer per interval however many shards there are, naming which of
   * this node's workers run: quiet shards send no heartbeats of their own, so this is how their
   * followers learn that the node or the worker of their leader died. A node with a worker down
   * keeps sending (its other workers' shards still lead); peers wake only the followers of the
   * dead worker's shards.
   */
  startLiveness(): void {
    if (this.livenessTimer) return; // already running
    this.livenessTimer = setInterval(() => {
      this.sendLiveness();
      this.tickLiveness();
    }, this.opts.livenessIntervalMs ?? 100);
    this.livenessTimer.unref();
  }

  /** One liveness record to every peer. */
  private sendLiveness(): void {
    // The load rides on one record per second or so: peers need it only for status pages.
    const loadEvery = Math.max(1, Math.round(LOAD_REPORT_MS / (this.opts.livenessIntervalMs ?? 100)));
    const every = this.livenessSent++ % loadEvery === 0;
    const load = every ? this.opts.load?.() : undefined;
    // With the load, about once a second: the data shards led here, for peers' leader balancing.
    const sections = every ? [leadsSection(this.leadsHere())] : [];
    if (this.stopping) sections.push(stoppingSection());
    const payload = encodeLiveness({ running: this.opts.pool.workersRunning(), ...(load === undefined ? {} : { load: wireLoad(load) }), sections });
    for (const m of this.layout.all()) if (m.nodeId !== this.opts.self) this.opts.link.send(m.peerId, RecordKind.NodeHeartbeat, 0, payload);
  }

  /**
   * This node is shutting down gracefully: from now on it refuses leaderships offered to it
   * (TimeoutNow) and every liveness record says it is stopping, so peers' leader balancing gives
   * it none while it hands its own over. Tells the peers at once.
   */
  beginStopping(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.sendLiveness();
  }

  /** Data shards whose local replica leads now. */
  leadsHere(): number {
    let n = 0;
    for (const [shard, e] of this.opts.pool.leaders) if (shard < this.opts.shards && e.lead === this.opts.self) n++;
    return n;
  }

  /** How many data shards peer `node` leads, as it said within the last 3 s; undefined when unknown. */
  leadsOf(node: NodeId): number | undefined {
    return this.liveness.leadsOf(node, this.clock(), 3 * LOAD_REPORT_MS);
  }

  /** Declares silent peers gone and runs the wakes due (startLiveness calls it every interval). */
  tickLiveness(): void {
    const now = this.clock();
    const upBefore = this.opts.onPeerDown === undefined ? [] : this.liveness.peersUp();
    this.liveness.check(now);
    if (upBefore.length > 0) {
      const upNow = new Set(this.liveness.peersUp());
      for (const p of upBefore) if (!upNow.has(p)) this.opts.onPeerDown!(p);
    }
    for (const w of this.liveness.due(now)) {
      void this.opts.pool.wake(w.leader, w.shards).then((n) => {
        this.counters.shardsWoken += n;
      });
    }
  }

  /** Peers currently heard from. */
  peersUp(): NodeId[] {
    return this.liveness.peersUp();
  }

  /** Shards (the meta group among them) whose replica set includes this node, as placed now. */
  localShards(): { shard: ShardId; voters: NodeId[] }[] {
    return this.layout.placed();
  }

  /**
   * This node has a replica of `shard` open: placed here, and opened (a replica placed here by a
   * move is opened by cluster life a moment later; until then requests go elsewhere).
   */
  private hosts(shard: ShardId): boolean {
    return this.layout.placedHere(shard) && this.opts.pool.hosts(shard);
  }

  /** This node hosts `shard` and the worker hosting it runs, so the local replica can answer. */
  private servesLocally(shard: ShardId): boolean {
    return this.hosts(shard) && this.opts.pool.isRunning(this.opts.pool.workerOf(shard));
  }

  /** `node` can answer for `shard` now: not gone, and its worker for the shard runs. */
  private canServe(node: NodeId, shard: ShardId): boolean {
    return node === this.opts.self ? this.servesLocally(shard) : this.liveness.reachable(node, shard);
  }

  /**
   * Where requests for `shard` go: its leader as best known, never a node that cannot serve it
   * now (gone, or the worker hosting the shard there stopped, this node's own included). A
   * NotLeader hint (the freshest news) wins over the local replica's last event until the next
   * event. Without a usable leader, a replica that can answer (this node's first), which points
   * on with a hint; undefined when none can. Nodes in `passed` (they said they do not host the
   * shard) are passed over.
   */
  leaderOf(shard: ShardId, passed?: ReadonlySet<NodeId>): NodeId | undefined {
    const usable = (n: NodeId): boolean => passed?.has(n) !== true && this.canServe(n, shard);
    const hint = this.hints.get(shard);
    if (hint !== undefined && usable(hint)) return hint;
    const lead = this.opts.pool.leaders.get(shard)?.lead;
    if (lead !== undefined && lead !== 0 && usable(lead)) return lead;
    return this.layout.replicaOrder(shard).find(usable);
  }

  // ---------------------------------------------------------------- raft traffic

  /** A local replica reported a leader or role change: it supersedes NotLeader hints. */
  onShardEvent(shard: ShardId): void {
    this.hints.delete(shard);
  }

  /** A raft message from a local worker: to the peer it names. */
  onLocalRaftMessage(shard: ShardId, payload: Uint8Array): void {
    this.hops.onLocalRaftMessage(shard, payload);
  }

  /** Bytes of a frame from an authenticated peer, before the frame is whole: it is there. */
  onPeerTraffic(peerId: string): void {
    this.hops.onPeerTraffic(peerId);
  }

  /** Records from an authenticated peer. */
  onPeerRecords(peerId: string, records: readonly { kind: number; shard: number; payload: Uint8Array }[]): void {
    this.hops.onPeerRecords(peerId, records);
  }

  // ---------------------------------------------------------------- client requests

  /** Writes in flight now and their bytes (writesSharedMax, writeBytesMax), and writes waiting for room. */
  get writeRoom(): { readonly heldBytes: number; readonly heldWrites: number; readonly waiting: number } {
    return { heldBytes: this.writeGate.held, heldWrites: this.writeGate.holding, waiting: this.writeGate.waiting };
  }

  /**
   * Proposes `command` to the shard's leader, wherever it is, retrying with the same session until
   * the deadline. The session is the client's own when it gives one (a client that retries
   * through any node then gets its write applied once), else one of this router's lanes, taken
   * for the request. While writes wait for room, `tenant`'s wait in its own line (FairGate).
   * Errors: Overloaded (no free session lane, or no room under writesSharedMax and writeBytesMax
   * within half the deadline), Timeout, and the shard's own codes.
   */
  async command(shard: ShardId, command: Uint8Array, session: Session | undefined, tenant: string): Promise<Routed> {
    // Refused before it takes a lane or waits for room: nothing is proposed while the disk is short.
    // The cluster's own records (placement key, tenants, roles: a few hundred bytes each) are
    // exempt: a node needs its placement key to serve even reads.
    const blocked = tenant === SYSTEM_TENANT ? undefined : this.writeBlocked();
    if (blocked !== undefined) return blocked;
    const lane = session === undefined ? this.lanes.take() : undefined;
    if (session === undefined && lane === undefined) return fail('Overloaded', 'too many requests in flight (requestsMax)');
    const clientId = session?.clientId ?? lane!.clientId;
    const deadline = performance.now() + this.timeoutMs;
    // At most half the deadline in line: a write let in later would have too little time left to
    // be replicated and would end in Timeout, which leaves the client unsure whether it applied.
    const waitMs = Math.floor(this.timeoutMs / 2);
    try {
      if (!(await this.writeGate.acquire(tenant, command.length, waitMs))) {
        this.counters.writeBytesRefused++;
        return fail('Overloaded', waitedMessage(this.writeGate, waitMs));
      }
      // A lane's sequence counts proposals, never refusals.
      const seq = session?.seq ?? ++lane!.seq;
      try {
        return await this.retrying(
          shard,
          (target, left) =>
            target === this.opts.self
              ? this.opts.pool.propose(shard, { clientId, seq, command }, left)
              : this.hops.forward(target, RecordKind.ClientPropose, shard, (reqId) => encodePropose({ reqId, clientId, seq, command }), left),
          deadline,
        );
      } finally {
        this.writeGate.release(tenant, command.length);
      }
    } finally {
      if (lane !== undefined) this.lanes.give(lane);
    }
  }

  /**
   * Reads from the local replica when there is one that runs (raft's ReadIndex reaches the
   * leader), else forwards.
   */
  query(shard: ShardId, query: Uint8Array, consistency: Consistency): Promise<Routed> {
    return this.retrying(
      shard,
      (target, left) =>
        target === this.opts.self
          ? this.opts.pool.read(shard, query, consistency, left)
          : this.hops.forward(
              target,
              RecordKind.ClientRead,
              shard,
              (reqId) => encodeRead({ reqId, consistency: consistency === 'lease' ? 1 : consistency === 'stale' ? 2 : 0, query }),
              left,
            ),
      undefined,
      true,
    );
  }

  /**
   * Runs `attempt` at the node {@link leaderOf} names (this node's replica first with
   * `preferLocal`, when it serves) until an answer that is not retryable or the deadline.
   */
  private async retrying(
    shard: ShardId,
    attempt: (target: NodeId, leftMs: number) => Promise<Outcome>,
    deadline = performance.now() + this.timeoutMs,
    preferLocal = false,
  ): Promise<Routed> {
    // The last real answer, for the Timeout message.
    let last: Outcome | undefined;
    // Nodes that answered ShardNotFound during this request: tried again only after a wait.
    // Made only when one does (most requests never need it).
    let passed: Set<NodeId> | undefined;
    const self = this.opts.self;
    for (let waits = 0; ;) {
      const left = Math.floor(deadline - performance.now());
      if (left <= 0) {
        const why = last && !last.ok ? ` (last: ${last.code})` : '';
        return fail('Timeout', `shard ${shard}: no answer within ${this.timeoutMs} ms${why}`);
      }
      const target =
        preferLocal && passed?.has(self) !== true && this.servesLocally(shard)
          ? self
          : (this.leaderOf(shard, passed) ?? (this.hosts(shard) && passed?.has(self) !== true ? self : undefined));
      const o = target === undefined ? fail('NotLeader', `shard ${shard} has no known leader`) : await attempt(target, left);
      if (!o.ok && o.code === 'ShardNotFound' && target !== undefined) {
        // The node does not host the shard (any more): a leader or hint from before a replica
        // moved, or a new replica not opened yet. Another replica is asked at once and the stale
        // hint is forgotten; kept, it sent every request for the shard to that node until a local
        // event replaced it, which never comes on a node without a replica. Safe as after
        // NotLeader: the attempt keeps its session, so a write that did apply is not applied twice.
        (passed ??= new Set()).add(target);
        if (this.hints.get(shard) === target) this.hints.delete(shard);
        this.counters.retries++;
        last = o;
        continue;
      }
      if (o.ok || !retryable(o.code)) return target === undefined ? o : { ...o, node: target };
      if (target !== undefined || last === undefined) last = o;
      // A hint naming a node that said it does not host the shard is stale: no hint.
      const hinted = o.code === 'NotLeader' && o.leaderHint !== 0 && passed?.has(o.leaderHint as NodeId) !== true;
      if (hinted) this.hints.set(shard, o.leaderHint as NodeId);
      else {
        this.hints.delete(shard);
        // After the wait below every node may be asked again: replicas move and open.
        passed = undefined;
      }
      this.counters.retries++;
      // A hint names the leader: go there at once. Without one (an election under way, a leader
      // unreachable) wait longer each time: every attempt may carry the whole write across Iroh
      // again, and during an election it only finds no leader yet.
      const i = Math.min(waits++, 5);
      await sleep(hinted ? Math.min(100, 5 * 2 ** i) : Math.min(500, 20 * 2 ** i));
    }
  }

  // ---------------------------------------------------------------- KvService (the HTTP API's view)

  async put(r: PutArgs): Promise<Result<PutResult>> {
    return refusingBadFields(() =>
      this.hash.withShard(r, this.opts.shards, this.timeoutMs, async (s) => (await this.quotas?.check(r)) ?? this.putChecked(r, s)),
    );
  }

  private async putChecked(r: PutArgs, shard: ShardId): Promise<Result<PutResult>> {
    if (r.expectedVersion === undefined) {
      const o = await this.command(shard, encodePut(r.tenant, r.key, r.value), r.session, r.tenant);
      return this.decode(o, KvOp.Put, (v) => ({ version: v.version, swapped: true, ...served(shard, o) }));
    }
    const o = await this.command(shard, encodeCas(r.tenant, r.key, r.expectedVersion, r.value), r.session, r.tenant);
    return this.decode(o, KvOp.Cas, (v) => ({ version: v.version, swapped: v.swapped, ...served(shard, o) }));
  }

  async delete(r: DeleteArgs): Promise<Result<DeleteResult>> {
    return refusingBadFields(() => this.hash.withShard(r, this.opts.shards, this.timeoutMs, (s) => this.deleteChecked(r, s)));
  }

  private async deleteChecked(r: DeleteArgs, shard: ShardId): Promise<Result<DeleteResult>> {
    if (r.expectedVersion === undefined) {
      const o = await this.command(shard, encodeDelete(r.tenant, r.key), r.session, r.tenant);
      return this.decode(o, KvOp.Delete, (v) => ({ deleted: v.deleted, ...served(shard, o) }));
    }
    const o = await this.command(shard, encodeDeleteIf(r.tenant, r.key, r.expectedVersion), r.session, r.tenant);
    return this.decode(o, KvOp.DeleteIf, (v) => ({ deleted: v.deleted, ...(v.deleted ? {} : { version: v.version }), ...served(shard, o) }));
  }

  async get(r: GetArgs): Promise<Result<GetResult>> {
    return refusingBadFields(() => this.hash.withShard(r, this.opts.shards, this.timeoutMs, (s) => this.getChecked(r, s)));
  }

  private async getChecked(r: GetArgs, shard: ShardId): Promise<Result<GetResult>> {
    const o = await this.query(shard, encodeGet(r.tenant, r.key), r.consistency);
    return this.decode(o, KvOp.Get, (v) =>
      v.found
        ? { found: true, value: v.value, version: v.version, createIndex: v.createIndex, modIndex: v.modIndex, ...served(shard, o) }
        : { found: false, ...served(shard, o) },
    );
  }

  /**
   * The meta group's record (src/router/meta-record.ts), read linearizably by default: its bytes and version,
   * or `found: false` before the first start wrote it.
   */
  metaGet(consistency: Consistency = 'linearizable'): Promise<Result<GetResult>> {
    const key = Buffer.from(META_RECORD_KEY, 'latin1');
    return this.getChecked({ tenant: SYSTEM_TENANT, key, consistency }, this.opts.shards as ShardId);
  }

  /** Writes the meta group's record if it is still at `expectedVersion` (0: absent); `swapped` says whether it was. */
  metaPut(value: Uint8Array, expectedVersion: number): Promise<Result<PutResult>> {
    const key = Buffer.from(META_RECORD_KEY, 'latin1');
    return this.putChecked({ tenant: SYSTEM_TENANT, key, value, expectedVersion }, this.opts.shards as ShardId);
  }

  /** A prefix scan within a tenant: every shard is asked, the answers merged in key order. */
  async scan(r: ScanArgs): Promise<Result<ScanResult>> {
    return refusingBadFields(() => this.scanChecked(r));
  }

  /**
   * Every shard answers a page that fits its reply record (the KV stops at scanBytesMax); the
   * merged page ends at the smallest last key among the shards that stopped early, so the next
   * page (after its last key) skips nothing, and holds at most `scanBytesMax` key + value bytes.
   */
  private async scanChecked(r: ScanArgs): Promise<Result<ScanResult>> {
    const q = encodeScan(r.tenant, r.prefix, r.limit, r.startAfter);
    // `_system` on the meta group: one shard holds it all.
    const parts =
      r.tenant === SYSTEM_TENANT && this.hash.systemOnMeta
        ? [await this.query(this.opts.shards as ShardId, q, r.consistency)]
        : await this.scanBudget.fanOut(this.opts.shards, r.tenant, this.timeoutMs, (s) => this.query(s, q, r.consistency));
    const pages: { items: ScanItem[]; more: boolean }[] = [];
    for (const o of parts) {
      const d = this.decode(o, KvOp.Scan, (v) => v);
      if (!d.ok) return d;
      pages.push(d.value);
    }
    return { ok: true, value: mergeScanPages(pages, r.limit, this.scanBytesMax) };
  }

  private decode<O extends KvOp, T>(o: Outcome, op: O, pick: (v: Extract<ReturnType<typeof decodeKvReply<O>>, { ok: true }>) => T): Result<T> {
    if (!o.ok) return { ok: false, code: o.code, message: o.message };
    const r = decodeKvReply(op, o.body);
    if (!r.ok) return { ok: false, code: r.code, message: r.message };
    return { ok: true, value: pick(r as Extract<typeof r, { ok: true }>) };
  }

  async status(): Promise<unknown> {
    const peers = this.liveness.view(this.clock());
    return {
      node: this.opts.self,
      members: this.layout.all().map((m) => ({ node: m.nodeId, id: m.peerId })),
      ...(await workerStatus(this.opts.pool, this.opts.shards)),
      router: { ...this.counters, inflightForwards: this.hops.inflight, peersUp: this.peersUp() },
      // `peers` keeps the shape it always had; `nodes` has every member with its load.
      liveness: { ...this.liveness.counters, peers: peers.map(({ node, up, workers, workersDown }) => ({ node, up, workers, workersDown })) },
      nodes: nodesView(this.layout.all(), { node: this.opts.self, workersRunning: this.opts.pool.workersRunning(), load: this.opts.load?.() }, peers),
      ...sideSections(this.opts),
    };
  }

  /**
   * Who leads each shard as this node knows it: the freshest NotLeader hint, else the local
   * replica's last event; null when neither names a node that can serve now (unlike
   * {@link leaderOf}, no replica stands in for an unknown leader). The placement key only with
   * `withKey` (callers trusted with it) and a keyed hash.
   */
  placement(withKey = false): Placement {
    const known = (s: ShardId): NodeId | undefined =>
      [this.hints.get(s), this.opts.pool.leaders.get(s)?.lead].find((n) => n !== undefined && n !== 0 && this.canServe(n, s));
    const leaders = Array.from({ length: this.opts.shards }, (_, s) => known(s as ShardId) ?? null);
    return { node: this.opts.self, shards: this.opts.shards, replicas: this.opts.replicas, ...placementHashOf(this.hash, withKey), leaders };
  }

  /** The NoSpace answer while the write guard refuses writes, else undefined. */
  private writeBlocked(): Outcome | undefined {
    const reason = this.opts.writeGuard?.blockedReason();
    if (reason === undefined) return undefined;
    this.counters.writesRefusedNoSpace++;
    return fail('NoSpace', reason);
  }

  metrics(): Promise<{ contentType: string; body: string }> {
    return this.opts.metrics ? this.opts.metrics() : Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: '' });
  }

  /** Ready when every local shard knows a leader and the cluster's placement is known. */
  health(): { ok: boolean; detail: unknown } {
    const local = this.localShards();
    const led = local.filter((s) => (this.opts.pool.leaders.get(s.shard)?.lead ?? 0) !== 0).length;
    return { ok: led === local.length && this.hash.choice !== undefined, detail: { shards: local.length, withLeader: led, placement: this.hash.name } };
  }

  /** Fails in-flight forwards and stops liveness records (shutdown). */
  close(): void {
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.hops.close();
  }
}
