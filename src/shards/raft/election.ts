import type { CoreView } from './core-view.js';
import { voteResult } from './quorum.js';
import type { LogIndex, Message, NodeId, Term } from './types.js';
import { EntryType, MessageType, NONE, emptyMessage } from './types.js';

/** Largest k in the election timeout range [E, (1 + 2^k) E) after k campaigns without a leader. */
const ELECTION_BACKOFF_MAX = 3;

/** Vote context marking a campaign that a leader asked for (leadership transfer). */
export const TRANSFER_CONTEXT = 1;

/**
 * What elections see of the raft core: its public state, read live (the core swaps its output
 * lists at every Ready). Elections set the vote when they grant one, append to the output lists,
 * and move the role only through the core's transitions.
 */
export interface ElectionCore extends CoreView {
  vote: NodeId;
  readonly voters: ReadonlySet<NodeId>;
  readonly msgs: Message[];
  readonly msgsAfterPersist: Message[];
  /** A voter of the current configuration that may campaign. */
  promotable(): boolean;
  becomeFollower(t: Term, lead: NodeId): void;
}

/** The core's private parts elections use, handed over as closures so they stay private. */
export interface ElectionHooks {
  becomePreCandidate(): void;
  becomeCandidate(): void;
  becomeLeader(): void;
  /** This replica promised a leader not to help elect another one (see Raft's `leaseUntil`). */
  inLease(): boolean;
  /** Election timer back to zero. */
  restartElectionTimer(): void;
}

/**
 * Campaigns and votes: a (pre-)campaign started and its answers counted, vote requests granted or
 * refused, and the election timeout's backoff after campaigns that collided with another's.
 */
export class Election {
  /** Election responses in the current (pre-)campaign. */
  private readonly votes = new Map<NodeId, boolean>();
  /**
   * Contended campaigns this replica started since it last had a leader (heard one, or was one):
   * each widens the range its next election timeout is drawn from (see {@link timeout}), so
   * replicas whose campaigns keep colliding spread out. 0 after any contact with a leader.
   */
  private campaignsWithoutLeader = 0;
  /**
   * While (pre-)campaigning: another replica campaigned too, or a vote was refused. A campaign
   * that simply got no answer (this replica is cut off) is not contended and does not back off.
   */
  private campaignContended = false;

  constructor(
    private readonly core: ElectionCore,
    private readonly hooks: ElectionHooks,
  ) {}

  /**
   * A random election timeout: [E, 2E) ticks while elections succeed, as the Raft paper has it;
   * after k contended campaigns without a leader, [E, (1 + 2^k) E) with k at most 3. When a round takes
   * about as long as the spread of timeouts (thousands of groups in one worker, each turn
   * slower), replicas of a group kept starting campaigns over each other's and none won;
   * backing off spreads them until one round fits.
   */
  timeout(): number {
    const e = this.core.cfg.electionTimeoutTicks;
    return this.core.cfg.prng.int(e, e + e * 2 ** Math.min(this.campaignsWithoutLeader, ELECTION_BACKOFF_MAX));
  }

  /** A leader is known (heard, or this replica): campaigns so far say nothing about the next election. */
  forgetCampaigns(): void {
    this.campaignsWithoutLeader = 0;
    this.campaignContended = false;
  }

  /** Another replica campaigns while this one does. */
  contended(): void {
    this.campaignContended = true;
  }

  /** A new role or term: no answers counted. */
  clearVotes(): void {
    this.votes.clear();
  }

  /** Starts a (pre-)campaign. `transfer`: asked by the leader, so skip pre-vote and override leases. */
  hup(transfer: boolean): void {
    const c = this.core;
    if (c.role === 'leader' || !c.promotable()) return;
    // Campaigning means voting for oneself: not while a leader may rely on our promise.
    if (!transfer && this.hooks.inLease()) return;
    // A node must not campaign with committed entries it has not applied: they may hold conf changes.
    if (this.hasUnappliedConfChange()) return;
    if (!transfer) {
      if (this.campaignContended) this.campaignsWithoutLeader++;
      this.campaignContended = false;
    }
    if (c.cfg.preVote && !transfer) this.campaign('pre');
    else this.campaign(transfer ? 'transfer' : 'real');
  }

  private hasUnappliedConfChange(): boolean {
    const c = this.core;
    if (c.log.applied >= c.log.committed) return false;
    const ents = c.log.slice((c.log.applied + 1) as LogIndex, (c.log.committed + 1) as LogIndex, Number.MAX_SAFE_INTEGER);
    return ents?.some((e) => e.type === EntryType.ConfChange) ?? false;
  }

  private campaign(kind: 'pre' | 'real' | 'transfer'): void {
    const c = this.core;
    let voteTerm: Term;
    if (kind === 'pre') {
      this.hooks.becomePreCandidate();
      voteTerm = (c.term + 1) as Term;
    } else {
      this.hooks.becomeCandidate();
      voteTerm = c.term;
    }
    this.votes.set(c.id, true);
    if (voteResult(c.voters, this.votes) === 'won') {
      if (kind === 'pre') this.campaign('real');
      else this.hooks.becomeLeader();
      return;
    }
    const lastIndex = c.log.lastIndex();
    const lastTerm = c.log.lastTerm();
    for (const v of [...c.voters].sort((a, b) => a - b)) {
      if (v === c.id) continue;
      const m: Message = {
        ...emptyMessage(kind === 'pre' ? MessageType.PreVote : MessageType.Vote, c.id, v, voteTerm),
        index: lastIndex,
        logTerm: lastTerm,
        context: kind === 'transfer' ? TRANSFER_CONTEXT : 0,
      };
      // A real vote request must not leave before this node's own vote is durable.
      if (kind === 'pre') c.msgs.push(m);
      else c.msgsAfterPersist.push(m);
    }
  }

  handleVoteRequest(m: Message): void {
    const c = this.core;
    const pre = m.type === MessageType.PreVote;
    const canVote = c.vote === m.from || (c.vote === NONE && c.lead === NONE) || (pre && m.term > c.term);
    const logOk = c.log.isUpToDate(m.index, m.logTerm);
    const respType = pre ? MessageType.PreVoteResp : MessageType.VoteResp;
    // Membership is not checked: a replica whose configuration lags (or that is still empty,
    // waiting for its first snapshot) may be a voter in the candidate's configuration.
    if (canVote && logOk) {
      const resp = emptyMessage(respType, c.id, m.from, m.term);
      if (pre) {
        c.msgs.push(resp);
      } else {
        this.hooks.restartElectionTimer();
        c.vote = m.from;
        // The grant depends on the vote being durable.
        c.msgsAfterPersist.push(resp);
      }
    } else {
      c.msgs.push({ ...emptyMessage(respType, c.id, m.from, c.term), reject: true });
    }
  }

  /** An answer to this replica's (pre-)campaign, counted; the campaign is won, lost, or goes on. */
  handleVoteResponse(m: Message): void {
    const c = this.core;
    const myType = c.role === 'pre-candidate' ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (m.type !== myType) return;
    if (!c.voters.has(m.from)) return;
    if (m.reject) this.campaignContended = true;
    this.votes.set(m.from, !m.reject);
    const r = voteResult(c.voters, this.votes);
    if (r === 'won') {
      if (c.role === 'pre-candidate') {
        // A conf change may have become known as committed during the pre-vote.
        if (this.hasUnappliedConfChange()) c.becomeFollower(c.term, NONE);
        else this.campaign('real');
      } else {
        this.hooks.becomeLeader();
      }
    } else if (r === 'lost') {
      c.becomeFollower(c.term, NONE);
    }
  }
}
