import type { CoreView } from './core-view.js';
import { RaftError, RaftErrorCode, assert } from './errors.js';
import { Progress } from './progress.js';
import type { RaftCounters } from './counters.js';
import type { ReadPath } from './read.js';
import type { Replication } from './replication.js';
import type { ConfChange, ConfState, LogIndex, Message, NodeId, Term } from './types.js';
import { ConfChangeType, MessageType, NONE } from './types.js';

/**
 * What membership sees of the raft core: its public state, read live. Membership changes the
 * sets of voters and learners and the progress map (keeping them one configuration), the
 * removal hint, and steps the replica down when the configuration leaves it out.
 */
export interface MembershipCore extends CoreView {
  readonly prs: Map<NodeId, Progress>;
  readonly voters: Set<NodeId>;
  readonly learners: Set<NodeId>;
  removedHint: LogIndex;
  readonly counters: Pick<RaftCounters, 'removedHints'>;
  becomeFollower(t: Term, lead: NodeId): void;
  abortTransfer(): void;
  /** Raises the commit index to what a quorum of voters durably holds; true when it moved. */
  maybeCommit(): boolean;
}

/**
 * The configuration: voters and learners, one change at a time (each change is an entry, applied
 * in log order; a new one is proposed only once the last is applied), and what a replica does
 * when its configuration changes or members say it was removed.
 */
export class Membership {
  /**
   * Index of the last membership change applied (or of the snapshot that set the membership).
   * A conf change entry at or below it is stale (it came in a Ready handed out before a snapshot
   * was installed) and must not roll the membership back.
   */
  confIndex = 0 as LogIndex;
  /** A conf change at an index above `applied` is pending: no new one until it is applied. */
  pendingConfIndex = 0 as LogIndex;

  constructor(
    private readonly core: MembershipCore,
    private readonly repl: Replication,
    private readonly read: ReadPath,
  ) {}

  /** Sets the configuration `cs`, as of `index` (a start, a snapshot installed): every progress starts over. */
  restore(cs: ConfState, index: LogIndex): void {
    const c = this.core;
    c.prs.clear();
    c.voters.clear();
    c.learners.clear();
    const next = (c.log.lastIndex() + 1) as LogIndex;
    for (const v of cs.voters) {
      c.voters.add(v);
      c.prs.set(v, this.newProgress(next, false));
    }
    for (const l of cs.learners) {
      assert(!c.voters.has(l), `conf state: ${l} is both voter and learner`);
      c.learners.add(l);
      c.prs.set(l, this.newProgress(next, true));
    }
    this.confIndex = index;
    c.removedHint = 0 as LogIndex;
  }

  newProgress(next: LogIndex, isLearner: boolean): Progress {
    return new Progress(next, isLearner, this.core.cfg.inflightMessagesMax, this.core.cfg.inflightBytesMax);
  }

  confState(): ConfState {
    const c = this.core;
    return { voters: [...c.voters].sort((a, b) => a - b), learners: [...c.learners].sort((a, b) => a - b) };
  }

  /** Applies the committed membership change at `index` (as the shell confirms it applied the entry). */
  applyConfChange(cc: ConfChange, index: LogIndex): void {
    const c = this.core;
    if (index <= this.confIndex) return;
    this.confIndex = index;
    c.removedHint = 0 as LogIndex;
    const next = (c.log.lastIndex() + 1) as LogIndex;
    switch (cc.type) {
      case ConfChangeType.AddVoter: {
        const pr = c.prs.get(cc.node);
        if (pr) {
          pr.isLearner = false;
        } else {
          c.prs.set(cc.node, this.newProgress(next, false));
        }
        c.learners.delete(cc.node);
        c.voters.add(cc.node);
        break;
      }
      case ConfChangeType.AddLearner: {
        if (c.voters.has(cc.node)) return; // demotion is refused at proposal time
        if (!c.prs.has(cc.node)) c.prs.set(cc.node, this.newProgress(next, true));
        c.learners.add(cc.node);
        break;
      }
      case ConfChangeType.RemoveNode: {
        if (c.voters.has(cc.node) && c.voters.size === 1) return; // refused at proposal time
        if (c.role === 'leader' && cc.node !== c.id) this.repl.farewell(cc.node, index);
        c.prs.delete(cc.node);
        c.voters.delete(cc.node);
        c.learners.delete(cc.node);
        break;
      }
    }
    if (c.role === 'leader') {
      if (!c.voters.has(c.id)) {
        // A leader that applied its own removal steps down; the rest elect a new leader.
        c.becomeFollower(c.term, NONE);
        return;
      }
      if (c.leadTransferee !== NONE && !c.voters.has(c.leadTransferee)) c.abortTransfer();
      if (cc.type === ConfChangeType.AddVoter || cc.type === ConfChangeType.AddLearner) {
        const pr = c.prs.get(cc.node);
        if (pr && cc.node !== c.id) this.repl.sendAppend(cc.node, true);
      }
      // The quorum may be smaller now.
      if (c.maybeCommit()) this.repl.bcastAppend();
      this.read.maybeCompleteReadRounds();
    } else if (c.role !== 'follower' && !c.voters.has(c.id)) {
      c.becomeFollower(c.term, NONE);
    }
  }

  /**
   * Throws the RaftError that refuses `cc` on this leader (ConfChangePending, InvalidConfChange);
   * returns when it may be proposed.
   */
  checkProposal(cc: ConfChange): void {
    const c = this.core;
    if (this.pendingConfIndex > c.log.applied) {
      throw new RaftError(
        RaftErrorCode.ConfChangePending,
        `a membership change at ${this.pendingConfIndex} is not applied yet (applied ${c.log.applied})`,
        c.lead,
      );
    }
    const isVoter = c.voters.has(cc.node);
    const isLearner = c.learners.has(cc.node);
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        if (isVoter) throw new RaftError(RaftErrorCode.InvalidConfChange, `${cc.node} is already a voter`);
        break;
      case ConfChangeType.AddLearner:
        if (isVoter) throw new RaftError(RaftErrorCode.InvalidConfChange, `${cc.node} is a voter; demotion is not supported`);
        if (isLearner) throw new RaftError(RaftErrorCode.InvalidConfChange, `${cc.node} is already a learner`);
        break;
      case ConfChangeType.RemoveNode:
        if (!isVoter && !isLearner) throw new RaftError(RaftErrorCode.InvalidConfChange, `${cc.node} is not a member`);
        if (isVoter && c.voters.size === 1) throw new RaftError(RaftErrorCode.InvalidConfChange, 'cannot remove the last voter');
        break;
    }
  }

  /**
   * A member says our campaign comes from outside its configuration. If that configuration is
   * newer than ours, we were removed while cut off: stop campaigning (nothing else changes; no
   * term, no vote). An older one lags behind ours and says nothing.
   */
  onNotMember(m: Message): void {
    const c = this.core;
    if (m.type !== MessageType.PreVoteResp && m.type !== MessageType.VoteResp) return;
    // Only a voter of our own configuration speaks for it.
    if (!c.voters.has(m.from) || m.index <= this.confIndex || c.role === 'leader') return;
    if (c.removedHint === 0) c.counters.removedHints++;
    c.removedHint = Math.max(c.removedHint, m.index) as LogIndex;
    if (c.role !== 'follower') c.becomeFollower(c.term, NONE);
  }
}
