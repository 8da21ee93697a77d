/**
 * The safety properties the simulator checks while it runs. Each check is incremental: it looks
 * only at what one event changed (a Ready's writes, a commit advance, an applied batch, a message
 * leaving), against per-group records that accumulate over the whole run.
 */
import type { MemoryStorage } from '../../src/shards/raft/storage.js';
import type { Entry, HardState, LogIndex, Message, SoftState } from '../../src/shards/raft/types.js';
import { EntryType, MessageType } from '../../src/shards/raft/types.js';
import { decodeCommand, sameBytes } from './kv.js';

export const CHECKS = {
  'election-safety': 'at most one leader per term per group',
  'log-matching': 'two logs with an entry of the same index and term hold the same entry and the same prefix',
  'committed-changed': 'an entry, once committed on any replica, never changes or disappears',
  'apply-order': 'every replica applies the committed sequence index after index, or jumps forward by a snapshot',
  'hard-state-regressed': 'durable term, vote (within a term) and commit never go backwards',
  durability: 'a vote or an append acknowledgement leaves only once what it acknowledges is durable',
  'acknowledged-lost': 'a replica never refuses an append at an index it acknowledged in the same term (it lost what it made durable)',
  'stale-read': 'a read index is at least every index committed before the read was asked',
  'leader-commit-rule': 'a leader advances its commit index only onto an entry of its own term (Raft §5.4.2)',
  'proposal-outcome': 'a proposal reported dropped never commits, and no operation commits twice',
  'proposal-silent': "a write whose entry another leader's entries replaced or cut from the proposer's log is reported failed in the Ready that shows the loss",
  'snapshot-divergence': 'state machine snapshots taken at the same index are identical',
  linearizability: 'the client history is linearizable',
  'conf-in-flight': 'a leader appends a membership change only once every earlier one in its log is applied',
  'moves-quorum': 'moves mode: a planned change leaves voters with a quorum of replicas holding the log before it',
  'moves-replicas': 'moves mode: removing a voter never leaves fewer voters than the target',
  'moves-converged': "moves mode: after healing, every group's voters are its target, of min(factor, members up) replicas",
  liveness: 'after healing, every group elects a leader all voters follow and commits a proposal',
  'refusal-changed': 'a refused leadership transfer leaves the replica as it was (a quiet one stays quiet)',
  exception: 'the core threw (a broken assertion, or an error where none is allowed)',
} as const;
export type CheckName = keyof typeof CHECKS;

/** A broken property: the seed fails. */
export class Violation extends Error {
  override readonly name = 'Violation';
  constructor(
    readonly check: CheckName,
    message: string,
  ) {
    super(message);
  }
}

export function fail(check: CheckName, message: string): never {
  throw new Violation(check, message);
}

interface LoggedEntry {
  readonly term: number;
  readonly data: Uint8Array;
  readonly type: number;
  /** Term of the entry before it in the log that held it. */
  readonly prevTerm: number;
}

interface CommittedEntry {
  readonly term: number;
  /** Undefined while the entry is known only as a snapshot's last index. */
  data: Uint8Array | undefined;
}

/** Everything the run learned about one group, across replicas, crashes and time. */
export class GroupRecord {
  /** term -> the node that led it. */
  readonly leaders = new Map<number, number>();
  /** index -> every (term, data, prevTerm) seen at that index in any log. */
  private readonly logged = new Map<number, LoggedEntry[]>();
  /** index -> the entry committed there. */
  private readonly committed = new Map<number, CommittedEntry>();
  /** Highest index some replica reported committed. */
  maxCommitted = 0;
  /** term -> the commit index the leader of that term last announced in an App. */
  private readonly leaderCommits = new Map<number, number>();
  /** index -> state machine snapshot taken there. */
  private readonly snapshots = new Map<number, Uint8Array>();
  readonly committedOps = new Set<number>();
  readonly droppedOps = new Set<number>();
  confChangesApplied = 0;
  /** Highest index any replica applied. */
  private maxApplied = 0;
  /** `node:term` -> highest index the node acknowledged in that term; only grows. */
  private readonly acked = new Map<string, number>();

  constructor(readonly group: number) {}

  onSoftState(node: number, s: SoftState): void {
    if (s.role !== 'leader') return;
    const prev = this.leaders.get(s.term);
    if (prev !== undefined && prev !== node) {
      fail('election-safety', `group ${this.group}: nodes ${prev} and ${node} both led term ${s.term}`);
    }
    this.leaders.set(s.term, node);
  }

  /**
   * An App leaving the leader of `m.term`. Its commit index is the leader's: the first App of a
   * term carries what the leader inherited; any later rise must come from counting replicas of
   * an entry of this term, so the entry at the new commit index has this term.
   */
  onLeaderApp(node: number, live: MemoryStorage, m: Message): void {
    const prev = this.leaderCommits.get(m.term);
    this.leaderCommits.set(m.term, Math.max(prev ?? 0, m.commit));
    if (prev === undefined || m.commit <= prev) return;
    if (m.commit < live.firstIndex() - 1 || m.commit > live.lastIndex()) return;
    const t = live.term(m.commit);
    if (t !== m.term) {
      fail('leader-commit-rule', `group ${this.group}: leader ${node} of term ${m.term} raised its commit ${prev} -> ${m.commit}, an entry of term ${t}`);
    }
  }

