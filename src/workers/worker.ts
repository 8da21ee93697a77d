/**
 * Entry of one worker thread: opens this worker's store, hosts its shards and runs the event loop
 * that drains the in-ring, ticks, turns the shard host (one durable write per turn) and writes
 * replies and raft messages to the out-ring. The control API is exposed with comlink.
 *
 * The loop never blocks on the out-ring: what does not fit waits in a bounded outbox (see
 * outbox.ts), and while the outbox is full the worker leaves client requests in its in-ring (so
 * the pool answers new work `Overloaded`) but keeps ticking, stepping raft messages ahead of them,
 * turning, and answering control calls.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { pack } from 'msgpackr';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { ShardHost } from '../shards/host.js';
import type {
  ClientReply,
  Consistency,
  HostCounters,
  Membership,
  MembershipAnswer,
  MembershipChange,
  ShardEvent,
  ShardSpec,
  SnapshotWish,
  StagedSnapshot,
  TransferAnswer,
} from '../shards/host.js';
import type { SnapshotReader } from '../shards/snapshot-io.js';
import { KvStateMachine } from '../shards/kv/index.js';
import { Store, StoreError } from '../shards/store.js';
import type { StateMachine } from '../shards/state-machine.js';
import type { VerifyResult } from '../shards/verify.js';
import {
  RecordKind,
  ReadConsistency,
  clientFrameBoundBytes,
  decodeMessage,
  decodePropose,
  decodeRead,
  encodeMessage,
  encodeReply,
  encodeSnapshotRequest,
  CodecError,
} from '../wire/index.js';
import { MessageType, assert } from '../shards/raft/index.js';
import type { LogIndex, Message, NodeId, ShardId, SnapshotMetadata } from '../shards/raft/index.js';
import { Ring, maxPayloadBytes } from './ring.js';
import { Outbox } from './outbox.js';
import { workerMetrics } from './worker-metrics.js';
import type { OutClass } from './outbox.js';
import { WorkerReplyCode, workerDir } from './protocol.js';
import type { WorkerInit } from './protocol.js';

const init = workerData as WorkerInit;
const inRing = new Ring(init.inRing);
const outRing = new Ring(init.outRing);

/** Counts the worker keeps beside the host's and the outbox's; monotonic. */
const local = {
  badRecords: 0,
  oversizeDrops: 0,
  /** Client requests answered Overloaded at once because the outbox was full (see refuseWhileFull). */
  clientWorkRefused: 0,
  /** Replies too large for one out-ring record, answered ReplyTooLarge instead (see replyFitting). */
  repliesTooLarge: 0,
};
const outRecordMax = maxPayloadBytes(outRing.capacityBytes);
const outbox = new Outbox(outRing, init.outboxBytesMax);
const metrics = workerMetrics(init.worker);

function out(kind: number, shard: number, payload: Uint8Array, cls: OutClass): void {
  if (payload.length > outRecordMax) {
    // Replies never get here (replyFitting), an App fits by construction (see sink.send) and
    // snapshots stream beside the rings (see HostSink.snapshot): what still gets here is counted.
    assert(cls !== 'reply', `worker: a reply of ${payload.length} bytes passed replyFitting`);
    local.oversizeDrops++;
    return;
  }
  outbox.push(kind, shard, payload, cls);
}

/**
 * The encoded reply, or, when it does not fit one out-ring record, an error reply with the stable
 * code ReplyTooLarge in its place: the caller learns at once instead of waiting for its deadline.
 * The KV's limits are checked against the ring at start (so its replies fit); this catches a value
 * stored under larger limits and a plug-in state machine's large answer.
 */
function replyFitting(r: ClientReply): Uint8Array {
  const bytes = encodeReply(r);
  // Measured with the widest reqId, so the largest reply that fits is the same for every request.
  const bound = clientFrameBoundBytes(bytes, r.reqId);
  if (bound <= outRecordMax) return bytes;
  local.repliesTooLarge++;
  const refused = encodeReply({
    reqId: r.reqId,
    ok: false,
    code: WorkerReplyCode.ReplyTooLarge,
    message: `the reply of ${bound} bytes exceeds the ${outRecordMax} bytes one ring record carries (ring of ${outRing.capacityBytes} bytes)`,
    leaderHint: 0,
  });
  assert(refused.length <= outRecordMax, `worker: the ReplyTooLarge reply of ${refused.length} bytes does not fit`);
  return refused;
}

