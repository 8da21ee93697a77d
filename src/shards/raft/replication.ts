import type { CoreView } from './core-view.js';
import { assert } from './errors.js';
import type { Progress } from './progress.js';
import { majority } from './quorum.js';
import type { RaftCounters } from './counters.js';
import type { ReadPath } from './read.js';
import type { LogIndex, Message, NodeId } from './types.js';
import { MessageType, NONE, emptyMessage, entrySize } from './types.js';

/** Ticks (beyond a heartbeat interval) a replicating follower may go without progress before it is probed again. */
const STALL_TICKS_MAX = 2;
/**
 * Bytes in flight granted one more tick before a stall is declared: probing again resends all of
 * them, so a few MiB of large entries, slower to cross than a few ticks (heartbeats overtake them
 * and prove nothing), must not be resent every few ticks.
 */
const STALL_BYTES_PER_TICK = 256 * 1024;

/**
 * Ticks without progress after which a replicating follower with `inflightBytes` in flight counts
 * as stalled, when its acknowledgments have taken `ackTicks` ticks (smoothed) so far. Entries on a
 * busy path take longer to cross than the heartbeats that overtake them: twice the usual
 * acknowledgment time must pass before they count as lost, or every slow window is sent twice
 * (and the resent bytes make the path slower still).
 */
export function stallTicksFor(inflightBytes: number, heartbeatIntervalTicks: number, ackTicks = 0): number {
  const bySize = STALL_TICKS_MAX + heartbeatIntervalTicks + Math.floor(inflightBytes / STALL_BYTES_PER_TICK);
  return Math.max(bySize, Math.ceil(2 * ackTicks) + heartbeatIntervalTicks);
}

/** Weight of a new acknowledgment-time sample in {@link Progress.ackTicks}. */
const ACK_TICKS_GAIN = 1 / 8;

/**
 * What replication sees of the raft core: its public state, read live (the core swaps its output
 * list at every Ready). Replication moves the followers' progresses, appends to the output list
 * and counts; it changes nothing else of the core.
 */
export interface ReplicationCore extends CoreView {
  readonly voters: ReadonlySet<NodeId>;
  readonly msgs: Message[];
  readonly counters: Pick<RaftCounters, 'snapshotsSent' | 'stallProbes' | 'messagesFolded'>;
  /** Raises the commit index to what a quorum of voters durably holds; true when it moved. */
  maybeCommit(): boolean;
}

/** The core's private parts replication uses, handed over as closures so they stay private. */
export interface ReplicationHooks {
  /** Ticks since the node started. */
  now(): number;
}

/**
 * The leader's side of log replication: what it sends each follower (entries from the follower's
 * next index, a snapshot when the log no longer holds them, the commit index, heartbeats, the
 * TimeoutNow of a transfer) and what the followers' answers move (match, next, probe / replicate /
 * snapshot state, the commit index, stall detection).
 */
export class Replication {
  /** Ticks counted while leader (never reset): the clock of in-flight send times. */
  private leaderTicks = 0;
  /**
   * The sequence of the latest heartbeat sent to every member, and the voter whose answer to it
   * (or to a later one) came first, NONE until one has: the one read rounds ask.
   */
  private raceSeq = 0;
  private raceWinner: NodeId = NONE;

  constructor(
    private readonly core: ReplicationCore,
    private readonly read: ReadPath,
    private readonly hooks: ReplicationHooks,
  ) {}

  /** A new role or term: no heartbeat race is under way. */
  reset(): void {
    this.raceSeq = 0;
    this.raceWinner = NONE;
  }

  /** A tick while leader. */
  tick(): void {
    this.leaderTicks++;
  }

  bcastAppend(): void {
    for (const id of this.core.prs.keys()) if (id !== this.core.id) this.sendAppend(id, true);
  }

  /**
   * Sends entries (or a snapshot) to `to` if its progress allows. `sendIfEmpty` also sends an
   * empty App to carry the commit index. Returns whether something was sent.
   */
  sendAppend(to: NodeId, sendIfEmpty: boolean, withEntries = true): boolean {
    const c = this.core;
    const pr = c.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = (pr.next - 1) as LogIndex;
    // The other half of Progress's match < next: an App never starts at or below what the follower holds.
    if (!(prevIndex >= pr.match)) assert(false, `sendAppend to ${to}: prev ${prevIndex} below match ${pr.match}`);
    const prevTerm = c.log.term(prevIndex);
    const ents = prevTerm === undefined ? undefined : withEntries ? c.log.entriesFrom(pr.next, c.cfg.appendBytesMax) : [];
    if (prevTerm === undefined || ents === undefined) return this.sendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    const app: Message = {
      ...emptyMessage(MessageType.App, c.id, to, c.term),
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: c.log.committed,
    };
    // In replicate state an empty App's answer would repeat the answer to the App that carried
    // the entries up to prevIndex; if that answer is lost, stall detection probes again (a few
    // ticks later). A transferee's answer is what sends TimeoutNow: it is always asked for.
    this.queueApp(ents.length === 0 && pr.state === 'replicate' && to !== c.leadTransferee ? { ...app, commitOnly: true } : app);
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index;
      const firstNew = ents[0]!.index > pr.sentMax;
      switch (pr.state) {
        case 'replicate':
          pr.optimisticUpdate(last);
          pr.inflights.add(
            last,
            ents.reduce((s, e) => s + entrySize(e), 0),
            firstNew ? this.leaderTicks : -1,
          );
          break;
        case 'probe':
          pr.probeSent = true;
          break;
        case 'snapshot':
          assert(false, 'sendAppend in state snapshot');
      }
      if (last > pr.sentMax) pr.sentMax = last;
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    return true;
  }

