/**
 * Shard hosts of several nodes in one process, each with its own real LMDB store in a temp
 * directory, connected by in-memory queues. Drives them turn by turn, for tests of the shell.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShardHost } from '../../../src/shards/host.js';
import type { ClientReply, HostOptions, HostSink, Outcome, SnapshotWish } from '../../../src/shards/host.js';
import { Store } from '../../../src/shards/store.js';
import type { StateMachine } from '../../../src/shards/state-machine.js';
import type { Message, NodeId, ShardId } from '../../../src/shards/raft/index.js';

/**
 * A test state machine: a command is a key; applying it stores (key -> index) and replies with the
 * 8-byte index, so a reply tells which entry it came from. Queries return the stored index or empty.
 */
export class IndexMachine implements StateMachine {
  validateCommand(command: Uint8Array): { code: string; message: string } | undefined {
    return command.length === 0 || command[0] === 0xff ? { code: 'BadRequest', message: 'empty or reserved key' } : undefined;
  }
  apply(txn: Parameters<StateMachine['apply']>[0], cmd: Parameters<StateMachine['apply']>[1]): Uint8Array {
    const v = new Uint8Array(8);
    new DataView(v.buffer).setFloat64(0, cmd.index, true);
    const prev = txn.get(cmd.command);
    // Count applications per key, so double applies show.
    const count = prev ? new DataView(prev.buffer, prev.byteOffset).getFloat64(8, true) + 1 : 1;
    const stored = new Uint8Array(16);
    stored.set(v);
    new DataView(stored.buffer).setFloat64(8, count, true);
    txn.put(cmd.command, stored);
    return v;
  }
  query(view: Parameters<StateMachine['query']>[0], request: Uint8Array): Uint8Array {
    return view.get(request)?.slice() ?? new Uint8Array(0);
  }
}

export const indexOf = (body: Uint8Array): number => new DataView(body.buffer, body.byteOffset, body.byteLength).getFloat64(0, true);

export interface ClusterNode {
  readonly id: NodeId;
  readonly dir: string;
  store: Store;
  host: ShardHost;
  /** Outcomes by request id. */
  readonly replies: Map<number, Outcome>;
  up: boolean;
}

export interface HostClusterOptions {
  readonly nodes: number;
  readonly shards: number;
  readonly host?: Partial<Omit<HostOptions, 'store' | 'stateMachine' | 'sink' | 'nodeId' | 'seed'>>;
  /** Called for every message a node sends, before it is queued (checks hook in here). */
  readonly onSend?: (from: ClusterNode, shard: ShardId, m: Message) => void;
  readonly onReply?: (node: ClusterNode, shard: ShardId, r: ClientReply) => void;
  readonly stateMachine?: () => StateMachine;
  /**
   * Hosts tick by a clock (as in a worker) instead of tick(): each round with ticks moves the
   * clock by `tickMs` and calls every running host's catchUp() (its worker's loop top).
   */
  readonly clock?: { readonly tickMs: number };
}

export class HostCluster {
  readonly nodes: ClusterNode[] = [];
  private queue: { shard: ShardId; m: Message }[] = [];
  /** Snapshot transfers the hosts asked for, carried out at the next round (see transferSnapshot). */
  private snapshots: { from: ClusterNode; shard: ShardId; wish: SnapshotWish }[] = [];
  /** Snapshot transfers carried out (each a stream from a reader into a staged file). */
  snapshotTransfers = 0;
  /**
   * While true, snapshot wishes are held instead of carried out (a transfer still on the way);
   * {@link releaseSnapshots} carries them out.
   */
  holdSnapshots = false;
  /** Wishes held while {@link holdSnapshots}, in the order they came. */
  held: { from: ClusterNode; shard: ShardId; wish: SnapshotWish }[] = [];
  /** Links cut: messages between these pairs are dropped. */
  readonly cut = new Set<string>();
  /** Messages for which one of these is true are dropped (finer than `cut`). */
  readonly drops: ((m: Message) => boolean)[] = [];
  private reqId = 1;
  /** With `clock`: the shared clock, in ms; moves by tickMs per round with ticks. */
  nowMs = 0;
  /** With `clock`: how far ahead of `nowMs` a node's clock runs (its own timers fire early). */
  private readonly aheadMs = new Map<number, number>();
  /**
   * Nodes whose worker is stalled: no catch-up, no turn, and messages to them wait (in their
   * in-ring) until they run again, to be stepped then.
   */
  readonly paused = new Set<number>();
  private readonly root = mkdtempSync(join(tmpdir(), 'iroh-raft-hosts-'));

  constructor(private readonly opts: HostClusterOptions) {
    for (let i = 1; i <= opts.nodes; i++) {
      const id = i as NodeId;
      const dir = join(this.root, `n${i}`);
      const node = { id, dir, replies: new Map<number, Outcome>(), up: true } as ClusterNode;
      node.store = Store.open({ path: dir, worker: 0, workers: 1 });
      node.host = this.makeHost(node);
      this.nodes.push(node);
    }
  }