const sink = {
  send(shard: ShardId, m: Message): void {
    const payload = encodeMessage(m);
    // The pool derives appendBytesMax from this ring and the host refuses larger entries (fit.ts),
    // so every App fits one record; one that does not is a bug, never a silent drop.
    if (m.type === MessageType.App) assert(payload.length <= outRecordMax, `App of ${payload.length} bytes exceeds the ${outRecordMax}-byte record`);
    out(RecordKind.RaftMessage, shard, payload, m.type === MessageType.App ? 'append' : 'message');
  },
  reply(shard: ShardId, r: ClientReply): void {
    out(RecordKind.ClientReply, shard, replyFitting(r), 'reply');
  },
  event(shard: ShardId, e: ShardEvent): void {
    out(RecordKind.ShardEvent, shard, pack(e), 'event');
  },
  snapshot(shard: ShardId, wish: SnapshotWish): void {
    // Small and resent by the core while the follower still needs it: dropped like a raft message when the outbox is full.
    out(RecordKind.SnapshotRequest, shard, encodeSnapshotRequest(wish), 'message');
  },
};

/** Snapshot readers the main thread streams from, by stream id; closed when done or idle. */
const readers = new Map<number, { reader: SnapshotReader; shard: ShardId; usedAt: number }>();
let nextReader = 1;
/** A reader not used for this long is closed (its stream broke): its read transaction pins old pages. */
const READER_IDLE_MS = 60_000;
setInterval(() => {
  const now = performance.now();
  for (const [id, r] of readers) {
    if (now - r.usedAt > READER_IDLE_MS) {
      r.reader.close();
      readers.delete(id);
    }
  }
}, 10_000).unref();

async function loadStateMachine(): Promise<StateMachine> {
  if (init.stateMachine === undefined) return new KvStateMachine(init.kvLimits);
  const mod = (await import(init.stateMachine.module)) as { createStateMachine(options: unknown): StateMachine };
  return mod.createStateMachine(init.stateMachine.options);
}

let store: Store;
let host: ShardHost;
try {
  store = Store.open({
    path: workerDir(init.dataDir, init.worker),
    worker: init.worker,
    workers: init.workers,
    shardsMax: init.shardsMax,
    observe: metrics.store,
  });
  host = new ShardHost({
    store,
    stateMachine: await loadStateMachine(),
    sink,
    nodeId: init.nodeId as NodeId,
    seed: init.seed,
    raft: init.raft,
    compactEveryEntries: init.compactEveryEntries,
    compactKeepEntries: init.compactKeepEntries,
    // The shell's clock: the host catches its ticks up by it, also right before lease decisions.
    clock: () => performance.now(),
    // Log time for client sessions: leaders write how far it moved into the log (see sessions.ts).
    logClock: () => performance.now(),
    tickMs: init.tickMs,
    latency: metrics.latency,
  });
} catch (e) {
  // Report a refusal (e.g. a data directory laid out for another worker count) to the pool.
  const code = e instanceof StoreError ? e.code : 'WorkerStartFailed';
  parentPort!.postMessage({ type: 'start-failed', code, message: e instanceof Error ? e.message : String(e) });
  process.exit(1);
}

const consistencyOf: Record<number, Consistency> = {
  [ReadConsistency.Linearizable]: 'linearizable',
  [ReadConsistency.Lease]: 'lease',
  [ReadConsistency.Stale]: 'stale',
};

function dispatch(kind: number, shard: number, payload: Uint8Array): void {
  const id = shard as ShardId;
  try {
    switch (kind) {
      case RecordKind.RaftMessage:
        host.step(id, decodeMessage(payload));
        return;
      case RecordKind.ClientPropose: {
        const p = decodePropose(payload);
        if (refuseWhileFull(id, p.reqId)) return;
        host.propose(id, p);
        return;
      }
      case RecordKind.ClientRead: {
        const r = decodeRead(payload);
        if (refuseWhileFull(id, r.reqId)) return;
        host.read(id, { reqId: r.reqId, consistency: consistencyOf[r.consistency] ?? 'linearizable', query: r.query });
        return;
      }
      default:
        local.badRecords++;
    }
  } catch (e) {
    // Malformed records from the ring are counted and dropped; anything else is a bug.
    if (!(e instanceof CodecError)) throw e;
    local.badRecords++;
  }
}

let stopping = false;
let stopped: () => void = () => undefined;
const loopDone = new Promise<void>((resolve) => {
  stopped = resolve;
});

/** Records drained per turn at most, so ticks and control messages are not starved. */
const DRAIN_BUDGET = 4096;

/**
 * Backpressure: while the outbox is full (the main thread does not drain the out-ring), client
 * work is answered `Overloaded` at once instead of being started. Its answer is small and waits
 * in the outbox like every reply (so replies past the bound are at most one per request the pool
 * has in flight, `inflightRequestsMax`), and raft messages behind it in the in-ring are still
 * stepped: leases, elections and commits go on while clients are refused.
 */
