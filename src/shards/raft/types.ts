/**
 * Vocabulary of the consensus core: branded ids, log entries, messages, persistent state and the
 * Ready batch the shell consumes.
 */

/**
 * A number of one kind (a node id, a term, an index) that a plain number, or a number of another
 * kind, does not silently become. The brand is a string-keyed phantom property (never present at
 * run time), so a layer that may not import this module (src/wire) can declare the same types, and
 * the compiler checks that the two agree wherever they meet.
 */
type Brand<T, B extends string> = T & { readonly __brand: B };

/** A replica's id inside a cluster: a small positive integer; 0 means "none". */
export type NodeId = Brand<number, 'NodeId'>;
/** A raft term; 0 before any election. */
export type Term = Brand<number, 'Term'>;
/** A position in the log; the first real entry has index 1, 0 means "before the log". */
export type LogIndex = Brand<number, 'LogIndex'>;
/** A shard (raft group) id. */
export type ShardId = Brand<number, 'ShardId'>;

export const NONE = 0 as NodeId;

export const nodeId = (n: number): NodeId => n as NodeId;
export const term = (n: number): Term => n as Term;
export const logIndex = (n: number): LogIndex => n as LogIndex;
export const shardId = (n: number): ShardId => n as ShardId;

export const EntryType = {
  /** Application data for the state machine (may be empty: a leader's no-op). */
  Normal: 0,
  /** A membership change; its data is an encoded {@link ConfChange}. */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** Fixed per-entry cost, in bytes, counted on top of `data.length` in every byte limit. */
export const ENTRY_OVERHEAD_BYTES = 24;
export const entrySize = (e: Entry): number => e.data.length + ENTRY_OVERHEAD_BYTES;

export const ConfChangeType = {
  AddVoter: 0,
  AddLearner: 1,
  RemoveNode: 2,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/**
 * One membership change. Changes are applied one at a time: a leader refuses a new change while an
 * earlier one is not yet applied, and before it has applied an entry of its own term.
 */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
}

/** Membership of a group. A node is in at most one of the two lists. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** The state that must be durable before any message that depends on it leaves. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
}

export interface SnapshotMetadata {
  /** Index of the last entry the snapshot covers. */
  readonly index: LogIndex;
  /** Term of that entry. */
  readonly term: Term;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The state machine's serialized state at `metadata.index`; opaque to the core. */
  readonly data: Uint8Array;
}

export const MessageType = {
  /** Local: the election timer fired (never sent). */
  Hup: 0,
  App: 1,
  AppResp: 2,
  Vote: 3,
  VoteResp: 4,
  PreVote: 5,
  PreVoteResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  Snap: 9,
  TimeoutNow: 10,
  ReadIndex: 11,
  ReadIndexResp: 12,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const messageTypeName = (t: MessageType): string => Object.keys(MessageType).find((k) => MessageType[k as keyof typeof MessageType] === t) ?? `?${t}`;

/**
 * One raft message. Fields not meaningful for a type are zero / empty.
 *
 * - App: `index`/`logTerm` name the entry before `entries`; `commit` is the leader's commit index.
 * - AppResp: accepted -> `index` is the last index now matching the leader; rejected -> `index`
 *   is the rejected `index` of the App, `rejectHint` the follower's guess of where to retry and
 *   `logTerm` the term at that hint (fast backtracking).
 * - Vote / PreVote: `index`/`logTerm` describe the candidate's last entry. PreVote carries the term
 *   the candidate would campaign in.
 * - Heartbeat / HeartbeatResp: `commit` as in App (capped at what the follower matches);
 *   `context` a leader-chosen round number echoed back (read rounds and lease timing).
 * - Snap: `snapshot` to install.
 * - ReadIndex: `context` the requester's read id; ReadIndexResp: `index` the read index, or
 *   `reject` when the leader cannot serve it.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  readonly logTerm: Term;
  readonly index: LogIndex;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
  readonly reject: boolean;
  readonly rejectHint: LogIndex;
  readonly context: number;
  readonly snapshot?: Snapshot | undefined;
  /**
   * Heartbeat only: the group is idle and the leader goes quiet; a follower whose log matches
   * stops its election timer until any other message (or the shell's wake()) arrives.
   */
  readonly quiesce?: boolean | undefined;
  /**
   * App only: no entries, only the commit index, to a follower in replicate state. Accepting it
   * would answer what the answer to the App that carried the entries up to `index` already says,
   * so the follower does not answer it: one message fewer per follower per commit (a rejection is
   * still answered; a lost answer of the entries is recovered by the leader's stall probe, a few
   * ticks later). Never sent to a leadership transferee, whose answer triggers TimeoutNow.
   */
  readonly commitOnly?: boolean | undefined;
  /**
   * PreVoteResp or VoteResp only, with `reject`: the candidate is not a member of the sender's
   * applied configuration, which took effect at `index`. Not a vote: a hint for a replica removed
   * while it was cut off, which then stops campaigning if its own configuration is older.
   */
  readonly notMember?: boolean | undefined;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state, reported in a Ready when it changes. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
  readonly term: Term;
}

/** A linearizable read that is ready: serve it once the applied index reaches `index`. */
export interface ReadState {
  readonly index: LogIndex;
  readonly context: number;
}

/** A read that cannot be served (no leader, leader changed, lease refused...). */
export interface FailedRead {
  readonly context: number;
  readonly code: string;
}

/**
 * A proposal this node accepted as leader whose entry was removed from its log (it will never be
 * applied), or whose fate can no longer be told (`code` = "ProposalOutcomeUnknown").
 */
export interface FailedProposal {
  readonly index: LogIndex;
  readonly term: Term;
  readonly code: string;
}

/**
 * One batch of work for the shell. Handle it in this order:
 * 1. install `snapshot` (if any), append `entries`, store `hardState` (if any): durably;
 * 2. `messages` may be sent at once, even before step 1 is durable;
 * 3. after step 1 is durable: send `messagesAfterPersist`;
 * 4. apply `committedEntries` in order (never before step 1 is durable), serve `readStates`
 *    once applied reaches their index, report `failedProposals` and `failedReads`;
 * 5. call `advance()`.
 * Only one Ready is outstanding at a time: do not call `ready()` again before `advance()`.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly failedReads: readonly FailedRead[];
  readonly failedProposals: readonly FailedProposal[];
}

/**
 * A message of `type` with every other field zero. Every field is present, the optional ones as
 * undefined, and messages are made from this one by spreading it, so the code that reads every
 * message (encoding, the host's send loop) meets few hidden classes: this literal's, the one all
 * spread copies share (whichever optional field they set), and decodeMessage's; not one per
 * combination of optional fields.
 */
export const emptyMessage = (type: MessageType, from: NodeId, to: NodeId, t: Term): Message => ({
  type,
  from,
  to,
  term: t,
  logTerm: 0 as Term,
  index: 0 as LogIndex,
  entries: [],
  commit: 0 as LogIndex,
  reject: false,
  rejectHint: 0 as LogIndex,
  context: 0,
  snapshot: undefined,
  quiesce: undefined,
  commitOnly: undefined,
  notMember: undefined,
});