  private makeHost(node: ClusterNode): ShardHost {
    const sink: HostSink = {
      send: (shard, m) => {
        this.opts.onSend?.(node, shard, m);
        this.queue.push({ shard, m });
      },
      reply: (shard, r) => {
        this.opts.onReply?.(node, shard, r);
        const { reqId, ...o } = r;
        node.replies.set(reqId, o);
      },
      event: () => undefined,
      snapshot: (shard, wish) => {
        this.snapshots.push({ from: node, shard, wish });
      },
    };
    const host = new ShardHost({
      store: node.store,
      stateMachine: this.opts.stateMachine?.() ?? new IndexMachine(),
      sink,
      nodeId: node.id,
      seed: node.id * 7919,
      raft: { electionTimeoutTicks: 10 },
      ...(this.opts.clock ? { clock: () => this.nowMs + (this.aheadMs.get(node.id) ?? 0), tickMs: this.opts.clock.tickMs } : {}),
      ...this.opts.host,
    });
    const all = Array.from({ length: this.opts.nodes }, (_, i) => (i + 1) as NodeId);
    for (let s = 0; s < this.opts.shards; s++) host.open({ shard: s as ShardId, voters: all });
    return host;
  }

  node(id: number): ClusterNode {
    return this.nodes[id - 1]!;
  }

  /**
   * One round: deliver queued messages, tick every node once (with a clock: move it a tick and
   * catch up), turn every node until quiet. Paused nodes do nothing; messages to them wait.
   */
  round(tick = true): void {
    if (tick && this.opts.clock) this.nowMs += this.opts.clock.tickMs;
    const snaps = this.snapshots;
    this.snapshots = [];
    if (this.holdSnapshots) this.held.push(...snaps);
    else for (const t of snaps) this.transferSnapshot(t.from, t.shard, t.wish);
    const q = this.queue;
    this.queue = [];
    for (const item of q) {
      const { shard, m } = item;
      const to = this.node(m.to);
      if (!to.up || this.cut.has(`${m.from}-${m.to}`) || this.cut.has(`${m.to}-${m.from}`) || this.drops.some((d) => d(m))) continue;
      if (this.paused.has(to.id)) {
        this.queue.push(item);
        continue;
      }
      to.host.step(shard, m);
    }
    for (const n of this.nodes) {
      if (!n.up || this.paused.has(n.id)) continue;
      if (tick) {
        if (this.opts.clock) n.host.catchUp(true);
        else n.host.tick();
      }
      for (let i = 0; i < 8 && n.host.hasReady(); i++) n.host.turn();
    }
  }

  /**
   * What a node's shell does for a snapshot wish, in-process: read the sender's data in pieces from
   * its snapshot reader into a staged file beside the receiver's store, then hand that file to the
   * receiver's host (the real stream between nodes is the router's, tested with real processes).
   */
  private transferSnapshot(from: ClusterNode, shard: ShardId, wish: SnapshotWish): void {
    const to = this.node(wish.to);
    if (!from.up || !to.up || this.paused.has(to.id) || this.cut.has(`${wish.from}-${wish.to}`) || this.cut.has(`${wish.to}-${wish.from}`)) return;
    const reader = from.host.openSnapshot(shard);
    if (!reader) return;
    const path = join(to.dir, `staged-${shard}-${this.snapshotTransfers}.dump`);
    try {
      writeFileSync(path, new Uint8Array(0));
      for (let piece = reader.next(4096); piece !== undefined; piece = reader.next(4096)) appendFileSync(path, piece);
    } finally {
      reader.close();
    }
    this.snapshotTransfers++;
    to.host.installStaged(shard, { from: wish.from, term: wish.term, metadata: reader.metadata, path });
  }

  /** Carries out the held wishes for which `which` holds (default: all) now; the others stay held. */
  releaseSnapshots(which: (t: { from: ClusterNode; shard: ShardId; wish: SnapshotWish }) => boolean = () => true): number {
    const go = this.held.filter(which);
    this.held = this.held.filter((t) => !which(t));
    for (const t of go) this.transferSnapshot(t.from, t.shard, t.wish);
    return go.length;
  }

  /** With `clock`: node `id`'s clock jumps `ms` ahead of the others' (from its next catch-up on). */
  runAhead(id: number, ms: number): void {
    this.aheadMs.set(id, (this.aheadMs.get(id) ?? 0) + ms);
  }

  /** Runs rounds until `done` holds (or throws after `max` rounds). */
  until(done: () => boolean, max = 2000, tick = true): void {
    for (let i = 0; i < max; i++) {
      if (done()) return;
      this.round(tick);
    }
    throw new Error(`condition not reached in ${max} rounds`);
  }

  leaderOf(shard: number): ClusterNode | undefined {
    return this.nodes.find((n) => n.up && n.host.status(shard as ShardId)?.role === 'leader');
  }

  /** Waits until every shard has a leader. */
  elect(): void {
    this.until(() => Array.from({ length: this.opts.shards }, (_, s) => this.leaderOf(s)).every((l) => l !== undefined));
  }

  propose(node: ClusterNode, shard: number, key: string, session?: { clientId: number; seq: number }): number {
    const reqId = this.reqId++;
    node.host.propose(shard as ShardId, { reqId, clientId: session?.clientId ?? 0, seq: session?.seq ?? 0, command: new TextEncoder().encode(key) });
    return reqId;
  }

  read(node: ClusterNode, shard: number, key: string, consistency: 'linearizable' | 'lease' | 'stale' = 'linearizable'): number {
    const reqId = this.reqId++;
    node.host.read(shard as ShardId, { reqId, consistency, query: new TextEncoder().encode(key) });
    return reqId;
  }

  /** Crash: drop the node's host and store handle without any further turn. */
  async crash(id: number): Promise<void> {
    const n = this.node(id);
    n.up = false;
    await n.store.close();
  }

  /** Restart from disk. */
  restart(id: number): void {
    const n = this.node(id);
    n.store = Store.open({ path: n.dir, worker: 0, workers: 1 });
    n.host = this.makeHost(n);
    n.up = true;
  }

  async close(): Promise<void> {
    for (const n of this.nodes) if (n.up) await n.store.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}
