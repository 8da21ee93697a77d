import { describe, expect, test } from 'vitest';
import { AssertionError } from '../../../../src/shards/raft/errors.js';
import { Inflights, Progress } from '../../../../src/shards/raft/progress.js';
import { logIndex } from '../../../../src/shards/raft/types.js';

const idx = logIndex;

describe('Inflights', () => {
  test('is full at messagesMax messages; freeing by acked index reopens it', () => {
    const f = new Inflights(3, 1 << 20);
    f.add(idx(5), 10, 0);
    f.add(idx(7), 10, 0);
    expect(f.full()).toBe(false);
    f.add(idx(9), 10, 0);
    expect(f.full()).toBe(true);
    expect(() => f.add(idx(10), 1, 0)).toThrow(AssertionError);
    f.freeLE(idx(6));
    expect(f.count).toBe(2);
    expect(f.full()).toBe(false);
    f.freeLE(idx(9));
    expect(f.count).toBe(0);
    expect(f.bytes).toBe(0);
  });

  test('is full once the bytes in flight reach bytesMax', () => {
    const f = new Inflights(100, 100);
    f.add(idx(1), 60, 0);
    expect(f.full()).toBe(false);
    f.add(idx(2), 50, 0);
    expect(f.bytes).toBe(110);
    expect(f.full()).toBe(true);
    f.freeLE(idx(1));
    expect(f.bytes).toBe(50);
    expect(f.full()).toBe(false);
  });

  test('an ack below every message frees nothing; reset empties it', () => {
    const f = new Inflights(4, 1000);
    f.add(idx(5), 1, 0);
    f.freeLE(idx(4));
    expect(f.count).toBe(1);
    f.reset();
    expect(f.count).toBe(0);
    expect(f.bytes).toBe(0);
  });

  test('freeing returns the send tick of the last message freed: -1 when none was, or it repeated earlier entries', () => {
    const f = new Inflights(8, 1 << 20);
    f.add(idx(5), 1, 10);
    f.add(idx(7), 1, 12);
    f.add(idx(9), 1, -1);
    expect(f.freeLE(idx(4))).toBe(-1);
    expect(f.freeLE(idx(7))).toBe(12);
    expect(f.freeLE(idx(9))).toBe(-1);
    expect(f.count).toBe(0);
  });

  test('stays correct over many add/free cycles (internal compaction)', () => {
    const f = new Inflights(8, 1 << 20);
    for (let i = 1; i <= 1000; i++) {
      f.add(idx(i), 3, i * 10);
      if (i % 2 === 0) expect(f.freeLE(idx(i - 1))).toBe((i - 1) * 10);
    }
    expect(f.count).toBe(1);
    expect(f.bytes).toBe(3);
  });
});

describe('Progress', () => {
  const fresh = (next = 10): Progress => new Progress(idx(next), false, 4, 1 << 20);

  test('match < next is checked after every change: a broken pair fails at the next one', () => {
    const pr = fresh();
    pr.becomeReplicate();
    pr.match = idx(20); // corrupted from outside, as a bug would
    expect(() => pr.optimisticUpdate(idx(15))).toThrow(AssertionError);
    const ok = fresh();
    ok.becomeReplicate();
    ok.optimisticUpdate(idx(15));
    expect(ok.next).toBe(16);
  });

  test('starts in probe; one probe in flight pauses sending until an answer', () => {
    const p = fresh();
    expect(p.state).toBe('probe');
    expect(p.isPaused()).toBe(false);
    p.probeSent = true;
    expect(p.isPaused()).toBe(true);
    expect(p.maybeUpdate(idx(9))).toBe(true);
    expect(p.isPaused()).toBe(false);
    expect(p.match).toBe(9);
    expect(p.next).toBe(10);
  });

  test('maybeUpdate: a stale ack changes nothing and says so; a newer one raises match and next', () => {
    const p = fresh();
    p.maybeUpdate(idx(8));
    expect(p.maybeUpdate(idx(5))).toBe(false);
    expect(p.match).toBe(8);
    expect(p.maybeUpdate(idx(12))).toBe(true);
    expect(p.next).toBe(13);
  });

  test('replicate: paused only by a full window; next restarts at match + 1', () => {
    const p = fresh();
    p.maybeUpdate(idx(9));
    p.becomeReplicate();
    expect(p.next).toBe(10);
    for (let i = 0; i < 4; i++) p.inflights.add(idx(10 + i), 1, 0);
    expect(p.isPaused()).toBe(true);
  });

  test('maybeDecrTo in replicate: a rejection at or below match is stale; otherwise next falls to match + 1', () => {
    const p = fresh();
    p.maybeUpdate(idx(9));
    p.becomeReplicate();
    p.next = idx(20);
    expect(p.maybeDecrTo(idx(9), idx(0))).toBe(false);
    expect(p.next).toBe(20);
    expect(p.maybeDecrTo(idx(15), idx(3))).toBe(true);
    expect(p.next).toBe(10);
  });

  test('maybeDecrTo in probe: only the rejection of the last probe counts; next follows the hint but never below match + 1', () => {
    const p = fresh(20);
    p.maybeUpdate(idx(4));
    p.next = idx(20);
    p.probeSent = true;
    expect(p.maybeDecrTo(idx(15), idx(2))).toBe(false);
    expect(p.next).toBe(20);
    expect(p.maybeDecrTo(idx(19), idx(11))).toBe(true);
    expect(p.next).toBe(12);
    expect(p.probeSent).toBe(false);
    expect(p.maybeDecrTo(idx(11), idx(1))).toBe(true);
    expect(p.next).toBe(5);
  });

  test('maybeDecrTo in probe: a hint beyond the rejected index does not move next forward', () => {
    const p = fresh(20);
    expect(p.maybeDecrTo(idx(19), idx(50))).toBe(true);
    expect(p.next).toBe(19);
  });

  test('snapshot state pauses sending; leaving it probes from after the snapshot', () => {
    const p = fresh();
    p.maybeUpdate(idx(3));
    p.becomeSnapshot(idx(40));
    expect(p.isPaused()).toBe(true);
    expect(p.pendingSnapshot).toBe(40);
    p.becomeProbe();
    expect(p.state).toBe('probe');
    expect(p.next).toBe(41);
    expect(p.pendingSnapshot).toBe(0);
  });

  test('becomeProbe from replicate restarts at match + 1 and empties the window', () => {
    const p = fresh();
    p.maybeUpdate(idx(9));
    p.becomeReplicate();
    p.inflights.add(idx(12), 5, 0);
    p.next = idx(13);
    p.becomeProbe();
    expect(p.next).toBe(10);
    expect(p.inflights.count).toBe(0);
  });
});
