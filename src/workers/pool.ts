/**
 * The worker pool: W worker threads, each hosting the shards with `shard % W == w`, each with an
 * in-ring and an out-ring. The pool moves client requests into rings and replies out of them
 * (bounded in-flight table with deadlines), hands raft messages between rings and the caller,
 * restarts a crashed worker (its shards recover from disk) and stops cleanly.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { unpack } from 'msgpackr';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import {
  CodecError,
  RecordKind,
  ReadConsistency,
  clientFrameBoundBytes,
  decodeReply,
  decodeSnapshotRequest,
  encodePropose,
  encodeRead,
  pooledCopy,
} from '../wire/index.js';
import type {
  Consistency,
  Membership,
  MembershipAnswer,
  MembershipChange,
  Outcome,
  ShardEvent,
  ShardSpec,
  StagedSnapshot,
  TransferAnswer,
} from '../shards/host.js';
import type { LogIndex, NodeId, ShardId, SnapshotMetadata, Term } from '../shards/raft/index.js';
import { SnapshotChunker } from './snapshot-chunks.js';
import type { SnapshotChunk } from './snapshot-chunks.js';
import { Ring, maxPayloadBytes } from './ring.js';
import type { RecordFit } from './fit.js';
import type { WorkerInit } from './protocol.js';
import { checkWorkerDirs, firstNotice, stopWorker } from './worker-life.js';
import type { WorkerApi } from './worker.js';
import { PoolError, PoolErrorCode, START_TIMEOUT_MS, resolvePool } from './pool-options.js';
import type { PoolOptions } from './pool-options.js';
import { checkShardId, checkSpec, unavailableAs, untilExit } from './runtime-shards.js';
import { PoolRequests, poolFailure } from './pool-requests.js';

export { PoolError, PoolErrorCode } from './pool-options.js';
export type { PoolOptions } from './pool-options.js';
export type { Membership, MembershipAnswer, MembershipChange, TransferAnswer } from '../shards/host.js';

interface Slot {
  readonly index: number;
  worker: Worker;
  api: Comlink.Remote<WorkerApi>;
  inRing: Ring;
  outRing: Ring;
  state: 'running' | 'restarting' | 'stopped';
  /**
   * The shards this worker hosts, by id: opened at start and after every restart; only the
   * shard events of these shards are taken. openShard adds a shard before the worker opens it
   * (so its first events count) and takes it out again when the open fails; dropShard takes it
   * out before the worker drops it (so a restart meanwhile does not reopen it).
   */
  readonly specs: Map<ShardId, ShardSpec>;
  restarts: number;
}

type PoolEvents = {
  restart: [worker: number, reason: string];
  'restart-failed': [worker: number, reason: string];
};

const CONSISTENCY: Record<Consistency, ReadConsistency> = {
  linearizable: ReadConsistency.Linearizable,
  lease: ReadConsistency.Lease,
  stale: ReadConsistency.Stale,
};

export class WorkerPool extends EventEmitter<PoolEvents> {
  readonly workers: number;
  private readonly slots: Slot[] = [];
  /** {@link hostedShards}, sorted; undefined after a change of any slot's specs until asked again. */
  private hostedSorted: readonly ShardId[] | undefined;
  /** Client requests in flight, until their reply or deadline (inflightRequestsMax, inflightBytesMax). */
  private readonly requests: PoolRequests;
  private closing = false;
  private chunker: SnapshotChunker | undefined;
  private readonly init: Omit<WorkerInit, 'worker' | 'inRing' | 'outRing'>;
  /** Leader and term last reported by each shard. */
  readonly leaders = new Map<ShardId, ShardEvent>();
  /** `bytesRefused`: requests answered Overloaded at inflightBytesMax. */
  readonly counters = { inboundDropped: 0, badReplies: 0, restarts: 0, bytesRefused: 0 };
  /** Record, App and proposal sizes, derived from `ringBytes` (see fit.ts). */
  readonly fit: RecordFit;

  private constructor(private readonly opts: PoolOptions) {
    super();
    const r = resolvePool(opts);
    this.workers = r.workers;
    this.fit = r.fit;
    this.init = r.init;
    this.requests = new PoolRequests(r.inflightRequestsMax, r.inflightBytesMax);
  }