function refuseWhileFull(shard: ShardId, reqId: number): boolean {
  if (!outbox.full()) return false;
  local.clientWorkRefused++;
  sink.reply(shard, { reqId, ok: false, code: 'Overloaded', message: `worker ${init.worker}: its out-ring is full (the node is overloaded)`, leaderHint: 0 });
  return true;
}

/**
 * The waits in progress, at most one of each, so passes that race them do not pile up waiters
 * (each ends by its timeout, at most a tick).
 */
let dataWait: Promise<void> | undefined;
let spaceWait: Promise<void> | undefined;

function waitForData(ms: number): Promise<void> {
  dataWait ??= inRing.waitForData(ms).finally(() => {
    dataWait = undefined;
  });
  return dataWait;
}

function waitForSpace(ms: number): Promise<void> {
  spaceWait ??= outRing.waitForSpace(outbox.nextBytes(), ms).finally(() => {
    spaceWait = undefined;
  });
  return spaceWait;
}

/** Steps up to DRAIN_BUDGET records from the in-ring; returns how many. */
function drain(): number {
  let n = 0;
  while (n < DRAIN_BUDGET && inRing.readView(dispatch)) n++;
  return n;
}

async function loop(): Promise<void> {
  while (!stopping) {
    outbox.flush();
    // Time first, and all of it, with the timers' one run for this pass. The host also catches
    // its clocks up by itself right before each lease decision and each raft message, since this
    // pass may stall before it gets to them.
    host.catchUp(true);
    let n = drain();
    let turned = 0;
    for (let i = 0; i < 4 && host.hasReady(); i++) {
      turned += host.turn();
      // What arrived during the turn's flush joins the next one: a turn that applies what the
      // last one made durable also appends the proposals and steps the acknowledgments that came
      // meanwhile, so a write costs one flush here, not one to append and one to apply.
      n += drain();
    }
    // What the write-ahead log holds goes into LMDB in large commits, between turns.
    host.maybeCheckpoint();
    outbox.flush();
    if (n > 0 || turned > 0) {
      // Let comlink calls and timers in between busy turns.
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    // Idle until the next tick, new records or room for what waits in the outbox. The data wait
    // is always among them and ends by its timeout at the latest, so a pass never waits past the
    // next tick.
    const ms = Math.max(1, host.msUntilTick());
    const waits: Promise<void>[] = [waitForData(ms)];
    if (outbox.records() > 0) waits.push(waitForSpace(ms));
    await Promise.race(waits);
  }
  outbox.flush();
  stopped();
}

// ------------------------------------------------------------------ metrics

metrics.register({ host, outbox, local });

// ------------------------------------------------------------------ control API

const api = {
  /** Opens (creating when new) the given shards; returns the ids now hosted. */
  openShards(specs: ShardSpec[]): ShardId[] {
    // New shards are created in one transaction: one flush at a first start, whatever the count.
    store.batch(() => {
      for (const s of specs) host.open(s);
    });
    return host.shardIds();
  },
  /**
   * Opens shards at runtime: each is created when this store never held it, else opened from its
   * stored state (already hosted: nothing changes); one durable transaction for those created. All or nothing: on the store's refusal (its code and message as a value)
   * none of those opened by this call stays open or stored.
   */
  openMany(specs: ShardSpec[]): { opened: number; hosted: number } | { code: string; message: string } {
    const fresh = specs.filter((s) => !host.has(s.shard));
    try {
      store.batch(() => {
        for (const s of fresh) host.open(s);
      });
    } catch (e) {
      // The batch rolled back what it created: the cores opened on it go too.
      for (const s of fresh) host.close(s.shard);
      if (e instanceof StoreError) return { code: e.code, message: e.message };
      throw e;
    }
    return { opened: fresh.length, hosted: specs.length - fresh.length };
  },
  closeShard(id: ShardId): void {
    host.close(id);
  },
  /**
   * Closes shard `id` and deletes all it has on disk (see ShardHost.drop): its snapshot streams
   * are closed first (their read transactions use the databases dropped), its pending requests
   * are answered ShardNotFound. `absent` when it was neither hosted nor stored.
   */
  dropShard(id: ShardId): 'dropped' | 'absent' {
    for (const [stream, r] of readers) {
      if (r.shard !== id) continue;
      r.reader.close();
      readers.delete(stream);
    }
    return host.drop(id);
  },
  /** The applied membership and raft position of this replica of `id` (see ShardHost.membership). */
  membership(id: ShardId): Membership | undefined {
    return host.membership(id);
  },
  /** {@link membership} of each of `ids` (undefined for one not hosted), in one call. */
  memberships(ids: ShardId[]): (Membership | undefined)[] {
    return ids.map((id) => host.membership(id));
  },
  /** Proposes a membership change on this replica of `id`, its leader (see ShardHost.changeMembership). */
  changeMembership(id: ShardId, change: MembershipChange): MembershipAnswer {
    return host.changeMembership(id, change);
  },
  /** Shards this worker's store holds on disk (hosted or not). */
  storedShards(): ShardId[] {
    return store.shardIds();
  },
  status(): {
    worker: number;
    shards: {
      id: ShardId;
      role: string;
      term: number;
      lead: number;
      commit: number;
      applied: number;
      firstIndex: number;
      lastIndex: number;
      voters: number[];
      learners: number[];
    }[];
    counters: HostCounters & typeof local & { outRingDrops: number; outboxHeld: number; eventsCoalesced: number };
    /** What waits in the outbox now. */
    outbox: { records: number; bytes: number; full: boolean };
  } {
    return {
      worker: init.worker,
      shards: host.shardIds().map((id) => {
        const s = host.status(id)!;
        const { voters, learners } = s.confState;
        return {
          id,
          role: s.role,
          term: s.term,
          lead: s.lead,
          commit: s.commit,
          applied: s.applied,
          firstIndex: s.firstIndex,
          lastIndex: s.lastIndex,
          voters: [...voters],
          learners: [...learners],
        };
      }),
      counters: {
        ...host.counters,
        ...local,
        outRingDrops: outbox.counters.messagesDropped,
        outboxHeld: outbox.counters.held,
        eventsCoalesced: outbox.counters.eventsCoalesced,
      },
      outbox: { records: outbox.records(), bytes: outbox.bytes(), full: outbox.full() },
    };
  },
  /** prom-client metrics of this worker, for the main thread to merge. */
  async metrics(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return metrics.registry.getMetricsAsJSON();
  },
  /**
   * Opens a snapshot stream of a shard: a reader of its data as of now (one read transaction),
   * and the metadata of that view. Undefined when the shard is not hosted here.
   */
  snapshotOpen(id: ShardId): { stream: number; metadata: SnapshotMetadata } | undefined {
    const reader = host.openSnapshot(id);
    if (!reader) return undefined;
    const stream = nextReader++;
    readers.set(stream, { reader, shard: id, usedAt: performance.now() });
    return { stream, metadata: reader.metadata };
  },
  /**
   * The stream's next piece (whole key/value pairs, at most `maxBytes` unless one pair is larger),
   * or undefined at its end. StoreError `StoreClosed` for a stream closed or gone idle.
   */
  snapshotNext(stream: number, maxBytes: number): Uint8Array | undefined {
    const r = readers.get(stream);
    if (!r) throw new StoreError('StoreClosed', `snapshot stream ${stream} is closed`);
    r.usedAt = performance.now();
    const piece = r.reader.next(maxBytes);
    return piece === undefined ? undefined : Comlink.transfer(piece, [piece.buffer]);
  },
  snapshotClose(stream: number): void {
    readers.get(stream)?.reader.close();
    readers.delete(stream);
  },
  /** Would a snapshot at `index` bring this replica of the shard anything (see ShardHost.offerSnapshot)? */
  snapshotOffer(id: ShardId, index: number): 'accept' | 'stale' | 'absent' {
    return host.offerSnapshot(id, index as LogIndex);
  },
  /** Hands a received, checked, staged snapshot to the shard's core (see ShardHost.installStaged). */
  snapshotInstall(id: ShardId, staged: StagedSnapshot): 'stepped' | 'absent' | 'bad' {
    return host.installStaged(id, staged);
  },
  /** Wakes quiet shards led by `leader` (any leader when undefined), of `shards` when given; see ShardHost.wake. */
  wake(leader?: number, shards?: ShardId[]): number {
    return host.wake(leader as NodeId | undefined, shards);
  },
  /** Hands shard `id`'s leadership from this replica to `to` (see ShardHost.transferLeader). */
  transferLeader(id: ShardId, to: number): TransferAnswer {
    return host.transferLeader(id, to as NodeId);
  },
  /** Replays each shard's log and compares with its data (see verifyShard); for checks and tests. */
  verify(ids?: ShardId[]): { shard: ShardId; result: VerifyResult | undefined }[] {
    return (ids ?? host.shardIds()).map((shard) => ({ shard, result: host.verify(shard) }));
  },
  /** Stops the loop after the current turn, closes the store. */
  async shutdown(): Promise<void> {
    stopping = true;
    await loopDone;
    for (const r of readers.values()) r.reader.close();
    readers.clear();
    await store.close();
  },
  /** Chaos and tests: throw from the event loop, as a bug would. The pool restarts the worker. */
  crash(reason: string): void {
    setImmediate(() => {
      throw new Error(`worker ${init.worker} crashed on request: ${reason}`);
    });
  },
};

export type WorkerApi = typeof api;

Comlink.expose(api, nodeEndpoint(parentPort!));
parentPort!.postMessage({ type: 'started' });
void loop();