  /**
   * Entries a replica just wrote to its log (already in `live`). `commit` is what that replica
   * knew committed before the write: it may never overwrite those.
   */
  onLogWrite(node: number, live: MemoryStorage, entries: readonly Entry[], commit: number): void {
    const first = live.firstIndex();
    let prev: Entry | undefined;
    for (const e of entries) {
      if (e.index < first) {
        prev = e;
        continue;
      }
      if (e.index <= commit) this.matchCommitted(node, e.index, e.term, e.data, 'overwrote its committed entry', e.type);
      const prevTerm = prev !== undefined && prev.index === e.index - 1 ? prev.term : live.term((e.index - 1) as LogIndex);
      prev = e;
      let seen = this.logged.get(e.index);
      const same = seen?.find((x) => x.term === e.term);
      if (same === undefined) {
        if (seen === undefined) {
          seen = [];
          this.logged.set(e.index, seen);
        }
        seen.push({ term: e.term, data: e.data, type: e.type, prevTerm });
        continue;
      }
      if (same.type !== e.type || !sameBytes(same.data, e.data)) {
        fail('log-matching', `group ${this.group}: node ${node} holds entry ${e.index}/t${e.term} with other data than another log`);
      }
      if (same.prevTerm !== prevTerm) {
        fail(
          'log-matching',
          `group ${this.group}: node ${node} holds ${e.index}/t${e.term} after an entry of term ${prevTerm}; another log has it after term ${same.prevTerm}`,
        );
      }
    }
  }

  /** A replica's commit index rose from `from` to `to`; its log (`live`) must agree with every earlier commit. */
  onCommit(node: number, live: MemoryStorage, from: number, to: number): void {
    if (to <= from) return;
    const snapIndex = live.firstIndex() - 1;
    if (snapIndex > from && snapIndex <= to && snapIndex > 0) {
      this.matchCommitted(node, snapIndex, live.term(snapIndex as LogIndex), undefined, 'committed a snapshot that disagrees');
    }
    const lo = Math.max(from + 1, snapIndex + 1);
    if (lo <= to) {
      if (to > live.lastIndex()) fail('committed-changed', `group ${this.group}: node ${node} commits ${to} beyond its last index ${live.lastIndex()}`);
      const ents = live.entries(lo as LogIndex, (to + 1) as LogIndex, Number.MAX_SAFE_INTEGER);
      for (const e of ents) this.matchCommitted(node, e.index, e.term, e.data, 'commits an entry that disagrees', e.type);
    }
    if (to > this.maxCommitted) this.maxCommitted = to;
  }

  /** Compares with (or records) the committed entry at `index`. */
  matchCommitted(node: number, index: number, term: number, data: Uint8Array | undefined, what: string, type?: number): void {
    const c = this.committed.get(index);
    if (c === undefined) {
      this.committed.set(index, { term, data });
      if (data !== undefined && type !== undefined) this.firstCommit(data, type);
      return;
    }
    if (c.term !== term || (c.data !== undefined && data !== undefined && !sameBytes(c.data, data))) {
      fail('committed-changed', `group ${this.group}: node ${node} ${what} at ${index}: t${term}, committed was t${c.term}`);
    }
    if (c.data === undefined && data !== undefined && type !== undefined) {
      c.data = data;
      this.firstCommit(data, type);
    }
  }

  private firstCommit(data: Uint8Array, type: number): void {
    if (type === EntryType.ConfChange) return;
    if (data.length === 0) return;
    const op = decodeCommand(data).i;
    if (op <= 0) return;
    if (this.committedOps.has(op)) fail('proposal-outcome', `group ${this.group}: operation ${op} committed twice`);
    if (this.droppedOps.has(op)) fail('proposal-outcome', `group ${this.group}: operation ${op} was reported dropped, yet it committed`);
    this.committedOps.add(op);
  }

  /**
   * An append answer leaving `node`. What it acknowledged in a term matches that term's leader's
   * log (log matching), and that leader never rewrites its own log: an App of the same term at
   * or below it can only be refused by a replica that lost entries it had made durable (a lost
   * disk). Its leader would probe it forever without going below what it believes matched.
   */
  onAppResp(node: number, m: Message): void {
    if (m.notMember === true) return;
    const key = `${node}:${m.term}`;
    const acked = this.acked.get(key) ?? 0;
    if (!m.reject) {
      if (m.index > acked) this.acked.set(key, m.index);
      return;
    }
    if (m.index <= acked) {
      fail(
        'acknowledged-lost',
        `group ${this.group}: node ${node} refuses an append at ${m.index} in term ${m.term} (its log ends at ${m.rejectHint}), having acknowledged up to ${acked} in that term`,
      );
    }
  }

