/**
 * A replica's view of its shard's membership, and membership changes asked of it, in plain
 * structured-cloneable values: what the worker's control API hands the placement code on the
 * main thread. Raft errors become answers here; none crosses the thread boundary as a throw.
 */
import { ConfChangeType, RaftError, RaftErrorCode } from './raft/index.js';
import type { ConfChange, NodeId, RawNode } from './raft/index.js';

/** The membership of one replica's shard as it applied it, with its raft position. */
export interface Membership {
  /** This replica's role: 'leader', 'follower', 'candidate' or 'pre-candidate'. */
  readonly role: string;
  readonly term: number;
  /** The leader this replica knows of (0: none). */
  readonly lead: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** Voters as of the applied index, ascending. */
  readonly voters: number[];
  /** Learners as of the applied index, ascending. */
  readonly learners: number[];
  /**
   * On the leader, each member's highest index known replicated on it (the leader's own
   * included), ascending by node, and how the leader replicates to it: `probe` (it has not
   * answered yet, or rejected an append: its match may be stale), `replicate` (it acknowledges
   * appends), `snapshot` (it waits for a snapshot). A learner that has never answered shows match
   * 0 in `probe`: caught up means `replicate` and a match close to `lastIndex`. Empty on every
   * other replica.
   */
  readonly progress: { node: number; match: number; state: 'probe' | 'replicate' | 'snapshot' }[];
  /**
   * Non-zero when members said a configuration at this index leaves this replica out (it then
   * does not campaign); see the core's removedHint.
   */
  readonly removedHint: number;
  /** Campaigns (pre-vote rounds and elections) this replica started since its worker started. */
  readonly campaigns: number;
}

/** One membership change: add `node` as a learner, add (or promote) it as a voter, or remove it. */
export interface MembershipChange {
  readonly type: 'addLearner' | 'addVoter' | 'remove';
  /** Replica id (a node id): an integer in [1, 2^32 - 1]. */
  readonly node: number;
}

/**
 * The answer to a membership change: `proposed` (the leader appended it; it takes effect on each
 * replica as it applies it: watch {@link Membership}), `not-leader` (ask the leader, see
 * `lead`), `pending` (an earlier change is not applied yet, a leadership transfer runs, or the
 * uncommitted log is full: retry later), `invalid` (the change makes no sense for the current
 * membership: a voter made a learner, a learner added twice, a non-member removed, the last
 * voter removed, a bad type or node id), `absent` (the shard is not hosted here).
 */
export type MembershipAnswer = 'proposed' | 'not-leader' | 'pending' | 'invalid' | 'absent';

const CHANGE_TYPE: Record<MembershipChange['type'], ConfChangeType> = {
  addLearner: ConfChangeType.AddLearner,
  addVoter: ConfChangeType.AddVoter,
  remove: ConfChangeType.RemoveNode,
};

const NODE_ID_MAX = 2 ** 32 - 1;

/** Every raft error a conf change proposal can end with, as an answer. */
const ANSWER: Partial<Record<RaftErrorCode, Exclude<MembershipAnswer, 'absent'>>> = {
  [RaftErrorCode.NotLeader]: 'not-leader',
  [RaftErrorCode.ConfChangePending]: 'pending',
  [RaftErrorCode.TransferInProgress]: 'pending',
  [RaftErrorCode.UncommittedBytesExceeded]: 'pending',
  [RaftErrorCode.InvalidConfChange]: 'invalid',
};

/** The change as the core's ConfChange, or undefined when it is malformed (a wrong type or node id). */
export function toConfChange(change: MembershipChange): ConfChange | undefined {
  if (typeof change !== 'object' || change === null) return undefined;
  const type = Object.hasOwn(CHANGE_TYPE, change.type) ? CHANGE_TYPE[change.type] : undefined;
  if (type === undefined || !Number.isInteger(change.node) || change.node < 1 || change.node > NODE_ID_MAX) return undefined;
  return { type, node: change.node as NodeId };
}

/** Proposes `change` on `node`; raft's refusals become answers (any other throw is a bug and propagates). */
export function proposeChange(node: RawNode, change: MembershipChange): Exclude<MembershipAnswer, 'absent'> {
  const cc = toConfChange(change);
  if (cc === undefined) return 'invalid';
  try {
    node.proposeConfChange(cc);
    return 'proposed';
  } catch (e) {
    if (!(e instanceof RaftError)) throw e;
    const answer = ANSWER[e.code];
    if (answer === undefined) throw e;
    return answer;
  }
}

/** The replica's membership and position, from its core's status. */
export function membershipOf(node: RawNode): Membership {
  const st = node.status();
  const progress = [...st.progress].map(([id, pr]) => ({ node: id, match: pr.match, state: pr.state })).sort((a, b) => a.node - b.node);
  return {
    role: st.role,
    term: st.term,
    lead: st.lead,
    commit: st.commit,
    applied: st.applied,
    lastIndex: st.lastIndex,
    voters: [...st.confState.voters].sort((a, b) => a - b),
    learners: [...st.confState.learners].sort((a, b) => a - b),
    progress,
    removedHint: st.removedHint,
    campaigns: st.counters.preVotes + st.counters.elections,
  };
}
