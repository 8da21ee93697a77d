/**
 * Which peers, and which of their workers, can lead shards, as this node sees them; and the wakes
 * of quiet shards that follow. A quiet group sends no heartbeats, so when the node of its leader
 * dies, or only the worker thread that hosts the leader's replica, nothing in raft tells the
 * followers. Liveness records do: one per peer per tick however many shards, naming the sender's
 * running workers ({@link decodeLiveness}). Any record from a peer says its node is there (so a
 * liveness record queued behind bulk traffic never makes a busy peer look gone), but only
 * liveness records say which of its workers run: raft traffic from one healthy worker says
 * nothing about the shards of a dead one.
 *
 * Pure bookkeeping: the caller passes the time and runs the wakes it is handed, so tests drive it
 * without timers, threads or a network.
 */
import { CodecError, decodeLiveness, isStopping, leadsOf } from '../wire/index.js';
import type { NodeLoad } from '../wire/index.js';
import { assert } from '../shards/raft/index.js';
import type { NodeId, ShardId } from '../shards/raft/index.js';

export interface LivenessOptions {
  readonly self: NodeId;
  readonly peers: readonly NodeId[];
  /** Shards hosted here with their voters (fixed placement): which peer shares which shard. */
  readonly local: readonly { readonly shard: ShardId; readonly voters: readonly NodeId[] }[];
  /** The leader the local replica of `shard` last reported; 0 or undefined when none is known. */
  readonly localLead: (shard: ShardId) => number | undefined;
  /**
   * Every shard hosted here whose local replica last reported `peer` as its leader, whatever the
   * placement says. A peer that leads a group keeps leading it after the placement moved its
   * replicas away (it is leaving, or its replica moves) until a membership change removes it, and
   * such a change needs a leader: when that peer dies, only a wake brings the quiet followers here
   * to elect another one.
   */
  readonly ledBy: (peer: NodeId) => readonly ShardId[];
  /** Milliseconds without a liveness record before a peer counts as gone (an election timeout). */
  readonly timeoutMs: number;
  /**
   * Least milliseconds between two wake rounds on behalf of one peer: a peer (or a worker of it)
   * that comes and goes costs at most one round per this, however often it flaps.
   */
  readonly wakeGapMs: number;
  /** The time now, in milliseconds (performance.now()): every peer counts as just heard. */
  readonly now: number;
}

/**
 * Quiet replicas here to wake: those of `shards` whose leader is `leader`. The worker checks both
 * again (quiet, and led by `leader`), since either may have changed on the way.
 */
export interface WakeRequest {
  readonly leader: NodeId;
  readonly shards: readonly ShardId[];
}

/** Counts, all only growing. */
export interface LivenessCounters {
  /** Peers declared gone after a liveness timeout of silence. */
  peersDown: number;
  /** Peers heard again after being declared gone. */
  peersUp: number;
  /** Workers of up peers that a liveness record reported stopped (were running before). */
  workersDown: number;
  /** Workers of up peers that a liveness record reported running again. */
  workersUp: number;
  /** Liveness payloads that did not decode: ignored, the peer is not refreshed. */
  bad: number;
  /** Wake rounds: at most one per peer per wakeGapMs. */
  wakes: number;
  /** Reasons to wake for a peer that already owed a round: folded into it. */
  wakesCoalesced: number;
  /** Shards named in wake requests: the work that peers' comings and goings cost. */
  wakeShards: number;
  /** Checks that declared nobody gone because this node's own event loop had stalled. */
  stalls: number;
}