  /**
   * Queues `app`, folded into the App queued last for its follower in this Ready when that one says
   * the same or more (a commit index is only ever a hint the follower takes up to the entries it
   * matched, so a larger one in an earlier message is what this one would have said):
   *
   * - a commit-only App that starts where the queued App's entries end raises that App's commit
   *   index instead of going out itself;
   * - an App from the same index as a queued commit-only one, with a commit index at least its
   *   own, replaces it.
   *
   * Under load most commit advances happen in turns that also send entries: without this, every
   * one of them cost each follower a message of its own, about a third of all raft messages.
   * Only the last message queued for the follower is looked at, and only if it is an App of this
   * term, so nothing queued for it moves past anything else queued for it.
   */
  private queueApp(app: Message): void {
    const msgs = this.core.msgs;
    let i = msgs.length - 1;
    while (i >= 0 && msgs[i]!.to !== app.to) i--;
    const q = i >= 0 ? msgs[i]! : undefined;
    if (q !== undefined && q.type === MessageType.App && q.term === app.term && q.snapshot === undefined) {
      if (app.commitOnly === true && q.index + q.entries.length === app.index) {
        if (app.commit > q.commit) msgs[i] = { ...q, commit: app.commit };
        this.core.counters.messagesFolded++;
        return;
      }
      if (q.commitOnly === true && q.index === app.index && app.commit >= q.commit) {
        msgs.splice(i, 1);
        this.core.counters.messagesFolded++;
      }
    }
    msgs.push(app);
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const c = this.core;
    if (!pr.recentActive) return false;
    const snap = c.log.snapshot();
    assert(snap.metadata.index > 0, 'sendSnapshot: log compacted without a snapshot');
    pr.becomeSnapshot(snap.metadata.index);
    c.counters.snapshotsSent++;
    c.msgs.push({ ...emptyMessage(MessageType.Snap, c.id, to, c.term), snapshot: snap });
    return true;
  }

  /**
   * The leader's last message to a replica it removes (at `index`): the entries it lacks and the
   * commit index, so it applies its own removal. The entry commits on the others' copies, and
   * after it applies here the leader sends the replica nothing more: without this it could keep
   * the entry uncommitted forever and never learn it is out (a quiet group never campaigns, which
   * would tell it too), and its node would keep hosting it.
   */
  farewell(to: NodeId, index: LogIndex): void {
    const c = this.core;
    const pr = c.prs.get(to);
    if (pr === undefined || pr.state === 'snapshot') return;
    if (this.sendAppend(to, true)) return;
    // Paused (a full window, or a probe in flight): a commit-only message is enough if it holds the entry.
    if (pr.match < index) return;
    const logTerm = c.log.term(pr.match);
    if (logTerm === undefined) return;
    c.msgs.push({
      ...emptyMessage(MessageType.App, c.id, to, c.term),
      index: pr.match,
      logTerm,
      entries: [],
      commit: Math.min(c.log.committed, pr.match) as LogIndex,
      commitOnly: true,
    });
  }

  bcastHeartbeat(quiesce = false): number {
    const c = this.core;
    // Send ticks older than an election timeout are useless for the lease, so they are dropped.
    const seq = this.read.queue.nextHeartbeat(this.hooks.now(), c.cfg.electionTimeoutTicks);
    for (const [id, pr] of c.prs) if (id !== c.id) this.sendHeartbeat(id, pr, seq, quiesce);
    this.raceSeq = seq;
    this.raceWinner = NONE;
    return seq;
  }

  /** A heartbeat of sequence `seq` to `to`, with the commit index it may know (at most its match). */
  private sendHeartbeat(to: NodeId, pr: Progress, seq: number, quiesce = false): void {
    const c = this.core;
    const m: Message = {
      ...emptyMessage(MessageType.Heartbeat, c.id, to, c.term),
      commit: Math.min(pr.match, c.log.committed) as LogIndex,
      context: seq,
    };
    c.msgs.push(quiesce ? { ...m, quiesce: true } : m);
  }