  /** Starts the workers and opens their shards. Throws PoolError (e.g. WorkerCountMismatch). */
  static async start(opts: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    checkWorkerDirs(opts.dataDir, pool.workers);
    // Every worker's start is waited for, failed or not: a worker still starting when another
    // failed would otherwise run on, outside the pool that gave up.
    const started = await Promise.allSettled(Array.from({ length: pool.workers }, (_, w) => pool.startSlot(w)));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await pool.destroy();
      throw failed.reason;
    }
    return pool;
  }

  /** The worker that hosts `shard`. */
  workerOf(shard: ShardId): number {
    return shard % this.workers;
  }

  private async spawn(w: number): Promise<Omit<Slot, 'specs' | 'restarts' | 'state' | 'index'>> {
    const ringBytes = this.opts.ringBytes ?? 4 << 20;
    const inBuf = Ring.allocate(ringBytes);
    const outBuf = Ring.allocate(ringBytes);
    const init: WorkerInit = { ...this.init, worker: w, inRing: inBuf, outRing: outBuf };
    const url = this.opts.workerUrl ?? new URL('./worker.js', import.meta.url);
    const worker = new Worker(url, { workerData: { ...this.opts.workerData, ...init } });
    const notice = await firstNotice(worker, w, this.opts.startTimeoutMs ?? START_TIMEOUT_MS);
    if (notice.type === 'start-failed') {
      await worker.terminate();
      const code = notice.code === 'WorkerCountMismatch' ? 'WorkerCountMismatch' : 'WorkerStartFailed';
      throw new PoolError(code, notice.message);
    }
    const inRing = new Ring(inBuf);
    // Many requests arrive in one pass of the event loop (one poll phase): one wakeup for all.
    inRing.wakeOncePerPass = true;
    return { worker, api: Comlink.wrap<WorkerApi>(nodeEndpoint(worker)), inRing, outRing: new Ring(outBuf) };
  }

  private async startSlot(w: number): Promise<void> {
    const specs = this.opts.shards.filter((s) => s.shard % this.workers === w);
    const parts = await this.spawn(w);
    const slot: Slot = { index: w, ...parts, state: 'running', specs: new Map(specs.map((s) => [s.shard, s])), restarts: 0 };
    this.slots[w] = slot;
    this.hostedSorted = undefined;
    this.watch(slot);
    await this.openAll(slot, specs);
    void this.pump(slot);
  }

  /**
   * Opens a started worker's shards. A worker that dies during this call never answers it, so
   * the wait ends with WorkerStartFailed at the worker's exit or after `startTimeoutMs`.
   */
  private async openAll(slot: Slot, specs: ShardSpec[]): Promise<void> {
    const worker = slot.worker;
    const startTimeoutMs = this.opts.startTimeoutMs ?? START_TIMEOUT_MS;
    let onExit: ((code: number) => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        slot.api.openShards(specs),
        new Promise<never>((_, reject) => {
          onExit = (code) => reject(new PoolError('WorkerStartFailed', `worker ${slot.index} exited (code ${code}) while opening its shards`));
          worker.once('exit', onExit);
          timer = setTimeout(
            () => reject(new PoolError('WorkerStartFailed', `worker ${slot.index} did not open its shards in ${startTimeoutMs} ms`)),
            startTimeoutMs,
          );
          timer.unref();
        }),
      ]);
    } finally {
      if (onExit) worker.off('exit', onExit);
      clearTimeout(timer);
    }
  }

  /** Restarts a worker that exited without being asked to. */
  private watch(slot: Slot): void {
    const worker = slot.worker;
    worker.once('exit', (code) => {
      // Only a running worker's exit is a crash to restart from; a restart in progress handles its own.
      if (this.closing || slot.state !== 'running' || slot.worker !== worker) return;
      void this.restart(slot, `exit code ${code}`);
    });
    // An uncaught exception in the worker: the 'exit' that follows restarts it.
    worker.on('error', () => undefined);
  }

  /** True when worker `w` runs: its shards can lead and take requests (not restarting, not stopped). */
  isRunning(w: number): boolean {
    return this.slots[w]?.state === 'running';
  }

  /** Per worker, by index: {@link isRunning}. What this node announces in its liveness records. */
  workersRunning(): boolean[] {
    return Array.from({ length: this.workers }, (_, w) => this.isRunning(w));
  }

  private async restart(slot: Slot, reason: string): Promise<void> {
    slot.state = 'restarting';
    this.counters.restarts++;
    // Its shards' leadership died with it: forget it until they report again.
    for (const shard of slot.specs.keys()) this.leaders.delete(shard);
    this.requests.failWorker(
      slot.index,
      poolFailure(PoolErrorCode.WorkerRestarted, `worker ${slot.index} restarted (${reason}); the request may or may not have been applied`),
    );
    // Back off on repeated crashes so a crash loop does not spin.
    const delayMs = Math.min(5000, 50 * 2 ** Math.min(slot.restarts, 7));
    slot.restarts++;
    await new Promise((r) => setTimeout(r, delayMs));
    if (this.closing) return;
    let parts: Awaited<ReturnType<WorkerPool['spawn']>> | undefined;
    try {
      parts = await this.spawn(slot.index);
      if (this.closing) throw new PoolError('PoolClosed', 'the pool closed during the restart');
      Object.assign(slot, parts);
      this.watch(slot);
      await this.openAll(slot, [...slot.specs.values()]);
      if (this.closing) throw new PoolError('PoolClosed', 'the pool closed during the restart');
      slot.state = 'running';
      this.emit('restart', slot.index, reason);
      void this.pump(slot);
    } catch (e) {
      // Never leave a half-started worker running beside its replacement (or after close).
      slot.state = 'restarting';
      if (parts) await stopWorker(parts.worker, parts.api).catch(() => undefined);
      if (this.closing) return;
      this.emit('restart-failed', slot.index, e instanceof Error ? e.message : String(e));
      void this.restart(slot, 'restart failed');
    }
  }

  /** Drains one worker's out-ring until the worker changes or the pool stops. */
  private async pump(slot: Slot): Promise<void> {
    const worker = slot.worker;
    const ring = slot.outRing;
    const onRecord = (kind: number, shard: number, payload: Uint8Array): void => this.onRecord(kind, shard as ShardId, payload);
    while (slot.worker === worker && slot.state !== 'stopped') {
      let n = 0;
      while (ring.readView(onRecord)) n++;
      if (n === 0) await ring.waitForData(50);
      else if (n > 1024) await new Promise<void>((r) => setImmediate(r));
    }
    // A replaced worker's ring may still hold replies written before it died.
    while (ring.readView(onRecord));
  }

  private onRecord(kind: number, shard: ShardId, payload: Uint8Array): void {
    try {
      switch (kind) {
        case RecordKind.ClientReply: {
          const r = decodeReply(payload);
          const { reqId, ...outcome } = r;
          this.requests.settle(reqId, outcome);
          return;
        }
        case RecordKind.RaftMessage:
          this.opts.onRaftMessage?.(shard, pooledCopy(payload));
          return;
        case RecordKind.SnapshotRequest: {
          const r = decodeSnapshotRequest(payload);
          this.opts.onSnapshotRequest?.(shard, { from: r.from as NodeId, to: r.to as NodeId, term: r.term as Term, index: r.index as LogIndex });
          return;
        }
        case RecordKind.ShardEvent: {
          // A dropped shard's last events may still be in the out-ring: they must not bring it back.
          if (this.slots[this.workerOf(shard)]?.specs.has(shard) !== true) return;
          const e = unpack(payload) as ShardEvent;
          this.leaders.set(shard, e);
          this.opts.onShardEvent?.(shard, e);
          return;
        }
        default:
          this.counters.badReplies++;
      }
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      this.counters.badReplies++;
    }
  }

  private submit(shard: ShardId, kind: number, build: (reqId: number) => Uint8Array, timeoutMs: number | undefined): Promise<Outcome> {
    const fail = (code: Parameters<typeof poolFailure>[0], message: string): Promise<Outcome> => Promise.resolve(poolFailure(code, message));
    if (this.closing) return fail(PoolErrorCode.ShuttingDown, 'the node is shutting down');
    const full = this.requests.full();
    if (full !== undefined) return Promise.resolve(full);
    const w = this.workerOf(shard);
    const slot = this.slots[w];
    if (!slot || slot.state !== 'running') return fail(PoolErrorCode.WorkerUnavailable, `worker ${w} (shard ${shard}) is restarting`);
    const reqId = this.requests.nextReqId();
    const payload = build(reqId);
    // Measured with the widest reqId, so whether a request fits never depends on its id.
    const bound = clientFrameBoundBytes(payload, reqId);
    if (bound > maxPayloadBytes(slot.inRing.capacityBytes)) return fail(PoolErrorCode.RequestTooLarge, `request of ${bound} bytes does not fit a ring record`);
    const refused = this.requests.hold(payload.length);
    if (refused !== undefined) {
      this.counters.bytesRefused++;
      return Promise.resolve(refused);
    }
    // It fits, so tryWrite could throw only for a shard that is not a u32: a bug of the caller.
    if (!slot.inRing.tryWrite(kind, shard, payload)) {
      this.requests.unhold(payload.length);
      return fail(PoolErrorCode.Overloaded, `worker ${w} in-ring is full`);
    }
    return this.requests.wait(reqId, w, payload.length, timeoutMs ?? this.opts.requestTimeoutMs ?? 5000, shard);
  }

  /**
   * Proposes a state machine command to `shard` (this node must lead it). `clientId`/`seq` form the
   * client session: a retry with the same pair applies once. Resolves with the state machine's
   * reply or an error: NotLeader (with leaderHint), Overloaded, Timeout, WorkerRestarted,
   * ShuttingDown, SessionSeqStale, or a validation code of the state machine.
   */
  propose(shard: ShardId, req: { clientId?: number; seq?: number; command: Uint8Array }, timeoutMs?: number): Promise<Outcome> {
    return this.submit(
      shard,
      RecordKind.ClientPropose,
      (reqId) => encodePropose({ reqId, clientId: req.clientId ?? 0, seq: req.seq ?? 0, command: req.command }),
      timeoutMs,
    );
  }

  /** Reads from `shard` with the given consistency (default linearizable). */
  read(shard: ShardId, query: Uint8Array, consistency: Consistency = 'linearizable', timeoutMs?: number): Promise<Outcome> {
    return this.submit(shard, RecordKind.ClientRead, (reqId) => encodeRead({ reqId, consistency: CONSISTENCY[consistency], query }), timeoutMs);
  }

  /** A raft message from a peer for `shard` (binary layout). False when dropped (ring full). */
  deliver(shard: ShardId, payload: Uint8Array): boolean {
    const slot = this.slots[this.workerOf(shard)];
    // Too large for the ring (a big snapshot) or ring full: dropped and counted; raft resends.
    if (
      !slot ||
      slot.state !== 'running' ||
      payload.length > maxPayloadBytes(slot.inRing.capacityBytes) ||
      !slot.inRing.tryWrite(RecordKind.RaftMessage, shard, payload)
    ) {
      this.counters.inboundDropped++;
      return false;
    }
    return true;
  }

  /**
   * Wakes quiet shards led by `leader` (any when undefined), of `shards` when given, else all, on
   * every running worker; how many woke (a restarting worker's shards restart awake anyway).
   */
  async wake(leader?: number, shards?: readonly ShardId[]): Promise<number> {
    let calls: Promise<number>[];
    if (shards === undefined) {
      calls = this.slots.filter((s) => s.state === 'running').map((s) => s.api.wake(leader).catch(() => 0));
    } else {
      // Each worker gets only its own shards: a wake names a few shards, not all of them.
      const byWorker = new Map<number, ShardId[]>();
      for (const shard of shards) {
        const w = this.workerOf(shard);
        if (this.slots[w]?.state !== 'running') continue;
        let list = byWorker.get(w);
        if (!list) byWorker.set(w, (list = []));
        list.push(shard);
      }
      calls = [...byWorker].map(([w, list]) => this.slots[w]!.api.wake(leader, list).catch(() => 0));
    }
    const counts = await Promise.all(calls);
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Opens shard `spec.shard` on its worker (`spec.shard % workers`) while the node runs: created
   * when the worker's store never held it (a founding member with `spec.voters`, or with empty
   * voters a replica that joins later and catches up by its leader's snapshot), else from its
   * stored state (then `spec`'s members are not used). The worker reopens it after every restart.
   * `hosted` when it was open already. Throws PoolError: InvalidConfig (a bad spec), PoolClosed,
   * WorkerUnavailable (the worker is restarting or exited during the call: retry), ShardLimit
   * (the worker holds `shardsPerWorkerMax` shards).
   */
  async openShard(spec: ShardSpec): Promise<'opened' | 'hosted'> {
    checkSpec(spec);
    const r = await this.openOn(this.runningSlot(spec.shard), [spec]);
    return r.opened === 1 ? 'opened' : 'hosted';
  }

  /**
   * Opens many shards as {@link openShard} does each, one call and one durable transaction per
   * worker (a restart that reopens thousands of stored shards). Each worker's share is all or
   * nothing; counts of those opened and those hosted already. Throws PoolError as openShard does
   * (InvalidConfig also for a shard listed twice); on a throw, some workers' shares may be open.
   */
  async openShards(specs: readonly ShardSpec[]): Promise<{ opened: number; hosted: number }> {
    for (const spec of specs) checkSpec(spec);
    if (new Set(specs.map((x) => x.shard)).size !== specs.length) throw new PoolError('InvalidConfig', 'openShards: a shard is listed twice');
    const byWorker = new Map<Slot, ShardSpec[]>();
    for (const spec of specs) {
      const slot = this.runningSlot(spec.shard);
      const list = byWorker.get(slot);
      if (list) list.push(spec);
      else byWorker.set(slot, [spec]);
    }
    const counts = await Promise.all([...byWorker].map(([slot, list]) => this.openOn(slot, list)));
    return { opened: counts.reduce((a, c) => a + c.opened, 0), hosted: counts.reduce((a, c) => a + c.hosted, 0) };
  }

  /** Opens `list` on `slot`'s worker, listing them first (see Slot.specs) and forgetting them if the open fails. */
  private async openOn(slot: Slot, list: readonly ShardSpec[]): Promise<{ opened: number; hosted: number }> {
    const added = list.filter((x) => !slot.specs.has(x.shard));
    for (const x of added) slot.specs.set(x.shard, { shard: x.shard, voters: [...x.voters], learners: [...(x.learners ?? [])] });
    this.hostedSorted = undefined;
    const forget = (): void => {
      this.hostedSorted = undefined;
      for (const x of added) slot.specs.delete(x.shard);
      for (const x of added) this.leaders.delete(x.shard);
    };
    type Answer = ReturnType<WorkerApi['openMany']>;
    let answer: Answer;
    try {
      answer = await untilExit(slot.worker, slot.index, async (): Promise<Answer> => slot.api.openMany([...list]));
    } catch (e) {
      forget();
      throw e;
    }
    if ('code' in answer) {
      forget();
      // The store refuses at shardsMax (ShardExists), or is closing with its worker (StoreClosed).
      throw new PoolError(answer.code === 'ShardExists' ? 'ShardLimit' : 'WorkerUnavailable', `worker ${slot.index}: ${answer.message}`);
    }
    return answer;
  }

  /** Whether `shard` is open here (its worker's specs hold it; also while the worker restarts). */
  hosts(shard: ShardId): boolean {
    return this.slots[shard % this.slots.length]?.specs.has(shard) === true;
  }

  /**
   * The shards this pool hosts, ascending: those it started with and those opened since, minus
   * those dropped; a restarting worker's shards included (it reopens them). Kept between changes:
   * cluster life asks for it several times a round, and sorting 10,000 ids each time was a
   * visible share of an idle node's main thread.
   */
  hostedShards(): readonly ShardId[] {
    this.hostedSorted ??= this.slots.flatMap((slot) => [...slot.specs.keys()]).sort((a, b) => a - b);
    return this.hostedSorted;
  }

  /**
   * Closes shard `shard` on its worker and deletes everything its store holds for it (log, meta
   * and data), so a later {@link openShard} starts it empty; its snapshot streams are closed, its
   * requests in flight answered ShardNotFound, a worker restart no longer reopens it and
   * {@link leaders} forgets it. `absent` when the worker neither hosted nor stored it. Throws
   * PoolError PoolClosed, WorkerUnavailable (nothing was dropped, or the drop did not finish:
   * retry; a restart does not reopen the shard meanwhile).
   */
  async dropShard(shard: ShardId): Promise<'dropped' | 'absent'> {
    checkShardId(shard);
    const slot = this.runningSlot(shard);
    slot.specs.delete(shard);
    this.hostedSorted = undefined;
    this.leaders.delete(shard);
    return untilExit(slot.worker, slot.index, async (): Promise<'dropped' | 'absent'> => slot.api.dropShard(shard));
  }

  /**
   * The membership of this node's replica of `shard` as it applied it, and its raft position (see
   * Membership: progress only on the leader). Undefined when the shard is not hosted here or its
   * worker is not running.
   */
  membership(shard: ShardId): Promise<Membership | undefined> {
    return this.ask<Membership | undefined>(shard, undefined, async (api) => api.membership(shard));
  }

  /**
   * {@link membership} of each of `shards`, with one call per worker (cluster life asks for many
   * shards every round). A shard not hosted, or on a worker not running, is absent from the map.
   */
  async memberships(shards: readonly ShardId[]): Promise<Map<ShardId, Membership>> {
    const byWorker = new Map<number, ShardId[]>();
    for (const s of shards) {
      // Appended in place: copying the list for each shard cost the main thread quadratic time
      // (a few thousand shards led here, asked about every cluster round).
      const list = byWorker.get(this.workerOf(s));
      if (list) list.push(s);
      else byWorker.set(this.workerOf(s), [s]);
    }
    const out = new Map<ShardId, Membership>();
    await Promise.all(
      [...byWorker].map(async ([, ids]) => {
        const got = await this.ask<(Membership | undefined)[]>(ids[0]!, [], (api) => api.memberships(ids));
        got.forEach((m, i) => m !== undefined && out.set(ids[i]!, m));
      }),
    );
    return out;
  }

  /**
   * Proposes a membership change of `shard` on this node's replica, which must lead it (see
   * MembershipAnswer). `absent` when the shard is not hosted here or its worker is not running.
   */
  changeMembership(shard: ShardId, change: MembershipChange): Promise<MembershipAnswer> {
    // A worker that dies with the call answers absent: whether the change was proposed is unknown (watch membership).
    return this.ask<MembershipAnswer>(shard, 'absent', async (api) => api.changeMembership(shard, change));
  }

  /**
   * Asks this node's replica of `shard`, which should lead it, to hand leadership to `to` (see
   * ShardHost.transferLeader). `absent` when the shard is not hosted here or its worker is not
   * running or exits during the call (an exit never leaves the call waiting).
   */
  transferLeader(shard: ShardId, to: NodeId): Promise<TransferAnswer> {
    return this.ask(shard, 'absent' as const, async (api) => api.transferLeader(shard, to));
  }

  /** `call` on the worker of `shard`; `absent` when the worker is not running or exits during the call. */
  private ask<T>(shard: ShardId, absent: T, fn: (api: Comlink.Remote<WorkerApi>) => Promise<T>): Promise<T> {
    if (this.closing) return Promise.resolve(absent);
    return this.call(this.workerOf(shard), fn).catch(unavailableAs(absent));
  }

  /** The running slot of `shard`'s worker; PoolError PoolClosed or WorkerUnavailable otherwise. */
  private runningSlot(shard: ShardId): Slot {
    if (this.closing) throw new PoolError('PoolClosed', 'the pool is closed');
    const w = this.workerOf(shard);
    const slot = this.slots[w];
    if (slot?.state !== 'running') throw new PoolError('WorkerUnavailable', `worker ${w} (shard ${shard}) is restarting`);
    return slot;
  }

  /** The control API of worker `w`. A call to it waits forever if the worker dies first: prefer {@link call}. */
  control(w: number): Comlink.Remote<WorkerApi> {
    const slot = this.slots[w];
    if (!slot) throw new PoolError('InvalidConfig', `no worker ${w}`);
    return slot.api;
  }

  /**
   * `fn` on worker `w`'s control API, ended by the worker's exit: a worker that crashes with the
   * call never answers it, so the call rejects with PoolError WorkerUnavailable instead of waiting
   * forever. WorkerUnavailable at once when the worker is not running.
   */
  call<T>(w: number, fn: (api: Comlink.Remote<WorkerApi>) => Promise<T>): Promise<T> {
    const slot = this.slots[w];
    if (!slot) return Promise.reject(new PoolError('InvalidConfig', `no worker ${w}`));
    if (slot.state !== 'running') return Promise.reject(new PoolError('WorkerUnavailable', `worker ${w} is not running`));
    return untilExit(slot.worker, w, () => fn(slot.api));
  }

  /**
   * Opens a snapshot stream of `shard` on its worker: a consistent view of its data as of now and
   * that view's metadata. Read it with {@link snapshotNext}; always {@link snapshotClose} it.
   * Undefined when the shard is not hosted here.
   */
  snapshotOpen(shard: ShardId): Promise<{ stream: number; metadata: SnapshotMetadata } | undefined> {
    return this.call(this.workerOf(shard), (api) => api.snapshotOpen(shard));
  }

  /** The stream's next piece of raw dump bytes (at most `maxBytes` unless one pair is larger), undefined at its end. */
  snapshotNext(shard: ShardId, stream: number, maxBytes: number): Promise<Uint8Array | undefined> {
    return this.call(this.workerOf(shard), (api) => api.snapshotNext(stream, maxBytes));
  }

  async snapshotClose(shard: ShardId, stream: number): Promise<void> {
    await this.call(this.workerOf(shard), (api) => api.snapshotClose(stream));
  }

  /** Would a snapshot at `index` bring the local replica of `shard` anything? */
  snapshotOffer(shard: ShardId, index: LogIndex): Promise<'accept' | 'stale' | 'absent'> {
    return this.call(this.workerOf(shard), (api) => api.snapshotOffer(shard, index));
  }

  /** Hands a received, checked and staged snapshot to the local replica of `shard` (which then owns the file). */
  snapshotInstall(shard: ShardId, staged: StagedSnapshot): Promise<'stepped' | 'absent' | 'bad'> {
    return this.call(this.workerOf(shard), (api) => api.snapshotInstall(shard, staged));
  }

  /** Deflates and checksums raw snapshot bytes in the piscina pool, off this thread and off the workers. */
  packSnapshotBytes(raw: Uint8Array): Promise<SnapshotChunk[]> {
    return this.snapshotChunker().pack(raw);
  }

  /** Inflates one chunk and checks its length and crc32 in the piscina pool; SnapshotChunkError on a mismatch. */
  unpackSnapshotChunk(chunk: { compressed: Uint8Array; rawLength: number; crc32: number }): Promise<Uint8Array> {
    return this.snapshotChunker().unpack([{ index: 0, offset: 0, length: chunk.rawLength, crc32: chunk.crc32, compressed: chunk.compressed }], chunk.rawLength);
  }

  private snapshotChunker(): SnapshotChunker {
    this.chunker ??= new SnapshotChunker({
      threads: this.opts.snapshotThreads ?? 1,
      ...(this.opts.chunkTaskUrl ? { taskUrl: this.opts.chunkTaskUrl } : {}),
      workerData: this.opts.chunkTaskData,
    });
    return this.chunker;
  }

  /** Requests waiting for a reply. */
  inflight(): number {
    return this.requests.size;
  }

  /** Every running worker's metrics (prom-client JSON), to merge with AggregatorRegistry.aggregate. */
  async metrics(): Promise<MetricObjectWithValues<MetricValue<string>>[][]> {
    return Promise.all(this.slots.filter((s) => s.state === 'running').map((s) => this.call(s.index, (api) => api.metrics())));
  }

  /** Finishes in-flight requests (up to closeTimeoutMs), then stops every worker after its current turn. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const deadline = performance.now() + (this.opts.closeTimeoutMs ?? 5000);
    while (this.requests.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.slots.map(async (slot) => this.stopSlot(slot)));
    this.failAll();
    await this.chunker?.close();
  }

  /**
   * Stops every worker without waiting for in-flight requests (they fail with ShuttingDown): each
   * after its current turn (see stopWorker).
   */
  async destroy(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map(async (slot) => this.stopSlot(slot)));
    this.failAll();
    await this.chunker?.destroy();
  }

  /**
   * Stops the slot's worker, whatever its state: a crashed one is gone already, and the new
   * worker of a restart under way is asked to stop like any other (its restart sees `closing`).
   */
  private async stopSlot(slot: Slot): Promise<void> {
    slot.state = 'stopped';
    await stopWorker(slot.worker, slot.api);
  }

  private failAll(): void {
    this.requests.failAll(poolFailure(PoolErrorCode.ShuttingDown, 'the node stopped before replying'));
  }
}