/** What one peer last said of itself, and the wakes owed on its behalf. */
interface Peer {
  readonly id: NodeId;
  /**
   * Shards placed here that the peer is placed on too, ascending; replaced when the layout changes.
   * Placement only: a replica the targets already moved off the peer is not in it, though the peer
   * may still be in that group, even lead it (see {@link LivenessOptions.ledBy}).
   */
  readonly shared: readonly ShardId[];
  /** When its last record of any kind arrived (ms); only grows. */
  heard: number;
  /** False once silent for longer than timeoutMs; true again at its next record. */
  up: boolean;
  /**
   * True once a record or traffic came from it since it became a peer here; never false again.
   * Until then it is up only on the benefit of the doubt (see {@link Liveness.heardFrom}).
   */
  said: boolean;
  /**
   * Per worker of the peer, as its last valid record said: true while it runs. Empty: not said
   * (every worker counts as running). Kept while the peer is down: the last word it gave.
   */
  running: readonly boolean[];
  /** The client load the peer last reported, and when (ms); undefined until it says. Kept while it is down. */
  load: { readonly load: NodeLoad; readonly at: number } | undefined;
  /** How many data shards the peer last said it leads, and when (ms); undefined until it says. */
  leads: { readonly count: number; readonly at: number } | undefined;
  /** Whether its last valid record said it is stopping (and handing its leaderships over). */
  stopping: boolean;
  /**
   * Quiet followers here may have lost their leader to this peer (it went silent, or a worker of
   * it stopped) and no round has run since. The round wakes those still led by the peer whose
   * shard the peer cannot lead now.
   */
  orphaned: boolean;
  /**
   * The peer came back from silence since the last round: quiet leaders here of the shards it
   * can lead owe its replicas a heartbeat, so they find their leader at once.
   */
  returnedAll: boolean;
  /** Workers of the peer that came back since the last round (as returnedAll, for their shards). */
  readonly returned: Set<number>;
  /** Earliest time of the next round for this peer: the last round's time plus wakeGapMs. */
  nextWakeAt: number;
}

/** One peer in {@link Liveness.view}. */
export interface PeerView {
  readonly node: NodeId;
  readonly up: boolean;
  readonly workers: number;
  readonly workersDown: number[];
  readonly heardMsAgo: number;
  readonly load?: NodeLoad;
  readonly loadMsAgo?: number;
}

/** The shards of `leaders` (shard -> the leader its local replica last reported) led by `peer`. */
export function shardsLedBy(leaders: ReadonlyMap<ShardId, { readonly lead: number }>, peer: NodeId): ShardId[] {
  const out: ShardId[] = [];
  for (const [shard, e] of leaders) if (e.lead === peer) out.push(shard);
  return out;
}

export class Liveness {
  private readonly peers = new Map<NodeId, Peer>();
  /** When check() last ran (ms), to tell a stall of this node's own event loop. */
  private lastCheck: number;
  /** The last check was skipped as a stall: the next one is not, so detection waits one check at most. */
  private skipped = false;
  /**
   * Peers forgotten (no longer members) since the last round: their traffic is refused from now
   * on, so quiet followers here that they lead owe a wake, even when this node never found them
   * silent. Emptied by each {@link due}.
   */
  private readonly forgotten = new Set<NodeId>();
  readonly counters: LivenessCounters = {
    peersDown: 0,
    peersUp: 0,
    workersDown: 0,
    workersUp: 0,
    bad: 0,
    wakes: 0,
    wakesCoalesced: 0,
    wakeShards: 0,
    stalls: 0,
  };

  constructor(private readonly opts: LivenessOptions) {
    assert(opts.timeoutMs > 0, `liveness timeoutMs must be positive, got ${opts.timeoutMs}`);
    assert(opts.wakeGapMs >= 0, `liveness wakeGapMs must be >= 0, got ${opts.wakeGapMs}`);
    this.lastCheck = opts.now;
    this.setLayout(opts.peers, opts.local, opts.now);
  }

  /**
   * The members and the shards hosted here changed (a join, a removal, a replica moved): new peers
   * count as just heard, peers no longer members are forgotten (the quiet followers they lead
   * here are woken at the next round), and every peer's shared shards are those of `local` it
   * replicates too. What known peers said of themselves is kept.
   */
  setLayout(peers: readonly NodeId[], local: LivenessOptions['local'], now: number): void {
    const keep = new Set(peers);
    for (const id of this.peers.keys()) {
      if (keep.has(id)) continue;
      this.peers.delete(id);
      this.forgotten.add(id);
    }
    for (const id of peers) {
      if (id === this.opts.self) continue;
      const shared = local.filter((s) => s.voters.includes(id)).map((s) => s.shard);
      shared.sort((a, b) => a - b);
      const had = this.peers.get(id);
      if (had !== undefined) {
        this.peers.set(id, { ...had, shared });
        continue;
      }
      this.peers.set(id, {
        id,
        shared,
        heard: now,
        up: true,
        said: false,
        running: [],
        load: undefined,
        leads: undefined,
        stopping: false,
        orphaned: false,
        returnedAll: false,
        returned: new Set(),
        nextWakeAt: -Infinity,
      });
    }
  }

