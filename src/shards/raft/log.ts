import { RaftError, RaftErrorCode, assert } from './errors.js';
import type { Storage } from './storage.js';
import type { Entry, LogIndex, Snapshot, Term } from './types.js';
import { entrySize } from './types.js';

/**
 * The replicated log as this node sees it: a stable part in {@link Storage} and an unstable tail
 * (entries and possibly a snapshot) not yet handed to the shell and persisted.
 */
export class RaftLog {
  /** A snapshot received from the leader, not yet persisted. */
  private unstableSnapshot: Snapshot | undefined;
  /** Entries not yet persisted; `unstable[i].index === unstableOffset + i`. */
  private unstable: Entry[] = [];
  /** Index of the first unstable entry: storage's entries at or beyond it are shadowed. */
  private unstableOffset: LogIndex;
  /**
   * Highest index known committed. Never decreases. applied <= committed <= lastIndex(), checked
   * after every change to one of them ({@link checkIndexes}).
   */
  committed: LogIndex;
  /** Highest index handed to the shell for applying (in a Ready). applied <= applying <= committed. */
  applying: LogIndex;
  /** Highest index the shell confirmed as applied (at advance). */
  applied: LogIndex;

  constructor(
    private readonly storage: Storage,
    committed: LogIndex,
    applied: LogIndex,
    private readonly bugs: { noConflictTruncate: boolean; voteWithoutLogCheck: boolean },
  ) {
    this.unstableOffset = (storage.lastIndex() + 1) as LogIndex;
    const first = storage.firstIndex();
    // Entries below the snapshot are applied by definition (the snapshot holds them).
    const floor = Math.max(applied, first - 1) as LogIndex;
    this.committed = Math.max(committed, first - 1) as LogIndex;
    assert(floor <= this.committed, `log: applied ${floor} > committed ${this.committed}`);
    this.applying = floor;
    this.applied = floor;
    this.checkIndexes();
  }

  /** applied <= committed <= lastIndex: comparisons on success, a message only on failure. */
  private checkIndexes(): void {
    if (this.applied <= this.committed && this.committed <= this.lastIndex()) return;
    assert(false, `log: indexes out of order: applied ${this.applied}, committed ${this.committed}, last ${this.lastIndex()}`);
  }

