import { describe, expect, test } from 'vitest';
import { AssertionError } from '../../../../src/shards/raft/errors.js';
import { RaftLog } from '../../../../src/shards/raft/log.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import type { Entry, Snapshot } from '../../../../src/shards/raft/types.js';
import { ENTRY_OVERHEAD_BYTES, logIndex, nodeId, term } from '../../../../src/shards/raft/types.js';
import { dec, ent } from './fixtures.js';

const idx = logIndex;
const noBugs = { noConflictTruncate: false, voteWithoutLogCheck: false };

/** A log whose storage holds the initial snapshot at 1 plus `stable`; `unstable` is appended on top. */
function makeLog(stable: Entry[], unstable: Entry[] = [], committed = 1): { log: RaftLog; storage: MemoryStorage } {
  const storage = MemoryStorage.withMembers([nodeId(1)]);
  storage.append(stable);
  const log = new RaftLog(storage, idx(committed), idx(1), noBugs);
  log.append(unstable);
  return { log, storage };
}

const terms = (log: RaftLog): (number | undefined)[] => {
  const out: (number | undefined)[] = [];
  for (let i = log.firstIndex() - 1; i <= log.lastIndex(); i++) out.push(log.term(idx(i)));
  return out;
};

describe('RaftLog.maybeAppend (§5.3 AppendEntries receiver)', () => {
  test('§5.3 rule 2: rejects (undefined) when the entry before does not match, and leaves the log unchanged', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 2)]);
    expect(log.maybeAppend(idx(3), term(3), idx(0), [ent(4, 3)])).toBeUndefined();
    expect(log.maybeAppend(idx(5), term(2), idx(0), [ent(6, 3)])).toBeUndefined();
    expect(log.lastIndex()).toBe(3);
    expect(terms(log)).toEqual([1, 1, 2]);
  });

  test('§5.3 rule 3: a conflicting suffix is truncated and replaced by the leader entries', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 2)]);
    expect(log.maybeAppend(idx(2), term(1), idx(0), [ent(3, 3, 'x')])).toBe(3);
    expect(log.lastIndex()).toBe(3);
    expect(log.term(idx(3))).toBe(3);
    expect(log.term(idx(4))).toBeUndefined();
    expect(dec(log.slice(idx(3), idx(4), 1 << 20)![0]!.data)).toBe('x');
  });

  test('§5.3 rule 3: entries already present do not truncate the entries after them (a stale App is harmless)', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 2), ent(4, 2)]);
    expect(log.maybeAppend(idx(1), term(1), idx(0), [ent(2, 1)])).toBe(2);
    expect(log.lastIndex()).toBe(4);
    expect(log.unstableEntries()).toEqual([]);
  });

  test('§5.3 rule 4: new entries past the end are appended', () => {
    const { log } = makeLog([ent(2, 1)]);
    expect(log.maybeAppend(idx(2), term(1), idx(0), [ent(3, 1), ent(4, 2)])).toBe(4);
    expect(terms(log)).toEqual([1, 1, 1, 2]);
    expect(log.unstableEntries().map((e) => e.index)).toEqual([3, 4]);
  });

  test('§5.3 rule 5: commit moves to min(leaderCommit, index of last new entry), never past what the App covered', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1), ent(4, 1)]);
    log.maybeAppend(idx(1), term(1), idx(10), [ent(2, 1)]);
    expect(log.committed).toBe(2);
    log.maybeAppend(idx(2), term(1), idx(3), [ent(3, 1), ent(4, 1)]);
    expect(log.committed).toBe(3);
  });

  test('a conflict at or below the commit index is a broken invariant (committed entries never change)', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1)], [], 3);
    expect(() => log.maybeAppend(idx(1), term(1), idx(3), [ent(2, 1), ent(3, 2)])).toThrow(AssertionError);
  });
});

describe('RaftLog.findConflictByTerm (fast backtracking)', () => {
  // index: 1  2  3  4  5  6
  // term:  1  1  2  2  4  4
  const { log } = makeLog([ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 4), ent(6, 4)]);

  test('returns the largest index <= index whose term is <= the given term', () => {
    expect(log.findConflictByTerm(idx(6), term(3))).toEqual({ index: 4, term: 2 });
    expect(log.findConflictByTerm(idx(6), term(4))).toEqual({ index: 6, term: 4 });
    expect(log.findConflictByTerm(idx(6), term(1))).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(idx(3), term(5))).toEqual({ index: 3, term: 2 });
  });

  test('an index beyond the log reports term 0 (unknown), so the caller cannot mistake it for a match', () => {
    expect(log.findConflictByTerm(idx(9), term(4))).toEqual({ index: 9, term: 0 });
  });

  test('below a compacted prefix it stops with term 0', () => {
    const storage = MemoryStorage.withMembers([nodeId(1)]);
    storage.append([ent(2, 3), ent(3, 3), ent(4, 5)]);
    storage.createSnapshot(idx(3), { voters: [nodeId(1)], learners: [] }, new Uint8Array(0));
    storage.compact(idx(3));
    const l = new RaftLog(storage, idx(3), idx(3), noBugs);
    expect(l.findConflictByTerm(idx(4), term(4))).toEqual({ index: 3, term: 3 });
    expect(l.findConflictByTerm(idx(4), term(2))).toEqual({ index: 2, term: 0 });
  });
});