  /**
   * A liveness record from `peer` (the authenticated sender). False when ignored: not a peer, or a
   * payload that does not decode (counted in `bad`; the peer is not refreshed by it).
   */
  onRecord(peer: NodeId, payload: Uint8Array, now: number): boolean {
    const p = this.peers.get(peer);
    if (!p) return false;
    let running: readonly boolean[];
    try {
      const frame = decodeLiveness(payload);
      running = frame.running;
      if (frame.load !== undefined) p.load = { load: frame.load, at: now };
      const leads = leadsOf(frame);
      if (leads !== undefined) p.leads = { count: leads, at: now };
      p.stopping = isStopping(frame);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      this.counters.bad++;
      return false;
    }
    p.heard = Math.max(p.heard, now);
    p.said = true;
    if (!p.up) {
      p.running = running;
      this.back(p);
      return true;
    }
    // A peer's worker count is fixed at its first start; if it changed anyway, its old report
    // says nothing about the new workers: compare as if they had all been running.
    const before = p.running.length === running.length ? p.running : undefined;
    for (let w = 0; w < running.length; w++) {
      const was = before === undefined || before[w] === true;
      if (was && !running[w]) {
        this.counters.workersDown++;
        this.owe(p);
        p.orphaned = true;
      } else if (!was && running[w]) {
        this.counters.workersUp++;
        this.owe(p);
        p.returned.add(w);
      }
    }
    p.running = running;
    return true;
  }

  /**
   * Any other authenticated record from `peer` (raft traffic, forwards, replies): its node is
   * there. Its workers stay as its last liveness record said.
   */
  onTraffic(peer: NodeId, now: number): void {
    const p = this.peers.get(peer);
    if (!p) return;
    p.heard = Math.max(p.heard, now);
    p.said = true;
    if (!p.up) this.back(p);
  }

  /** A peer that was gone is heard again. */
  private back(p: Peer): void {
    p.up = true;
    this.counters.peersUp++;
    this.owe(p);
    p.returnedAll = true;
    // Back, but with a worker down: the followers it leads there still need a new leader.
    if (p.running.includes(false)) p.orphaned = true;
  }

  /**
   * Declares peers silent for longer than timeoutMs gone. Call it about once per liveness
   * interval. Right after a stall of this node's own event loop (longer than half a timeout since
   * the last check) it declares nobody gone: the records that arrived meanwhile are still queued
   * behind this timer, and silence measured on a stalled clock is not the peer's. Never twice in
   * a row, so a loop that always lags still detects, one check late.
   */
  check(now: number): void {
    const stalled = now - this.lastCheck > this.opts.timeoutMs / 2;
    this.lastCheck = now;
    if (stalled && !this.skipped) {
      this.skipped = true;
      this.counters.stalls++;
      return;
    }
    this.skipped = false;
    for (const p of this.peers.values()) {
      if (!p.up || now - p.heard <= this.opts.timeoutMs) continue;
      p.up = false;
      this.counters.peersDown++;
      this.owe(p);
      p.orphaned = true;
    }
  }