  firstIndex(): LogIndex {
    if (this.unstableSnapshot) return (this.unstableSnapshot.metadata.index + 1) as LogIndex;
    return this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    if (this.unstable.length > 0) return this.unstable[this.unstable.length - 1]!.index;
    if (this.unstableSnapshot) return this.unstableSnapshot.metadata.index;
    return (this.unstableOffset - 1) as LogIndex;
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'log: last term unavailable');
    return t;
  }

  /** Index of the last entry known durable on this node. */
  stableLastIndex(): LogIndex {
    if (this.unstableSnapshot) return 0 as LogIndex;
    return (this.unstableOffset - 1) as LogIndex;
  }

  /** Term of entry `i`, or undefined when it is compacted away or beyond the log. */
  term(i: LogIndex): Term | undefined {
    if (this.unstableSnapshot) {
      const m = this.unstableSnapshot.metadata;
      if (i === m.index) return m.term;
      if (i < m.index) return undefined;
    }
    if (i >= this.unstableOffset) {
      return this.unstable[i - this.unstableOffset]?.term;
    }
    if (i < this.storage.firstIndex() - 1) return undefined;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof RaftError) return undefined;
      throw e;
    }
  }

  matchTerm(i: LogIndex, t: Term): boolean {
    return this.term(i) === t;
  }

  /** Raft's up-to-date rule (§5.4.1): a later last term wins, then a longer log. */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    if (this.bugs.voteWithoutLogCheck) return true;
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The follower side of App: if the entry before `ents` matches, appends what is new (truncating a
   * conflicting suffix), raises commit, and returns the index of the last entry the App covered.
   * Undefined when the entry before does not match.
   */
  maybeAppend(index: LogIndex, logTerm: Term, commit: LogIndex, ents: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = (index + ents.length) as LogIndex;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      if (this.bugs.noConflictTruncate && conflict <= this.lastIndex()) {
        // Injected bug: keep the conflicting suffix, only add entries beyond the last index.
        const beyond = ents.filter((e) => e.index > this.lastIndex());
        if (beyond.length > 0 && beyond[0]!.index === this.lastIndex() + 1) this.append(beyond);
      } else {
        if (conflict <= this.committed) assert(false, `log: conflict at ${conflict} within committed ${this.committed}`);
        this.append(ents.slice(conflict - ents[0]!.index));
      }
    }
    this.commitTo(Math.min(commit, lastNew) as LogIndex);
    return lastNew;
  }

  /** First index of `ents` whose term differs from the log's (or that is beyond it); 0 if none. */
  private findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `t` (or the first index - 1
   * when the log has nothing that old). A leader probing with (index, t) can skip everything above.
   */
  findConflictByTerm(index: LogIndex, t: Term): { index: LogIndex; term: Term } {
    let i = index;
    for (;;) {
      const ti = this.term(i);
      if (ti === undefined) return { index: i, term: 0 as Term };
      if (ti <= t || i === 0) return { index: i, term: ti };
      i = (i - 1) as LogIndex;
    }
  }

  /** Appends `ents`, truncating the unstable tail (or shadowing storage) from their first index. */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0]!.index;
    if (after <= this.committed) assert(false, `log: append at ${after} would overwrite committed ${this.committed}`);
    if (after === this.unstableOffset + this.unstable.length) {
      for (const e of ents) this.unstable.push(e);
    } else if (after <= this.unstableOffset) {
      // Everything from `after` on is replaced; storage's older entries there are shadowed until
      // the shell persists these and truncates.
      this.unstableOffset = after;
      this.unstable = ents.slice();
    } else {
      this.unstable = this.unstable.slice(0, after - this.unstableOffset).concat(ents);
    }
    assert(!this.unstableSnapshot || this.unstableOffset === this.unstableSnapshot.metadata.index + 1, 'log: entries must follow the pending snapshot');
    this.checkIndexes();
  }

  commitTo(i: LogIndex): void {
    if (i <= this.committed) return;
    if (!(i <= this.lastIndex())) assert(false, `log: commit ${i} beyond last ${this.lastIndex()}`);
    this.committed = i;
    this.checkIndexes();
  }

  /** Entries in [lo, lastIndex], at most `maxBytes` (at least one); undefined if lo is compacted. */
  entriesFrom(lo: LogIndex, maxBytes: number): Entry[] | undefined {
    return this.slice(lo, (this.lastIndex() + 1) as LogIndex, maxBytes);
  }

  /** Entries in [lo, hi) within `maxBytes` (at least one when lo < hi); undefined if compacted. */
  slice(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] | undefined {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return undefined;
    if (hi > this.lastIndex() + 1) assert(false, `log: slice to ${hi} beyond last ${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    if (lo < this.unstableOffset) {
      const stableHi = Math.min(hi, this.unstableOffset) as LogIndex;
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, stableHi, maxBytes);
      } catch (e) {
        if (e instanceof RaftError && e.code === RaftErrorCode.Compacted) return undefined;
        throw e;
      }
      for (const e of stored) {
        bytes += entrySize(e);
        out.push(e);
      }
      if (stored.length < stableHi - lo) return out;
    }
    for (let i = Math.max(lo, this.unstableOffset); i < hi; i++) {
      const e = this.unstable[i - this.unstableOffset]!;
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable;
  }

  pendingSnapshot(): Snapshot | undefined {
    return this.unstableSnapshot;
  }

  /** The shell persisted entries up to (i, t): they leave the unstable tail if still the same. */
  stableTo(i: LogIndex, t: Term): void {
    if (i < this.unstableOffset) return;
    const e = this.unstable[i - this.unstableOffset];
    if (e === undefined || e.term !== t) return;
    this.unstable = this.unstable.slice(i + 1 - this.unstableOffset);
    this.unstableOffset = (i + 1) as LogIndex;
  }

  stableSnapTo(i: LogIndex): void {
    if (this.unstableSnapshot && this.unstableSnapshot.metadata.index === i) this.unstableSnapshot = undefined;
  }

  hasNextCommittedEnts(): boolean {
    return this.committed > this.applying && this.applying + 1 >= this.firstIndex() && !this.unstableSnapshot;
  }

  /** Committed entries not yet handed out for applying, at most `maxBytes` (at least one). */
  nextCommittedEnts(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const ents = this.slice((this.applying + 1) as LogIndex, (this.committed + 1) as LogIndex, maxBytes);
    if (ents === undefined) assert(false, `log: committed entries from ${this.applying + 1} are compacted`);
    return ents;
  }

  appliedTo(i: LogIndex): void {
    if (!(i <= this.committed)) assert(false, `log: applied ${i} > committed ${this.committed}`);
    if (i > this.applied) this.applied = i;
    this.checkIndexes();
  }

  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }

  /** Replaces the log by a snapshot from the leader. */
  restore(s: Snapshot): void {
    const i = s.metadata.index;
    if (i <= this.committed) assert(false, `log: restore ${i} at or below commit ${this.committed}`);
    this.committed = i;
    this.applying = i;
    this.unstableSnapshot = s;
    this.unstable = [];
    this.unstableOffset = (i + 1) as LogIndex;
    this.checkIndexes();
  }
}
