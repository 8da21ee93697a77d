import { describe, expect, test } from 'vitest';
import { AssertionError, RaftErrorCode } from '../../../../src/shards/raft/errors.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import { ENTRY_OVERHEAD_BYTES, logIndex, nodeId, term } from '../../../../src/shards/raft/types.js';
import { ent, raftErrorOf } from './fixtures.js';

const idx = logIndex;
const cs = { voters: [nodeId(1), nodeId(2)], learners: [nodeId(3)] };

/** Snapshot at 1 (initial), entries 2..6 in terms 1,1,2,2,3. */
function filled(): MemoryStorage {
  const s = MemoryStorage.withMembers(cs.voters, cs.learners);
  s.append([ent(2, 1), ent(3, 1), ent(4, 2), ent(5, 2), ent(6, 3)]);
  return s;
}

describe('MemoryStorage', () => {
  test('a founding member starts after the initial snapshot (index 1, term 1) holding the membership', () => {
    const s = MemoryStorage.withMembers(cs.voters, cs.learners);
    expect(s.firstIndex()).toBe(2);
    expect(s.lastIndex()).toBe(1);
    expect(s.term(idx(1))).toBe(1);
    expect(s.initialState()).toEqual({ hardState: { term: 1, vote: 0, commit: 1 }, confState: cs });
    const empty = new MemoryStorage();
    expect(empty.firstIndex()).toBe(1);
    expect(empty.lastIndex()).toBe(0);
  });

  test('entries below the first index throw Compacted, beyond the last throw Unavailable', () => {
    const s = filled();
    expect(raftErrorOf(() => s.entries(idx(1), idx(3), 1000)).code).toBe(RaftErrorCode.Compacted);
    expect(raftErrorOf(() => s.entries(idx(5), idx(8), 1000)).code).toBe(RaftErrorCode.Unavailable);
    expect(s.entries(idx(2), idx(7), 1 << 20).map((e) => e.index)).toEqual([2, 3, 4, 5, 6]);
  });

  test('entries honours maxBytes but always returns at least one entry', () => {
    const s = filled();
    expect(s.entries(idx(2), idx(7), 2 * ENTRY_OVERHEAD_BYTES).map((e) => e.index)).toEqual([2, 3]);
    expect(s.entries(idx(2), idx(7), 0).map((e) => e.index)).toEqual([2]);
  });

  test('term is known from the snapshot index to the last index; Compacted below, Unavailable above', () => {
    const s = filled();
    expect(s.term(idx(1))).toBe(1);
    expect(s.term(idx(6))).toBe(3);
    expect(raftErrorOf(() => s.term(idx(0))).code).toBe(RaftErrorCode.Compacted);
    expect(raftErrorOf(() => s.term(idx(7))).code).toBe(RaftErrorCode.Unavailable);
  });

  test('createSnapshot records index, term of that entry and membership; an older index keeps the newer snapshot', () => {
    const s = filled();
    const snap = s.createSnapshot(idx(4), cs, new Uint8Array([9]));
    expect(snap.metadata).toEqual({ index: 4, term: 2, confState: cs });
    expect(s.snapshot()).toBe(snap);
    expect(s.createSnapshot(idx(3), cs, new Uint8Array([1]))).toBe(snap);
    // Entries stay until compact.
    expect(s.firstIndex()).toBe(2);
    expect(() => s.createSnapshot(idx(7), cs, new Uint8Array(0))).toThrow(AssertionError);
  });

  test('compact drops entries up to the index; the compacted index keeps its term; reads below throw Compacted', () => {
    const s = filled();
    s.createSnapshot(idx(4), cs, new Uint8Array(0));
    s.compact(idx(4));
    expect(s.firstIndex()).toBe(5);
    expect(s.lastIndex()).toBe(6);
    expect(s.term(idx(4))).toBe(2);
    expect(raftErrorOf(() => s.term(idx(3))).code).toBe(RaftErrorCode.Compacted);
    expect(raftErrorOf(() => s.entries(idx(4), idx(6), 100)).code).toBe(RaftErrorCode.Compacted);
    expect(s.entries(idx(5), idx(7), 1 << 20).map((e) => e.index)).toEqual([5, 6]);
    // Compacting again below is a no-op.
    s.compact(idx(3));
    expect(s.firstIndex()).toBe(5);
  });

  test('compact beyond the snapshot index is a broken invariant (entries not in any snapshot would be lost)', () => {
    const s = filled();
    s.createSnapshot(idx(3), cs, new Uint8Array(0));
    expect(() => s.compact(idx(4))).toThrow(AssertionError);
  });

  test('append truncates the conflicting suffix from the first appended index', () => {
    const s = filled();
    s.append([ent(4, 4), ent(5, 4)]);
    expect(s.lastIndex()).toBe(5);
    expect(s.term(idx(3))).toBe(1);
    expect(s.term(idx(4))).toBe(4);
    expect(raftErrorOf(() => s.term(idx(6))).code).toBe(RaftErrorCode.Unavailable);
  });

  test('append ignores the part of the batch that is already compacted', () => {
    const s = filled();
    s.createSnapshot(idx(4), cs, new Uint8Array(0));
    s.compact(idx(4));
    s.append([ent(2, 1)]);
    expect(s.firstIndex()).toBe(5);
    s.append([ent(4, 2), ent(5, 2), ent(6, 3), ent(7, 3)]);
    expect(s.firstIndex()).toBe(5);
    expect(s.lastIndex()).toBe(7);
  });

  test('append with a gap after the last index is a broken invariant', () => {
    const s = filled();
    expect(() => s.append([ent(8, 3)])).toThrow(AssertionError);
  });

  test('applySnapshot replaces the log; an older snapshot is ignored', () => {
    const s = filled();
    const snap = { metadata: { index: idx(20), term: term(7), confState: cs }, data: new Uint8Array([1]) };
    s.applySnapshot(snap);
    expect(s.firstIndex()).toBe(21);
    expect(s.lastIndex()).toBe(20);
    expect(s.term(idx(20))).toBe(7);
    s.applySnapshot({ ...snap, metadata: { ...snap.metadata, index: idx(10) } });
    expect(s.snapshot()).toBe(snap);
  });

  test('clone is independent of later appends', () => {
    const s = filled();
    const c = s.clone();
    s.append([ent(7, 3)]);
    expect(c.lastIndex()).toBe(6);
    expect(s.lastIndex()).toBe(7);
  });
});
