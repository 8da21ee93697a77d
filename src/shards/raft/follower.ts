import type { CoreView } from './core-view.js';
import { assert } from './errors.js';
import type { Membership } from './membership.js';
import type { Quiescence } from './quiesce.js';
import type { RaftCounters } from './counters.js';
import type { ConfState, LogIndex, Message, NodeId, Term } from './types.js';
import { MessageType, emptyMessage } from './types.js';

/**
 * What the follower's side sees of the raft core: its public state, read live (the core swaps its
 * output lists at every Ready). It changes the log (appends, commits, snapshots installed) and
 * appends to the output lists; an answer that states what the log holds waits for the log to be
 * durable (`msgsAfterPersist`).
 */
export interface FollowerCore extends CoreView {
  readonly msgs: Message[];
  readonly msgsAfterPersist: Message[];
  readonly counters: Pick<RaftCounters, 'snapshotsInstalled' | 'messagesFolded'>;
}

/** The core's private parts the follower's side uses, handed over as closures so they stay private. */
export interface FollowerHooks {
  /** Settles the proposals that the commit index or a changed log decided (see Raft). */
  resolveProposals(): void;
}

/**
 * A follower's side of log replication: what it does with its leader's App, Heartbeat and Snap
 * (the caller has checked that they come from the leader of the current term), and its answers.
 */
export class Follower {
  constructor(
    private readonly core: FollowerCore,
    private readonly members: Membership,
    private readonly quiet: Quiescence,
    private readonly hooks: FollowerHooks,
  ) {}

  handleAppend(msg: Message): void {
    const c = this.core;
    let m = msg;
    const committed = c.log.committed;
    if (m.index < committed) {
      // The entries up to our commit index are here already, and they are the leader's too (a
      // committed entry is in the log of every leader of this or a later term): append what
      // follows them. Answering only "committed" would drop the rest, and a leader that sent more
      // behind it (pipelined, or again after a probe its own entries overtook) would see every
      // later App refused and send the whole window again.
      const last = m.entries.length > 0 ? m.entries[m.entries.length - 1]!.index : m.index;
      const committedTerm = c.log.term(committed);
      if (last <= committed || committedTerm === undefined) {
        this.accept(m.from, committed);
        return;
      }
      m = { ...m, index: committed, logTerm: committedTerm, entries: m.entries.filter((e) => e.index > committed) };
      assert(m.entries[0]!.index === committed + 1, 'trimmed App starts right after the commit index');
    }
    const lastNew = c.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    this.hooks.resolveProposals();
    if (lastNew !== undefined) {
      if (m.commitOnly === true && m.entries.length === 0) return;
      this.accept(m.from, lastNew);
      return;
    }
    // Fast backtracking: tell the leader the last index at or before its probe whose term is no
    // newer than the probe's, so it can skip a whole term of mismatching entries per round trip.
    const hintIndex = Math.min(m.index, c.log.lastIndex()) as LogIndex;
    const hint = c.log.findConflictByTerm(hintIndex, m.logTerm);
    c.msgsAfterPersist.push({
      ...emptyMessage(MessageType.AppResp, c.id, m.from, c.term),
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  /**
   * Answers the leader's App with "I hold your log up to `index`", folded into the answer to an
   * earlier App of this Ready when that answer is the last one queued: within a term the prefix a
   * follower shares with its leader only grows (the leader's entries never conflict with each
   * other), so the larger index says all the smaller one did. A leader that sends a follower
   * several Apps between two of its turns gets one answer, not one per App.
   */
  private accept(to: NodeId, index: LogIndex): void {
    const c = this.core;
    const out = c.msgsAfterPersist;
    const last = out[out.length - 1];
    if (last !== undefined && last.type === MessageType.AppResp && last.to === to && last.term === c.term && last.reject !== true) {
      if (index > last.index) out[out.length - 1] = { ...last, index };
      c.counters.messagesFolded++;
      return;
    }
    out.push({ ...emptyMessage(MessageType.AppResp, c.id, to, c.term), index });
  }

  handleHeartbeat(m: Message): void {
    const c = this.core;
    c.log.commitTo(Math.min(m.commit, c.log.lastIndex()) as LogIndex);
    this.hooks.resolveProposals();
    c.msgs.push({ ...emptyMessage(MessageType.HeartbeatResp, c.id, m.from, c.term), context: m.context });
    // Go quiet only with a log that ends exactly where the leader's does.
    this.quiet.onHeartbeat(m);
  }

  handleSnapshot(m: Message): void {
    const c = this.core;
    const s = m.snapshot;
    assert(s !== undefined, 'Snap message without snapshot');
    if (this.restore(s)) {
      c.counters.snapshotsInstalled++;
      c.msgsAfterPersist.push({ ...emptyMessage(MessageType.AppResp, c.id, m.from, c.term), index: c.log.lastIndex() });
    } else {
      c.msgsAfterPersist.push({ ...emptyMessage(MessageType.AppResp, c.id, m.from, c.term), index: c.log.committed });
    }
  }

  /** Installs a snapshot if it brings something new; false when it is stale or already matched. */
  private restore(s: { metadata: { index: LogIndex; term: Term; confState: ConfState }; data: Uint8Array }): boolean {
    const c = this.core;
    const { index, term, confState } = s.metadata;
    if (index <= c.log.committed) return false;
    // The snapshot comes from this term's leader, so it is the truth at its index even when its
    // membership leaves this node out (taken before the node was added or re-added): the log that
    // follows brings the membership up to date.
    if (c.log.matchTerm(index, term)) {
      // We already have the entry: just fast-forward the commit.
      c.log.commitTo(index);
      this.hooks.resolveProposals();
      return false;
    }
    c.log.restore({ metadata: { index, term, confState }, data: s.data });
    this.members.restore(confState, index);
    this.hooks.resolveProposals();
    return true;
  }
}
