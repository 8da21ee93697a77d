import { RaftError, RaftErrorCode, assert } from './errors.js';
import type { ConfState, Entry, HardState, LogIndex, NodeId, Snapshot, Term } from './types.js';
import { entrySize } from './types.js';

/**
 * What the core reads from stable storage. The shell writes through its own API (see
 * {@link MemoryStorage} for the shape); the core only reads.
 *
 * `entries` and `term` throw a {@link RaftError} with code `Compacted` below `firstIndex()` and
 * `Unavailable` above `lastIndex()`.
 */
export interface Storage {
  /**
   * The persisted hard state, and the membership as of the `applied` index the node is started
   * with (conf changes after it are re-delivered and applied again).
   */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most `maxBytes` in total but always at least one when lo < hi. */
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[];
  /** Term of entry `i`, for `firstIndex() - 1 <= i <= lastIndex()`. */
  term(i: LogIndex): Term;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

export const emptyConfState = (): ConfState => ({ voters: [], learners: [] });

/** Index of the snapshot every founding member of a group starts from; see {@link MemoryStorage.withMembers}. */
export const INITIAL_INDEX = 1 as LogIndex;

/** The snapshot a new group starts from: its first membership at index 1, term 1, no data. */
export function initialSnapshot(confState: ConfState): Snapshot {
  return { metadata: { index: INITIAL_INDEX, term: 1 as Term, confState }, data: new Uint8Array(0) };
}

/** An in-memory {@link Storage}, for tests, the simulator and benchmarks. */
export class MemoryStorage implements Storage {
  private hard: HardState = { term: 0 as Term, vote: 0 as NodeId, commit: 0 as LogIndex };
  private snap: Snapshot = {
    metadata: { index: 0 as LogIndex, term: 0 as Term, confState: emptyConfState() },
    data: new Uint8Array(0),
  };
  /** `ents[0]` is a placeholder for the snapshot's last entry (its index and term only). */
  private ents: Entry[] = [{ index: 0 as LogIndex, term: 0 as Term, type: 0, data: new Uint8Array(0) }];

  /**
   * A storage for a founding member of a new group: the log starts after a snapshot at index 1
   * (term 1) holding the first membership. A replica created later starts empty (index 0), so
   * the only way for it to catch up is a snapshot, which carries the membership it needs.
   */
  static withMembers(voters: readonly NodeId[], learners: readonly NodeId[] = []): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot(initialSnapshot({ voters: [...voters], learners: [...learners] }));
    s.hard = { term: 1 as Term, vote: 0 as NodeId, commit: 1 as LogIndex };
    return s;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hard, confState: this.snap.metadata.confState };
  }

  hardState(): HardState {
    return this.hard;
  }

  setHardState(h: HardState): void {
    this.hard = h;
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new RaftError(RaftErrorCode.Compacted, `entries: ${lo} is compacted (first ${off + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError(RaftErrorCode.Unavailable, `entries: ${hi - 1} is beyond last ${this.lastIndex()}`);
    }
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo - off; i < hi - off; i++) {
      const e = this.ents[i]!;
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: LogIndex): Term {
    const off = this.offset();
    if (i < off) throw new RaftError(RaftErrorCode.Compacted, `term: ${i} is compacted`);
    if (i - off >= this.ents.length) throw new RaftError(RaftErrorCode.Unavailable, `term: ${i} is unavailable`);
    return this.ents[i - off]!.term;
  }

  firstIndex(): LogIndex {
    return (this.offset() + 1) as LogIndex;
  }

  lastIndex(): LogIndex {
    return (this.offset() + this.ents.length - 1) as LogIndex;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log and state by `snap` (install-snapshot). Older snapshots are ignored. */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    this.snap = snap;
    this.ents = [{ index: snap.metadata.index, term: snap.metadata.term, type: 0, data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot of the state machine at `index` (which must be applied, so <= commit);
   * entries are kept until {@link compact}.
   */
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) return this.snap;
    assert(index <= this.lastIndex(), `createSnapshot: ${index} > last ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /** Drops entries up to and including `index` (which must be <= the snapshot index). */
  compact(index: LogIndex): void {
    const off = this.offset();
    if (index <= off) return;
    assert(index <= this.snap.metadata.index, `compact: ${index} is beyond the snapshot at ${this.snap.metadata.index}`);
    const i = index - off;
    const keep = this.ents[i]!;
    this.ents = [{ index: keep.index, term: keep.term, type: 0, data: new Uint8Array(0) }, ...this.ents.slice(i + 1)];
  }

  /** Appends entries, truncating any conflicting suffix first (entries must be contiguous). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    let es = entries;
    if (first > es[0]!.index) es = es.slice(first - es[0]!.index);
    const off = es[0]!.index - this.offset();
    assert(off <= this.ents.length, `append: gap at ${es[0]!.index}, last ${this.lastIndex()}`);
    // In place: clones share no arrays (clone() copies), so truncating here touches no other copy.
    this.ents.length = off;
    for (const e of es) this.ents.push(e);
  }

  /** A deep-enough copy (entries are immutable) for crash simulation. */
  clone(): MemoryStorage {
    const s = new MemoryStorage();
    s.hard = this.hard;
    s.snap = this.snap;
    s.ents = this.ents.slice();
    return s;
  }
}