  /**
   * The wake rounds due now, at most one per peer per wakeGapMs; each names only shards hosted
   * here that need it now:
   * - followers still led by a peer forgotten since the last round (no longer a member), with no
   *   wait for a gap: it can lead nothing now;
   * - followers still led by the peer, when the peer cannot lead that shard (gone, or the
   *   shard's worker on it stopped): every such shard hosted here, placed on the peer or not (a
   *   leaving peer that dies leads groups the placement already moved off it);
   * - shards led here that the peer replicates too, whose replica on the peer came back (with the
   *   node or with its worker).
   */
  due(now: number): WakeRequest[] {
    const out: WakeRequest[] = [];
    for (const id of this.forgotten) {
      // A member again (forgotten, then added back before this round): its own rounds decide.
      if (this.peers.has(id)) continue;
      const shards = [...this.opts.ledBy(id)].sort((a, b) => a - b);
      if (shards.length === 0) continue;
      this.counters.wakes++;
      this.counters.wakeShards += shards.length;
      out.push({ leader: id, shards });
    }
    this.forgotten.clear();
    for (const p of this.peers.values()) {
      if (!this.owes(p) || now < p.nextWakeAt) continue;
      p.nextWakeAt = now + this.opts.wakeGapMs;
      this.counters.wakes++;
      if (p.orphaned) {
        const shards = this.opts
          .ledBy(p.id)
          .filter((s) => !this.canLead(p, s))
          .sort((a, b) => a - b);
        if (shards.length > 0) out.push({ leader: p.id, shards });
        this.counters.wakeShards += shards.length;
      }
      if (p.up && (p.returnedAll || p.returned.size > 0)) {
        const workers = p.running.length;
        const back = (s: ShardId): boolean => p.returnedAll || (workers > 0 && p.returned.has(s % workers));
        const shards = p.shared.filter((s) => this.opts.localLead(s) === this.opts.self && back(s) && this.canLead(p, s));
        if (shards.length > 0) out.push({ leader: this.opts.self, shards });
        this.counters.wakeShards += shards.length;
      }
      p.orphaned = false;
      p.returnedAll = false;
      p.returned.clear();
      assert(!this.owes(p), 'a wake round leaves nothing owed');
    }
    return out;
  }

  /**
   * True when requests for `shard` may go to `node`: this node, or a peer that is up and whose
   * worker for `shard` runs as far as its last record said. False for a non-member.
   */
  reachable(node: NodeId, shard: ShardId): boolean {
    if (node === this.opts.self) return true;
    const p = this.peers.get(node);
    return p !== undefined && this.canLead(p, shard);
  }

  /** Whether peer `node` said in its last record that it is stopping: it must be given no leadership. */
  stopping(node: NodeId): boolean {
    return this.peers.get(node)?.stopping === true;
  }

  /**
   * How many data shards peer `node` leads, as it said at most `maxAgeMs` before `now`; undefined
   * when it is down, never said, or said it longer ago.
   */
  leadsOf(node: NodeId, now: number, maxAgeMs: number): number | undefined {
    const p = this.peers.get(node);
    if (p === undefined || !p.up || p.leads === undefined || now - p.leads.at > maxAgeMs) return undefined;
    return p.leads.count;
  }

  /**
   * Whether peer `node` has said anything (a record, or any traffic) since it became a peer here.
   * A new peer counts as up from the start, so a node that restarts does not take every peer for
   * gone; but a member admitted and never seen (a join whose node never started) is up only on
   * that benefit of the doubt, for one timeout, and must not get a replica in that window.
   */
  heardFrom(node: NodeId): boolean {
    return this.peers.get(node)?.said === true;
  }

  /** Peers currently counted as up. */
  peersUp(): NodeId[] {
    return [...this.peers.values()].filter((p) => p.up).map((p) => p.id);
  }

  /**
   * Every peer as seen from here, for the status page: `heardMsAgo` since its last record of any
   * kind, and its last reported load with `loadMsAgo` (both in ms at `now`), absent until it said.
   */
  view(now: number = this.lastCheck): PeerView[] {
    return [...this.peers.values()].map((p) => ({
      node: p.id,
      up: p.up,
      workers: p.running.length,
      workersDown: p.running.flatMap((r, w) => (r ? [] : [w])),
      heardMsAgo: Math.max(0, Math.round(now - p.heard)),
      ...(p.load === undefined ? {} : { load: p.load.load, loadMsAgo: Math.max(0, Math.round(now - p.load.at)) }),
    }));
  }

  /** Up, and the worker of the peer that hosts `shard` runs (unknown counts as running). */
  private canLead(p: Peer, shard: ShardId): boolean {
    return p.up && (p.running.length === 0 || p.running[shard % p.running.length] === true);
  }

  private owes(p: Peer): boolean {
    return p.orphaned || p.returnedAll || p.returned.size > 0;
  }

  /** Counts a reason to wake that joins a round the peer already owes. */
  private owe(p: Peer): void {
    if (this.owes(p)) this.counters.wakesCoalesced++;
  }
}