describe('RaftLog.slice across stable storage and the unstable tail', () => {
  const size = ENTRY_OVERHEAD_BYTES;

  test('reads stable then unstable entries in order', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1), ent(4, 1)], [ent(5, 2), ent(6, 2)]);
    expect(log.slice(idx(3), idx(7), 1 << 20)!.map((e) => [e.index, e.term])).toEqual([
      [3, 1],
      [4, 1],
      [5, 2],
      [6, 2],
    ]);
  });

  test('maxBytes limits the slice, across the boundary too, but at least one entry is returned', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1), ent(4, 1)], [ent(5, 2), ent(6, 2)]);
    expect(log.slice(idx(3), idx(7), 2 * size)!.map((e) => e.index)).toEqual([3, 4]);
    expect(log.slice(idx(3), idx(7), 3 * size)!.map((e) => e.index)).toEqual([3, 4, 5]);
    expect(log.slice(idx(5), idx(7), size)!.map((e) => e.index)).toEqual([5]);
    expect(log.slice(idx(3), idx(7), 1)!.map((e) => e.index)).toEqual([3]);
  });

  test('an empty range is empty; a compacted start is undefined', () => {
    const { log } = makeLog([ent(2, 1)], [ent(3, 2)]);
    expect(log.slice(idx(3), idx(3), 100)).toEqual([]);
    expect(log.slice(idx(1), idx(3), 100)).toBeUndefined();
  });

  test('unstable entries shadow the conflicting stored ones until persisted', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1), ent(4, 1)]);
    log.append([ent(3, 2, 'new')]);
    expect(log.lastIndex()).toBe(3);
    expect(log.slice(idx(2), idx(4), 1 << 20)!.map((e) => [e.index, e.term])).toEqual([
      [2, 1],
      [3, 2],
    ]);
    expect(log.term(idx(4))).toBeUndefined();
  });

  test('stableTo moves the unstable tail to storage only when the term still matches', () => {
    const { log, storage } = makeLog([ent(2, 1)], [ent(3, 2), ent(4, 2)]);
    storage.append([ent(3, 2), ent(4, 2)]);
    log.stableTo(idx(4), term(1));
    expect(log.unstableEntries().length).toBe(2);
    log.stableTo(idx(3), term(2));
    expect(log.unstableEntries().map((e) => e.index)).toEqual([4]);
    expect(log.stableLastIndex()).toBe(3);
  });
});

describe('RaftLog.restore (install snapshot)', () => {
  const snap: Snapshot = {
    metadata: { index: idx(10), term: term(5), confState: { voters: [nodeId(1)], learners: [] } },
    data: new Uint8Array([1]),
  };

  test('replaces the log: first index after the snapshot, last = snapshot index, commit = snapshot index', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1)], [ent(4, 2)]);
    log.restore(snap);
    expect(log.firstIndex()).toBe(11);
    expect(log.lastIndex()).toBe(10);
    expect(log.lastTerm()).toBe(5);
    expect(log.committed).toBe(10);
    expect(log.term(idx(3))).toBeUndefined();
    expect(log.unstableEntries()).toEqual([]);
    expect(log.pendingSnapshot()).toBe(snap);
    expect(log.hasNextCommittedEnts()).toBe(false);
    // Entries from the leader may follow the pending snapshot at once.
    log.append([ent(11, 5)]);
    expect(log.lastIndex()).toBe(11);
    log.stableSnapTo(idx(10));
    expect(log.pendingSnapshot()).toBeUndefined();
  });

  test('a snapshot at or below the commit index is refused as a broken invariant', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1)], [], 3);
    expect(() => log.restore({ ...snap, metadata: { ...snap.metadata, index: idx(3) } })).toThrow(AssertionError);
  });
});

describe('RaftLog misc', () => {
  test('applied <= committed <= lastIndex is checked after every change: a commit beyond the log fails at the next one', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1)], [], 2);
    log.appliedTo(idx(2));
    log.committed = idx(9); // corrupted from outside, as a bug would
    expect(() => log.appliedTo(idx(2))).toThrow(AssertionError);
  });

  test('§5.4.1 isUpToDate: a later last term wins whatever the length; equal terms compare length', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 2), ent(4, 2)]);
    expect(log.isUpToDate(idx(2), term(3))).toBe(true);
    expect(log.isUpToDate(idx(100), term(1))).toBe(false);
    expect(log.isUpToDate(idx(4), term(2))).toBe(true);
    expect(log.isUpToDate(idx(3), term(2))).toBe(false);
  });

  test('nextCommittedEnts hands out committed entries once, bounded by bytes', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1), ent(4, 1)], [], 4);
    const first = log.nextCommittedEnts(ENTRY_OVERHEAD_BYTES * 2);
    expect(first.map((e) => e.index)).toEqual([2, 3]);
    log.applying = idx(3);
    expect(log.nextCommittedEnts(1 << 20).map((e) => e.index)).toEqual([4]);
  });

  test('commitTo never moves backwards and never beyond the last index', () => {
    const { log } = makeLog([ent(2, 1), ent(3, 1)]);
    log.commitTo(idx(3));
    log.commitTo(idx(2));
    expect(log.committed).toBe(3);
    expect(() => log.commitTo(idx(4))).toThrow(AssertionError);
  });
});