  /**
   * A read round's heartbeat: sent only to as many other voters as a quorum needs, since a round
   * waits for a quorum's answers and no more (with three voters, one heartbeat and one answer per
   * round instead of two of each). First the voter that answered the latest heartbeat sent to
   * every member first (each tick's heartbeat is a race, so a follower slower than another stops
   * being asked within a heartbeat interval), then those that answered the most recent heartbeat.
   * The sequence and its send tick are recorded as for any heartbeat, so the answers also date
   * the lease. A chosen voter that does not answer holds the round until the next heartbeat sent
   * to every member (the next tick's; a round's reads keep the leader awake), whose answers
   * complete it too, and whose first answer picks the voter asked from then on. A transfer's
   * target comes last: once told to campaign it would not answer.
   */
  heartbeatQuorum(): number {
    const c = this.core;
    const seq = this.read.queue.nextHeartbeat(this.hooks.now(), c.cfg.electionTimeoutTicks);
    const need = majority(c.voters.size) - (c.voters.has(c.id) ? 1 : 0);
    const acked = (id: NodeId): number => c.prs.get(id)?.ackedHeartbeat ?? 0;
    const last = (id: NodeId): number => (id === c.leadTransferee ? 1 : 0);
    const first = (id: NodeId): number => (id === this.raceWinner ? 1 : 0);
    const others = [...c.voters].filter((id) => id !== c.id).sort((a, b) => last(a) - last(b) || first(b) - first(a) || acked(b) - acked(a) || a - b);
    for (const id of others.slice(0, need)) {
      const pr = c.prs.get(id);
      if (pr) this.sendHeartbeat(id, pr, seq);
    }
    return seq;
  }

  sendTimeoutNow(to: NodeId): void {
    const c = this.core;
    this.read.revokeLease();
    c.msgs.push(emptyMessage(MessageType.TimeoutNow, c.id, to, c.term));
  }

  handleAppendResponse(m: Message, pr: Progress): void {
    const c = this.core;
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = c.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, false);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    // An accepted probe at the follower's match (the empty App a heartbeat answer brings in probe
    // state) moves nothing, but says where the follower stands: replicate from there.
    if (!pr.maybeUpdate(m.index) && !(pr.state === 'probe' && pr.match === m.index)) {
      if (wasPaused && pr.state === 'probe') this.sendAppend(m.from, false);
      return;
    }
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= c.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      const sentTick = pr.inflights.freeLE(m.index);
      if (sentTick >= 0) {
        const sample = this.leaderTicks - sentTick;
        pr.ackTicks = pr.ackTicks === 0 ? sample : pr.ackTicks + (sample - pr.ackTicks) * ACK_TICKS_GAIN;
      }
    }
    if (c.maybeCommit()) {
      this.bcastAppend();
    } else {
      while (this.sendAppend(m.from, false));
    }
    if (m.from === c.leadTransferee && pr.match === c.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  handleHeartbeatResponse(m: Message, pr: Progress): void {
    const c = this.core;
    pr.recentActive = true;
    pr.probeSent = false;
    if (m.context > pr.ackedHeartbeat) pr.ackedHeartbeat = m.context;
    if (this.raceWinner === NONE && this.raceSeq > 0 && m.context >= this.raceSeq && c.voters.has(m.from)) this.raceWinner = m.from;
    // The follower is alive but its match has not moved for a while: what was in flight is lost
    // (the network dropped it, or the follower restarted). Probe again from its match.
    const stallAfter = pr.state === 'replicate' ? stallTicksFor(pr.inflights.bytes, c.cfg.heartbeatIntervalTicks, pr.ackTicks) : Infinity;
    if (pr.stallTicks >= stallAfter) {
      c.counters.stallProbes++;
      // Lost, or slower than it ever was: until acknowledgments say otherwise, the path counts as
      // at least this slow, so the next stall waits twice as long (up to twice an election timeout).
      pr.ackTicks = Math.min(c.cfg.electionTimeoutTicks, Math.max(pr.ackTicks, stallAfter));
      pr.becomeProbe();
    }
    // In probe state the heartbeat's answer is met with an empty App: its answer tells where the
    // follower stands, and entries follow from there. Resending the entries themselves at every
    // heartbeat would put the same bytes on the wire again and again whenever they take longer to
    // cross than a heartbeat interval (a few MiB of large values behind a slow link).
    if (pr.match < c.log.lastIndex()) this.sendAppend(m.from, pr.state === 'probe', pr.state !== 'probe');
    this.read.maybeCompleteReadRounds();
  }
}