  /** Term of the entry known committed at `index`, if the run saw it. */
  committedTerm(index: number): number | undefined {
    return this.committed.get(index)?.term;
  }

  onDropped(op: number): void {
    if (this.committedOps.has(op)) fail('proposal-outcome', `group ${this.group}: operation ${op} committed, yet it was reported dropped`);
    this.droppedOps.add(op);
  }

  /** A replica applies `e`; its state machine had applied `applied`. */
  onApply(node: number, applied: number, e: Entry): void {
    if (e.index !== applied + 1) {
      fail('apply-order', `group ${this.group}: node ${node} applies ${e.index} after ${applied}`);
    }
    this.matchCommitted(node, e.index, e.term, e.data, 'applies an entry that disagrees', e.type);
    if (e.index > this.maxApplied) {
      this.maxApplied = e.index;
      if (e.type === EntryType.ConfChange) this.confChangesApplied++;
    }
  }

  onSnapshotInstalled(node: number, applied: number, index: number, term: number): void {
    if (index <= applied) fail('apply-order', `group ${this.group}: node ${node} installs a snapshot at ${index}, already applied ${applied}`);
    this.matchCommitted(node, index, term, undefined, 'installs a snapshot that disagrees');
  }

  onSnapshotTaken(node: number, index: number, data: Uint8Array): void {
    const prev = this.snapshots.get(index);
    if (prev === undefined) this.snapshots.set(index, data);
    else if (!sameBytes(prev, data)) fail('snapshot-divergence', `group ${this.group}: node ${node}'s state at ${index} differs from another replica's`);
  }
}

/** Durable hard state may only move forward, across crashes too. */
export function checkHardState(group: number, node: number, prev: HardState, next: HardState): void {
  const where = `group ${group} node ${node}`;
  if (next.term < prev.term) fail('hard-state-regressed', `${where}: durable term ${prev.term} -> ${next.term}`);
  if (next.term === prev.term && prev.vote !== 0 && next.vote !== prev.vote) {
    fail('hard-state-regressed', `${where}: durable vote in term ${next.term} changed ${prev.vote} -> ${next.vote}`);
  }
  if (next.commit < prev.commit) fail('hard-state-regressed', `${where}: durable commit ${prev.commit} -> ${next.commit}`);
}

/**
 * The durability rule, checked as a message leaves. An acknowledgement from an earlier term than
 * the durable one is allowed: it was true, durably, before the term moved on (the leader of that
 * term may still count it, as the Raft proof permits).
 * `leaderTerm` gives the term of entry `i` in the log of the leader the ack goes to, when known.
 */
export function checkAck(group: number, node: number, durable: MemoryStorage, m: Message, leaderTerm: (i: number) => number | undefined): void {
  const hs = durable.hardState();
  if (hs.term > m.term) return;
  const where = `group ${group} node ${node}`;
  if (m.type === MessageType.VoteResp && !m.reject) {
    if (hs.term !== m.term || hs.vote !== m.to) {
      fail('durability', `${where}: grants its vote to ${m.to} in term ${m.term}, durable hard state is t${hs.term} vote ${hs.vote}`);
    }
    return;
  }
  if (m.type !== MessageType.AppResp || m.reject) return;
  if (hs.term !== m.term) {
    fail('durability', `${where}: acknowledges ${m.index} in term ${m.term}, durable term is ${hs.term}`);
  }
  if (durable.lastIndex() < m.index) {
    fail('durability', `${where}: acknowledges ${m.index} to ${m.to}, durable log ends at ${durable.lastIndex()}`);
  }
  if (m.index < durable.firstIndex() - 1) return;
  const mine = durable.term(m.index);
  const theirs = leaderTerm(m.index);
  if (theirs !== undefined && theirs !== mine) {
    fail('log-matching', `${where}: acknowledges ${m.index} to leader ${m.to} holding t${mine} there; the leader has t${theirs}`);
  }
}

/**
 * One membership change in flight per group, read off the log: a leader appending a change of
 * its own term (`entries`, already written to `live`) has applied every earlier change in its log
 * (`applied`: its applied index before this Ready's entries apply).
 */
export function checkConfInFlight(group: number, node: number, live: MemoryStorage, entries: readonly Entry[], term: number, applied: number): void {
  for (const e of entries) {
    if (e.type !== EntryType.ConfChange || e.term !== term) continue;
    const lo = Math.max(applied + 1, live.firstIndex());
    if (lo >= e.index) continue;
    const earlier = live.entries(lo as LogIndex, e.index, Number.MAX_SAFE_INTEGER).find((x) => x.type === EntryType.ConfChange);
    if (earlier !== undefined) {
      fail(
        'conf-in-flight',
        `group ${group}: leader ${node} appends a membership change at ${e.index} while the one at ${earlier.index} is not applied (applied ${applied})`,
      );
    }
  }
}
